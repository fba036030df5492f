import CWOM
import TowerJSON

/// `cwom_runs` with the pinned inputs: `constraint_snapshot_id` and the run ↔ context packet and
/// run ↔ doctrine ref join tables (so the pin is not only JSON).
public struct RunRepository: Sendable {
    let session: any DatabaseSession

    static func columns(_ run: Run) -> Columns {
        [
            "id": .text(run.id), "kind": .text("Run"), "trace_id": .text(run.header.traceId),
            "for_issue_id": .text(run.forIssue.id), "for_issue_kind": .text(run.forIssue.kind.rawValue),
            "for_issue_role": .text(run.forIssue.role), "repo_id": .text(run.repo.id),
            "repo_kind": .text(run.repo.kind.rawValue), "repo_role": .text(run.repo.role),
            "status": .text(run.status.rawValue), "mode": .text(run.mode.rawValue),
            "executor": .json(writing: run.executor), "inputs": .json(writing: run.inputs),
            "constraint_snapshot_id": .text(run.inputs.constraintSnapshot?.id), "plan": .json(writing: run.plan),
            "telemetry": .json(writing: run.telemetry), "cost": .json(writing: run.cost), "outputs": .json(writing: run.outputs),
            "failure": .json(run.failure?.json), "artifact_root_uri": .text(run.artifactRootUri),
            "tags": .json(writing: run.tags), "meta": .json(writing: run.meta), "created_at": .timestamp(run.createdAt),
            "updated_at": .timestamp(run.updatedAt),
        ]
    }

    public func insert(_ run: Run) async throws(StorageError) {
        try await insert([run])
    }

    /// Inserts several runs and their pins with one multi-row statement per table.
    public func insert(_ runs: [Run]) async throws(StorageError) {
        try await session.writeAll(Self.rows(runs), texts: nil, then: [])
    }

    /// The Runs' rows and their links to the context packets and doctrine refs they pin (the
    /// links skip a pair already there: `InsertRows.suffix`). The one place a Run's rows are
    /// made: a claim's Runs, a backfill's, and `insert`.
    static func rows(_ runs: [Run]) -> InsertRows {
        func link(_ run: Run, _ column: String, _ ref: Ref) -> Columns {
            ["run_id": .text(run.id), column: .text(ref.id), "created_at": .timestamp(run.createdAt)]
        }
        var rows = InsertRows()
        rows.add("cwom_runs", runs.map(Self.columns))
        rows.add("cwom_run_context_packets", runs.flatMap { run in run.inputs.contextPackets.map { link(run, "context_packet_id", $0) } })
        rows.add("cwom_run_doctrine_refs", runs.flatMap { run in run.inputs.doctrineRefs.map { link(run, "doctrine_ref_id", $0) } })
        return rows
    }

    public func get(_ id: String) async throws(StorageError) -> Run? {
        try await session.query("SELECT * FROM cwom_runs WHERE id = $1", [.text(id)]).first.map(Self.decode)
    }

    public struct Filter: Sendable {
        public var issueId: String?
        public var repoId: String?
        public var status: String?
        public var mode: String?
        public init(issueId: String? = nil, repoId: String? = nil, status: String? = nil, mode: String? = nil) {
            self.issueId = issueId
            self.repoId = repoId
            self.status = status
            self.mode = mode
        }
    }

    public func list(_ filter: Filter = Filter(), page: Page = Page()) async throws(StorageError) -> [Run] {
        var filters = Filters()
        filters.add("for_issue_id", filter.issueId)
        filters.add("repo_id", filter.repoId)
        filters.add("status", filter.status, as: Status.self)
        filters.add("mode", filter.mode, as: RunMode.self)
        let limit = filters.page(limit: page.limit, offset: page.offset)
        if filters.matchesNothing { return [] }
        return try await session.query(
            "SELECT * FROM cwom_runs\(filters.whereClause) ORDER BY created_at DESC, id DESC\(limit)", filters.binds
        ).map(Self.decode)
    }

    static func decode(_ row: SQLRow) throws(StorageError) -> Run {
        var legacy = JSONObject()
        // The legacy worker wrote executor {type, version, worker_id}: keep who and what ran.
        let rawExecutor = try row.optionalJSON("executor")
        let fallbackExecutor = Executor(
            actor: Actor(kind: .system, id: rawExecutor?["worker_id"]?.stringValue ?? "unknown"),
            runtime: rawExecutor?["type"]?.stringValue ?? "unknown",
            toolchain: rawExecutor?["version"]?.stringValue.map { [$0] } ?? [])
        var failure = try row.optionalModel("failure", Failure.self, legacy: &legacy)
        let status = Status(rawValue: try row.string("status")) ?? .planned
        if failure == nil, let raw = try row.optionalJSON("failure"), !raw.isNull {
            // Legacy {code, message}.
            failure = Failure(category: .unknown, message: raw["message"]?.stringValue ?? raw.serialized())
        }
        var inputs = try row.model("inputs", RunInputs.self, fallback: RunInputs(), legacy: &legacy)
        if inputs.constraintSnapshot == nil, let pinned = try row.optionalString("constraint_snapshot_id") {
            inputs.constraintSnapshot = Ref(kind: .constraintSnapshot, id: pinned)
        }
        return Run(
            header: try row.header(), forIssue: try row.ref("for_issue", kind: .issue),
            repo: try row.ref("repo", kind: .repo), status: status,
            mode: RunMode(rawValue: try row.string("mode")) ?? .system,
            executor: try row.model("executor", Executor.self, fallback: fallbackExecutor, legacy: &legacy),
            inputs: inputs, plan: try row.model("plan", RunPlan.self, fallback: RunPlan(), legacy: &legacy),
            telemetry: try row.model("telemetry", Telemetry.self, fallback: Telemetry(), legacy: &legacy),
            cost: try row.model("cost", Cost.self, fallback: Cost(), legacy: &legacy),
            outputs: try row.model("outputs", RunOutputs.self, fallback: RunOutputs(), legacy: &legacy),
            failure: failure, artifactRootUri: try row.optionalString("artifact_root_uri"),
            tags: try row.strings("tags"), meta: try row.object("meta").addingLegacy(legacy),
            createdAt: try row.timestamp("created_at"), updatedAt: try row.timestamp("updated_at"))
    }
}

