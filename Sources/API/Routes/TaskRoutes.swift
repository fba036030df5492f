import Bridge
import CWOM
import Foundation
import LegacyTasks
import Logging
import Storage
import TowerJSON

/// The legacy task routes (reference §1.2–1.5), with the bugs of §12 fixed.
struct TaskRoutes: Sendable {
    let database: Database
    let engine: LifecycleEngine
    /// Concurrent enqueues share a transaction (group commit).
    let intake: Batcher<LifecycleEngine.PreparedEnqueue, EnqueueOutcome>
    let configuration: APIConfiguration
    let logger: Logger

    func register(on router: inout Router) {
        router.add(
            "POST", "/tasks/enqueue", summary: "Enqueue a task (legacy V1 intake)", tag: "Tasks", access: .write,
            parameters: [
                Parameter("create_cwom", schema: ["type": "boolean", "default": true], "Whether the task gets its CWOM objects now."),
                Parameter(
                    "X-Trace-Id", in: .header, schema: ["type": "string", "pattern": "^[\\x20-\\x7e]{0,36}$"],
                    "The task's trace id: at most 36 printable ASCII characters, else a 422; a new UUID when absent or empty."),
            ],
            body: RequestBody(schema: ["anyOf": [Answer.reference("TaskCreateV1"), Answer.reference("TaskCreateLegacyV1")]]),
            answers: .json([201], schema: Self.taskAnswer, "`{\"status\": \"success\", \"task\": …, \"cwom\": …}`.")
        ) { try await enqueue($0) }
        router.add(
            "GET", "/tasks", summary: "List tasks, newest first", tag: "Tasks", access: .read,
            parameters: [
                .filter("status", TaskStatus.self, "The task's status"), .filter("operation", TaskOperation.self, "The task's operation"),
                .filter("requester_kind", RequesterKind.self, "Who asked for it"),
                .filter("requested_by_kind", RequesterKind.self, "Who asked for it (read when requester_kind is absent)"),
                Parameter("target_repo", "The target repository, matched exactly (not normalised)."),
                .integer("limit", minimum: 0, default: 100, "How many tasks at most (0: none)."),
                .integer("offset", minimum: 0, default: 0, "How many to skip."),
            ],
            answers: .json([200], schema: ["type": "array", "items": ["type": "object"]], "Tasks, newest first.")
        ) { try await list($0) }
        router.add(
            "GET", "/tasks/{task_id}", summary: "Get a task", tag: "Tasks", access: .read,
            answers: .json([200], schema: ["type": "object"], "The task.")
        ) { try await get($0) }
        router.add(
            "POST", "/tasks/{task_id}/cancel", summary: "Cancel a task (queued: at once; running: its worker stops it)", tag: "Tasks", access: .write,
            answers: .json([200, 202], schema: Self.taskAnswer, "200: cancelled; 202: its worker stops it (`cancel_requested`).")
        ) { try await cancel($0) }
        router.add(
            "POST", "/tasks/{task_id}/retry", summary: "Retry a finished task: a new attempt with a new Run", tag: "Tasks", access: .write,
            answers: .json([200], schema: Self.taskAnswer, "The task, queued again.")
        ) { try await retry($0) }
        router.add(
            "PATCH", "/tasks/{task_id}/status", summary: "Set a task's status and result fields", tag: "Tasks", access: .scopes([.write, .agent]),
            parameters: [
                .choice("status", TaskStatus.self, required: true, "The new status."),
                Parameter("assigned_to", schema: ["type": "string", "maxLength": 100], "Who works on it."), Parameter("error", "What went wrong."),
                Parameter("trace_path", schema: ["type": "string", "maxLength": 512], "Where its trace is."),
            ],
            body: RequestBody(schema: ["type": "object", "description": "The task's result."], required: false),
            answers: .json([200], schema: Self.taskAnswer, "The task.")
        ) { try await updateStatus($0) }
    }

    /// `{"status": …, "task": {…}}`: the legacy task representation has no schema of its own.
    static let taskAnswer: JSONValue = [
        "type": "object", "required": ["status", "task"], "properties": ["status": ["type": "string"], "task": ["type": "object"]],
    ]

