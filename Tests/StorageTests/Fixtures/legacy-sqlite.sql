-- Legacy JCT V1 layout after its last migration (alembic head j1e2f3a4b5c6), SQLite.
-- Written from the legacy behaviour reference §2; used by the adoption tests only.

CREATE TABLE alembic_version (
	version_num VARCHAR(32) NOT NULL,
	CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)
);

CREATE TABLE events (
	id VARCHAR(36) NOT NULL,
	type VARCHAR(100) NOT NULL,
	source VARCHAR(100) NOT NULL,
	data JSON DEFAULT '{}' NOT NULL,
	priority VARCHAR(8) DEFAULT 'medium' NOT NULL,
	tags JSON DEFAULT '{}' NOT NULL,
	status VARCHAR(10) DEFAULT 'pending' NOT NULL,
	created_at DATETIME DEFAULT CURRENT_TIMESTAMP NOT NULL,
	processed_at DATETIME,
	processed_by VARCHAR(100),
	result JSON,
	error TEXT,
	PRIMARY KEY (id)
);

CREATE INDEX ix_events_type ON events (type);

CREATE INDEX ix_events_source ON events (source);

CREATE INDEX ix_events_priority ON events (priority);

CREATE INDEX ix_events_status ON events (status);

CREATE INDEX ix_events_type_status ON events (type, status);

CREATE INDEX ix_events_created_at ON events (created_at);

CREATE INDEX ix_events_priority_status ON events (priority, status);

CREATE TABLE workflows (
	id VARCHAR(36) NOT NULL,
	name VARCHAR(100) NOT NULL,
	description TEXT,
	trigger_events JSON DEFAULT '[]' NOT NULL,
	trigger_conditions TEXT,
	steps JSON DEFAULT '[]' NOT NULL,
	status VARCHAR(9) DEFAULT 'idle' NOT NULL,
	created_at DATETIME DEFAULT CURRENT_TIMESTAMP NOT NULL,
	last_executed_at DATETIME,
	execution_count INTEGER DEFAULT '0' NOT NULL,
	last_execution_context JSON,
	last_result JSON,
	last_error TEXT,
	is_active BOOLEAN DEFAULT 'true' NOT NULL,
	timeout_seconds INTEGER DEFAULT '3600' NOT NULL,
	PRIMARY KEY (id),
	CONSTRAINT uq_workflows_name UNIQUE (name)
);

CREATE INDEX ix_workflows_name ON workflows (name);

CREATE INDEX ix_workflows_status ON workflows (status);

CREATE INDEX ix_workflows_is_active ON workflows (is_active);

CREATE INDEX ix_workflows_status_active ON workflows (status, is_active);

CREATE INDEX ix_workflows_last_executed ON workflows (last_executed_at);

CREATE TABLE agents (
	id VARCHAR(36) NOT NULL,
	name VARCHAR(100) NOT NULL,
	type VARCHAR(50) NOT NULL,
	description TEXT,
	config JSON DEFAULT '{}' NOT NULL,
	capabilities JSON DEFAULT '[]' NOT NULL,
	status VARCHAR(8) DEFAULT 'inactive' NOT NULL,
	last_heartbeat DATETIME,
	health_status VARCHAR(20) DEFAULT '''unknown''' NOT NULL,
	health_details JSON,
	tasks_completed INTEGER DEFAULT '0' NOT NULL,
	tasks_failed INTEGER DEFAULT '0' NOT NULL,
	average_response_time INTEGER,
	created_at DATETIME DEFAULT CURRENT_TIMESTAMP NOT NULL,
	started_at DATETIME,
	last_activity_at DATETIME,
	is_enabled BOOLEAN DEFAULT 'true' NOT NULL,
	auto_restart BOOLEAN DEFAULT 'true' NOT NULL,
	max_concurrent_tasks INTEGER DEFAULT '5' NOT NULL,
	last_error TEXT,
	error_count INTEGER DEFAULT '0' NOT NULL,
	PRIMARY KEY (id),
	CONSTRAINT uq_agents_name UNIQUE (name)
);

