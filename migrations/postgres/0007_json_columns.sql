-- Control Tower 0007: JSON columns keep their text as written (`json`), as in the legacy layout,
-- instead of PostgreSQL's parsed `jsonb`.
--
-- Why: 0001 gave a fresh database `jsonb` columns, so PostgreSQL parsed every JSON value written
-- into its binary form (`jsonb_in`) and printed it back as text for every read (`jsonb_out`),
-- though nothing looks inside these columns: Control Tower and the legacy service read and write
-- each value whole, no index covers one, and the two statements that append to an Issue's `runs`
-- cast to `jsonb` themselves. A task writes about forty JSON values from its enqueue to its
-- completion (a dozen audit snapshots among them), so a PostgreSQL drain spent a tenth of its time
-- on that round trip (docs/benchmarks.md, thirty-fourth session). `json` checks that the text is
-- JSON and stores it as sent: an audit row's snapshot is the very bytes the engine wrote.
--
-- A database the legacy service created has these columns as `json` already, with the same
-- defaults: there every statement below changes nothing and rewrites nothing. On a database an
-- earlier Control Tower created, each `ALTER TABLE` rewrites its table once, holding an exclusive
-- lock on it meanwhile: on a large database, stop the workers and the API first
-- (docs/operations.md, "Upgrading").

ALTER TABLE tasks
    ALTER COLUMN inputs DROP DEFAULT,
    ALTER COLUMN inputs TYPE json USING inputs::json,
    ALTER COLUMN inputs SET DEFAULT '{}'::json,
    ALTER COLUMN metadata DROP DEFAULT,
    ALTER COLUMN metadata TYPE json USING metadata::json,
    ALTER COLUMN metadata SET DEFAULT '{}'::json,
    ALTER COLUMN result TYPE json USING result::json;

ALTER TABLE cwom_issues
    ALTER COLUMN assignees DROP DEFAULT,
    ALTER COLUMN assignees TYPE json USING assignees::json,
    ALTER COLUMN assignees SET DEFAULT '[]'::json,
    ALTER COLUMN watchers DROP DEFAULT,
    ALTER COLUMN watchers TYPE json USING watchers::json,
    ALTER COLUMN watchers SET DEFAULT '[]'::json,
    ALTER COLUMN acceptance DROP DEFAULT,
    ALTER COLUMN acceptance TYPE json USING acceptance::json,
    ALTER COLUMN acceptance SET DEFAULT '{}'::json,
    ALTER COLUMN relationships DROP DEFAULT,
    ALTER COLUMN relationships TYPE json USING relationships::json,
    ALTER COLUMN relationships SET DEFAULT '{}'::json,
    ALTER COLUMN runs DROP DEFAULT,
    ALTER COLUMN runs TYPE json USING runs::json,
    ALTER COLUMN runs SET DEFAULT '[]'::json,
    ALTER COLUMN tags DROP DEFAULT,
    ALTER COLUMN tags TYPE json USING tags::json,
    ALTER COLUMN tags SET DEFAULT '[]'::json,
    ALTER COLUMN meta DROP DEFAULT,
    ALTER COLUMN meta TYPE json USING meta::json,
    ALTER COLUMN meta SET DEFAULT '{}'::json;

ALTER TABLE cwom_context_packets
    ALTER COLUMN inputs DROP DEFAULT,
    ALTER COLUMN inputs TYPE json USING inputs::json,
    ALTER COLUMN inputs SET DEFAULT '{}'::json,
    ALTER COLUMN assumptions DROP DEFAULT,
    ALTER COLUMN assumptions TYPE json USING assumptions::json,
    ALTER COLUMN assumptions SET DEFAULT '[]'::json,
    ALTER COLUMN open_questions DROP DEFAULT,
    ALTER COLUMN open_questions TYPE json USING open_questions::json,
    ALTER COLUMN open_questions SET DEFAULT '[]'::json,
    ALTER COLUMN tags DROP DEFAULT,
    ALTER COLUMN tags TYPE json USING tags::json,
    ALTER COLUMN tags SET DEFAULT '[]'::json,
    ALTER COLUMN meta DROP DEFAULT,
    ALTER COLUMN meta TYPE json USING meta::json,
    ALTER COLUMN meta SET DEFAULT '{}'::json;

ALTER TABLE cwom_constraint_snapshots
    ALTER COLUMN constraints DROP DEFAULT,
    ALTER COLUMN constraints TYPE json USING constraints::json,
    ALTER COLUMN constraints SET DEFAULT '{}'::json,
    ALTER COLUMN tags DROP DEFAULT,
    ALTER COLUMN tags TYPE json USING tags::json,
    ALTER COLUMN tags SET DEFAULT '[]'::json,
    ALTER COLUMN meta DROP DEFAULT,
    ALTER COLUMN meta TYPE json USING meta::json,
    ALTER COLUMN meta SET DEFAULT '{}'::json;