/// `cwom_artifacts`. An artifact belongs to the run that produced it (`produced_by_id`, a
/// foreign key: see docs/storage.md for why not a join table).
public struct ArtifactRepository: Sendable {
    let session: any DatabaseSession

    static func columns(_ artifact: Artifact) -> Columns {
        [
            "id": .text(artifact.id), "kind": .text("Artifact"), "trace_id": .text(artifact.header.traceId),
            "produced_by_id": .text(artifact.producedBy.id),
            "produced_by_kind": .text(artifact.producedBy.kind.rawValue),
            "produced_by_role": .text(artifact.producedBy.role), "for_issue_id": .text(artifact.forIssue.id),
            "for_issue_kind": .text(artifact.forIssue.kind.rawValue), "for_issue_role": .text(artifact.forIssue.role),
            "type": .text(artifact.type.rawValue), "title": .text(artifact.title), "uri": .text(artifact.uri),
            "digest": .text(artifact.digest), "media_type": .text(artifact.mediaType),
            "size_bytes": .int(artifact.sizeBytes), "preview": .text(artifact.preview),
            "verification": .json(writing: artifact.verification), "tags": .json(writing: artifact.tags),
            "meta": .json(writing: artifact.meta), "created_at": .timestamp(artifact.createdAt),
            "updated_at": .timestamp(artifact.updatedAt),
        ]
    }

    public func insert(_ artifact: Artifact) async throws(StorageError) {
        let (sql, binds) = SQL.insert("cwom_artifacts", Self.columns(artifact))
        try await session.query(sql, binds)
    }

    /// Inserts several artifacts with one multi-row statement.
    public func insert(_ artifacts: [Artifact]) async throws(StorageError) {
        for (sql, binds) in SQL.insertMany("cwom_artifacts", artifacts.map(Self.columns)) {
            try await session.query(sql, binds)
        }
    }

    public func get(_ id: String) async throws(StorageError) -> Artifact? {
        try await session.query("SELECT * FROM cwom_artifacts WHERE id = $1", [.text(id)]).first.map(Self.decode)
    }

    public func list(forRun runId: String, type: String? = nil) async throws(StorageError) -> [Artifact] {
        try await list(column: "produced_by_id", id: runId, type: type)
    }

    public func list(forIssue issueId: String, type: String? = nil) async throws(StorageError) -> [Artifact] {
        try await list(column: "for_issue_id", id: issueId, type: type)
    }

    /// The artifacts of several runs at once (for an issue with all its runs).
    public func list(forRuns runIds: [String]) async throws(StorageError) -> [Artifact] {
        guard !runIds.isEmpty else { return [] }
        let (list, binds) = SQL.oneOf("produced_by_id", runIds, dialect: session.dialect)
        return try await session.query("SELECT * FROM cwom_artifacts WHERE \(list) ORDER BY created_at, id", binds).map(Self.decode)
    }

    private func list(column: String, id: String, type: String?) async throws(StorageError) -> [Artifact] {
        var filters = Filters()
        filters.add(column, id)
        filters.add("type", type, as: ArtifactType.self)
        if filters.matchesNothing { return [] }
        return try await session.query(
            "SELECT * FROM cwom_artifacts\(filters.whereClause) ORDER BY created_at DESC, id DESC", filters.binds
        ).map(Self.decode)
    }

    static func decode(_ row: SQLRow) throws(StorageError) -> Artifact {
        var legacy = JSONObject()
        return Artifact(
            header: try row.header(), producedBy: try row.ref("produced_by", kind: .run),
            forIssue: try row.ref("for_issue", kind: .issue),
            type: ArtifactType(rawValue: try row.string("type")) ?? .doc, title: try row.string("title"),
            uri: try row.string("uri"), digest: try row.optionalString("digest"),
            mediaType: try row.optionalString("media_type"), sizeBytes: try row.optionalInt("size_bytes"),
            preview: try row.optionalString("preview"),
            verification: try row.model("verification", Verification.self, fallback: Verification(), legacy: &legacy),
            tags: try row.strings("tags"), meta: try row.object("meta").addingLegacy(legacy),
            createdAt: try row.timestamp("created_at"), updatedAt: try row.timestamp("updated_at"))
    }
}
