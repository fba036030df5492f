-- Control Tower 0005: the hot tables lose the indexes that no query reads (and one whose queries
-- another index serves as well).
--
-- Every enqueue, claim and completion inserts into these tables, and every status change of a
-- task, Run or Issue is an update of an indexed column, which writes every index of its table (on
-- PostgreSQL no such update is HOT). A task writes about 16 audit rows from its enqueue to its
-- completion, so each audit index costs it 16 index inserts. The indexes below come from the
-- legacy models' `index=True` columns; neither service filters or sorts on their columns: the
-- legacy service reads tasks by id, idempotency key, status, operation, requester kind and target
-- repo, and the audit trail by entity; Control Tower's lists, lookups, claim, rescue and retention
-- read the columns whose indexes stay (`StorageTests.IndexTests` shows each filter still reads
-- through an index). Without them the SQLite intake writes a fifth fewer bytes per enqueue and
-- answers about a fifth more of them, and PostgreSQL writes a fifth less WAL per task
-- (docs/benchmarks.md). An operator whose own queries need one can create it again; nothing here
-- depends on its absence. The tables written at human pace (Repos, DoctrineRefs, reviews) keep
-- their legacy indexes.
DROP INDEX IF EXISTS ix_tasks_requested_by_id;              -- ix_tasks_requester (requested_by_kind, requested_by_id) serves the requester
DROP INDEX IF EXISTS ix_tasks_trace_id;
DROP INDEX IF EXISTS ix_tasks_version;                      -- an optimistic-lock counter, read with its row
DROP INDEX IF EXISTS ix_audit_log_action;
DROP INDEX IF EXISTS ix_audit_log_actor;
DROP INDEX IF EXISTS ix_audit_log_actor_id;
-- Read, but never better than ix_audit_log_entity_id: ids are unique per entity (ULIDs, UUIDs), so
-- an entity's trail is the handful of rows with its id, and their kind filtered and sorted in
-- memory cost less than one more index written by each of the 16 audit rows of a task.
DROP INDEX IF EXISTS ix_audit_log_entity_ts;
DROP INDEX IF EXISTS ix_cwom_issues_trace_id;
DROP INDEX IF EXISTS ix_cwom_runs_trace_id;
DROP INDEX IF EXISTS ix_cwom_runs_artifact_root_uri;
DROP INDEX IF EXISTS ix_cwom_context_packets_trace_id;
DROP INDEX IF EXISTS ix_cwom_context_packets_version;       -- versions are read by Issue (ix_cwom_context_packets_for_issue_id)
DROP INDEX IF EXISTS ix_cwom_context_packets_created_at;    -- packets are listed by Issue only
DROP INDEX IF EXISTS ix_cwom_constraint_snapshots_trace_id;
DROP INDEX IF EXISTS ix_cwom_artifacts_trace_id;
DROP INDEX IF EXISTS ix_cwom_artifacts_digest;
DROP INDEX IF EXISTS ix_cwom_evidence_packs_trace_id;
