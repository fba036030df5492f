-- Control Tower 0010: a filter on a table's second index column seeks the wider index once per
-- value of its first column, instead of an index of its own.
--
-- Why: every index of a table costs each row an entry, and on SQLite each commit a page of it
-- (the index's rightmost leaf, written to the WAL again): an intake commit of about two
-- enqueues writes a page of each of about 35 B-trees, about half of its pages. Without these two
-- the SQLite intake answered about 2.6 % more requests under `wrk -c 4` (docs/benchmarks.md,
-- fifty-first session). (PostgreSQL's 0010 drops ix_tasks_operation only.)
--
-- What reads them instead: `tasks.status` and `cwom_issues.type` are NOT NULL and hold one of a
-- handful of values (the legacy enums), so `operation = $1` alone is read as
-- `status IN (…every status…) AND operation = $1` through ix_tasks_status_operation, and an
-- Issue's `status = $1` alone as `type IN (…every type…) AND status = $1` through
-- ix_cwom_issues_type_status: one seek per value, each reading only matching entries
-- (`StorageTests.IndexTests` shows both filters seeking). With the leading column filtered too,
-- the wider index is sought directly, as before. The legacy service does not name indexes; its
-- own filter on either column alone still works, by reading the table. An operator whose
-- queries need one can create it again; nothing here depends on its absence.
DROP INDEX IF EXISTS ix_tasks_operation;
DROP INDEX IF EXISTS ix_cwom_issues_status;