CREATE INDEX ix_agents_name ON agents (name);

CREATE INDEX ix_agents_type ON agents (type);

CREATE INDEX ix_agents_status ON agents (status);

CREATE INDEX ix_agents_health_status ON agents (health_status);

CREATE INDEX ix_agents_is_enabled ON agents (is_enabled);

CREATE INDEX ix_agents_type_status ON agents (type, status);

CREATE INDEX ix_agents_health_enabled ON agents (health_status, is_enabled);

CREATE INDEX ix_agents_last_activity ON agents (last_activity_at);

CREATE TABLE cwom_repos (
	id VARCHAR(128) NOT NULL,
	kind VARCHAR(20) DEFAULT 'Repo' NOT NULL,
	name VARCHAR(256) NOT NULL,
	slug VARCHAR(256) NOT NULL,
	default_branch VARCHAR(128) DEFAULT 'main' NOT NULL,
	visibility VARCHAR(8) DEFAULT 'private' NOT NULL,
	source JSON NOT NULL,
	owners JSON DEFAULT '[]' NOT NULL,
	policy JSON,
	links JSON DEFAULT '[]' NOT NULL,
	tags JSON DEFAULT '[]' NOT NULL,
	meta JSON DEFAULT '{}' NOT NULL,
	created_at DATETIME DEFAULT CURRENT_TIMESTAMP NOT NULL,
	updated_at DATETIME DEFAULT CURRENT_TIMESTAMP NOT NULL, trace_id VARCHAR(36),
	PRIMARY KEY (id),
	CONSTRAINT uq_cwom_repos_slug UNIQUE (slug)
);

CREATE INDEX ix_cwom_repos_name ON cwom_repos (name);

CREATE INDEX ix_cwom_repos_slug ON cwom_repos (slug);

CREATE INDEX ix_cwom_repos_visibility ON cwom_repos (visibility);

CREATE INDEX ix_cwom_repos_created_at ON cwom_repos (created_at);

CREATE TABLE cwom_constraint_snapshots (
	id VARCHAR(128) NOT NULL,
	kind VARCHAR(20) DEFAULT 'ConstraintSnapshot' NOT NULL,
	scope VARCHAR(8) NOT NULL,
	captured_at DATETIME DEFAULT CURRENT_TIMESTAMP NOT NULL,
	owner_kind VARCHAR(6) NOT NULL,
	owner_id VARCHAR(128) NOT NULL,
	owner_display VARCHAR(256),
	constraints JSON DEFAULT '{}' NOT NULL,
	tags JSON DEFAULT '[]' NOT NULL,
	meta JSON DEFAULT '{}' NOT NULL, trace_id VARCHAR(36),
	PRIMARY KEY (id)
);

CREATE INDEX ix_cwom_constraint_snapshots_scope ON cwom_constraint_snapshots (scope);

CREATE INDEX ix_cwom_constraint_snapshots_captured_at ON cwom_constraint_snapshots (captured_at);

CREATE INDEX ix_cwom_constraint_snapshots_owner ON cwom_constraint_snapshots (owner_kind, owner_id);

CREATE TABLE cwom_doctrine_refs (
	id VARCHAR(128) NOT NULL,
	kind VARCHAR(20) DEFAULT 'DoctrineRef' NOT NULL,
	namespace VARCHAR(128) NOT NULL,
	name VARCHAR(256) NOT NULL,
	version VARCHAR(64) NOT NULL,
	type VARCHAR(9) NOT NULL,
	priority VARCHAR(6) DEFAULT 'should' NOT NULL,
	statement TEXT NOT NULL,
	rationale TEXT,
	links JSON DEFAULT '[]' NOT NULL,
	applicability JSON DEFAULT '{}' NOT NULL,
	tags JSON DEFAULT '[]' NOT NULL,
	meta JSON DEFAULT '{}' NOT NULL,
	created_at DATETIME DEFAULT CURRENT_TIMESTAMP NOT NULL,
	updated_at DATETIME DEFAULT CURRENT_TIMESTAMP NOT NULL, trace_id VARCHAR(36),
	PRIMARY KEY (id),
	CONSTRAINT uq_doctrine_ref_nv UNIQUE (namespace, name, version)
);