ALTER TABLE cwom_runs
    ALTER COLUMN executor TYPE json USING executor::json,
    ALTER COLUMN inputs DROP DEFAULT,
    ALTER COLUMN inputs TYPE json USING inputs::json,
    ALTER COLUMN inputs SET DEFAULT '{}'::json,
    ALTER COLUMN plan DROP DEFAULT,
    ALTER COLUMN plan TYPE json USING plan::json,
    ALTER COLUMN plan SET DEFAULT '{}'::json,
    ALTER COLUMN telemetry DROP DEFAULT,
    ALTER COLUMN telemetry TYPE json USING telemetry::json,
    ALTER COLUMN telemetry SET DEFAULT '{}'::json,
    ALTER COLUMN cost DROP DEFAULT,
    ALTER COLUMN cost TYPE json USING cost::json,
    ALTER COLUMN cost SET DEFAULT '{}'::json,
    ALTER COLUMN outputs DROP DEFAULT,
    ALTER COLUMN outputs TYPE json USING outputs::json,
    ALTER COLUMN outputs SET DEFAULT '{}'::json,
    ALTER COLUMN failure TYPE json USING failure::json,
    ALTER COLUMN tags DROP DEFAULT,
    ALTER COLUMN tags TYPE json USING tags::json,
    ALTER COLUMN tags SET DEFAULT '[]'::json,
    ALTER COLUMN meta DROP DEFAULT,
    ALTER COLUMN meta TYPE json USING meta::json,
    ALTER COLUMN meta SET DEFAULT '{}'::json;

ALTER TABLE cwom_artifacts
    ALTER COLUMN verification DROP DEFAULT,
    ALTER COLUMN verification TYPE json USING verification::json,
    ALTER COLUMN verification SET DEFAULT '{}'::json,
    ALTER COLUMN tags DROP DEFAULT,
    ALTER COLUMN tags TYPE json USING tags::json,
    ALTER COLUMN tags SET DEFAULT '[]'::json,
    ALTER COLUMN meta DROP DEFAULT,
    ALTER COLUMN meta TYPE json USING meta::json,
    ALTER COLUMN meta SET DEFAULT '{}'::json;

ALTER TABLE cwom_evidence_packs
    ALTER COLUMN criteria_results TYPE json USING criteria_results::json,
    ALTER COLUMN evidence_collected TYPE json USING evidence_collected::json,
    ALTER COLUMN evidence_missing TYPE json USING evidence_missing::json,
    ALTER COLUMN tags TYPE json USING tags::json,
    ALTER COLUMN meta TYPE json USING meta::json;

ALTER TABLE audit_log
    ALTER COLUMN "before" TYPE json USING "before"::json,
    ALTER COLUMN "after" TYPE json USING "after"::json;

ALTER TABLE cwom_repos
    ALTER COLUMN source TYPE json USING source::json,
    ALTER COLUMN owners DROP DEFAULT,
    ALTER COLUMN owners TYPE json USING owners::json,
    ALTER COLUMN owners SET DEFAULT '[]'::json,
    ALTER COLUMN policy TYPE json USING policy::json,
    ALTER COLUMN links DROP DEFAULT,
    ALTER COLUMN links TYPE json USING links::json,
    ALTER COLUMN links SET DEFAULT '[]'::json,
    ALTER COLUMN tags DROP DEFAULT,
    ALTER COLUMN tags TYPE json USING tags::json,
    ALTER COLUMN tags SET DEFAULT '[]'::json,
    ALTER COLUMN meta DROP DEFAULT,
    ALTER COLUMN meta TYPE json USING meta::json,
    ALTER COLUMN meta SET DEFAULT '{}'::json;

ALTER TABLE cwom_doctrine_refs
    ALTER COLUMN links DROP DEFAULT,
    ALTER COLUMN links TYPE json USING links::json,
    ALTER COLUMN links SET DEFAULT '[]'::json,
    ALTER COLUMN applicability DROP DEFAULT,
    ALTER COLUMN applicability TYPE json USING applicability::json,
    ALTER COLUMN applicability SET DEFAULT '{}'::json,
    ALTER COLUMN tags DROP DEFAULT,
    ALTER COLUMN tags TYPE json USING tags::json,
    ALTER COLUMN tags SET DEFAULT '[]'::json,
    ALTER COLUMN meta DROP DEFAULT,
    ALTER COLUMN meta TYPE json USING meta::json,
    ALTER COLUMN meta SET DEFAULT '{}'::json;

ALTER TABLE cwom_review_decisions
    ALTER COLUMN criteria_overrides TYPE json USING criteria_overrides::json,
    ALTER COLUMN tags TYPE json USING tags::json,
    ALTER COLUMN meta TYPE json USING meta::json;
