-- Control Tower 0001: the legacy JCT V1 layout (tasks, CWOM objects, join tables, audit_log)
-- with the legacy table, column, type, constraint and index names, so that legacy readers keep
-- working. On a fresh database JSON columns are JSONB. On a database that the legacy service
-- created (alembic head j1e2f3a4b5c6) this migration is not run: `tower migrate` records it as
-- adopted. The legacy orchestrator tables (agents, events, workflows, jobs, artifacts) are not
-- created: Control Tower never uses them.

CREATE TYPE audit_action AS ENUM (
    'created',
    'updated',
    'status_changed',
    'deleted',
    'linked',
    'unlinked'
);

CREATE TYPE audit_actor_kind AS ENUM (
    'human',
    'agent',
    'system'
);

CREATE TYPE cwom_actor_kind AS ENUM (
    'human',
    'agent',
    'system'
);

CREATE TYPE cwom_artifact_type AS ENUM (
    'code_patch',
    'commit',
    'pr',
    'build',
    'container_image',
    'doc',
    'report',
    'dataset',
    'log',
    'trace',
    'binary',
    'link'
);

CREATE TYPE cwom_constraint_scope AS ENUM (
    'personal',
    'repo',
    'org',
    'system',
    'run'
);

CREATE TYPE cwom_criterion_status AS ENUM (
    'satisfied',
    'not_satisfied',
    'unverified',
    'skipped'
);

CREATE TYPE cwom_doctrine_priority AS ENUM (
    'must',
    'should',
    'may'
);

CREATE TYPE cwom_doctrine_type AS ENUM (
    'principle',
    'policy',
    'procedure',
    'heuristic',
    'pattern'
);

CREATE TYPE cwom_issue_type AS ENUM (
    'feature',
    'bug',
    'chore',
    'research',
    'ops',
    'doc',
    'incident'
);

CREATE TYPE cwom_object_kind AS ENUM (
    'Repo',
    'Issue',
    'ContextPacket',
    'Run',
    'Artifact',
    'ConstraintSnapshot',
    'DoctrineRef'
);

CREATE TYPE cwom_priority AS ENUM (
    'P0',
    'P1',
    'P2',
    'P3',
    'P4'
);

CREATE TYPE cwom_review_decision_status AS ENUM (
    'approved',
    'rejected',
    'needs_changes'
);

CREATE TYPE cwom_run_mode AS ENUM (
    'human',
    'agent',
    'hybrid',
    'system'
);

CREATE TYPE cwom_status AS ENUM (
    'planned',
    'ready',
    'running',
    'blocked',
    'done',
    'failed',
    'canceled',
    'under_review'
);

CREATE TYPE cwom_verdict AS ENUM (
    'pass',
    'fail',
    'partial',
    'pending'
);

CREATE TYPE cwom_verification_status AS ENUM (
    'unverified',
    'passed',
    'failed'
);

CREATE TYPE cwom_visibility AS ENUM (
    'public',
    'private',
    'internal'
);

CREATE TYPE operation_type AS ENUM (
    'code_change',
    'docs',
    'analysis',
    'ops'
);

CREATE TYPE requester_kind AS ENUM (
    'human',
    'agent',
    'system'
);

CREATE TYPE task_status AS ENUM (
    'pending',
    'queued',
    'running',
    'completed',
    'failed',
    'cancelled'
);

CREATE TABLE audit_log (
    id character varying(36) NOT NULL,
    ts timestamp with time zone DEFAULT now() NOT NULL,
    actor_kind audit_actor_kind NOT NULL,
    actor_id character varying(128) NOT NULL,
    action audit_action NOT NULL,
    entity_kind character varying(50) NOT NULL,
    entity_id character varying(128) NOT NULL,
    before jsonb,
    after jsonb,
    note text,
    trace_id character varying(36)
);