CREATE INDEX ix_cwom_doctrine_refs_namespace ON cwom_doctrine_refs (namespace);

CREATE INDEX ix_cwom_doctrine_refs_name ON cwom_doctrine_refs (name);

CREATE INDEX ix_cwom_doctrine_refs_version ON cwom_doctrine_refs (version);

CREATE INDEX ix_cwom_doctrine_refs_type ON cwom_doctrine_refs (type);

CREATE INDEX ix_cwom_doctrine_refs_namespace_name ON cwom_doctrine_refs (namespace, name);

CREATE INDEX ix_cwom_doctrine_refs_type_priority ON cwom_doctrine_refs (type, priority);

CREATE INDEX ix_cwom_doctrine_refs_created_at ON cwom_doctrine_refs (created_at);

CREATE TABLE cwom_issues (
	id VARCHAR(128) NOT NULL,
	kind VARCHAR(20) DEFAULT 'Issue' NOT NULL,
	repo_id VARCHAR(128) NOT NULL,
	repo_kind VARCHAR(20) DEFAULT 'Repo' NOT NULL,
	repo_role VARCHAR(64),
	title VARCHAR(512) NOT NULL,
	description TEXT DEFAULT '' NOT NULL,
	type VARCHAR(8) NOT NULL,
	priority VARCHAR(2) DEFAULT 'P2' NOT NULL,
	status VARCHAR(8) DEFAULT 'planned' NOT NULL,
	assignees JSON DEFAULT '[]' NOT NULL,
	watchers JSON DEFAULT '[]' NOT NULL,
	acceptance JSON DEFAULT '{}' NOT NULL,
	relationships JSON DEFAULT '{}' NOT NULL,
	runs JSON DEFAULT '[]' NOT NULL,
	tags JSON DEFAULT '[]' NOT NULL,
	meta JSON DEFAULT '{}' NOT NULL,
	created_at DATETIME DEFAULT CURRENT_TIMESTAMP NOT NULL,
	updated_at DATETIME DEFAULT CURRENT_TIMESTAMP NOT NULL, trace_id VARCHAR(36),
	PRIMARY KEY (id),
	FOREIGN KEY(repo_id) REFERENCES cwom_repos (id)
);

CREATE INDEX ix_cwom_issues_repo_id ON cwom_issues (repo_id);

CREATE INDEX ix_cwom_issues_type ON cwom_issues (type);

CREATE INDEX ix_cwom_issues_priority ON cwom_issues (priority);

CREATE INDEX ix_cwom_issues_status ON cwom_issues (status);

CREATE INDEX ix_cwom_issues_type_status ON cwom_issues (type, status);

CREATE INDEX ix_cwom_issues_priority_status ON cwom_issues (priority, status);

CREATE INDEX ix_cwom_issues_created_at ON cwom_issues (created_at);

CREATE TABLE cwom_context_packets (
	id VARCHAR(128) NOT NULL,
	kind VARCHAR(20) DEFAULT 'ContextPacket' NOT NULL,
	for_issue_id VARCHAR(128) NOT NULL,
	for_issue_kind VARCHAR(20) DEFAULT 'Issue' NOT NULL,
	for_issue_role VARCHAR(64),
	version VARCHAR(64) NOT NULL,
	summary TEXT NOT NULL,
	inputs JSON DEFAULT '{}' NOT NULL,
	assumptions JSON DEFAULT '[]' NOT NULL,
	open_questions JSON DEFAULT '[]' NOT NULL,
	instructions TEXT DEFAULT '' NOT NULL,
	constraint_snapshot_id VARCHAR(128),
	tags JSON DEFAULT '[]' NOT NULL,
	meta JSON DEFAULT '{}' NOT NULL,
	created_at DATETIME DEFAULT CURRENT_TIMESTAMP NOT NULL,
	updated_at DATETIME DEFAULT CURRENT_TIMESTAMP NOT NULL, trace_id VARCHAR(36),
	PRIMARY KEY (id),
	FOREIGN KEY(for_issue_id) REFERENCES cwom_issues (id),
	FOREIGN KEY(constraint_snapshot_id) REFERENCES cwom_constraint_snapshots (id)
);