    // MARK: - POST /tasks/enqueue

    func enqueue(_ request: APIRequest) async throws -> APIResponse {
        let body = try RequestReading.jsonBody(request)

        var errors: [RequestError] = []
        let createCWOM = RequestReading.bool(request, "create_cwom", default: true, errors: &errors)
        let traceId = traceId(from: request, errors: &errors)
        let parsed = TaskRequestParser.parse(body)
        if case .failure(let bodyErrors) = parsed { errors += bodyErrors.errors }
        guard errors.isEmpty, case .success(let taskRequest) = parsed else {
            throw RequestReading.validationError(errors)
        }
        let normalized = try Self.admit(taskRequest, policy: configuration.policy, logger: logger, traceId: traceId)

        let outcome = try await enqueueOnce(normalized, traceId: traceId, createCWOM: createCWOM, actor: request.principal?.actor)
        switch outcome {
        case .conflict(let existing):
            return .json(
                409,
                [
                    "status": "conflict", "task_id": .string(existing.id), "trace_id": existing.traceId.json,
                    "message": "Task with this idempotency_key already exists", "task": existing.json,
                ])
        case .created(let created):
            let task = created.task
            let cwom = created.objects
            logger.info(
                "task enqueued",
                metadata: ["task_id": "\(task.id)", "trace_id": "\(traceId)", "issue_id": "\(task.cwomIssueId ?? "-")"])
            // Written straight from the task (`JSONSink`): the answer every enqueue sends.
            var body = JSONSink.text()
            body.beginObject()
            body.member("status", "success")
            body.member("task_id", task.id)
            body.member("trace_id", traceId)
            body.member("message", "Task enqueued successfully")
            body.member("task", task)
            if let cwom {
                body.key("cwom")
                body.beginObject()
                body.member("repo_id", cwom.repo.id)
                body.member("issue_id", cwom.issue.id)
                body.member("context_packet_id", cwom.contextPacket.id)
                body.member("constraint_snapshot_id", cwom.constraintSnapshot.id)
                body.endObject()
            }
            body.endObject()
            return .json(201, written: body)
        }
    }

    /// The checks after the schema that every intake applies, HTTP and MCP alike: the policy
    /// (422 `policy_violation` with its code) and a trimmed objective of at least 5 characters.
    static func admit(_ taskRequest: TaskRequest, policy: PolicyConfig, logger: Logger, traceId: String) throws(APIError) -> TaskRequest {
        let normalized: TaskRequest
        do {
            normalized = try TaskPolicy.evaluate(taskRequest, config: policy)
        } catch {
            logger.warning("policy rejected a task", metadata: ["code": "\(error.code)", "trace_id": "\(traceId)"])
            throw APIError.detail(422, .object(["error": "policy_violation", "code": .string(error.code), "message": .string(error.message)]))
        }
        // A trimmed objective must still have 5 characters (the legacy service crashed here).
        if normalized.objective.scalarCount < 5 {
            throw RequestReading.validationError([
                RequestError(
                    loc: ["body", "objective"],
                    error: PydanticError.tooShort(FieldPath(), input: .string(taskRequest.objective), min: 5))
            ])
        }
        return normalized
    }

    /// Why a task submitted outside the HTTP intake (an MCP tool, a console form) was refused:
    /// the legacy error code (`INVALID_PARAMETERS` or the policy's) and a message for a person.
    struct Refusal: Error {
        let code: String
        let message: String
    }

