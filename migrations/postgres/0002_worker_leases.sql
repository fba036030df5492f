-- Control Tower 0002: what the worker needs to claim, lease, retry and cancel tasks.
-- Additive only: nullable columns or columns with defaults, and a side table. Inserts made by
-- the legacy service (which names only legacy columns) keep working.

-- The attempt being run (0 before the first claim); a rescued task is retried up to max_attempts.
ALTER TABLE tasks ADD COLUMN attempt integer DEFAULT 0 NOT NULL;
ALTER TABLE tasks ADD COLUMN max_attempts integer DEFAULT 3 NOT NULL;
-- A queued task is not claimed before run_after (backoff between attempts).
ALTER TABLE tasks ADD COLUMN run_after timestamp with time zone;
-- A running task belongs to its worker until the lease expires; the heartbeat extends it.
ALTER TABLE tasks ADD COLUMN lease_expires_at timestamp with time zone;
-- Set by a cancel request; the worker running the task stops it.
ALTER TABLE tasks ADD COLUMN cancel_requested_at timestamp with time zone;
-- The Run of the current (or last) attempt.
ALTER TABLE tasks ADD COLUMN current_run_id character varying(128);

CREATE INDEX ix_tasks_claim ON tasks USING btree (status, queued_at);
CREATE INDEX ix_tasks_lease ON tasks USING btree (status, lease_expires_at);

-- One row per worker process: identity (host, pid, a ULID) and its heartbeat.
CREATE TABLE tower_workers (
    id character varying(100) NOT NULL PRIMARY KEY,
    host character varying(256) NOT NULL,
    pid integer NOT NULL,
    concurrency integer NOT NULL,
    started_at timestamp with time zone NOT NULL,
    heartbeat_at timestamp with time zone NOT NULL,
    stopped_at timestamp with time zone
);