CREATE INDEX ix_cwom_context_packets_for_issue_id ON cwom_context_packets (for_issue_id);

CREATE INDEX ix_cwom_context_packets_version ON cwom_context_packets (version);

CREATE INDEX ix_cwom_context_packets_created_at ON cwom_context_packets (created_at);

CREATE TABLE cwom_runs (
	id VARCHAR(128) NOT NULL,
	kind VARCHAR(20) DEFAULT 'Run' NOT NULL,
	for_issue_id VARCHAR(128) NOT NULL,
	for_issue_kind VARCHAR(20) DEFAULT 'Issue' NOT NULL,
	for_issue_role VARCHAR(64),
	repo_id VARCHAR(128) NOT NULL,
	repo_kind VARCHAR(20) DEFAULT 'Repo' NOT NULL,
	repo_role VARCHAR(64),
	status VARCHAR(8) DEFAULT 'planned' NOT NULL,
	mode VARCHAR(6) NOT NULL,
	executor JSON NOT NULL,
	inputs JSON DEFAULT '{}' NOT NULL,
	constraint_snapshot_id VARCHAR(128),
	"plan" JSON DEFAULT '{}' NOT NULL,
	telemetry JSON DEFAULT '{}' NOT NULL,
	cost JSON DEFAULT '{}' NOT NULL,
	outputs JSON DEFAULT '{}' NOT NULL,
	failure JSON,
	tags JSON DEFAULT '[]' NOT NULL,
	meta JSON DEFAULT '{}' NOT NULL,
	created_at DATETIME DEFAULT CURRENT_TIMESTAMP NOT NULL,
	updated_at DATETIME DEFAULT CURRENT_TIMESTAMP NOT NULL, trace_id VARCHAR(36), artifact_root_uri VARCHAR(2000),
	PRIMARY KEY (id),
	FOREIGN KEY(for_issue_id) REFERENCES cwom_issues (id),
	FOREIGN KEY(repo_id) REFERENCES cwom_repos (id),
	FOREIGN KEY(constraint_snapshot_id) REFERENCES cwom_constraint_snapshots (id)
);

CREATE INDEX ix_cwom_runs_for_issue_id ON cwom_runs (for_issue_id);

CREATE INDEX ix_cwom_runs_repo_id ON cwom_runs (repo_id);

CREATE INDEX ix_cwom_runs_status ON cwom_runs (status);

CREATE INDEX ix_cwom_runs_mode ON cwom_runs (mode);

CREATE INDEX ix_cwom_runs_status_mode ON cwom_runs (status, mode);

CREATE INDEX ix_cwom_runs_created_at ON cwom_runs (created_at);

CREATE TABLE cwom_artifacts (
	id VARCHAR(128) NOT NULL,
	kind VARCHAR(20) DEFAULT 'Artifact' NOT NULL,
	produced_by_id VARCHAR(128) NOT NULL,
	produced_by_kind VARCHAR(20) DEFAULT 'Run' NOT NULL,
	produced_by_role VARCHAR(64),
	for_issue_id VARCHAR(128) NOT NULL,
	for_issue_kind VARCHAR(20) DEFAULT 'Issue' NOT NULL,
	for_issue_role VARCHAR(64),
	type VARCHAR(15) NOT NULL,
	title VARCHAR(512) NOT NULL,
	uri VARCHAR(2000) NOT NULL,
	digest VARCHAR(128),
	media_type VARCHAR(128),
	size_bytes INTEGER,
	preview TEXT,
	verification JSON DEFAULT '{}' NOT NULL,
	tags JSON DEFAULT '[]' NOT NULL,
	meta JSON DEFAULT '{}' NOT NULL,
	created_at DATETIME DEFAULT CURRENT_TIMESTAMP NOT NULL,
	updated_at DATETIME DEFAULT CURRENT_TIMESTAMP NOT NULL, trace_id VARCHAR(36),
	PRIMARY KEY (id),
	FOREIGN KEY(produced_by_id) REFERENCES cwom_runs (id),
	FOREIGN KEY(for_issue_id) REFERENCES cwom_issues (id)
);

