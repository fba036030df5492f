import Foundation
import CWOM
import LegacyTasks
import TowerJSON

/// The legacy `tasks` table.
public struct TaskRepository: Sendable {
    let session: any DatabaseSession

    /// Inserts a task. A duplicate `idempotency_key` throws a `uniqueViolation`.
    static func columns(_ task: TaskRecord) -> Columns {
        [
            "id": .text(task.id), "version": .text(task.version), "idempotency_key": .text(task.idempotencyKey),
            "requested_by_kind": .text(task.requestedBy.kind.rawValue), "requested_by_id": .text(task.requestedBy.id),
            "requested_by_label": .text(task.requestedBy.label), "objective": .text(task.objective),
            "operation": .text(task.operation.rawValue), "target_repo": .text(task.target.repo),
            "target_ref": .text(task.target.ref), "target_path": .text(task.target.path),
            "time_budget_seconds": .int(task.constraints.timeBudgetSeconds),
            "allow_network": .bool(task.constraints.allowNetwork), "allow_secrets": .bool(task.constraints.allowSecrets),
            "inputs": .json(task.inputs.json), "metadata": .json(task.metadata.json), "status": .text(task.status.rawValue),
            "created_at": .timestamp(task.createdAt ?? .now()), "queued_at": .timestamp(task.queuedAt),
            "started_at": .timestamp(task.startedAt), "completed_at": .timestamp(task.completedAt),
            "assigned_to": .text(task.assignedTo), "result": .json(task.result), "error": .text(task.error),
            "trace_path": .text(task.tracePath), "cwom_issue_id": .text(task.cwomIssueId),
            "trace_id": .text(task.traceId), "attempt": .int(task.attempt), "max_attempts": .int(task.maxAttempts),
            "run_after": .timestamp(task.runAfter), "lease_expires_at": .timestamp(task.leaseExpiresAt),
            "cancel_requested_at": .timestamp(task.cancelRequestedAt), "current_run_id": .text(task.currentRunId),
        ]
    }

    public func insert(_ task: TaskRecord) async throws(StorageError) {
        let (sql, binds) = SQL.insert("tasks", Self.columns(task))
        try await session.query(sql, binds)
    }

    public func get(_ id: String) async throws(StorageError) -> TaskRecord? {
        try await session.query("SELECT * FROM tasks WHERE id = $1", [.text(id)]).first.map(Self.decode)
    }

    /// Inserts several tasks with one multi-row statement.
    public func insert(_ tasks: [TaskRecord]) async throws(StorageError) {
        try await session.writeAll(Self.insertStatements(tasks))
    }

    static func insertStatements(_ tasks: [TaskRecord]) -> [(String, [SQLValue])] {
        SQL.insertMany("tasks", tasks.map(Self.columns))
    }

    /// The tasks holding any of these idempotency keys, by key.
    public func get(idempotencyKeys keys: [String]) async throws(StorageError) -> [String: TaskRecord] {
        guard !keys.isEmpty else { return [:] }
        var found: [String: TaskRecord] = [:]
        let (list, binds) = SQL.oneOf("idempotency_key", keys, dialect: session.dialect)
        for row in try await session.query("SELECT * FROM tasks WHERE \(list)", binds) {
            let task = try Self.decode(row)
            if let key = task.idempotencyKey { found[key] = task }
        }
        return found
    }

    public func get(idempotencyKey key: String) async throws(StorageError) -> TaskRecord? {
        try await session.query("SELECT * FROM tasks WHERE idempotency_key = $1", [.text(key)]).first.map(Self.decode)
    }

    public struct Filter: Sendable {
        public var status: String?
        public var operation: String?
        public var requesterKind: String?
        public var targetRepo: String?
        /// Words the objective contains, any case (the console's search).
        public var text: String?
        /// The task whose CWOM Issue this is (the console's way from a Run to its task).
        public var issueId: String?
        public init(status: String? = nil, operation: String? = nil, requesterKind: String? = nil,
            targetRepo: String? = nil, text: String? = nil, issueId: String? = nil)
        {
            self.issueId = issueId
            self.status = status
            self.operation = operation
            self.requesterKind = requesterKind
            self.targetRepo = targetRepo
            self.text = text
        }
    }

