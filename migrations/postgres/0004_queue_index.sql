-- Control Tower 0004: the claim reads the queue through an index in its own order, and the hot
-- tables lose the indexes that another index already covers.
--
-- The claim takes the oldest queued tasks: `WHERE status = 'queued' ORDER BY queued_at NULLS
-- FIRST, created_at, id LIMIT n FOR UPDATE SKIP LOCKED`. ix_tasks_claim (status, queued_at)
-- sorts NULLs last and stops at queued_at, so PostgreSQL read every queued row and sorted them
-- on every claim: 4 ms with a backlog of 3,000, and growing with the backlog. This index holds
-- only the queued rows, in the claim's exact order, so a claim reads the n rows it takes (plus
-- those locked by other claimers) and stops. It also answers the oldest queued task's age.
CREATE INDEX IF NOT EXISTS ix_tasks_queue ON tasks (queued_at NULLS FIRST, created_at, id) WHERE status = 'queued';
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
