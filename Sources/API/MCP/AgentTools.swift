import Bridge
import CWOM
import Crypto
import Foundation
import LegacyTasks
import Logging
import Storage
import TowerJSON
import Worker

/// The tools agents call over MCP (reference §9): the legacy service's twelve, with their names,
/// arguments, defaults and reply envelopes (`{"success":true,…}` or
/// `{"success":false,"error":{"code","message","suggestion"?}}`), plus `jct_heartbeat`. Each
/// tool is one engine operation or one read; transports (stdio, HTTP) only carry calls here.
///
/// What the legacy service got wrong is right here: a claim is the engine's guarded claim with a
/// Run pinned to the Issue's newest ContextPacket and a trace folder; the agent holds a lease of
/// the task's time budget that every call naming the task renews (a vanished agent's task is
/// rescued like a lost worker's); the actor is the key's name; completion writes the manifest and
/// runs the prover and the review policy exactly as a worker's completion does.
public struct AgentTools: Sendable {
    public let database: Database
    public let engine: LifecycleEngine
    /// What the tools read of the API's settings: the policy of enqueues, the trace root
    /// (`JCT_TRACE_ROOT`), the review policy and the artifact limit of an agent's runs.
    public let configuration: APIConfiguration
    /// `configuration.traceRoot`, its path and URI worked out once.
    let traces: TraceRoot
    /// What an agent's completion does after the prover, as a worker's (`JCT_REVIEW_AUTO_APPROVE`).
    var reviewPolicy: ReviewPolicy { configuration.reviewPolicy }
    let logger: Logger
    /// The calls of tools marked `onePerTask`, one at a time per task.
    let taskCalls = TaskCallQueue()

    public init(database: Database, engine: LifecycleEngine, configuration: APIConfiguration, logger: Logger = Logger(label: "tower.mcp")) {
        self.database = database
        self.engine = engine
        self.configuration = configuration
        self.traces = TraceRoot(configuration.traceRoot)
        self.logger = logger
    }

    /// The recorder of an agent's attempt: its trace folder under the trace root, and at its end at
    /// most `configuration.artifactLimit` files of `artifacts/` recorded, as a worker records its
    /// runs (`TOWER_ARTIFACT_LIMIT`).
    func recorder(_ claim: LifecycleEngine.Claim, caller: Caller) throws -> RunRecorder {
        try RunRecorder(
            claim: claim, executor: (caller.name, "mcp"), holder: caller.holder, traceRoot: traces,
            artifactLimit: configuration.artifactLimit)
    }

    /// The agent calling: its key, or nobody when no key is configured.
    public struct Caller: Sendable {
        public var principal: Principal?
        public init(principal: Principal?) { self.principal = principal }

        /// The lease holder and audit actor: the key's name (`mcp-agent` without keys).
        var name: String { principal.map { $0.isLegacyKey ? "mcp-agent" : $0.name } ?? "mcp-agent" }
        var actor: Actor { Actor(kind: .agent, id: name, display: "\(name) (MCP)") }
        var holder: String { "agent:\(name)" }
    }

    /// A refusal with the legacy error shape.
    struct ToolError: Error {
        var code: String
        var message: String
        var suggestion: String?
        init(_ code: String, _ message: String, suggestion: String? = nil) {
            self.code = code
            self.message = message
            self.suggestion = suggestion
        }
    }

    /// One tool: its name, description, input schema, the scopes that may call it, and its body.
    public struct Tool: Sendable {
        public let name: String
        public let description: String
        public let inputSchema: JSONValue
        public let scopes: Set<Scope>
        /// The generic error code of the legacy service for an unexpected failure.
        let failureCode: String
        /// Calls naming the same `task_id` run one at a time (`TaskCallQueue`).
        var onePerTask = false
        let run: @Sendable (AgentTools, Arguments, Caller) async throws -> JSONObject
    }

    /// Calls a tool: the reply envelope, as the legacy service's JSON text carried it.
    public func call(_ name: String, arguments: JSONObject, caller: Caller) async -> JSONValue {
        guard let tool = Self.catalog.first(where: { $0.name == name }) else {
            return Self.failure(ToolError("INVALID_PARAMETERS", "Unknown tool '\(name)'.", suggestion: "tools/list names the tools."))
        }
        if let principal = caller.principal, !principal.holds(any: tool.scopes.union([.admin])) {
            let needed = tool.scopes.sorted().map(\.rawValue).joined(separator: " or ")
            return Self.failure(
                ToolError(
                    "FORBIDDEN", "The key '\(principal.name)' lacks the scope for \(name): it needs \(needed) (or admin).",
                    suggestion: "Ask for a key with that scope (tower keys add NAME --scope \(tool.scopes.sorted().first?.rawValue ?? "read"))."))
        }
        // What the two databases do not both store (U+0000) is refused before any tool runs, with
        // the argument that holds it, instead of failing in the middle of its write. `content` is
        // the exception: it goes byte for byte into a file of the trace folder, never a column.
        var stored = arguments
        stored["content"] = nil
        if let found = JSONValue.object(stored).firstUnstorable() {
            return Self.failure(
                ToolError("INVALID_PARAMETERS", "'\(FieldPath(json: found.path))' holds \(found.value.unstorableReason), which cannot be stored."))
        }
        do {
            let reply: JSONObject
            if tool.onePerTask, case .string(let taskId)? = arguments["task_id"] {
                reply = try await taskCalls.run(taskId) { try await tool.run(self, Arguments(arguments), caller) }
            } else {
                reply = try await tool.run(self, Arguments(arguments), caller)
            }
            return .object(JSONObject([("success", true)] + reply.map { ($0.key, $0.value) }))
        } catch let error as ToolError {
            return Self.failure(error)
        } catch let error as LifecycleError {
            return Self.failure(ToolError(tool.failureCode, error.description))
        } catch let error as CWOMValidationError {
            // An object built from the arguments is out of the spec's bounds (a 200-character
            // media type): the agent's to fix, named field by field.
            return Self.failure(ToolError("INVALID_PARAMETERS", error.errors.map(\.description).joined(separator: "; ")))
        } catch {
            logger.error("MCP tool failed", metadata: ["tool": "\(name)", "error": "\(error)"])
            return Self.failure(ToolError(tool.failureCode, "\(error)"))
        }
    }