    /// A task request from the few fields an MCP tool or the console's form gives, validated by
    /// the intake's parser and admitted by `admit`, exactly as `POST /tasks/enqueue` would.
    static func admit(
        objective: String, operation: String, repo: String, ref: String = "main", path: String = "",
        timeBudgetSeconds: Int = 3600, criteria: JSONValue = [], idempotencyKey: String? = nil, requestedBy: JSONValue,
        policy: PolicyConfig, logger: Logger, traceId: String
    ) throws(Refusal) -> TaskRequest {
        var body: JSONObject = [
            "version": "1.0", "requested_by": requestedBy, "objective": .string(objective), "operation": .string(operation),
            "target": ["repo": .string(repo), "ref": .string(ref), "path": .string(path)],
            "constraints": ["time_budget_seconds": .int(timeBudgetSeconds), "allow_network": false, "allow_secrets": false],
            "inputs": [:], "acceptance_criteria": criteria, "metadata": [:],
        ]
        if let idempotencyKey { body["idempotency_key"] = .string(idempotencyKey) }
        // What `RequestReading.body` refuses in a JSON body, refused here too: a console form
        // with U+0000 in its objective got the storage error's JSON instead of its page.
        if let found = JSONValue.object(body).firstUnstorable() {
            throw Refusal(
                code: "INVALID_PARAMETERS", message: "\(FieldPath(json: found.path)) holds \(found.value.unstorableReason), which cannot be stored")
        }
        switch TaskRequestParser.parse(.object(body)) {
        case .failure(let errors):
            let messages = errors.errors.map { "\($0.loc.map { $0.stringValue ?? "\($0)" }.dropFirst().joined(separator: ".")): \($0.error.message)" }
            throw Refusal(code: "INVALID_PARAMETERS", message: messages.joined(separator: "; "))
        case .success(let parsed):
            do {
                return try admit(parsed, policy: policy, logger: logger, traceId: traceId)
            } catch {
                let json = (try? JSONParser.parse(bytes: error.response.body))?["detail"]
                if let code = json?["code"]?.stringValue {
                    throw Refusal(code: code, message: json?["message"]?.stringValue ?? code)
                }
                if let first = json?.arrayValue?.first, let message = first["msg"]?.stringValue {
                    throw Refusal(code: "INVALID_PARAMETERS", message: "\(first["loc"]?.arrayValue?.last?.stringValue ?? "input"): \(message)")
                }
                throw Refusal(code: "INVALID_PARAMETERS", message: json.map { String(decoding: $0.bytes(), as: UTF8.self) } ?? "invalid task")
            }
        }
    }

    func enqueueOnce(_ request: TaskRequest, traceId: String, createCWOM: Bool, actor: Actor?) async throws -> EnqueueOutcome {
        // Built here, while the batch before it is written (see `LifecycleEngine.PreparedEnqueue`).
        let prepared = try engine.prepare(
            LifecycleEngine.EnqueueRequest(request, id: TaskRecord.newId(), traceId: traceId, createCWOM: createCWOM, actor: actor))
        let outcome = try await intake.submit(prepared)
        // Let go of here, after the answer: its rows and objects are then freed on this thread,
        // which allocated them, instead of on SQLite's writer at the end of the batch, where each
        // free of another thread's memory missed the allocator's per-thread cache, and so did
        // each allocation here after it.
        withExtendedLifetime(prepared) {}
        return outcome
    }

    /// `X-Trace-Id`: used verbatim when it is 1–36 printable ASCII characters; empty or missing
    /// means a new UUID; anything else is a 422 (the legacy service stored or crashed on it).
    func traceId(from request: APIRequest, errors: inout [RequestError]) -> String {
        guard let raw = request.header("x-trace-id"), !raw.isEmpty else { return TaskRecord.newTraceId() }
        let loc: [JSONValue] = ["header", "x-trace-id"]
        if raw.unicodeScalars.count > 36 {
            errors.append(RequestError(loc: loc, error: PydanticError.tooLong(FieldPath(), input: .string(raw), max: 36)))
        } else if !raw.unicodeScalars.allSatisfy({ $0.value >= 0x20 && $0.value <= 0x7E }) {
            errors.append(
                RequestError(
                    loc: loc,
                    error: FieldError(
                        type: "string_pattern_mismatch", path: FieldPath(),
                        message: "String should match pattern '^[\\x20-\\x7e]{1,36}$'", input: .string(raw),
                        context: ["pattern": "^[\\x20-\\x7e]{1,36}$"])))
        }
        return raw
    }

    // MARK: - GET /tasks