CREATE TABLE cwom_artifacts (
    id character varying(128) NOT NULL,
    kind character varying(20) DEFAULT 'Artifact'::character varying NOT NULL,
    produced_by_id character varying(128) NOT NULL,
    produced_by_kind character varying(20) DEFAULT 'Run'::character varying NOT NULL,
    produced_by_role character varying(64),
    for_issue_id character varying(128) NOT NULL,
    for_issue_kind character varying(20) DEFAULT 'Issue'::character varying NOT NULL,
    for_issue_role character varying(64),
    type cwom_artifact_type NOT NULL,
    title character varying(512) NOT NULL,
    uri character varying(2000) NOT NULL,
    digest character varying(128),
    media_type character varying(128),
    size_bytes integer,
    preview text,
    verification jsonb DEFAULT '{}'::jsonb NOT NULL,
    tags jsonb DEFAULT '[]'::jsonb NOT NULL,
    meta jsonb DEFAULT '{}'::jsonb NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    trace_id character varying(36)
);

CREATE TABLE cwom_constraint_snapshots (
    id character varying(128) NOT NULL,
    kind character varying(20) DEFAULT 'ConstraintSnapshot'::character varying NOT NULL,
    scope cwom_constraint_scope NOT NULL,
    captured_at timestamp with time zone DEFAULT now() NOT NULL,
    owner_kind cwom_actor_kind NOT NULL,
    owner_id character varying(128) NOT NULL,
    owner_display character varying(256),
    constraints jsonb DEFAULT '{}'::jsonb NOT NULL,
    tags jsonb DEFAULT '[]'::jsonb NOT NULL,
    meta jsonb DEFAULT '{}'::jsonb NOT NULL,
    trace_id character varying(36)
);

CREATE TABLE cwom_context_packet_doctrine_refs (
    context_packet_id character varying(128) NOT NULL,
    doctrine_ref_id character varying(128) NOT NULL,
    created_at timestamp with time zone DEFAULT now()
);

CREATE TABLE cwom_context_packets (
    id character varying(128) NOT NULL,
    kind character varying(20) DEFAULT 'ContextPacket'::character varying NOT NULL,
    for_issue_id character varying(128) NOT NULL,
    for_issue_kind character varying(20) DEFAULT 'Issue'::character varying NOT NULL,
    for_issue_role character varying(64),
    version character varying(64) NOT NULL,
    summary text NOT NULL,
    inputs jsonb DEFAULT '{}'::jsonb NOT NULL,
    assumptions jsonb DEFAULT '[]'::jsonb NOT NULL,
    open_questions jsonb DEFAULT '[]'::jsonb NOT NULL,
    instructions text DEFAULT ''::text NOT NULL,
    constraint_snapshot_id character varying(128),
    tags jsonb DEFAULT '[]'::jsonb NOT NULL,
    meta jsonb DEFAULT '{}'::jsonb NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    trace_id character varying(36)
);

CREATE TABLE cwom_doctrine_refs (
    id character varying(128) NOT NULL,
    kind character varying(20) DEFAULT 'DoctrineRef'::character varying NOT NULL,
    namespace character varying(128) NOT NULL,
    name character varying(256) NOT NULL,
    version character varying(64) NOT NULL,
    type cwom_doctrine_type NOT NULL,
    priority cwom_doctrine_priority DEFAULT 'should'::cwom_doctrine_priority NOT NULL,
    statement text NOT NULL,
    rationale text,
    links jsonb DEFAULT '[]'::jsonb NOT NULL,
    applicability jsonb DEFAULT '{}'::jsonb NOT NULL,
    tags jsonb DEFAULT '[]'::jsonb NOT NULL,
    meta jsonb DEFAULT '{}'::jsonb NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    trace_id character varying(36)
);

CREATE TABLE cwom_evidence_packs (
    id character varying(128) NOT NULL,
    kind character varying(20) NOT NULL,
    trace_id character varying(36),
    for_run_id character varying(128) NOT NULL,
    for_run_kind character varying(20) NOT NULL,
    for_run_role character varying(64),
    for_issue_id character varying(128) NOT NULL,
    for_issue_kind character varying(20) NOT NULL,
    for_issue_role character varying(64),
    verdict cwom_verdict NOT NULL,
    verdict_reason text NOT NULL,
    evaluated_at timestamp with time zone DEFAULT now() NOT NULL,
    evaluated_by_kind cwom_actor_kind NOT NULL,
    evaluated_by_id character varying(128) NOT NULL,
    evaluated_by_display character varying(256),
    criteria_results jsonb NOT NULL,
    evidence_collected jsonb NOT NULL,
    evidence_missing jsonb NOT NULL,
    checks_passed integer NOT NULL,
    checks_failed integer NOT NULL,
    checks_skipped integer NOT NULL,
    evidence_uri character varying(2000),
    tags jsonb NOT NULL,
    meta jsonb NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL
);