CREATE INDEX ix_cwom_artifacts_produced_by_id ON cwom_artifacts (produced_by_id);

CREATE INDEX ix_cwom_artifacts_for_issue_id ON cwom_artifacts (for_issue_id);

CREATE INDEX ix_cwom_artifacts_type ON cwom_artifacts (type);

CREATE INDEX ix_cwom_artifacts_digest ON cwom_artifacts (digest);

CREATE INDEX ix_cwom_artifacts_created_at ON cwom_artifacts (created_at);

CREATE TABLE cwom_issue_context_packets (
	issue_id VARCHAR(128) NOT NULL,
	context_packet_id VARCHAR(128) NOT NULL,
	created_at DATETIME DEFAULT CURRENT_TIMESTAMP,
	PRIMARY KEY (issue_id, context_packet_id),
	FOREIGN KEY(issue_id) REFERENCES cwom_issues (id),
	FOREIGN KEY(context_packet_id) REFERENCES cwom_context_packets (id)
);

CREATE TABLE cwom_issue_doctrine_refs (
	issue_id VARCHAR(128) NOT NULL,
	doctrine_ref_id VARCHAR(128) NOT NULL,
	created_at DATETIME DEFAULT CURRENT_TIMESTAMP,
	PRIMARY KEY (issue_id, doctrine_ref_id),
	FOREIGN KEY(issue_id) REFERENCES cwom_issues (id),
	FOREIGN KEY(doctrine_ref_id) REFERENCES cwom_doctrine_refs (id)
);

CREATE TABLE cwom_issue_constraint_snapshots (
	issue_id VARCHAR(128) NOT NULL,
	constraint_snapshot_id VARCHAR(128) NOT NULL,
	created_at DATETIME DEFAULT CURRENT_TIMESTAMP,
	PRIMARY KEY (issue_id, constraint_snapshot_id),
	FOREIGN KEY(issue_id) REFERENCES cwom_issues (id),
	FOREIGN KEY(constraint_snapshot_id) REFERENCES cwom_constraint_snapshots (id)
);

CREATE TABLE cwom_run_context_packets (
	run_id VARCHAR(128) NOT NULL,
	context_packet_id VARCHAR(128) NOT NULL,
	created_at DATETIME DEFAULT CURRENT_TIMESTAMP,
	PRIMARY KEY (run_id, context_packet_id),
	FOREIGN KEY(run_id) REFERENCES cwom_runs (id),
	FOREIGN KEY(context_packet_id) REFERENCES cwom_context_packets (id)
);

CREATE TABLE cwom_run_doctrine_refs (
	run_id VARCHAR(128) NOT NULL,
	doctrine_ref_id VARCHAR(128) NOT NULL,
	created_at DATETIME DEFAULT CURRENT_TIMESTAMP,
	PRIMARY KEY (run_id, doctrine_ref_id),
	FOREIGN KEY(run_id) REFERENCES cwom_runs (id),
	FOREIGN KEY(doctrine_ref_id) REFERENCES cwom_doctrine_refs (id)
);

CREATE TABLE cwom_context_packet_doctrine_refs (
	context_packet_id VARCHAR(128) NOT NULL,
	doctrine_ref_id VARCHAR(128) NOT NULL,
	created_at DATETIME DEFAULT CURRENT_TIMESTAMP,
	PRIMARY KEY (context_packet_id, doctrine_ref_id),
	FOREIGN KEY(context_packet_id) REFERENCES cwom_context_packets (id),
	FOREIGN KEY(doctrine_ref_id) REFERENCES cwom_doctrine_refs (id)
);

