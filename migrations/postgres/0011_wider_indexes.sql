-- Control Tower 0011: on PostgreSQL only the lease index goes (below). The SQLite migration of
-- the same number also replaces three pairs of indexes on tasks, cwom_issues and
-- cwom_constraint_snapshots with one wider index each, read once per value of its leading
-- columns; PostgreSQL's planner, on tables without statistics, read such filters through a whole
-- scan of another index instead (see 0010), so the legacy layout's indexes stay here.

-- And ix_tasks_lease (status, lease_expires_at) goes: the rescue reads the running tasks
-- (`status = 'running'`, through the other indexes that lead with the status) and picks those
-- whose lease expired. Running tasks are at most as many as the workers' slots, so reading them
-- all costs nothing worth an index; without it an enqueue, claim and completion write one index
-- less, and a heartbeat, which only moves the lease, changes no indexed column (on PostgreSQL an
-- update that can stay on its page, HOT, writing no index).
DROP INDEX IF EXISTS ix_tasks_lease;