CREATE TABLE cwom_issue_constraint_snapshots (
    issue_id character varying(128) NOT NULL,
    constraint_snapshot_id character varying(128) NOT NULL,
    created_at timestamp with time zone DEFAULT now()
);

CREATE TABLE cwom_issue_context_packets (
    issue_id character varying(128) NOT NULL,
    context_packet_id character varying(128) NOT NULL,
    created_at timestamp with time zone DEFAULT now()
);

CREATE TABLE cwom_issue_doctrine_refs (
    issue_id character varying(128) NOT NULL,
    doctrine_ref_id character varying(128) NOT NULL,
    created_at timestamp with time zone DEFAULT now()
);

CREATE TABLE cwom_issues (
    id character varying(128) NOT NULL,
    kind character varying(20) DEFAULT 'Issue'::character varying NOT NULL,
    repo_id character varying(128) NOT NULL,
    repo_kind character varying(20) DEFAULT 'Repo'::character varying NOT NULL,
    repo_role character varying(64),
    title character varying(512) NOT NULL,
    description text DEFAULT ''::text NOT NULL,
    type cwom_issue_type NOT NULL,
    priority cwom_priority DEFAULT 'P2'::cwom_priority NOT NULL,
    status cwom_status DEFAULT 'planned'::cwom_status NOT NULL,
    assignees jsonb DEFAULT '[]'::jsonb NOT NULL,
    watchers jsonb DEFAULT '[]'::jsonb NOT NULL,
    acceptance jsonb DEFAULT '{}'::jsonb NOT NULL,
    relationships jsonb DEFAULT '{}'::jsonb NOT NULL,
    runs jsonb DEFAULT '[]'::jsonb NOT NULL,
    tags jsonb DEFAULT '[]'::jsonb NOT NULL,
    meta jsonb DEFAULT '{}'::jsonb NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    trace_id character varying(36)
);

CREATE TABLE cwom_repos (
    id character varying(128) NOT NULL,
    kind character varying(20) DEFAULT 'Repo'::character varying NOT NULL,
    name character varying(256) NOT NULL,
    slug character varying(256) NOT NULL,
    default_branch character varying(128) DEFAULT 'main'::character varying NOT NULL,
    visibility cwom_visibility DEFAULT 'private'::cwom_visibility NOT NULL,
    source jsonb NOT NULL,
    owners jsonb DEFAULT '[]'::jsonb NOT NULL,
    policy jsonb,
    links jsonb DEFAULT '[]'::jsonb NOT NULL,
    tags jsonb DEFAULT '[]'::jsonb NOT NULL,
    meta jsonb DEFAULT '{}'::jsonb NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    trace_id character varying(36)
);

CREATE TABLE cwom_review_decisions (
    id character varying(128) NOT NULL,
    kind character varying(20) NOT NULL,
    trace_id character varying(36),
    for_evidence_pack_id character varying(128) NOT NULL,
    for_evidence_pack_kind character varying(20) NOT NULL,
    for_evidence_pack_role character varying(64),
    for_run_id character varying(128) NOT NULL,
    for_run_kind character varying(20) NOT NULL,
    for_run_role character varying(64),
    for_issue_id character varying(128) NOT NULL,
    for_issue_kind character varying(20) NOT NULL,
    for_issue_role character varying(64),
    reviewer_kind cwom_actor_kind NOT NULL,
    reviewer_id character varying(128) NOT NULL,
    reviewer_display character varying(256),
    decision cwom_review_decision_status NOT NULL,
    decision_reason text NOT NULL,
    reviewed_at timestamp with time zone DEFAULT now() NOT NULL,
    criteria_overrides jsonb NOT NULL,
    tags jsonb NOT NULL,
    meta jsonb NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL
);