    func list(_ request: APIRequest) async throws -> APIResponse {
        var errors: [RequestError] = []
        let limit = RequestReading.int(request, "limit", default: 100, min: 0, errors: &errors)
        let offset = RequestReading.int(request, "offset", default: 0, min: 0, errors: &errors)
        guard errors.isEmpty else { throw RequestReading.validationError(errors) }
        let filter = TaskRepository.Filter(
            status: request.queryValue("status"), operation: request.queryValue("operation"),
            requesterKind: request.queryValue("requester_kind") ?? request.queryValue("requested_by_kind"),
            targetRepo: request.queryValue("target_repo"))
        if limit == 0 { return .json(200, []) }
        let tasks = try await database.read { store in
            try await store.tasks.list(filter, page: Page(limit: limit, offset: offset))
        }
        return .json(200, .array(tasks.map(\.json)))
    }

    // MARK: - GET /tasks/{task_id}

    func get(_ request: APIRequest) async throws -> APIResponse {
        let task = try await find(request.parameter("task_id"))
        return .json(200, task.json)
    }

    func find(_ rawId: String) async throws -> TaskRecord {
        guard let id = RequestReading.pythonUUID(rawId),
            let task = try await database.read({ store in try await store.tasks.get(id) })
        else { throw APIError.detail(404, "Task not found") }
        return task
    }

    // MARK: - POST /tasks/{task_id}/cancel

    /// A queued task is cancelled at once (200); a running one is marked and its worker stops it
    /// within a heartbeat (202); a finished one is a 409 with its status.
    func cancel(_ request: APIRequest) async throws -> APIResponse {
        let id = try await find(request.parameter("task_id")).id
        switch try await engine.cancel(id, by: request.actor(else: Actor(kind: .system, id: "task-cancel-api"))) {
        case .cancelled(let task): return .json(200, ["status": "success", "task": task.json])
        case .requested(let task): return .json(202, ["status": "cancel_requested", "task": task.json])
        }
    }

    // MARK: - POST /tasks/{task_id}/retry

    /// A finished task (completed, failed, cancelled) is queued again: 200 with the task; the
    /// next claim gives it a new attempt and a new Run. Anything else is a 409 with its status.
    func retry(_ request: APIRequest) async throws -> APIResponse {
        let id = try await find(request.parameter("task_id")).id
        let task = try await engine.retry(id, by: request.actor(else: Actor(kind: .system, id: "task-retry-api")))
        return .json(200, ["status": "success", "task": task.json])
    }

    // MARK: - PATCH /tasks/{task_id}/status

    func updateStatus(_ request: APIRequest) async throws -> APIResponse {
        let body = try RequestReading.jsonBody(request)
        var errors: [RequestError] = []
        let rawStatus = request.queryValue("status")
        var status: TaskStatus?
        if let rawStatus {
            status = TaskStatus(rawValue: rawStatus)
            if status == nil {
                errors.append(
                    RequestReading.queryError(
                        "status",
                        PydanticError.enumeration(FieldPath(), input: .string(rawStatus), values: TaskStatus.allValues, literal: true)))
            }
        } else {
            errors.append(RequestReading.queryError("status", PydanticError.missing(FieldPath(), input: .null)))
        }
        // The legacy columns' lengths (`assigned_to` VARCHAR(100), `trace_path` VARCHAR(512)):
        // PostgreSQL refused a longer value with a 500, SQLite kept it.
        for (name, limit) in [("assigned_to", 100), ("trace_path", 512)] {
            if let value = request.queryValue(name), value.scalarCount > limit {
                errors.append(RequestReading.queryError(name, PydanticError.tooLong(FieldPath(), input: .string(value), max: limit)))
            }
        }
        var result: JSONObject?
        if let body {
            if case .object(let object) = body {
                result = object
            } else {
                errors.append(RequestError(loc: ["body"], error: PydanticError.dictType(FieldPath(), input: body)))
            }
        }
        guard errors.isEmpty, let newStatus = status else { throw RequestReading.validationError(errors) }
        let id = try await find(request.parameter("task_id")).id
        let fields = LifecycleEngine.TaskFields(
            assignedTo: request.queryValue("assigned_to"), result: result, error: request.queryValue("error"),
            tracePath: request.queryValue("trace_path"))
        let updated = try await engine.setTaskStatus(id, to: newStatus, fields: fields, by: request.actor(else: Actor(kind: .system, id: "task-status-api")))
        return .json(200, ["status": "success", "task": updated.json])
    }
}
