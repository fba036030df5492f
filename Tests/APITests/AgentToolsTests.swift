import API
import CWOM
import Foundation
import LegacyTasks
import Storage
import Testing
import TowerJSON
import TowerTestSupport

/// The MCP tools themselves, called as a transport calls them: an agent's whole loop, every error
/// code, scopes, and a lease that runs out. (The transports are tested with a real MCP client.)
@Suite("MCP tools")
struct AgentToolsTests {
    struct Setup {
        let tools: AgentTools
        let clock: ManualClock
        let database: Database
        let traceRoot: URL

        func call(_ name: String, _ arguments: JSONObject = [:], as caller: AgentTools.Caller) async -> JSONValue {
            await tools.call(name, arguments: arguments, caller: caller)
        }

        /// A docs task for `testorg/x` enqueued by the agent; its id.
        func enqueue(_ objective: String) async throws -> String {
            try #require(
                await call("jct_enqueue_task", ["objective": .string(objective), "operation": "docs", "target_repo": "testorg/x"], as: AgentToolsTests.agent)[
                    "task_id"]?.stringValue)
        }
    }

    static let agent = AgentTools.Caller(principal: Principal(name: "agent-7", scopes: [.agent, .read, .write], isLegacyKey: false))
    static let other = AgentTools.Caller(principal: Principal(name: "agent-8", scopes: [.agent, .read], isLegacyKey: false))
    static let reviewer = AgentTools.Caller(principal: Principal(name: "alice", scopes: [.review, .read], isLegacyKey: false))
    static let reader = AgentTools.Caller(principal: Principal(name: "viewer", scopes: [.read], isLegacyKey: false))

    func withTools(_ dialect: Dialect, configuration: APIConfiguration = testConfiguration, _ body: (Setup) async throws -> Void)
        async throws
    {
        try await withDatabase(dialect) { database, _ in
            let clock = ManualClock()
            let engine = LifecycleEngine(database: database, clock: clock)
            let root = FileManager.default.temporaryDirectory.appendingPathComponent("tower-mcp-\(UUID().uuidString)")
            defer { try? FileManager.default.removeItem(at: root) }
            var configuration = configuration
            configuration.traceRoot = root
            let tools = AgentTools(database: database, engine: engine, configuration: configuration, logger: quietLogger("tower.mcp"))
            try await body(Setup(tools: tools, clock: clock, database: database, traceRoot: root))
        }
    }

    func error(_ reply: JSONValue) -> String? { reply["success"] == false ? reply["error"]?["code"]?.stringValue : nil }

    @Test("an agent's whole loop: enqueue, list, claim, context, two artifacts, complete, run, evidence, review, audit",
        arguments: Dialect.allCases)
    func wholeLoop(_ dialect: Dialect) async throws {
        try await withTools(dialect) { s in
            let enqueued = await s.call(
                "jct_enqueue_task",
                ["objective": "Document the release process", "operation": "docs", "target_repo": "testorg/docs",
                    "acceptance_criteria": ["A RELEASE.md exists"]], as: Self.agent)
            #expect(enqueued["success"] == true, "\(enqueued)")
            let taskId = try #require(enqueued["task_id"]?.stringValue)
            #expect(enqueued["cwom"]?["issue_id"]?.stringValue != nil)

            let listed = await s.call("jct_list_tasks", as: Self.agent)
            #expect(listed["count"] == 1)
            #expect(listed["tasks"]?.arrayValue?.first?["task_id"]?.stringValue == taskId)
            #expect(listed["tasks"]?.arrayValue?.first?["time_budget_seconds"] == 3600, "the MCP default budget, as the legacy tool")

            let claimed = await s.call("jct_claim_task", ["task_id": .string(taskId)], as: Self.agent)
            #expect(claimed["success"] == true, "\(claimed)")
            let runId = try #require(claimed["run_id"]?.stringValue)
            #expect(claimed["issue"]?["acceptance_criteria"] == ["A RELEASE.md exists"])
            #expect(claimed["context_packet"]?["id"]?.stringValue != nil)
            #expect(claimed["constraint_snapshot"]?["id"]?.stringValue != nil)
            let run = try #require(try await s.database.read { try await $0.runs.get(runId) })
            #expect(run.mode == .agent)
            #expect(run.status == .running)
            let task = try #require(try await s.database.read { try await $0.tasks.get(taskId) })
            #expect(task.assignedTo == "agent:agent-7")
            #expect(task.leaseExpiresAt == s.clock.now().adding(seconds: 3600), "the lease is the time budget")
            #expect(error(await s.call("jct_claim_task", ["task_id": .string(taskId)], as: Self.other)) == "TASK_ALREADY_CLAIMED")

            let context = await s.call("jct_get_context", ["task_id": .string(taskId)], as: Self.agent)
            #expect(context["issue"]?["id"] == claimed["issue"]?["id"])
            #expect(context["context_packet"]?["id"] == claimed["context_packet"]?["id"])

            let doc = await s.call(
                "jct_report_artifact",
                ["task_id": .string(taskId), "title": "../../RELEASE.md", "artifact_type": "doc", "content": "# Releases\n"],
                as: Self.agent)
            #expect(doc["success"] == true, "\(doc)")
            let docURI = try #require(doc["uri"]?.stringValue)
            let docPath = try #require(URL(string: docURI)?.path)
            #expect(docPath.hasPrefix(s.traceRoot.appendingPathComponent(runId).appendingPathComponent("artifacts").path), "inside the run's folder: \(docPath)")
            #expect(try String(contentsOfFile: docPath, encoding: .utf8) == "# Releases\n")
            #expect(doc["digest"]?.stringValue?.hasPrefix("sha256:") == true)
            #expect(doc["size_bytes"] == 11)
            let link = await s.call(
                "jct_report_artifact",
                ["task_id": .string(taskId), "title": "Pull request", "artifact_type": "pr", "uri": "https://example.com/pr/1"],
                as: Self.agent)
            #expect(link["uri"] == "https://example.com/pr/1")
            let reported = await s.call(
                "jct_get_audit_trail", ["entity_kind": "Artifact", "entity_id": .string(try #require(doc["artifact_id"]?.stringValue))], as: Self.reader)
            let created = try #require(reported["entries"]?.arrayValue)
            #expect(created.map { $0["action"] } == ["created"], "one row for the reported artifact: \(created)")
            #expect(created.first?["actor_id"] == "agent-7")
            #expect(created.first?["note"] == "Artifact reported via MCP: ../../RELEASE.md")
            #expect(error(await s.call("jct_report_artifact", ["task_id": .string(taskId), "title": "x", "artifact_type": "pdf", "content": "x"], as: Self.agent)) == "INVALID_ARTIFACT_TYPE")
            #expect(error(await s.call("jct_report_artifact", ["task_id": .string(taskId), "title": "x", "artifact_type": "doc", "content": "x"], as: Self.other)) == "NO_ACTIVE_CLAIM", "only the claimant reports")
            #expect(error(await s.call("jct_complete_task", ["task_id": .string(taskId), "success": true, "summary": "x"], as: Self.other)) == "NO_ACTIVE_CLAIM", "only the claimant completes")

            let completed = await s.call(
                "jct_complete_task", ["task_id": .string(taskId), "success": true, "summary": "Wrote RELEASE.md", "outputs": #"{"files":1}"#],
                as: Self.agent)
            #expect(completed["success"] == true, "\(completed)")
            #expect(completed["task_status"] == "completed")
            #expect(completed["run_status"] == "under_review")
            let packId = try #require(completed["evidence_pack"]?["id"]?.stringValue)
            let outputs = try #require(try await s.database.read { try await $0.runs.get(runId) }).outputs.artifacts.map(\.id)
            for reported in [doc, link] {
                #expect(outputs.contains(try #require(reported["artifact_id"]?.stringValue)), "the reported artifacts are the Run's outputs")
            }
            #expect(error(await s.call("jct_complete_task", ["task_id": .string(taskId), "success": true, "summary": "again"], as: Self.agent)) == "TASK_NOT_RUNNING", "never twice")

            let manifest = try JSONParser.parse(String(contentsOf: s.traceRoot.appendingPathComponent(runId).appendingPathComponent("manifest.json"), encoding: .utf8))
            #expect(manifest["status"] == "completed")
            #expect(manifest["result"]?["outputs"]?["files"] == 1)
            let artifacts = try await s.database.read { try await $0.artifacts.list(forRun: runId) }
            #expect(artifacts.filter { $0.title == "../../RELEASE.md" }.count == 1, "a reported file is recorded once")
            #expect(artifacts.contains { $0.type == .trace }, "the trace folder, as for a worker's run")

            let gotRun = await s.call("jct_get_run", ["run_id": .string(runId)], as: Self.reader)
            #expect(gotRun["run"]?["evidence_pack"]?["id"]?.stringValue == packId)
            #expect(await s.call("jct_get_evidence", ["run_id": .string(runId)], as: Self.reader)["evidence_pack"]?["id"]?.stringValue == packId)
            #expect(await s.call("jct_get_evidence", ["run_id": .string(packId)], as: Self.reader)["evidence_pack"]?["id"]?.stringValue == packId)
            let pending = await s.call("jct_list_pending_reviews", as: Self.reader)
            #expect(pending["pending_reviews"]?.arrayValue?.first?["evidence_pack_id"]?.stringValue == packId, "\(pending)")

            #expect(error(await s.call("jct_submit_review", ["evidence_pack_id": .string(packId), "decision": "ok", "reason": "x"], as: Self.reviewer)) == "INVALID_DECISION")
            let longName = await s.call(
                "jct_submit_review",
                ["evidence_pack_id": .string(packId), "decision": "approved", "reason": "x", "reviewer_name": .string(String(repeating: "r", count: 300))],
                as: Self.reviewer)
            #expect(error(longName) == "INVALID_PARAMETERS" && longName["error"]?["message"]?.stringValue?.contains("reviewer.display") == true, "\(longName)")
            let reviewed = await s.call(
                "jct_submit_review", ["evidence_pack_id": .string(packId), "decision": "approved", "reason": "Looks right"], as: Self.reviewer)
            #expect(reviewed["success"] == true, "\(reviewed)")
            #expect(try await s.database.read { try await $0.runs.get(runId) }?.status == .done)

            let trail = await s.call("jct_get_audit_trail", ["entity_kind": "Task", "entity_id": .string(taskId)], as: Self.reader)
            let actors = Set((trail["entries"]?.arrayValue ?? []).compactMap { $0["actor_id"]?.stringValue })
            #expect(actors.contains("agent-7"), "the key's name is the actor: \(actors)")
            #expect(!actors.contains("claude-code"))
        }
    }

    @Test(
        "past TOWER_ARTIFACT_LIMIT the files an agent leaves in its artifacts folder stay there without Artifacts, as a worker's; reported ones do not count",
        arguments: Dialect.allCases)
    func artifactLimit(_ dialect: Dialect) async throws {
        var configuration = testConfiguration
        configuration.artifactLimit = 2
        try await withTools(dialect, configuration: configuration) { s in
            let taskId = try await s.enqueue("Build the site")
            let claimed = await s.call("jct_claim_task", ["task_id": .string(taskId)], as: Self.agent)
            let runId = try #require(claimed["run_id"]?.stringValue, "\(claimed)")
            let reported = await s.call(
                "jct_report_artifact", ["task_id": .string(taskId), "title": "Summary", "artifact_type": "doc", "content": "done"], as: Self.agent)
            #expect(reported["success"] == true, "\(reported)")
            // An agent on the same machine writes into the folder of its `trace_uri` itself.
            let traceURI = try #require(claimed["trace_uri"]?.stringValue)
            let outputs = try #require(URL(string: traceURI)).appendingPathComponent("artifacts")
            for name in ["d.html", "a.html", "c.html", "b.html"] { try Data(name.utf8).write(to: outputs.appendingPathComponent(name)) }

            let completed = await s.call("jct_complete_task", ["task_id": .string(taskId), "success": true, "summary": "Built"], as: Self.agent)
            #expect(completed["success"] == true, "\(completed)")
            let artifacts = try await s.database.read { try await $0.artifacts.list(forRun: runId) }
            let titles = Set(artifacts.filter { $0.type != .trace }.map(\.title))
            #expect(titles == ["Summary", "a.html", "b.html"], "the reported one and the first two files by path: \(titles)")
            #expect(artifacts.count(where: { $0.type == .trace }) == 1)
            for name in ["c.html", "d.html"] {
                #expect(FileManager.default.fileExists(atPath: outputs.appendingPathComponent(name).path), "\(name) stays in the folder")
            }
            let events = try String(contentsOf: outputs.deletingLastPathComponent().appendingPathComponent("events.jsonl"), encoding: .utf8)
            #expect(events.contains(#""artifacts_over_limit""#) && events.contains(#""not_recorded": 2"#), "\(events)")
        }
    }

    @Test("errors: unknown task, run and pack; missing arguments; scopes", arguments: Dialect.allCases)
    func errors(_ dialect: Dialect) async throws {
        try await withTools(dialect) { s in
            let missing = "00000000-0000-0000-0000-000000000000"
            #expect(error(await s.call("jct_claim_task", ["task_id": .string(missing)], as: Self.agent)) == "TASK_NOT_FOUND")
            #expect(error(await s.call("jct_get_task", ["task_id": "not-a-uuid"], as: Self.agent)) == "TASK_NOT_FOUND")
            #expect(error(await s.call("jct_get_run", ["run_id": "nothing"], as: Self.agent)) == "RUN_NOT_FOUND")
            #expect(error(await s.call("jct_get_evidence", ["run_id": "nothing"], as: Self.agent)) == "EVIDENCE_NOT_FOUND")
            #expect(error(await s.call("jct_submit_review", ["evidence_pack_id": "nothing", "decision": "approved", "reason": "x"], as: Self.reviewer)) == "EVIDENCE_NOT_FOUND")
            #expect(error(await s.call("jct_claim_task", [:], as: Self.agent)) == "INVALID_PARAMETERS")
            #expect(error(await s.call("jct_list_tasks", ["status": "sleeping"], as: Self.agent)) == "INVALID_PARAMETERS")
            #expect(error(await s.call("jct_enqueue_task", ["objective": "Do it well", "operation": "docs", "target_repo": "elsewhere/x"], as: Self.agent)) == "REPO_NOT_ALLOWED")
            #expect(error(await s.call("jct_enqueue_task", ["objective": "Do", "operation": "docs", "target_repo": "testorg/x"], as: Self.agent)) == "INVALID_PARAMETERS")
            let first = await s.call("jct_enqueue_task", ["objective": "Do it once", "operation": "docs", "target_repo": "testorg/x", "idempotency_key": "k1"], as: Self.agent)
            let second = await s.call("jct_enqueue_task", ["objective": "Do it once", "operation": "docs", "target_repo": "testorg/x", "idempotency_key": "k1"], as: Self.agent)
            #expect(error(second) == "IDEMPOTENCY_CONFLICT")
            #expect(second["error"]?["suggestion"]?.stringValue?.contains(first["task_id"]?.stringValue ?? "?") == true)
            #expect(error(await s.call("jct_claim_task", ["task_id": first["task_id"] ?? .null], as: Self.reader)) == "FORBIDDEN", "claiming needs agent")
            #expect(error(await s.call("jct_submit_review", ["evidence_pack_id": "x", "decision": "approved", "reason": "x"], as: Self.agent)) == "FORBIDDEN")
            #expect(error(await s.call("jct_enqueue_task", ["objective": "Do it well", "operation": "docs", "target_repo": "testorg/x"], as: Self.other)) == "FORBIDDEN")
            #expect(error(await s.call("jct_nothing", as: Self.agent)) == "INVALID_PARAMETERS")
        }
    }

    @Test("a lease renewed by calls holds; one that runs out is rescued, its Run failed, and the agent can no longer complete",
        arguments: Dialect.allCases)
    func leases(_ dialect: Dialect) async throws {
        try await withTools(dialect) { s in
            let enqueued = await s.call(
                "jct_enqueue_task", ["objective": "A short job", "operation": "docs", "target_repo": "testorg/x", "time_budget_seconds": 60],
                as: Self.agent)
            let taskId = try #require(enqueued["task_id"]?.stringValue)
            let runId = try #require(await s.call("jct_claim_task", ["task_id": .string(taskId)], as: Self.agent)["run_id"]?.stringValue)
            let rescuer = Actor(kind: .system, id: "rescuer")
            // Calls that name the task renew the lease: 50 s later, a heartbeat; 50 s after that, still held.
            s.clock.advance(seconds: 50)
            #expect(await s.call("jct_heartbeat", ["task_id": .string(taskId)], as: Self.agent)["cancel_requested"] == false)
            s.clock.advance(seconds: 50)
            #expect(try await s.tools.engine.rescue(by: rescuer, backoff: { _ in 0 }).isEmpty, "a live agent's task is not rescued")
            #expect(await s.call("jct_get_context", ["task_id": .string(taskId)], as: Self.agent)["success"] == true)
            // Then the agent vanishes.
            s.clock.advance(seconds: 61)
            let rescued = try await s.tools.engine.rescue(by: rescuer, backoff: { _ in 0 })
            #expect(rescued.map(\.id) == [taskId])
            #expect(try await s.database.read { try await $0.runs.get(runId) }?.status == .failed)
            #expect(error(await s.call("jct_complete_task", ["task_id": .string(taskId), "success": true, "summary": "late"], as: Self.agent)) == "TASK_NOT_RUNNING")
            #expect(error(await s.call("jct_heartbeat", ["task_id": .string(taskId)], as: Self.agent)) == "NO_ACTIVE_CLAIM")
        }
    }

    @Test("an agent's failure marked retryable queues the task again for a new attempt; an unmarked one is final", arguments: Dialect.allCases)
    func retryableFailure(_ dialect: Dialect) async throws {
        try await withTools(dialect) { s in
            let taskId = try await s.enqueue("Call a rate-limited API")
            let first = try #require(await s.call("jct_claim_task", ["task_id": .string(taskId)], as: Self.agent)["run_id"]?.stringValue)
            let failed = await s.call(
                "jct_complete_task",
                ["task_id": .string(taskId), "success": false, "summary": "429 from the model API", "retryable": true], as: Self.agent)
            #expect(failed["task_status"] == "queued" && failed["run_status"] == "failed", "\(failed)")
            let waiting = try #require(try await s.database.read { try await $0.tasks.get(taskId) })
            #expect(waiting.attempt == 1 && waiting.runAfter != nil, "the next attempt waits for the policy's delay")
            s.clock.advance(seconds: 3600)
            let second = try #require(await s.call("jct_claim_task", ["task_id": .string(taskId)], as: Self.agent)["run_id"]?.stringValue)
            #expect(second != first, "a new attempt, a new Run")
            let final = await s.call("jct_complete_task", ["task_id": .string(taskId), "success": false, "summary": "wrong objective"], as: Self.agent)
            #expect(final["task_status"] == "failed", "not marked retryable: final")
        }
    }

    @Test(
        "arguments the databases cannot store (U+0000, NaN, infinities) are refused naming the argument, before anything is written; content is a file's bytes",
        arguments: Dialect.allCases)
    func unstorableArguments(_ dialect: Dialect) async throws {
        try await withTools(dialect) { s in
            let enqueued = await s.call(
                "jct_enqueue_task", ["objective": "Nul \u{0} byte", "operation": "docs", "target_repo": "testorg/x"], as: Self.agent)
            #expect(error(enqueued) == "INVALID_PARAMETERS" && enqueued["error"]?["message"]?.stringValue?.hasPrefix("'objective' holds text with the NUL") == true, "\(enqueued)")
            let criteria = await s.call(
                "jct_enqueue_task", ["objective": "Fine objective", "operation": "docs", "target_repo": "testorg/x", "acceptance_criteria": ["ok", "n\u{0}"]],
                as: Self.agent)
            #expect(criteria["error"]?["message"]?.stringValue?.hasPrefix("'acceptance_criteria[1]' holds") == true, "\(criteria)")
            #expect(try await s.database.read { try await $0.tasks.countByStatus() }.values.reduce(0, +) == 0, "nothing enqueued")

            let taskId = try await s.enqueue("Report odd artifacts")
            let runId = try #require(await s.call("jct_claim_task", ["task_id": .string(taskId)], as: Self.agent)["run_id"]?.stringValue)
            let artifacts = s.traceRoot.appendingPathComponent(runId).appendingPathComponent("artifacts")
            let titled = await s.call(
                "jct_report_artifact", ["task_id": .string(taskId), "title": "a\u{0}b", "artifact_type": "doc", "content": "text"], as: Self.agent)
            #expect(error(titled) == "INVALID_PARAMETERS", "\(titled)")
            #expect(((try? FileManager.default.contentsOfDirectory(atPath: artifacts.path)) ?? []).isEmpty, "no file left without its Artifact")
            let binary = await s.call(
                "jct_report_artifact", ["task_id": .string(taskId), "title": "bytes", "artifact_type": "binary", "content": "a\u{0}b"], as: Self.agent)
            #expect(binary["size_bytes"] == 3, "content is written to a file as it is: \(binary)")

            for (outputs, field) in [(#"{"score": 1e400}"#, "score holds Infinity, which JSON has no number for"), (#"{"a": [NaN]}"#, "a[0] holds NaN"), (#"{"k": "\u0000"}"#, "k holds text with the NUL")] {
                let refused = await s.call(
                    "jct_complete_task", ["task_id": .string(taskId), "success": true, "summary": "done", "outputs": .string(outputs)], as: Self.agent)
                #expect(error(refused) == "INVALID_PARAMETERS", "\(refused)")
                #expect(refused["error"]?["message"]?.stringValue?.contains("'outputs' cannot be stored: \(field)") == true, "\(refused)")
            }
            let longType = await s.call(
                "jct_report_artifact",
                ["task_id": .string(taskId), "title": "notes", "artifact_type": "doc", "content": "text", "media_type": .string(String(repeating: "m", count: 200))],
                as: Self.agent)
            #expect(error(longType) == "INVALID_PARAMETERS" && longType["error"]?["message"]?.stringValue?.hasPrefix("media_type: String should have at most 128 characters") == true, "\(longType)")
            #expect(!FileManager.default.fileExists(atPath: artifacts.appendingPathComponent("notes").path), "no file left without its Artifact")
            let longLink = await s.call(
                "jct_report_artifact", ["task_id": .string(taskId), "title": "link", "artifact_type": "link", "uri": .string("https://x/" + String(repeating: "u", count: 2000))],
                as: Self.agent)
            #expect(error(longLink) == "INVALID_PARAMETERS", "\(longLink)")
            let summary = await s.call("jct_complete_task", ["task_id": .string(taskId), "success": true, "summary": "do\u{0}ne"], as: Self.agent)
            #expect(summary["error"]?["message"]?.stringValue?.hasPrefix("'summary' holds") == true, "\(summary)")
            #expect(try await s.database.read { try await $0.tasks.get(taskId) }?.status == .running, "the claim still holds")
            let completed = await s.call(
                "jct_complete_task", ["task_id": .string(taskId), "success": true, "summary": "done", "outputs": #"{"score": 1}"#], as: Self.agent)
            #expect(completed["task_status"] == "completed", "\(completed)")
        }
    }

    @Test("concurrent claims of one task: one agent gets it; concurrent completions of one attempt: one is written", arguments: Dialect.allCases)
    func concurrentClaimsAndCompletions(_ dialect: Dialect) async throws {
        try await withTools(dialect) { s in
            let taskId = try await s.enqueue("Write the changelog")
            let agents = (0..<6).map { AgentTools.Caller(principal: Principal(name: "agent-\($0)", scopes: [.agent, .read], isLegacyKey: false)) }
            let claims = await withTaskGroup(of: (Int, JSONValue).self) { group in
                for (index, agent) in agents.enumerated() {
                    group.addTask { (index, await s.call("jct_claim_task", ["task_id": .string(taskId)], as: agent)) }
                }
                return await group.reduce(into: [(Int, JSONValue)]()) { $0.append($1) }
            }
            let winners = claims.filter { $0.1["success"] == true }
            #expect(winners.count == 1, "\(claims.map { ($0.0, $0.1["success"] ?? .null, self.error($0.1) ?? "") })")
            #expect(claims.filter { $0.1["success"] != true }.allSatisfy { self.error($0.1) == "TASK_ALREADY_CLAIMED" })
            let winner = agents[try #require(winners.first?.0)]
            let runId = try #require(winners.first?.1["run_id"]?.stringValue)

            let completions = await withTaskGroup(of: JSONValue.self) { group in
                for index in 0..<4 {
                    group.addTask {
                        await s.call("jct_complete_task", ["task_id": .string(taskId), "success": true, "summary": .string("done \(index)")], as: winner)
                    }
                }
                return await group.reduce(into: [JSONValue]()) { $0.append($1) }
            }
            #expect(completions.filter { $0["success"] == true }.count == 1, "\(completions)")
            let packs = try await s.database.read { try await $0.evidencePacks.list(runId: runId, page: Page(limit: 10)) }
            #expect(packs.count == 1, "one evidence pack for the one attempt")
            let runs = try await s.database.read { try await $0.runs.list(RunRepository.Filter(issueId: nil), page: Page(limit: 10)) }
            #expect(runs.count == 1)
        }
    }

    @Test("an artifact reported while the agent completes (calls in parallel) is in the Run's outputs, or refused", arguments: Dialect.allCases)
    func reportBesideCompletion(_ dialect: Dialect) async throws {
        try await withTools(dialect) { s in
            for round in 0..<8 {
                let taskId = try await s.enqueue("Round \(round)")
                let runId = try #require(await s.call("jct_claim_task", ["task_id": .string(taskId)], as: Self.agent)["run_id"]?.stringValue)
                async let reported = s.call(
                    "jct_report_artifact", ["task_id": .string(taskId), "title": "notes", "artifact_type": "doc", "content": "# Notes\n"], as: Self.agent)
                async let completed = s.call("jct_complete_task", ["task_id": .string(taskId), "success": true, "summary": "done"], as: Self.agent)
                let (report, completion) = await (reported, completed)
                #expect(completion["success"] == true, "\(completion)")
                let run = try #require(try await s.database.read { try await $0.runs.get(runId) })
                if report["success"] == true {
                    let artifactId = try #require(report["artifact_id"]?.stringValue)
                    #expect(run.outputs.artifacts.contains { $0.id == artifactId }, "round \(round): a reported artifact is in the Run's outputs")
                    if !run.outputs.artifacts.contains(where: { $0.id == artifactId }) { return }
                } else {
                    #expect(error(report) == "NO_ACTIVE_CLAIM", "\(report)")
                }
            }
        }
    }
}