    static func failure(_ error: ToolError) -> JSONValue {
        var detail: JSONObject = ["code": .string(error.code), "message": .string(error.message)]
        if let suggestion = error.suggestion { detail["suggestion"] = .string(suggestion) }
        return ["success": false, "error": .object(detail)]
    }

    // MARK: - Arguments

    /// A tool's arguments with typed reads; a wrong type is `INVALID_PARAMETERS`.
    struct Arguments: Sendable {
        let values: JSONObject
        init(_ values: JSONObject) { self.values = values }

        func string(_ name: String) throws -> String {
            guard let value = optionalString(name) else { throw ToolError("INVALID_PARAMETERS", "'\(name)' is required (a string).") }
            return value
        }

        func optionalString(_ name: String) -> String? {
            guard let value = values[name], !value.isNull else { return nil }
            return value.stringValue
        }

        func int(_ name: String, default fallback: Int, range: ClosedRange<Int>) throws -> Int {
            guard let value = values[name], !value.isNull else { return fallback }
            guard let number = value.intValue, range.contains(number) else {
                throw ToolError("INVALID_PARAMETERS", "'\(name)' must be an integer in \(range.lowerBound)...\(range.upperBound).")
            }
            return number
        }

        func bool(_ name: String, default fallback: Bool? = nil) throws -> Bool {
            guard let value = values[name], !value.isNull else {
                if let fallback { return fallback }
                throw ToolError("INVALID_PARAMETERS", "'\(name)' is required (true or false).")
            }
            guard let flag = value.boolValue else { throw ToolError("INVALID_PARAMETERS", "'\(name)' must be true or false.") }
            return flag
        }
    }

    // MARK: - Shared reads

    func task(_ id: String) async throws -> TaskRecord {
        guard let canonical = RequestReading.pythonUUID(id), let task = try await database.read({ try await $0.tasks.get(canonical) }) else {
            throw ToolError("TASK_NOT_FOUND", "Task '\(id)' not found.", suggestion: "Use jct_list_tasks to find available tasks.")
        }
        return task
    }

    /// The caller's attempt on a task; renews its lease (every call naming the task does).
    func activeClaim(_ taskId: String, caller: Caller) async throws -> LifecycleEngine.Claim {
        let task = try await task(taskId)
        guard let claim = try await engine.activeClaim(task.id, holder: caller.holder) else {
            throw ToolError(
                "NO_ACTIVE_CLAIM", "No active claim of '\(caller.name)' on task '\(task.id)' (status: \(task.status.rawValue)).",
                suggestion: "Use jct_claim_task first; a claim whose lease ran out was rescued.")
        }
        try await renew(claim.task, caller: caller)
        return claim
    }

    /// Extends the caller's lease on a task it holds by the task's time budget.
    @discardableResult
    func renew(_ task: TaskRecord, caller: Caller) async throws -> (held: Bool, cancelRequested: Bool) {
        let beat = try await engine.heartbeat(claimant(lease: Double(task.constraints.timeBudgetSeconds), caller: caller), taskIds: [task.id])
        return (beat.held.contains(task.id), beat.cancelRequested.contains(task.id))
    }

    func claimant(lease: Double, caller: Caller) -> LifecycleEngine.Claimant {
        let root = traces
        return LifecycleEngine.Claimant(
            id: caller.holder, actor: caller.actor, mode: .agent, leaseSeconds: lease,
            executor: { _ in (name: "mcp-agent", version: "0.1.0") },
            artifactRoot: { runId in root.folderURI(runId) })
    }

    static func taskSummary(_ task: TaskRecord) -> JSONValue {
        [
            "task_id": .string(task.id), "operation": task.operation.json, "objective": .string(task.objective),
            "target_repo": .string(task.target.repo), "target_ref": .string(task.target.ref), "status": task.status.json,
            "time_budget_seconds": .int(task.constraints.timeBudgetSeconds), "queued_at": task.queuedAt.json,
            "cwom_issue_id": task.cwomIssueId.json,
        ]
    }

    /// A file name for a reported artifact: the title lower-cased, anything but letters, digits,
    /// `.`, `-` and `_` replaced, at most 50 characters, never hidden, never a path.
    static func safeFileName(_ title: String) -> String {
        var name = String(
            title.lowercased().unicodeScalars.map { scalar -> Character in
                let allowed = ("a"..."z").contains(scalar) || ("0"..."9").contains(scalar) || "-_.".unicodeScalars.contains(scalar)
                return allowed ? Character(scalar) : "_"
            }
        ).prefix(50)
        while name.hasPrefix(".") { name = name.dropFirst() }
        return name.isEmpty ? "artifact" : String(name)
    }
}