CREATE TABLE cwom_run_context_packets (
    run_id character varying(128) NOT NULL,
    context_packet_id character varying(128) NOT NULL,
    created_at timestamp with time zone DEFAULT now()
);

CREATE TABLE cwom_run_doctrine_refs (
    run_id character varying(128) NOT NULL,
    doctrine_ref_id character varying(128) NOT NULL,
    created_at timestamp with time zone DEFAULT now()
);

CREATE TABLE cwom_runs (
    id character varying(128) NOT NULL,
    kind character varying(20) DEFAULT 'Run'::character varying NOT NULL,
    for_issue_id character varying(128) NOT NULL,
    for_issue_kind character varying(20) DEFAULT 'Issue'::character varying NOT NULL,
    for_issue_role character varying(64),
    repo_id character varying(128) NOT NULL,
    repo_kind character varying(20) DEFAULT 'Repo'::character varying NOT NULL,
    repo_role character varying(64),
    status cwom_status DEFAULT 'planned'::cwom_status NOT NULL,
    mode cwom_run_mode NOT NULL,
    executor jsonb NOT NULL,
    inputs jsonb DEFAULT '{}'::jsonb NOT NULL,
    constraint_snapshot_id character varying(128),
    plan jsonb DEFAULT '{}'::jsonb NOT NULL,
    telemetry jsonb DEFAULT '{}'::jsonb NOT NULL,
    cost jsonb DEFAULT '{}'::jsonb NOT NULL,
    outputs jsonb DEFAULT '{}'::jsonb NOT NULL,
    failure jsonb,
    tags jsonb DEFAULT '[]'::jsonb NOT NULL,
    meta jsonb DEFAULT '{}'::jsonb NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    trace_id character varying(36),
    artifact_root_uri character varying(2000)
);

CREATE TABLE tasks (
    id character varying(36) NOT NULL,
    version character varying(10) DEFAULT '1.0'::character varying NOT NULL,
    idempotency_key character varying(256),
    requested_by_kind requester_kind NOT NULL,
    requested_by_id character varying(128) NOT NULL,
    requested_by_label character varying(256),
    objective text NOT NULL,
    operation operation_type NOT NULL,
    target_repo character varying(256) NOT NULL,
    target_ref character varying(256) DEFAULT 'main'::character varying NOT NULL,
    target_path character varying(512) DEFAULT ''::character varying NOT NULL,
    time_budget_seconds integer DEFAULT 900 NOT NULL,
    allow_network boolean DEFAULT false NOT NULL,
    allow_secrets boolean DEFAULT false NOT NULL,
    inputs jsonb DEFAULT '{}'::jsonb NOT NULL,
    metadata jsonb DEFAULT '{}'::jsonb NOT NULL,
    status task_status DEFAULT 'pending'::task_status NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    queued_at timestamp with time zone,
    started_at timestamp with time zone,
    completed_at timestamp with time zone,
    assigned_to character varying(100),
    result jsonb,
    error text,
    trace_path character varying(512),
    cwom_issue_id character varying(128),
    trace_id character varying(36)
);

ALTER TABLE ONLY audit_log
    ADD CONSTRAINT audit_log_pkey PRIMARY KEY (id);

ALTER TABLE ONLY cwom_artifacts
    ADD CONSTRAINT cwom_artifacts_pkey PRIMARY KEY (id);

ALTER TABLE ONLY cwom_constraint_snapshots
    ADD CONSTRAINT cwom_constraint_snapshots_pkey PRIMARY KEY (id);

ALTER TABLE ONLY cwom_context_packet_doctrine_refs
    ADD CONSTRAINT cwom_context_packet_doctrine_refs_pkey PRIMARY KEY (context_packet_id, doctrine_ref_id);

ALTER TABLE ONLY cwom_context_packets
    ADD CONSTRAINT cwom_context_packets_pkey PRIMARY KEY (id);