CREATE TABLE jobs (
	id VARCHAR(36) NOT NULL,
	task_id VARCHAR(36) NOT NULL,
	trace_id VARCHAR(36) NOT NULL,
	status VARCHAR(9) DEFAULT 'pending' NOT NULL,
	worker_id VARCHAR(100),
	claimed_at DATETIME,
	started_at DATETIME,
	completed_at DATETIME,
	result JSON,
	error TEXT,
	created_at DATETIME DEFAULT CURRENT_TIMESTAMP NOT NULL,
	updated_at DATETIME,
	PRIMARY KEY (id),
	CONSTRAINT job_status CHECK (status IN ('pending', 'claimed', 'running', 'completed', 'failed'))
);

CREATE INDEX ix_jobs_trace_id ON jobs (trace_id);

CREATE INDEX ix_jobs_task_id ON jobs (task_id);

CREATE INDEX ix_jobs_status ON jobs (status);

CREATE INDEX ix_jobs_worker_id ON jobs (worker_id);

CREATE INDEX ix_jobs_status_created ON jobs (status, created_at);

CREATE TABLE artifacts (
	id VARCHAR(36) NOT NULL,
	task_id VARCHAR(36) NOT NULL,
	job_id VARCHAR(36),
	trace_id VARCHAR(36) NOT NULL,
	kind VARCHAR(6) NOT NULL,
	uri VARCHAR(1024),
	ref VARCHAR(512),
	content TEXT,
	content_type VARCHAR(100),
	size_bytes INTEGER,
	checksum VARCHAR(128),
	meta JSON,
	created_at DATETIME DEFAULT CURRENT_TIMESTAMP NOT NULL,
	PRIMARY KEY (id),
	CONSTRAINT artifact_kind CHECK (kind IN ('log', 'diff', 'report', 'file', 'metric', 'error'))
);

CREATE INDEX ix_artifacts_job_id ON artifacts (job_id);

CREATE INDEX ix_artifacts_task_id ON artifacts (task_id);

CREATE INDEX ix_artifacts_trace_id ON artifacts (trace_id);

CREATE INDEX ix_artifacts_kind ON artifacts (kind);

CREATE INDEX ix_artifacts_created_at ON artifacts (created_at);

CREATE INDEX ix_cwom_repos_trace_id ON cwom_repos (trace_id);

CREATE INDEX ix_cwom_issues_trace_id ON cwom_issues (trace_id);

CREATE INDEX ix_cwom_context_packets_trace_id ON cwom_context_packets (trace_id);

CREATE INDEX ix_cwom_constraint_snapshots_trace_id ON cwom_constraint_snapshots (trace_id);

CREATE INDEX ix_cwom_doctrine_refs_trace_id ON cwom_doctrine_refs (trace_id);

CREATE INDEX ix_cwom_runs_trace_id ON cwom_runs (trace_id);

CREATE INDEX ix_cwom_artifacts_trace_id ON cwom_artifacts (trace_id);

CREATE TABLE audit_log (
	id VARCHAR(36) NOT NULL,
	ts DATETIME DEFAULT CURRENT_TIMESTAMP NOT NULL,
	actor_kind VARCHAR(6) NOT NULL,
	actor_id VARCHAR(128) NOT NULL,
	action VARCHAR(14) NOT NULL,
	entity_kind VARCHAR(50) NOT NULL,
	entity_id VARCHAR(128) NOT NULL,
	"before" JSON,
	"after" JSON,
	note TEXT,
	trace_id VARCHAR(36),
	PRIMARY KEY (id),
	CONSTRAINT audit_actor_kind CHECK (actor_kind IN ('human', 'agent', 'system')),
	CONSTRAINT audit_action CHECK (action IN ('created', 'updated', 'status_changed', 'deleted', 'linked', 'unlinked'))
);

CREATE INDEX ix_audit_log_ts ON audit_log (ts);

CREATE INDEX ix_audit_log_actor_id ON audit_log (actor_id);

CREATE INDEX ix_audit_log_action ON audit_log (action);

