-- Control Tower 0011: three pairs of indexes on tables every enqueue writes become one wider
-- index each, read once per value of its leading columns where a filter leaves them open.
--
-- Why: as 0010, every index is a page of each intake commit (its rightmost leaf written to the
-- WAL again) and an entry of each row; an Issue's status change also rewrites each index that
-- holds its status. Under `wrk -c 4` the SQLite intake answered about 3 % more requests without
-- two of the indexes these replace (docs/benchmarks.md, fifty-first session).
--
-- What reads the new ones: `cwom_issues (type, status, priority)` serves a filter on the type
-- (its prefix), the type and status, the status alone (`type IN (…every type…)`), and the
-- priority (`type IN (…) AND status IN (…)`, one seek per pair of values); the columns are
-- NOT NULL and hold the legacy enums' values. `cwom_constraint_snapshots (scope, owner_kind,
-- owner_id)` serves a filter on the scope (its prefix) and on the owner (`scope IN (…) AND
-- owner_kind IN (…)`). `tasks (status, operation, requested_by_kind)` serves the status, the
-- operation (`status IN (…)`, as since 0010) and the requester's kind (`status IN (…) AND
-- operation IN (…)`); no query reads a requester's id. `StorageTests.IndexTests` shows each
-- filter seeking. The legacy service
-- does not name indexes; its own queries still work.
--
-- Building them reads both tables once and holds off writes meanwhile (about a second per
-- million rows here): on a large history, run `tower migrate` in a quiet minute. PostgreSQL's
-- 0011 changes nothing (its planner, without statistics, did not seek the wider index once per
-- value; see 0010).
CREATE INDEX IF NOT EXISTS ix_cwom_issues_type_status_priority ON cwom_issues (type, status, priority);
DROP INDEX IF EXISTS ix_cwom_issues_type_status;
DROP INDEX IF EXISTS ix_cwom_issues_priority_status;
CREATE INDEX IF NOT EXISTS ix_cwom_constraint_snapshots_scope_owner ON cwom_constraint_snapshots (scope, owner_kind, owner_id);
DROP INDEX IF EXISTS ix_cwom_constraint_snapshots_scope;
DROP INDEX IF EXISTS ix_cwom_constraint_snapshots_owner;
CREATE INDEX IF NOT EXISTS ix_tasks_status_operation_requester ON tasks (status, operation, requested_by_kind);
DROP INDEX IF EXISTS ix_tasks_status_operation;
DROP INDEX IF EXISTS ix_tasks_requester;

-- And ix_tasks_lease (status, lease_expires_at) goes: the rescue reads the running tasks
-- (`status = 'running'`, through the other indexes that lead with the status) and picks those
-- whose lease expired. Running tasks are at most as many as the workers' slots, so reading them
-- all costs nothing worth an index; without it an enqueue, claim and completion write one index
-- less, and a heartbeat, which only moves the lease, changes no indexed column (on PostgreSQL an
-- update that can stay on its page, HOT, writing no index).
DROP INDEX IF EXISTS ix_tasks_lease;
