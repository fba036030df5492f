import CWOM
import TowerJSON

/// The lifecycle of a legacy task: `pending → queued → running → completed | failed`, plus
/// `cancelled`.
public enum TaskStatus: String, CWOMEnum {
    case pending, queued, running, completed, failed, cancelled

    public var isFinished: Bool { self == .completed || self == .failed || self == .cancelled }
}

/// The kind of work a task asks for.
public enum TaskOperation: String, CWOMEnum {
    case codeChange = "code_change", docs, analysis, ops
}

/// Who asked: `human`, `agent` or `system`.
public enum RequesterKind: String, CWOMEnum {
    case human, agent, system
}

public struct Requester: Sendable, Hashable {
    public var kind: RequesterKind
    public var id: String
    public var label: String?

    public init(kind: RequesterKind, id: String, label: String? = nil) {
        self.kind = kind
        self.id = id
        self.label = label
    }
}

public struct TaskTarget: Sendable, Hashable {
    public var repo: String
    public var ref: String
    public var path: String

    public init(repo: String, ref: String = "main", path: String = "") {
        self.repo = repo
        self.ref = ref
        self.path = path
    }
}

public struct TaskConstraints: Sendable, Hashable {
    public var timeBudgetSeconds: Int
    public var allowNetwork: Bool
    public var allowSecrets: Bool

    public init(timeBudgetSeconds: Int = 900, allowNetwork: Bool = false, allowSecrets: Bool = false) {
        self.timeBudgetSeconds = timeBudgetSeconds
        self.allowNetwork = allowNetwork
        self.allowSecrets = allowSecrets
    }
}

/// One row of the legacy `tasks` table, with the columns Control Tower added for leases and
/// retries (migration 0002).
public struct TaskRecord: Sendable, Hashable, JSONWritable {
    public var id: String
    public var version: String
    public var idempotencyKey: String?
    public var requestedBy: Requester
    public var objective: String
    public var operation: TaskOperation
    public var target: TaskTarget
    public var constraints: TaskConstraints
    public var inputs: JSONObject
    public var metadata: JSONObject
    public var status: TaskStatus
    public var createdAt: Timestamp?
    public var queuedAt: Timestamp?
    public var startedAt: Timestamp?
    public var completedAt: Timestamp?
    public var assignedTo: String?
    public var result: JSONValue?
    public var error: String?
    public var tracePath: String?
    public var cwomIssueId: String?
    public var traceId: String?
    // Control Tower's worker columns.
    public var attempt: Int
    public var maxAttempts: Int
    /// Attempts a task gets (the column's default), and a retry adds.
    public static let defaultMaxAttempts = 3
    public var runAfter: Timestamp?
    public var leaseExpiresAt: Timestamp?
    public var cancelRequestedAt: Timestamp?
    public var currentRunId: String?

    public init(id: String, version: String = "1.0", idempotencyKey: String? = nil, requestedBy: Requester,
        objective: String, operation: TaskOperation, target: TaskTarget, constraints: TaskConstraints = TaskConstraints(),
        inputs: JSONObject = [:], metadata: JSONObject = [:], status: TaskStatus = .pending,
        createdAt: Timestamp? = nil, queuedAt: Timestamp? = nil, startedAt: Timestamp? = nil,
        completedAt: Timestamp? = nil, assignedTo: String? = nil, result: JSONValue? = nil, error: String? = nil,
        tracePath: String? = nil, cwomIssueId: String? = nil, traceId: String? = nil, attempt: Int = 0,
        maxAttempts: Int = TaskRecord.defaultMaxAttempts, runAfter: Timestamp? = nil, leaseExpiresAt: Timestamp? = nil,
        cancelRequestedAt: Timestamp? = nil, currentRunId: String? = nil)
    {
        self.id = id
        self.version = version
        self.idempotencyKey = idempotencyKey
        self.requestedBy = requestedBy
        self.objective = objective
        self.operation = operation
        self.target = target
        self.constraints = constraints
        self.inputs = inputs
        self.metadata = metadata
        self.status = status
        self.createdAt = createdAt
        self.queuedAt = queuedAt
        self.startedAt = startedAt
        self.completedAt = completedAt
        self.assignedTo = assignedTo
        self.result = result
        self.error = error
        self.tracePath = tracePath
        self.cwomIssueId = cwomIssueId
        self.traceId = traceId
        self.attempt = attempt
        self.maxAttempts = maxAttempts
        self.runAfter = runAfter
        self.leaseExpiresAt = leaseExpiresAt
        self.cancelRequestedAt = cancelRequestedAt
        self.currentRunId = currentRunId
    }

    /// The legacy task representation (`TaskModel.to_dict`, reference §1.7): the 21 keys in
    /// their order. Timestamps are ISO-8601 UTC with microseconds.
    public func write(to sink: inout JSONSink) {
        sink.beginObject()
        sink.member("task_id", id)
        sink.member("version", version)
        sink.member("idempotency_key", idempotencyKey)
        sink.key("requested_by")
        sink.beginObject()
        sink.member("kind", requestedBy.kind)
        sink.member("id", requestedBy.id)
        sink.member("label", requestedBy.label)
        sink.endObject()
        sink.member("objective", objective)
        sink.member("operation", operation)
        sink.key("target")
        sink.beginObject()
        sink.member("repo", target.repo)
        sink.member("ref", target.ref)
        sink.member("path", target.path)
        sink.endObject()
        sink.key("constraints")
        sink.beginObject()
        sink.member("time_budget_seconds", constraints.timeBudgetSeconds)
        sink.member("allow_network", constraints.allowNetwork)
        sink.member("allow_secrets", constraints.allowSecrets)
        sink.endObject()
        sink.member("inputs", inputs)
        sink.member("metadata", metadata)
        sink.member("status", status)
        sink.member("created_at", createdAt)
        sink.member("queued_at", queuedAt)
        sink.member("started_at", startedAt)
        sink.member("completed_at", completedAt)
        sink.member("assigned_to", assignedTo)
        sink.member("result", result)
        sink.member("error", error)
        sink.member("trace_path", tracePath)
        sink.member("cwom_issue_id", cwomIssueId)
        sink.member("trace_id", traceId)
        sink.endObject()
    }

    public var json: JSONValue { JSONSink.tree(of: self) }
}

extension TaskRecord {
    /// A new queued task from a validated, normalised request.
    public init(request: TaskRequest, id: String, traceId: String, now: Timestamp = .now()) {
        self.init(
            id: id, version: request.version, idempotencyKey: request.idempotencyKey, requestedBy: request.requestedBy,
            objective: request.objective, operation: request.operation, target: request.target,
            constraints: request.constraints, inputs: request.inputs, metadata: request.metadata, status: .queued,
            createdAt: now, queuedAt: now, traceId: traceId)
    }
}

extension TaskRecord {
    /// A new task's id: a UUID of version 7, where the legacy service drew version 4. Same form
    /// (36 lower-case characters, any UUID parser takes it), but ordered by time, so that a new
    /// task's entries land at the end of every index keyed by task or trace id instead of on a
    /// random page of it: a random key dirtied a page of its own per index per enqueue, which
    /// SQLite then wrote to its WAL, checksummed and copied back (docs/benchmarks.md).
    public static func newId() -> String { UUIDv7.make() }

    /// A trace id for a request that names none: a UUID of version 7 as well.
    public static func newTraceId() -> String { UUIDv7.make() }
}
