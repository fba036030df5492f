-- Control Tower 0003: retention (`tower prune`, TOWER_RETENTION_DAYS). Additive only.

-- When the Run's trace folder was deleted by retention; its Artifacts say so in their meta.
ALTER TABLE cwom_runs ADD COLUMN trace_pruned_at DATETIME;
-- Finished Runs whose trace folder is still there, oldest first: what a prune pass walks.
CREATE INDEX ix_cwom_runs_unpruned ON cwom_runs (updated_at) WHERE trace_pruned_at IS NULL;