ALTER TABLE ONLY cwom_doctrine_refs
    ADD CONSTRAINT cwom_doctrine_refs_pkey PRIMARY KEY (id);

ALTER TABLE ONLY cwom_evidence_packs
    ADD CONSTRAINT cwom_evidence_packs_pkey PRIMARY KEY (id);

ALTER TABLE ONLY cwom_issue_constraint_snapshots
    ADD CONSTRAINT cwom_issue_constraint_snapshots_pkey PRIMARY KEY (issue_id, constraint_snapshot_id);

ALTER TABLE ONLY cwom_issue_context_packets
    ADD CONSTRAINT cwom_issue_context_packets_pkey PRIMARY KEY (issue_id, context_packet_id);

ALTER TABLE ONLY cwom_issue_doctrine_refs
    ADD CONSTRAINT cwom_issue_doctrine_refs_pkey PRIMARY KEY (issue_id, doctrine_ref_id);

ALTER TABLE ONLY cwom_issues
    ADD CONSTRAINT cwom_issues_pkey PRIMARY KEY (id);

ALTER TABLE ONLY cwom_repos
    ADD CONSTRAINT cwom_repos_pkey PRIMARY KEY (id);

ALTER TABLE ONLY cwom_review_decisions
    ADD CONSTRAINT cwom_review_decisions_pkey PRIMARY KEY (id);

ALTER TABLE ONLY cwom_run_context_packets
    ADD CONSTRAINT cwom_run_context_packets_pkey PRIMARY KEY (run_id, context_packet_id);

ALTER TABLE ONLY cwom_run_doctrine_refs
    ADD CONSTRAINT cwom_run_doctrine_refs_pkey PRIMARY KEY (run_id, doctrine_ref_id);

ALTER TABLE ONLY cwom_runs
    ADD CONSTRAINT cwom_runs_pkey PRIMARY KEY (id);

ALTER TABLE ONLY tasks
    ADD CONSTRAINT tasks_pkey PRIMARY KEY (id);

ALTER TABLE ONLY cwom_repos
    ADD CONSTRAINT uq_cwom_repos_slug UNIQUE (slug);

ALTER TABLE ONLY cwom_doctrine_refs
    ADD CONSTRAINT uq_doctrine_ref_nv UNIQUE (namespace, name, version);

ALTER TABLE ONLY tasks
    ADD CONSTRAINT uq_tasks_idempotency_key UNIQUE (idempotency_key);

CREATE INDEX ix_audit_log_action ON audit_log USING btree (action);

CREATE INDEX ix_audit_log_actor ON audit_log USING btree (actor_kind, actor_id);

CREATE INDEX ix_audit_log_actor_id ON audit_log USING btree (actor_id);

CREATE INDEX ix_audit_log_entity ON audit_log USING btree (entity_kind, entity_id);

CREATE INDEX ix_audit_log_entity_id ON audit_log USING btree (entity_id);

CREATE INDEX ix_audit_log_entity_kind ON audit_log USING btree (entity_kind);

CREATE INDEX ix_audit_log_entity_ts ON audit_log USING btree (entity_kind, entity_id, ts);

CREATE INDEX ix_audit_log_trace_id ON audit_log USING btree (trace_id);

CREATE INDEX ix_audit_log_ts ON audit_log USING btree (ts);

CREATE INDEX ix_audit_log_ts_action ON audit_log USING btree (ts, action);

CREATE INDEX ix_cwom_artifacts_created_at ON cwom_artifacts USING btree (created_at);

CREATE INDEX ix_cwom_artifacts_digest ON cwom_artifacts USING btree (digest);

CREATE INDEX ix_cwom_artifacts_for_issue_id ON cwom_artifacts USING btree (for_issue_id);

CREATE INDEX ix_cwom_artifacts_produced_by_id ON cwom_artifacts USING btree (produced_by_id);

CREATE INDEX ix_cwom_artifacts_trace_id ON cwom_artifacts USING btree (trace_id);

CREATE INDEX ix_cwom_artifacts_type ON cwom_artifacts USING btree (type);

