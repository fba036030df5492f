-- Control Tower 0004: the claim reads the queue through an index in its own order, and the hot
-- tables lose the indexes that another index already covers.
--
-- The claim takes the oldest queued tasks: `WHERE status = 'queued' ORDER BY queued_at,
-- created_at, id LIMIT n` (SQLite sorts NULLs first). With ix_tasks_claim (status, queued_at)
-- SQLite sorted every group of equal queued_at in a temporary B-tree; this index gives the
-- queued rows in the claim's exact order. (Not a partial index as on PostgreSQL: without
-- statistics SQLite's planner prefers an equality search on `status` in another index and a sort
-- to a scan of a partial index.)
CREATE INDEX IF NOT EXISTS ix_tasks_queue ON tasks (status, queued_at, created_at, id);
-- Nothing else reads ix_tasks_claim, and every status change of a task paid for it.
DROP INDEX ix_tasks_claim;

-- Every status change of a task, Run or Issue, and every audit row, updates each index of its
-- table. Of the legacy layout's indexes on these four tables, these nine are the leading columns
-- of another index (or, for the idempotency key, a copy of the unique constraint's own index):
-- every query they served is served as well by the wider one, so they cost writes and buy
-- nothing. The legacy service does not name indexes in its queries and keeps working.
DROP INDEX IF EXISTS ix_tasks_status;              -- ix_tasks_status_operation (status, operation)
DROP INDEX IF EXISTS ix_tasks_requested_by_kind;   -- ix_tasks_requester (requested_by_kind, requested_by_id)
DROP INDEX IF EXISTS ix_tasks_idempotency_key;     -- uq_tasks_idempotency_key
DROP INDEX IF EXISTS ix_audit_log_entity_kind;     -- ix_audit_log_entity_ts (entity_kind, entity_id, ts)
DROP INDEX IF EXISTS ix_audit_log_entity;          -- ix_audit_log_entity_ts
DROP INDEX IF EXISTS ix_audit_log_ts;              -- ix_audit_log_ts_action (ts, action)
DROP INDEX IF EXISTS ix_cwom_issues_type;          -- ix_cwom_issues_type_status (type, status)
DROP INDEX IF EXISTS ix_cwom_issues_priority;      -- ix_cwom_issues_priority_status (priority, status)
DROP INDEX IF EXISTS ix_cwom_runs_status;          -- ix_cwom_runs_status_mode (status, mode)