CREATE INDEX ix_audit_log_entity_kind ON audit_log (entity_kind);

CREATE INDEX ix_audit_log_entity_id ON audit_log (entity_id);

CREATE INDEX ix_audit_log_trace_id ON audit_log (trace_id);

CREATE INDEX ix_audit_log_entity ON audit_log (entity_kind, entity_id);

CREATE INDEX ix_audit_log_actor ON audit_log (actor_kind, actor_id);

CREATE INDEX ix_audit_log_ts_action ON audit_log (ts, action);

CREATE INDEX ix_audit_log_entity_ts ON audit_log (entity_kind, entity_id, ts);

CREATE TABLE IF NOT EXISTS "tasks" (
	id VARCHAR(36) NOT NULL,
	version VARCHAR(10) DEFAULT '1.0' NOT NULL,
	idempotency_key VARCHAR(256),
	requested_by_kind VARCHAR(6) NOT NULL,
	requested_by_id VARCHAR(128) NOT NULL,
	requested_by_label VARCHAR(256),
	objective TEXT NOT NULL,
	operation VARCHAR(11) NOT NULL,
	target_repo VARCHAR(256) NOT NULL,
	target_ref VARCHAR(256) DEFAULT 'main' NOT NULL,
	target_path VARCHAR(512) DEFAULT ('') NOT NULL,
	time_budget_seconds INTEGER DEFAULT '900' NOT NULL,
	allow_network BOOLEAN DEFAULT 'false' NOT NULL,
	allow_secrets BOOLEAN DEFAULT 'false' NOT NULL,
	inputs JSON DEFAULT '{}' NOT NULL,
	metadata JSON DEFAULT '{}' NOT NULL,
	status VARCHAR(9) DEFAULT 'pending' NOT NULL,
	created_at DATETIME DEFAULT (CURRENT_TIMESTAMP) NOT NULL,
	queued_at DATETIME,
	started_at DATETIME,
	completed_at DATETIME,
	assigned_to VARCHAR(100),
	result JSON,
	error TEXT,
	trace_path VARCHAR(512),
	cwom_issue_id VARCHAR(128),
	trace_id VARCHAR(36),
	PRIMARY KEY (id),
	CONSTRAINT uq_tasks_idempotency_key UNIQUE (idempotency_key),
	CONSTRAINT fk_tasks_cwom_issue_id FOREIGN KEY(cwom_issue_id) REFERENCES cwom_issues (id) ON DELETE SET NULL
);

CREATE INDEX ix_tasks_requested_by_id ON tasks (requested_by_id);

CREATE INDEX ix_tasks_operation ON tasks (operation);

CREATE INDEX ix_tasks_status_operation ON tasks (status, operation);

CREATE INDEX ix_tasks_target_repo ON tasks (target_repo);

CREATE INDEX ix_tasks_cwom_issue_id ON tasks (cwom_issue_id);

CREATE INDEX ix_tasks_created_at ON tasks (created_at);

CREATE INDEX ix_tasks_status ON tasks (status);

CREATE INDEX ix_tasks_idempotency_key ON tasks (idempotency_key);

CREATE INDEX ix_tasks_requested_by_kind ON tasks (requested_by_kind);

CREATE INDEX ix_tasks_version ON tasks (version);

CREATE INDEX ix_tasks_requester ON tasks (requested_by_kind, requested_by_id);

CREATE INDEX ix_tasks_trace_id ON tasks (trace_id);

CREATE INDEX ix_cwom_runs_artifact_root_uri ON cwom_runs (artifact_root_uri);