CREATE INDEX ix_cwom_constraint_snapshots_captured_at ON cwom_constraint_snapshots USING btree (captured_at);

CREATE INDEX ix_cwom_constraint_snapshots_owner ON cwom_constraint_snapshots USING btree (owner_kind, owner_id);

CREATE INDEX ix_cwom_constraint_snapshots_scope ON cwom_constraint_snapshots USING btree (scope);

CREATE INDEX ix_cwom_constraint_snapshots_trace_id ON cwom_constraint_snapshots USING btree (trace_id);

CREATE INDEX ix_cwom_context_packets_created_at ON cwom_context_packets USING btree (created_at);

CREATE INDEX ix_cwom_context_packets_for_issue_id ON cwom_context_packets USING btree (for_issue_id);

CREATE INDEX ix_cwom_context_packets_trace_id ON cwom_context_packets USING btree (trace_id);

CREATE INDEX ix_cwom_context_packets_version ON cwom_context_packets USING btree (version);

CREATE INDEX ix_cwom_doctrine_refs_created_at ON cwom_doctrine_refs USING btree (created_at);

CREATE INDEX ix_cwom_doctrine_refs_name ON cwom_doctrine_refs USING btree (name);

CREATE INDEX ix_cwom_doctrine_refs_namespace ON cwom_doctrine_refs USING btree (namespace);

CREATE INDEX ix_cwom_doctrine_refs_namespace_name ON cwom_doctrine_refs USING btree (namespace, name);

CREATE INDEX ix_cwom_doctrine_refs_trace_id ON cwom_doctrine_refs USING btree (trace_id);

CREATE INDEX ix_cwom_doctrine_refs_type ON cwom_doctrine_refs USING btree (type);

CREATE INDEX ix_cwom_doctrine_refs_type_priority ON cwom_doctrine_refs USING btree (type, priority);

CREATE INDEX ix_cwom_doctrine_refs_version ON cwom_doctrine_refs USING btree (version);

CREATE INDEX ix_cwom_evidence_packs_for_issue_id ON cwom_evidence_packs USING btree (for_issue_id);

CREATE INDEX ix_cwom_evidence_packs_for_run_id ON cwom_evidence_packs USING btree (for_run_id);

CREATE INDEX ix_cwom_evidence_packs_trace_id ON cwom_evidence_packs USING btree (trace_id);

CREATE INDEX ix_cwom_evidence_packs_verdict ON cwom_evidence_packs USING btree (verdict);

CREATE INDEX ix_cwom_issues_created_at ON cwom_issues USING btree (created_at);

CREATE INDEX ix_cwom_issues_priority ON cwom_issues USING btree (priority);

CREATE INDEX ix_cwom_issues_priority_status ON cwom_issues USING btree (priority, status);

CREATE INDEX ix_cwom_issues_repo_id ON cwom_issues USING btree (repo_id);

CREATE INDEX ix_cwom_issues_status ON cwom_issues USING btree (status);

CREATE INDEX ix_cwom_issues_trace_id ON cwom_issues USING btree (trace_id);

CREATE INDEX ix_cwom_issues_type ON cwom_issues USING btree (type);

CREATE INDEX ix_cwom_issues_type_status ON cwom_issues USING btree (type, status);

CREATE INDEX ix_cwom_repos_created_at ON cwom_repos USING btree (created_at);

CREATE INDEX ix_cwom_repos_name ON cwom_repos USING btree (name);

CREATE INDEX ix_cwom_repos_slug ON cwom_repos USING btree (slug);

CREATE INDEX ix_cwom_repos_trace_id ON cwom_repos USING btree (trace_id);

CREATE INDEX ix_cwom_repos_visibility ON cwom_repos USING btree (visibility);

CREATE INDEX ix_cwom_review_decisions_decision ON cwom_review_decisions USING btree (decision);

CREATE INDEX ix_cwom_review_decisions_for_evidence_pack_id ON cwom_review_decisions USING btree (for_evidence_pack_id);

CREATE INDEX ix_cwom_review_decisions_for_issue_id ON cwom_review_decisions USING btree (for_issue_id);

