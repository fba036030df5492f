-- Control Tower 0006: the lists of evidence packs and review decisions read newest first through
-- an index.
--
-- `GET /cwom/evidence-packs` and `GET /cwom/reviews` answer `ORDER BY created_at DESC, id DESC`
-- with a limit, as the legacy service did, but the legacy layout has no index on either table's
-- `created_at`: every page read and sorted the whole table, which grows by a row per Run (per
-- completed attempt for packs, per decision for reviews). With these indexes a page reads its
-- rows and stops. Each costs a completion one index insert (the lists of tasks, Issues, Runs,
-- Repos, ConstraintSnapshots and the audit trail already have theirs: `StorageTests.IndexTests`
-- shows every unfiltered list reads in order through an index). Building them reads each table
-- once; on a very large history, create them first without blocking writes on PostgreSQL
-- (`CREATE INDEX CONCURRENTLY IF NOT EXISTS …`), and this migration finds them.
CREATE INDEX IF NOT EXISTS ix_cwom_evidence_packs_created_at ON cwom_evidence_packs (created_at);
CREATE INDEX IF NOT EXISTS ix_cwom_review_decisions_created_at ON cwom_review_decisions (created_at);