    /// Newest first.
    public func list(_ filter: Filter = Filter(), page: Page = Page()) async throws(StorageError) -> [TaskRecord] {
        var filters = Filters()
        filters.add("status", filter.status, as: TaskStatus.self)
        filters.add("operation", filter.operation, as: TaskOperation.self)
        filters.add("requested_by_kind", filter.requesterKind, as: RequesterKind.self)
        // The operation has no index of its own (migration 0010), nor on SQLite the requester's
        // kind (0011): (status, operation[, requested_by_kind]) is sought once per value of the
        // columns before a filtered one that no filter names.
        let requester = filter.requesterKind != nil && session.dialect == .sqlite
        if filter.status == nil && (filter.operation != nil || requester) { filters.addEveryValue(of: "status", TaskStatus.self) }
        if filter.operation == nil && requester { filters.addEveryValue(of: "operation", TaskOperation.self) }
        filters.add("target_repo", filter.targetRepo)
        filters.add("cwom_issue_id", filter.issueId)
        if let text = filter.text, !text.isEmpty {
            // A bound pattern with LIKE's own characters escaped: the text is matched literally.
            let literal = text.lowercased().replacingOccurrences(of: "\\", with: "\\\\")
                .replacingOccurrences(of: "%", with: "\\%").replacingOccurrences(of: "_", with: "\\_")
            filters.addRaw({ "LOWER(objective) LIKE $\($0) ESCAPE '\\'" }, .text("%\(literal)%"))
        }
        let limit = filters.page(limit: page.limit, offset: page.offset)
        if filters.matchesNothing { return [] }
        return try await session.query(
            "SELECT * FROM tasks\(filters.whereClause) ORDER BY created_at DESC, id DESC\(limit)", filters.binds
        ).map(Self.decode)
    }

    /// How many tasks have each status.
    public func countByStatus() async throws(StorageError) -> [String: Int] {
        var counts: [String: Int] = [:]
        for row in try await session.query("SELECT status, COUNT(*) AS n FROM tasks GROUP BY status", []) {
            counts[try row.string("status")] = try row.int("n")
        }
        return counts
    }

    static func decode(_ row: SQLRow) throws(StorageError) -> TaskRecord {
        let status = try row.string("status")
        let operation = try row.string("operation")
        let kind = try row.string("requested_by_kind")
        guard let taskStatus = TaskStatus(rawValue: status), let op = TaskOperation(rawValue: operation),
            let requesterKind = RequesterKind(rawValue: kind)
        else {
            throw StorageError(
                .decoding,
                "task \((try? row.string("id")) ?? "?") holds an unknown status, operation or requester kind ('\(status)', '\(operation)', '\(kind)')")
        }
        return TaskRecord(
            id: try row.string("id"), version: try row.string("version"),
            idempotencyKey: try row.optionalString("idempotency_key"),
            requestedBy: Requester(
                kind: requesterKind, id: try row.string("requested_by_id"),
                label: try row.optionalString("requested_by_label")),
            objective: try row.string("objective"), operation: op,
            target: TaskTarget(
                repo: try row.string("target_repo"), ref: try row.string("target_ref"),
                path: try row.optionalString("target_path") ?? ""),
            constraints: TaskConstraints(
                timeBudgetSeconds: try row.int("time_budget_seconds"), allowNetwork: try row.bool("allow_network"),
                allowSecrets: try row.bool("allow_secrets")),
            inputs: try row.object("inputs"), metadata: try row.object("metadata"), status: taskStatus,
            createdAt: try row.optionalTimestamp("created_at"), queuedAt: try row.optionalTimestamp("queued_at"),
            startedAt: try row.optionalTimestamp("started_at"), completedAt: try row.optionalTimestamp("completed_at"),
            assignedTo: try row.optionalString("assigned_to"), result: try row.optionalJSON("result"),
            error: try row.optionalString("error"), tracePath: try row.optionalString("trace_path"),
            cwomIssueId: try row.optionalString("cwom_issue_id"), traceId: try row.optionalString("trace_id"),
            attempt: try row.optionalInt("attempt") ?? 0, maxAttempts: try row.optionalInt("max_attempts") ?? 3,
            runAfter: try row.optionalTimestamp("run_after"), leaseExpiresAt: try row.optionalTimestamp("lease_expires_at"),
            cancelRequestedAt: try row.optionalTimestamp("cancel_requested_at"),
            currentRunId: try row.optionalString("current_run_id"))
    }
}