CREATE INDEX ix_cwom_review_decisions_for_run_id ON cwom_review_decisions USING btree (for_run_id);

CREATE INDEX ix_cwom_review_decisions_trace_id ON cwom_review_decisions USING btree (trace_id);

CREATE INDEX ix_cwom_runs_artifact_root_uri ON cwom_runs USING btree (artifact_root_uri);

CREATE INDEX ix_cwom_runs_created_at ON cwom_runs USING btree (created_at);

CREATE INDEX ix_cwom_runs_for_issue_id ON cwom_runs USING btree (for_issue_id);

CREATE INDEX ix_cwom_runs_mode ON cwom_runs USING btree (mode);

CREATE INDEX ix_cwom_runs_repo_id ON cwom_runs USING btree (repo_id);

CREATE INDEX ix_cwom_runs_status ON cwom_runs USING btree (status);

CREATE INDEX ix_cwom_runs_status_mode ON cwom_runs USING btree (status, mode);

CREATE INDEX ix_cwom_runs_trace_id ON cwom_runs USING btree (trace_id);

CREATE INDEX ix_tasks_created_at ON tasks USING btree (created_at);

CREATE INDEX ix_tasks_cwom_issue_id ON tasks USING btree (cwom_issue_id);

CREATE INDEX ix_tasks_idempotency_key ON tasks USING btree (idempotency_key);

CREATE INDEX ix_tasks_operation ON tasks USING btree (operation);

CREATE INDEX ix_tasks_requested_by_id ON tasks USING btree (requested_by_id);

CREATE INDEX ix_tasks_requested_by_kind ON tasks USING btree (requested_by_kind);

CREATE INDEX ix_tasks_requester ON tasks USING btree (requested_by_kind, requested_by_id);

CREATE INDEX ix_tasks_status ON tasks USING btree (status);

CREATE INDEX ix_tasks_status_operation ON tasks USING btree (status, operation);

CREATE INDEX ix_tasks_target_repo ON tasks USING btree (target_repo);

CREATE INDEX ix_tasks_trace_id ON tasks USING btree (trace_id);

CREATE INDEX ix_tasks_version ON tasks USING btree (version);

ALTER TABLE ONLY cwom_artifacts
    ADD CONSTRAINT cwom_artifacts_for_issue_id_fkey FOREIGN KEY (for_issue_id) REFERENCES cwom_issues(id);

ALTER TABLE ONLY cwom_artifacts
    ADD CONSTRAINT cwom_artifacts_produced_by_id_fkey FOREIGN KEY (produced_by_id) REFERENCES cwom_runs(id);

ALTER TABLE ONLY cwom_context_packet_doctrine_refs
    ADD CONSTRAINT cwom_context_packet_doctrine_refs_context_packet_id_fkey FOREIGN KEY (context_packet_id) REFERENCES cwom_context_packets(id);

ALTER TABLE ONLY cwom_context_packet_doctrine_refs
    ADD CONSTRAINT cwom_context_packet_doctrine_refs_doctrine_ref_id_fkey FOREIGN KEY (doctrine_ref_id) REFERENCES cwom_doctrine_refs(id);

ALTER TABLE ONLY cwom_context_packets
    ADD CONSTRAINT cwom_context_packets_constraint_snapshot_id_fkey FOREIGN KEY (constraint_snapshot_id) REFERENCES cwom_constraint_snapshots(id);

ALTER TABLE ONLY cwom_context_packets
    ADD CONSTRAINT cwom_context_packets_for_issue_id_fkey FOREIGN KEY (for_issue_id) REFERENCES cwom_issues(id);

ALTER TABLE ONLY cwom_evidence_packs
    ADD CONSTRAINT cwom_evidence_packs_for_issue_id_fkey FOREIGN KEY (for_issue_id) REFERENCES cwom_issues(id);

ALTER TABLE ONLY cwom_evidence_packs
    ADD CONSTRAINT cwom_evidence_packs_for_run_id_fkey FOREIGN KEY (for_run_id) REFERENCES cwom_runs(id);

