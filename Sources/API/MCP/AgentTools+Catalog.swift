import Bridge
import CWOM
import Crypto
import Foundation
import LegacyTasks
import Storage
import TowerJSON
import Worker

extension AgentTools {
    /// `{"type":"object","properties":…,"required":…}` from (name, JSON type, description).
    static func schema(_ properties: [(String, String, String)], required: [String] = []) -> JSONValue {
        var object = JSONObject()
        for (name, type, description) in properties {
            object[name] = type == "array"
                ? ["type": "array", "items": ["type": "string"], "description": .string(description)]
                : ["type": .string(type), "description": .string(description)]
        }
        return ["type": "object", "properties": .object(object), "required": .array(required.map { .string($0) })]
    }

    /// Every tool, in the legacy order, then `jct_heartbeat`.
    public static let catalog: [Tool] = [
        Tool(
            name: "jct_list_tasks",
            description: "List tasks in the queue (queued by default). Use it to see what work is available before claiming a task.",
            inputSchema: schema([
                ("status", "string", "Task status (default queued)"), ("operation", "string", "Only this operation"),
                ("limit", "integer", "At most this many (default 10)"),
            ]), scopes: [.read], failureCode: "LIST_TASKS_ERROR"
        ) { tools, arguments, _ in
            let status = arguments.optionalString("status") ?? "queued"
            guard TaskStatus(rawValue: status) != nil else {
                throw ToolError("INVALID_PARAMETERS", "'\(status)' is not a task status (\(TaskStatus.allValues.joined(separator: ", "))).")
            }
            let limit = try arguments.int("limit", default: 10, range: 1...1000)
            let filter = TaskRepository.Filter(status: status, operation: arguments.optionalString("operation"))
            let tasks = try await tools.database.read { try await $0.tasks.list(filter, page: Page(limit: limit)) }
            return ["tasks": .array(tasks.map(taskSummary)), "count": .int(tasks.count)]
        },
        Tool(
            name: "jct_claim_task",
            description:
                "Claim a queued task: it moves from queued to running under a new Run pinned to its context. Returns the objective, constraints, issue, context packet and constraint snapshot. The claim holds for the task's time budget; every call naming the task (or jct_heartbeat) renews it.",
            inputSchema: schema([("task_id", "string", "The task to claim")], required: ["task_id"]), scopes: [.agent],
            failureCode: "CLAIM_TASK_ERROR"
        ) { tools, arguments, caller in
            let task = try await tools.task(try arguments.string("task_id"))
            guard task.status == .queued else {
                throw ToolError(
                    "TASK_ALREADY_CLAIMED", "Task '\(task.id)' is no longer queued (current status: \(task.status.rawValue)).",
                    suggestion: "Use jct_list_tasks to find another available task.")
            }
            let claimant = tools.claimant(lease: Double(task.constraints.timeBudgetSeconds), caller: caller)
            guard let claim = try await tools.engine.claim(task.id, for: claimant) else {
                throw ToolError(
                    "TASK_ALREADY_CLAIMED", "Task '\(task.id)' was claimed by another worker.",
                    suggestion: "Use jct_list_tasks to find another available task.")
            }
            let recorder = try tools.recorder(claim, caller: caller)
            try recorder.start()
            let claimed = claim.task
            return [
                "task_id": .string(claimed.id), "run_id": .string(claim.run.id), "trace_id": claimed.traceId.json,
                "objective": .string(claimed.objective), "operation": claimed.operation.json,
                "target": ["repo": .string(claimed.target.repo), "ref": .string(claimed.target.ref), "path": .string(claimed.target.path)],
                "constraints": [
                    "time_budget_seconds": .int(claimed.constraints.timeBudgetSeconds),
                    "allow_network": .bool(claimed.constraints.allowNetwork), "allow_secrets": .bool(claimed.constraints.allowSecrets),
                ],
                "issue": [
                    "id": .string(claim.issue.id), "title": .string(claim.issue.title), "type": claim.issue.type.json,
                    "status": claim.issue.status.json, "acceptance_criteria": .array(claim.issue.acceptance.criteria.map { .string($0) }),
                ],
                "context_packet": claim.packet.json, "constraint_snapshot": claim.snapshot.json,
                "lease_expires_at": claimed.leaseExpiresAt.json, "trace_uri": .string(recorder.trace.uri),
            ]
        },
        Tool(
            name: "jct_get_context",
            description: "The context of a task: its issue, newest context packet, constraint snapshot and doctrine refs.",
            inputSchema: schema([("task_id", "string", "The task")], required: ["task_id"]), scopes: [.read],
            failureCode: "GET_CONTEXT_ERROR"
        ) { tools, arguments, caller in
            let task = try await tools.task(try arguments.string("task_id"))
            try await tools.renew(task, caller: caller)
            guard let issueId = task.cwomIssueId else { return ["task_id": .string(task.id)] }
            return try await tools.database.read { store in
                var reply: JSONObject = ["task_id": .string(task.id)]
                guard let issue = try await store.issues.get(issueId) else { return reply }
                reply["issue"] = issue.json
                if let packet = try await store.contextPackets.latest(forIssue: issueId) {
                    reply["context_packet"] = packet.json
                    if let snapshotRef = packet.constraintSnapshot, let snapshot = try await store.constraintSnapshots.get(snapshotRef.id) {
                        reply["constraint_snapshot"] = snapshot.json
                    }
                }
                let doctrine = try await store.doctrineRefs.get(ids: issue.doctrineRefs.map(\.id))
                if !doctrine.isEmpty { reply["doctrine_refs"] = .array(doctrine.map(\.json)) }
                return reply
            }
        },
        Tool(
            name: "jct_report_artifact",
            description:
                "Report an artifact of the task you claimed: content is written to the run's artifacts folder, a uri is recorded as given. Call it for each meaningful output.",
            inputSchema: schema(
                [
                    ("task_id", "string", "The claimed task"), ("title", "string", "A title"),
                    ("artifact_type", "string", "code_patch, commit, pr, build, container_image, doc, report, dataset, log, trace, binary, link"),
                    ("content", "string", "The artifact's text"), ("uri", "string", "Where it lives, when not given as content"),
                    ("media_type", "string", "Default text/plain"),
                ], required: ["task_id", "title", "artifact_type"]), scopes: [.agent], failureCode: "REPORT_ARTIFACT_ERROR", onePerTask: true
        ) { tools, arguments, caller in
            let typeName = try arguments.string("artifact_type")
            guard let type = ArtifactType(rawValue: typeName) else {
                throw ToolError(
                    "INVALID_ARTIFACT_TYPE",
                    "'\(typeName)' is not a valid artifact type. Valid types: \(ArtifactType.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            let title = try arguments.string("title")
            let content = arguments.optionalString("content")
            let uri = arguments.optionalString("uri")
            guard content != nil || uri != nil else {
                throw ToolError("INVALID_PARAMETERS", "Give the artifact's content or its uri.")
            }
            let claim = try await tools.activeClaim(try arguments.string("task_id"), caller: caller)
            let trace = try TraceStore(root: tools.traces, runId: claim.run.id)
            let now = Timestamp.now()
            var artifact: Artifact
            if let content {
                // A name of its own in artifacts/: never a path, never over another report.
                let base = safeFileName(title)
                var name = base
                var counter = 2
                while FileManager.default.fileExists(atPath: trace.url("artifacts/" + name).path) {
                    name = "\(base)-\(counter)"
                    counter += 1
                }
                let bytes = Array(content.utf8)
                artifact = Artifact(
                    header: ObjectHeader(traceId: claim.task.traceId), producedBy: claim.run.ref, forIssue: claim.issue.ref, type: type,
                    title: String(title.prefix(512)), uri: trace.fileURI("artifacts/" + name),
                    digest: "sha256:" + SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined(),
                    mediaType: arguments.optionalString("media_type") ?? "text/plain", sizeBytes: bytes.count,
                    meta: ["path": .string("artifacts/" + name), "reported_by": .string(caller.name)], createdAt: now)
                // Checked before its file is written: a media type PostgreSQL refused left the
                // file without its Artifact.
                try artifact.validate()
                try trace.write("artifacts/" + name, content)
                trace.event("artifact_reported", ["title": .string(title), "type": .string(typeName), "path": .string("artifacts/" + name)])
            } else {
                artifact = Artifact(
                    header: ObjectHeader(traceId: claim.task.traceId), producedBy: claim.run.ref, forIssue: claim.issue.ref, type: type,
                    title: String(title.prefix(512)), uri: uri ?? "", mediaType: arguments.optionalString("media_type") ?? "text/plain",
                    meta: ["reported_by": .string(caller.name)], createdAt: now)
                try artifact.validate()
                trace.event("artifact_reported", ["title": .string(title), "type": .string(typeName), "uri": .string(uri ?? "")])
            }
            let stored = artifact
            try await tools.engine.create(stored, by: caller.actor, note: "Artifact reported via MCP: \(title)")
            return [
                "artifact_id": .string(stored.id), "task_id": .string(claim.task.id), "run_id": .string(claim.run.id),
                "title": .string(title), "type": .string(typeName), "uri": .string(stored.uri), "digest": stored.digest.json,
                "size_bytes": stored.sizeBytes.json,
            ]
        },
        Tool(
            name: "jct_complete_task",
            description:
                "Complete the task you claimed with a summary and whether it succeeded. The trace folder is closed, the prover builds the evidence pack and the review policy decides, as for a worker's run. A failure marked retryable queues the task again (task_status queued) while it has attempts left.",
            inputSchema: schema(
                [
                    ("task_id", "string", "The claimed task"), ("success", "boolean", "Whether the work succeeded"),
                    ("summary", "string", "What was done"), ("outputs", "string", "A JSON object of outputs (text)"),
                    ("error_message", "string", "Why it failed"),
                    ("retryable", "boolean", "The failure is transient (a rate limit, a flaky remote): queue the task again while it has attempts left. Default false"),
                ], required: ["task_id", "success", "summary"]), scopes: [.agent], failureCode: "COMPLETE_TASK_ERROR", onePerTask: true
        ) { tools, arguments, caller in
            let success = try arguments.bool("success")
            let summary = try arguments.string("summary")
            let task = try await tools.task(try arguments.string("task_id"))
            guard task.status == .running else {
                throw ToolError("TASK_NOT_RUNNING", "Task '\(task.id)' is not running (current status: \(task.status.rawValue)).")
            }
            let claim = try await tools.activeClaim(task.id, caller: caller)
            var outputs = JSONObject()
            if let text = arguments.optionalString("outputs") {
                if case .object(let object)? = try? JSONParser.parse(text) { outputs = object } else { outputs["raw"] = .string(text) }
                if let found = JSONValue.object(outputs).firstUnstorable() {
                    throw ToolError(
                        "INVALID_PARAMETERS",
                        "'outputs' cannot be stored: \(FieldPath(json: found.path)) holds \(found.value.unstorableReason).",
                        suggestion: "Outputs are JSON: numbers are finite and text holds no U+0000.")
                }
            }
            outputs["summary"] = .string(summary)
            let message = success ? nil : (arguments.optionalString("error_message") ?? summary)
            let retryable = try arguments.bool("retryable", default: false)
            let result = ExecutionResult(
                outcome: success ? .succeeded : .failed, outputs: outputs, summary: summary, errorMessage: message,
                failureCategory: .unknown, retryable: !success && retryable)
            let recorder = try tools.recorder(claim, caller: caller)
            let recorded = try await tools.database.read { try await $0.artifacts.list(forRun: claim.run.id) }
            let completion = try recorder.completion(result, recorded: recorded)
            switch try await tools.engine.complete(completion, policy: tools.reviewPolicy) {
            case .fenced:
                throw ToolError("NO_ACTIVE_CLAIM", "Task '\(task.id)' is no longer this agent's attempt: nothing was written.")
            case .finished(let status):
                let (run, pack) = try await tools.database.read { store in
                    (try await store.runs.get(claim.run.id), try await store.evidencePacks.list(runId: claim.run.id, page: Page(limit: 1)).first)
                }
                var reply: JSONObject = [
                    "task_id": .string(task.id), "task_status": status.json, "run_id": .string(claim.run.id),
                    "run_status": run?.status.json ?? .null,
                ]
                if let pack {
                    reply["evidence_pack"] = ["id": .string(pack.id), "verdict": pack.verdict.json, "verdict_reason": .string(pack.verdictReason)]
                }
                return reply
            }
        },
        Tool(
            name: "jct_get_task", description: "A task with its status, linked CWOM objects and history.",
            inputSchema: schema([("task_id", "string", "The task")], required: ["task_id"]), scopes: [.read], failureCode: "GET_TASK_ERROR"
        ) { tools, arguments, caller in
            let task = try await tools.task(try arguments.string("task_id"))
            try await tools.renew(task, caller: caller)
            return ["task": task.json]
        },
        Tool(
            name: "jct_get_run", description: "A Run with its status, executor, outputs and evidence pack.",
            inputSchema: schema([("run_id", "string", "The Run")], required: ["run_id"]), scopes: [.read], failureCode: "GET_RUN_ERROR"
        ) { tools, arguments, _ in
            let id = try arguments.string("run_id")
            let (run, pack) = try await tools.database.read { store in
                (try await store.runs.get(id), try await store.evidencePacks.list(runId: id, page: Page(limit: 1)).first)
            }
            guard let run, case .object(var object) = run.json else { throw ToolError("RUN_NOT_FOUND", "Run '\(id)' not found.") }
            if let pack { object["evidence_pack"] = pack.json }
            return ["run": .object(object)]
        },
        Tool(
            name: "jct_get_evidence", description: "The evidence pack of a Run (by run id, or by the pack's own id): verdict, criteria, evidence.",
            inputSchema: schema([("run_id", "string", "A Run id or an EvidencePack id")], required: ["run_id"]), scopes: [.read],
            failureCode: "GET_EVIDENCE_ERROR"
        ) { tools, arguments, _ in
            let id = try arguments.string("run_id")
            let pack = try await tools.database.read { store -> EvidencePack? in
                if let forRun = try await store.evidencePacks.list(runId: id, page: Page(limit: 1)).first { return forRun }
                return try await store.evidencePacks.get(id)
            }
            guard let pack else {
                throw ToolError("EVIDENCE_NOT_FOUND", "No evidence pack found for '\(id)' (searched by run ID and evidence pack ID).")
            }
            return ["evidence_pack": pack.json]
        },
        Tool(
            name: "jct_get_audit_trail", description: "The audit trail of a task, issue or run: every change, who made it and when.",
            inputSchema: schema(
                [("entity_kind", "string", "Task, Issue, Run, …"), ("entity_id", "string", "Its id"), ("limit", "integer", "Default 50")],
                required: ["entity_kind", "entity_id"]), scopes: [.read], failureCode: "GET_AUDIT_ERROR"
        ) { tools, arguments, _ in
            let filter = AuditLog.Filter(entityKind: try arguments.string("entity_kind"), entityId: try arguments.string("entity_id"))
            let limit = try arguments.int("limit", default: 50, range: 1...1000)
            let entries = try await tools.database.read { try await $0.audit.list(filter, page: Page(limit: limit)) }
            return ["entries": .array(entries.map(\.json)), "count": .int(entries.count)]
        },
        Tool(
            name: "jct_submit_review",
            description: "Decide on the evidence pack of a task under review: approved, rejected or needs_changes.",
            inputSchema: schema(
                [
                    ("evidence_pack_id", "string", "The pack"), ("decision", "string", "approved, rejected or needs_changes"),
                    ("reason", "string", "Why"), ("reviewer_name", "string", "Shown as the reviewer's display name"),
                ], required: ["evidence_pack_id", "decision", "reason"]), scopes: [.review], failureCode: "SUBMIT_REVIEW_ERROR"
        ) { tools, arguments, caller in
            let decisionName = try arguments.string("decision")
            guard let decision = ReviewDecisionStatus(rawValue: decisionName) else {
                throw ToolError("INVALID_DECISION", "Decision must be 'approved', 'rejected', or 'needs_changes', got '\(decisionName)'.")
            }
            let packId = try arguments.string("evidence_pack_id")
            guard let pack = try await tools.database.read({ try await $0.evidencePacks.get(packId) }) else {
                throw ToolError("EVIDENCE_NOT_FOUND", "Evidence pack '\(packId)' not found.")
            }
            var reviewer = caller.actor
            reviewer.display = arguments.optionalString("reviewer_name") ?? reviewer.display
            let review = ReviewDecision(
                forEvidencePack: pack.ref, forRun: pack.forRun, forIssue: pack.forIssue, reviewer: reviewer, decision: decision,
                decisionReason: try arguments.string("reason"), tags: ["mcp-review"])
            try review.validate()
            try await tools.engine.review(review)
            return [
                "review_id": .string(review.id), "decision": .string(decisionName), "evidence_pack_id": .string(packId),
                "issue_id": .string(pack.forIssue.id), "run_id": .string(pack.forRun.id),
            ]
        },
        Tool(
            name: "jct_list_pending_reviews", description: "Issues under review with their newest evidence pack: the work waiting for a decision.",
            inputSchema: schema([("limit", "integer", "Default 10")]), scopes: [.read], failureCode: "LIST_REVIEWS_ERROR"
        ) { tools, arguments, _ in
            let limit = try arguments.int("limit", default: 10, range: 1...1000)
            let pending = try await tools.database.read { store -> [JSONValue] in
                var results: [JSONValue] = []
                for issue in try await store.issues.list(IssueRepository.Filter(status: "under_review"), page: Page(limit: limit)) {
                    let pack = try await store.evidencePacks.list(issueId: issue.id, page: Page(limit: 1)).first
                    results.append([
                        "issue_id": .string(issue.id), "issue_title": .string(issue.title), "issue_status": issue.status.json,
                        "evidence_pack_id": pack.map { .string($0.id) } ?? .null, "verdict": pack?.verdict.json ?? .null,
                        "verdict_reason": pack.map { .string($0.verdictReason) } ?? .null,
                        "run_id": pack.map { .string($0.forRun.id) } ?? .null,
                    ])
                }
                return results
            }
            return ["pending_reviews": .array(pending), "count": .int(pending.count)]
        },
        Tool(
            name: "jct_enqueue_task",
            description: "Submit a new task to the queue, through the same validation and policy as POST /tasks/enqueue.",
            inputSchema: schema(
                [
                    ("objective", "string", "What to do"), ("operation", "string", "code_change, docs, analysis, ops"),
                    ("target_repo", "string", "owner/repo"), ("target_ref", "string", "Default main"), ("target_path", "string", "Default ''"),
                    ("time_budget_seconds", "integer", "Default 3600"), ("priority", "string", "Ignored, as by the legacy service"),
                    ("acceptance_criteria", "array", "Criteria"), ("context_summary", "string", "Ignored, as by the legacy service"),
                    ("idempotency_key", "string", "A key that makes a retry safe"), ("create_cwom", "boolean", "Default true"),
                ], required: ["objective", "operation", "target_repo"]), scopes: [.write], failureCode: "ENQUEUE_TASK_ERROR"
        ) { tools, arguments, caller in
            let traceId = TaskRecord.newTraceId()
            let request: TaskRequest
            let objective = try arguments.string("objective"), operation = try arguments.string("operation")
            let repo = try arguments.string("target_repo")
            let budget = try arguments.int("time_budget_seconds", default: 3600, range: Int.min...Int.max)
            do throws(TaskRoutes.Refusal) {
                request = try TaskRoutes.admit(
                    objective: objective, operation: operation, repo: repo, ref: arguments.optionalString("target_ref") ?? "main",
                    path: arguments.optionalString("target_path") ?? "", timeBudgetSeconds: budget,
                    criteria: arguments.values["acceptance_criteria"] ?? [], idempotencyKey: arguments.optionalString("idempotency_key"),
                    requestedBy: ["kind": "agent", "id": .string(caller.name), "label": .string("\(caller.name) (MCP)")],
                    policy: tools.configuration.policy, logger: tools.logger, traceId: traceId)
            } catch {
                throw ToolError(error.code, error.message)
            }
            let outcome = try await tools.engine.enqueue(
                request, id: TaskRecord.newId(), traceId: traceId, createCWOM: try arguments.bool("create_cwom", default: true),
                actor: caller.actor)
            switch outcome {
            case .conflict(let existing):
                throw ToolError(
                    "IDEMPOTENCY_CONFLICT", "Task with idempotency_key '\(request.idempotencyKey ?? "")' already exists.",
                    suggestion: "Existing task ID: \(existing.id)")
            case .created(let created):
                let (task, cwom) = (created.task, created.objects)
                var reply: JSONObject = ["task_id": .string(task.id), "trace_id": .string(traceId), "status": "queued"]
                if let cwom {
                    reply["cwom"] = [
                        "repo_id": .string(cwom.repo.id), "issue_id": .string(cwom.issue.id),
                        "context_packet_id": .string(cwom.contextPacket.id), "constraint_snapshot_id": .string(cwom.constraintSnapshot.id),
                    ]
                }
                return reply
            }
        },
        Tool(
            name: "jct_heartbeat",
            description:
                "Renew the claim on a task you are working on (any call naming the task does too). Reports whether the claim still holds and whether a cancel was requested.",
            inputSchema: schema([("task_id", "string", "The claimed task")], required: ["task_id"]), scopes: [.agent],
            failureCode: "HEARTBEAT_ERROR"
        ) { tools, arguments, caller in
            let task = try await tools.task(try arguments.string("task_id"))
            let beat = try await tools.renew(task, caller: caller)
            guard beat.held else {
                throw ToolError(
                    "NO_ACTIVE_CLAIM", "No active claim of '\(caller.name)' on task '\(task.id)' (status: \(task.status.rawValue)).",
                    suggestion: "A claim whose lease ran out was rescued; claim another task.")
            }
            let renewed = try await tools.task(task.id)
            return [
                "task_id": .string(task.id), "lease_expires_at": renewed.leaseExpiresAt.json, "cancel_requested": .bool(beat.cancelRequested),
            ]
        },
    ]
}