CREATE TABLE cwom_evidence_packs (
	id VARCHAR(128) NOT NULL,
	kind VARCHAR(20) NOT NULL,
	trace_id VARCHAR(36),
	for_run_id VARCHAR(128) NOT NULL,
	for_run_kind VARCHAR(20) NOT NULL,
	for_run_role VARCHAR(64),
	for_issue_id VARCHAR(128) NOT NULL,
	for_issue_kind VARCHAR(20) NOT NULL,
	for_issue_role VARCHAR(64),
	verdict VARCHAR(7) NOT NULL,
	verdict_reason TEXT NOT NULL,
	evaluated_at DATETIME DEFAULT CURRENT_TIMESTAMP NOT NULL,
	evaluated_by_kind VARCHAR(6) NOT NULL,
	evaluated_by_id VARCHAR(128) NOT NULL,
	evaluated_by_display VARCHAR(256),
	criteria_results JSON NOT NULL,
	evidence_collected JSON NOT NULL,
	evidence_missing JSON NOT NULL,
	checks_passed INTEGER NOT NULL,
	checks_failed INTEGER NOT NULL,
	checks_skipped INTEGER NOT NULL,
	evidence_uri VARCHAR(2000),
	tags JSON NOT NULL,
	meta JSON NOT NULL,
	created_at DATETIME DEFAULT CURRENT_TIMESTAMP NOT NULL,
	updated_at DATETIME DEFAULT CURRENT_TIMESTAMP NOT NULL,
	PRIMARY KEY (id),
	FOREIGN KEY(for_run_id) REFERENCES cwom_runs (id),
	FOREIGN KEY(for_issue_id) REFERENCES cwom_issues (id)
);

CREATE INDEX ix_cwom_evidence_packs_trace_id ON cwom_evidence_packs (trace_id);

CREATE INDEX ix_cwom_evidence_packs_verdict ON cwom_evidence_packs (verdict);

CREATE INDEX ix_cwom_evidence_packs_for_run_id ON cwom_evidence_packs (for_run_id);

CREATE INDEX ix_cwom_evidence_packs_for_issue_id ON cwom_evidence_packs (for_issue_id);

CREATE TABLE cwom_review_decisions (
	id VARCHAR(128) NOT NULL,
	kind VARCHAR(20) NOT NULL,
	trace_id VARCHAR(36),
	for_evidence_pack_id VARCHAR(128) NOT NULL,
	for_evidence_pack_kind VARCHAR(20) NOT NULL,
	for_evidence_pack_role VARCHAR(64),
	for_run_id VARCHAR(128) NOT NULL,
	for_run_kind VARCHAR(20) NOT NULL,
	for_run_role VARCHAR(64),
	for_issue_id VARCHAR(128) NOT NULL,
	for_issue_kind VARCHAR(20) NOT NULL,
	for_issue_role VARCHAR(64),
	reviewer_kind VARCHAR(6) NOT NULL,
	reviewer_id VARCHAR(128) NOT NULL,
	reviewer_display VARCHAR(256),
	decision VARCHAR(13) NOT NULL,
	decision_reason TEXT NOT NULL,
	reviewed_at DATETIME DEFAULT CURRENT_TIMESTAMP NOT NULL,
	criteria_overrides JSON NOT NULL,
	tags JSON NOT NULL,
	meta JSON NOT NULL,
	created_at DATETIME DEFAULT CURRENT_TIMESTAMP NOT NULL,
	updated_at DATETIME DEFAULT CURRENT_TIMESTAMP NOT NULL,
	PRIMARY KEY (id),
	FOREIGN KEY(for_evidence_pack_id) REFERENCES cwom_evidence_packs (id),
	FOREIGN KEY(for_run_id) REFERENCES cwom_runs (id),
	FOREIGN KEY(for_issue_id) REFERENCES cwom_issues (id)
);

CREATE INDEX ix_cwom_review_decisions_decision ON cwom_review_decisions (decision);

CREATE INDEX ix_cwom_review_decisions_for_evidence_pack_id ON cwom_review_decisions (for_evidence_pack_id);

CREATE INDEX ix_cwom_review_decisions_for_issue_id ON cwom_review_decisions (for_issue_id);

CREATE INDEX ix_cwom_review_decisions_for_run_id ON cwom_review_decisions (for_run_id);

CREATE INDEX ix_cwom_review_decisions_trace_id ON cwom_review_decisions (trace_id);

INSERT INTO alembic_version (version_num) VALUES ('j1e2f3a4b5c6');