ALTER TABLE ONLY cwom_issue_constraint_snapshots
    ADD CONSTRAINT cwom_issue_constraint_snapshots_constraint_snapshot_id_fkey FOREIGN KEY (constraint_snapshot_id) REFERENCES cwom_constraint_snapshots(id);

ALTER TABLE ONLY cwom_issue_constraint_snapshots
    ADD CONSTRAINT cwom_issue_constraint_snapshots_issue_id_fkey FOREIGN KEY (issue_id) REFERENCES cwom_issues(id);

ALTER TABLE ONLY cwom_issue_context_packets
    ADD CONSTRAINT cwom_issue_context_packets_context_packet_id_fkey FOREIGN KEY (context_packet_id) REFERENCES cwom_context_packets(id);

ALTER TABLE ONLY cwom_issue_context_packets
    ADD CONSTRAINT cwom_issue_context_packets_issue_id_fkey FOREIGN KEY (issue_id) REFERENCES cwom_issues(id);

ALTER TABLE ONLY cwom_issue_doctrine_refs
    ADD CONSTRAINT cwom_issue_doctrine_refs_doctrine_ref_id_fkey FOREIGN KEY (doctrine_ref_id) REFERENCES cwom_doctrine_refs(id);

ALTER TABLE ONLY cwom_issue_doctrine_refs
    ADD CONSTRAINT cwom_issue_doctrine_refs_issue_id_fkey FOREIGN KEY (issue_id) REFERENCES cwom_issues(id);

ALTER TABLE ONLY cwom_issues
    ADD CONSTRAINT cwom_issues_repo_id_fkey FOREIGN KEY (repo_id) REFERENCES cwom_repos(id);

ALTER TABLE ONLY cwom_review_decisions
    ADD CONSTRAINT cwom_review_decisions_for_evidence_pack_id_fkey FOREIGN KEY (for_evidence_pack_id) REFERENCES cwom_evidence_packs(id);

ALTER TABLE ONLY cwom_review_decisions
    ADD CONSTRAINT cwom_review_decisions_for_issue_id_fkey FOREIGN KEY (for_issue_id) REFERENCES cwom_issues(id);

ALTER TABLE ONLY cwom_review_decisions
    ADD CONSTRAINT cwom_review_decisions_for_run_id_fkey FOREIGN KEY (for_run_id) REFERENCES cwom_runs(id);

ALTER TABLE ONLY cwom_run_context_packets
    ADD CONSTRAINT cwom_run_context_packets_context_packet_id_fkey FOREIGN KEY (context_packet_id) REFERENCES cwom_context_packets(id);

ALTER TABLE ONLY cwom_run_context_packets
    ADD CONSTRAINT cwom_run_context_packets_run_id_fkey FOREIGN KEY (run_id) REFERENCES cwom_runs(id);

ALTER TABLE ONLY cwom_run_doctrine_refs
    ADD CONSTRAINT cwom_run_doctrine_refs_doctrine_ref_id_fkey FOREIGN KEY (doctrine_ref_id) REFERENCES cwom_doctrine_refs(id);

ALTER TABLE ONLY cwom_run_doctrine_refs
    ADD CONSTRAINT cwom_run_doctrine_refs_run_id_fkey FOREIGN KEY (run_id) REFERENCES cwom_runs(id);

ALTER TABLE ONLY cwom_runs
    ADD CONSTRAINT cwom_runs_constraint_snapshot_id_fkey FOREIGN KEY (constraint_snapshot_id) REFERENCES cwom_constraint_snapshots(id);

ALTER TABLE ONLY cwom_runs
    ADD CONSTRAINT cwom_runs_for_issue_id_fkey FOREIGN KEY (for_issue_id) REFERENCES cwom_issues(id);

ALTER TABLE ONLY cwom_runs
    ADD CONSTRAINT cwom_runs_repo_id_fkey FOREIGN KEY (repo_id) REFERENCES cwom_repos(id);

ALTER TABLE ONLY tasks
    ADD CONSTRAINT fk_tasks_cwom_issue_id FOREIGN KEY (cwom_issue_id) REFERENCES cwom_issues(id) ON DELETE SET NULL;
