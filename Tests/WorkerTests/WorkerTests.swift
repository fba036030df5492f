import API
import CWOM
import Foundation
import LegacyTasks
import NIOCore
import NIOPosix
import Storage
import Synchronization
import Testing
import TowerJSON
import TowerTestSupport
import Worker

@Suite("The bridge worker")
struct WorkerTests {
    @Test("an HTTP enqueue ends completed, with its Run, Artifacts, evidence, audit rows and trace files", arguments: Dialect.allCases)
    func endToEnd(_ dialect: Dialect) async throws {
        try await withWorkerEnvironment(dialect) { env in
            let running = env.start(env.configuration())
            let api = TowerAPI(
                database: env.database, configuration: APIConfiguration(policy: PolicyConfig(allowedRepoPrefixes: ["testorg/"])),
                engine: running.worker.engine)
            let body: JSONValue = [
                "requested_by": ["kind": "human", "id": "alice"], "objective": "Update the docs", "operation": "docs",
                "target": ["repo": "TestOrg/Docs"], "evidence_requirements": ["output doc"],
            ]
            let response = await api.respond(
                APIRequest(method: "POST", path: "/tasks/enqueue", query: nil, headers: [("content-type", "application/json"), ("X-Trace-Id", "trace-e2e")], body: body.bytes()))
            #expect(response.status == 201)
            let created = try JSONParser.parse(bytes: response.body)
            let id = try #require(created["task_id"]?.stringValue)
            let task = try await env.finished(id)
            try await running.stop()

            #expect(task.status == .completed)
            #expect(task.startedAt != nil && task.completedAt != nil)
            #expect(task.assignedTo == running.worker.workerId)
            #expect(task.result == ["message": "Stub execution completed successfully", "artifact_path": "artifacts/output.md"])
            #expect(task.error == nil)
            #expect(task.attempt == 1)
            let runId = try #require(task.currentRunId)
            #expect(task.tracePath?.hasPrefix("file:///") == true)
            #expect(task.tracePath?.hasSuffix("/\(runId)") == true, "no trailing slash, as the legacy trace_path")

            let (run, issue, artifacts, packs, audit) = try await env.database.read { store in
                (
                    try await store.runs.get(runId), try await store.issues.get(task.cwomIssueId ?? ""),
                    try await store.artifacts.list(forRun: runId), try await store.evidencePacks.list(runId: runId),
                    try await store.audit.list(.init(traceId: "trace-e2e"), page: Page(limit: 100))
                )
            }
            let r = try #require(run)
            #expect(r.status == .underReview, "manual review is the default")
            #expect(r.mode == .system)
            #expect(r.executor.actor.actorId == running.worker.workerId)
            #expect(r.executor.runtime == "stub")
            #expect(r.header.traceId == "trace-e2e")
            #expect(r.inputs.contextPackets == issue?.contextPackets.map { Ref(kind: .contextPacket, id: $0.id) })
            #expect(r.inputs.constraintSnapshot?.id == issue?.constraints.first?.id)
            #expect(r.telemetry.startedAt != nil && r.telemetry.endedAt != nil && r.telemetry.durationS != nil)
            #expect(r.outputs.artifacts.count == artifacts.count)
            try r.validate()
            #expect(issue?.status == .underReview)
            #expect(issue?.runs.map(\.id) == [runId])
            let output = try #require(artifacts.first(where: { $0.type == .doc }))
            let folder = env.traceRoot.appendingPathComponent(runId)
            let outputFile = folder.appendingPathComponent("artifacts/output.md")
            #expect(output.uri == outputFile.absoluteURL.absoluteString)
            #expect(output.mediaType == "text/markdown")
            let data = try Data(contentsOf: outputFile)
            #expect(output.sizeBytes == data.count)
            #expect(output.digest == "sha256:" + TraceFile.sha256(of: data))
            let traceArtifact = try #require(artifacts.first(where: { $0.type == .trace }))
            #expect(traceArtifact.uri.hasSuffix("/\(runId)/"))
            // The trace digest covers a sorted manifest of (path, sha256, size) of every file.
            let entries = try TraceFile.scan(folder)
            let manifest = entries.map { "\($0.path)\t\($0.sha256)\t\($0.size)\n" }.joined()
            #expect(traceArtifact.digest == "sha256:" + TraceFile.sha256(of: Data(manifest.utf8)))
            #expect(Set(entries.map(\.path)).isSuperset(of: [
                "manifest.json", "events.jsonl", "trace.log", "context.json", "constraints.json", "artifacts/output.md",
                "evidence/verdict.json", "evidence/collected.json",
            ]))
            // context.json and constraints.json are the pinned objects exactly as the API shows them.
            let packetId = try #require(r.inputs.contextPackets.first?.id)
            let packet = try await env.database.read { store in try await store.contextPackets.get(packetId) }
            #expect(try JSONParser.parse(String(contentsOf: folder.appendingPathComponent("context.json"), encoding: .utf8)) == packet?.json)
            let manifestJSON = try JSONParser.parse(String(contentsOf: folder.appendingPathComponent("manifest.json"), encoding: .utf8))
            #expect(manifestJSON["status"] == "completed")
            let pack = try #require(packs.first)
            #expect(pack.verdict == .pass)
            #expect(pack.evaluatedBy.actorKind == .system)
            #expect(pack.evidenceCollected.first?.found == true)
            let actions = audit.map { "\($0.entityKind) \($0.action.rawValue) \($0.after?["status"]?.stringValue ?? "")" }
            #expect(actions.contains("Task status_changed running"))
            #expect(actions.contains("Task status_changed completed"))
            #expect(actions.contains("Run created running"))
            #expect(actions.contains("Run status_changed under_review"))
            #expect(actions.contains("Issue status_changed under_review"))
            #expect(actions.contains("EvidencePack created "))
            #expect(audit.allSatisfy { $0.traceId == "trace-e2e" })
        }
    }

    @Test("auto-approval moves run and issue to done with a review decision", arguments: Dialect.allCases)
    func autoApprove(_ dialect: Dialect) async throws {
        try await withWorkerEnvironment(dialect) { env in
            let task = try await env.enqueue()
            let running = env.start(env.configuration(autoApprove: true))
            let done = try await env.finished(task.id)
            try await running.stop()
            let (run, reviews) = try await env.database.read { store in
                (try await store.runs.get(done.currentRunId ?? ""), try await store.reviews.list(issueId: done.cwomIssueId))
            }
            #expect(run?.status == .done)
            #expect(reviews.first?.reviewer.actorId == "auto-approve")
            #expect(reviews.first?.decisionReason == "Auto-approved: verdict=pass")
        }
    }

    @Test("a task enqueued without CWOM objects gets them on claim", arguments: Dialect.allCases)
    func adaptOnClaim(_ dialect: Dialect) async throws {
        try await withWorkerEnvironment(dialect) { env in
            let task = try await env.enqueue(createCWOM: false)
            #expect(task.cwomIssueId == nil)
            let running = env.start(env.configuration())
            let done = try await env.finished(task.id)
            try await running.stop()
            let issueId = try #require(done.cwomIssueId)
            let issue = try await env.database.read { store in try await store.issues.get(issueId) }
            #expect(issue?.contextPackets.count == 1)
            #expect(issue?.status == .underReview)
        }
    }

    @Test("two workers and 200 tasks: each completes exactly once", arguments: Dialect.allCases)
    func exactlyOnce(_ dialect: Dialect) async throws {
        try await withWorkerEnvironment(dialect) { env in
            var ids: [String] = []
            for n in 0..<200 { ids.append(try await env.enqueue(objective: "Task number \(n)").id) }
            let first = env.start(env.configuration(concurrency: 4))
            let second = env.start(env.configuration(concurrency: 4))
            for id in ids { _ = try await env.finished(id, seconds: 120) }
            try await first.stop()
            try await second.stop()
            let (tasks, runs) = try await env.database.read { store in
                (try await store.tasks.list(page: Page(limit: 1000)), try await store.runs.list(page: Page(limit: 1000)))
            }
            #expect(tasks.count == 200)
            #expect(tasks.allSatisfy { $0.status == .completed && $0.attempt == 1 })
            #expect(runs.count == 200, "one run per task")
            #expect(Set(runs.compactMap { $0.meta["task_id"]?.stringValue }).count == 200)
            let workers = Set(tasks.compactMap(\.assignedTo))
            #expect(workers.isSubset(of: [first.worker.workerId, second.worker.workerId]))
        }
    }

    @Test("a task enqueued while a claim runs, after the claim's snapshot, starts at once, not after the poll interval")
    func wakeUpDuringAClaim() async throws {
        try await withWorkerEnvironment(.postgres) { env in
            let id = UUID().uuidString.lowercased()
            let worker = Mutex<BridgeWorker?>(nil)
            // On PostgreSQL the enqueue commits on another connection while the claim's
            // transaction, which found nothing, is still open; the worker hears of it at once.
            let interleaving = ClaimInterleaving(env.database.driver) {
                let request = TaskRequest(
                    requestedBy: Requester(kind: .human, id: "alice"), objective: "Enqueued while a claim runs", operation: .docs,
                    target: TaskTarget(repo: "testorg/docs"))
                _ = try await env.engine.enqueue(request, id: id, traceId: id, createCWOM: true)
                await worker.withLock { $0 }?.wakeUp()
            }
            let database = Database(driver: interleaving, location: env.database.location)
            var configuration = env.configuration(concurrency: 2)
            configuration.pollInterval = 3600  // only a wake-up can start another claim
            // An engine of its own: the worker hears only the wake-up above (no events, no LISTEN).
            let events = LifecycleEvents()
            let bridge = BridgeWorker(
                database: database, configuration: configuration, logger: quietLogger("tower.worker"),
                engine: LifecycleEngine(database: database, events: events, retry: WorkerEnvironment.retry))
            worker.withLock { $0 = bridge }
            let running = RunningWorker(bridge)
            let done = try await env.waitFor(id, seconds: 60, on: events) { $0.status.isFinished }
            try await running.stop()
            #expect(done.status == .completed)
        }
    }

    @Test("a slot is free once its execution ends: the next task starts while the last one's completion waits to commit")
    func slotFreeWhileRecording() async throws {
        // PostgreSQL, where the test can hold back one completion (by locking its task row) while
        // claims go on; the worker's logic is the same on both databases.
        try await withWorkerEnvironment(.postgres) { env in
            let gate = FirstRunGate()
            let worker = env.start(env.configuration(executors: ExecutorRegistry(fallback: GatedExecutor(gate: gate)), concurrency: 1))
            let first = try await env.enqueue(objective: "Held at its commit")
            #expect(await gate.firstArrival() == first.id)
            // Lock the first task's row, on a connection of its own (not one of the worker's pool,
            // whose heartbeat and completer now wait for it): its completion waits for this
            // transaction to end.
            let lockDriver = try await #require(env.database.location).open(poolSize: 1)
            let (locked, lockedContinuation) = AsyncStream<Void>.makeStream()
            let (release, releaseContinuation) = AsyncStream<Void>.makeStream()
            defer { releaseContinuation.finish() }  // whatever happens, the lock goes
            let holder = Task {
                try await lockDriver.write { session in
                    _ = try await session.query("SELECT id FROM tasks WHERE id = $1 FOR UPDATE", [.text(first.id)])
                    lockedContinuation.yield()
                    for await _ in release { break }
                }
            }
            for await _ in locked { break }
            let second = try await env.enqueue(objective: "Claimed while the first one is recorded")
            await gate.open()
            // With one slot, the second task can start only if the first's slot was freed when its
            // execution ended, before its completion committed.
            let started = try await env.waitFor(second.id, seconds: 30) { $0.status == .running }
            #expect(started.attempt == 1)
            #expect(try await env.task(first.id)?.status == .running, "the first task's completion has not committed")
            releaseContinuation.yield()
            try await holder.value
            await lockDriver.close()
            #expect(try await env.finished(first.id).status == .completed)
            #expect(try await env.finished(second.id).status == .completed)
            try await worker.stop()
        }
    }

    @Test("a worker that finds the database unreachable when it starts keeps running and does its work once it is back",
        arguments: Dialect.allCases)
    func unreachableAtStart(_ dialect: Dialect) async throws {
        try await withWorkerEnvironment(dialect) { env in
            let task = try await env.enqueue(objective: "Run after a bad start")
            // The worker's first write (its start record) fails as a dropped connection would.
            let database = Database(driver: UnreachableOnce(env.database.driver), location: env.database.location)
            let worker = env.start(env.configuration(), on: database)
            let done = try await env.finished(task.id, seconds: 60)
            try await worker.stop()
            #expect(done.status == .completed)
        }
    }

    @Test("draining a backlog, a partly busy worker claims the slots freed together, not one claim per slot",
        arguments: Dialect.allCases)
    func claimGathersFreeSlots(_ dialect: Dialect) async throws {
        try await withWorkerEnvironment(dialect) { env in
            var ids: [String] = []
            for n in 0..<24 { ids.append(try await env.enqueue(objective: "Backlog task \(n)").id) }
            // A gather far longer than the test: only "half the slots are free" can start a claim
            // once the first claim filled every slot, so a claim for a single slot would be a bug.
            var configuration = env.configuration(concurrency: 4)
            configuration.claimGather = .seconds(3600)
            let worker = env.start(configuration)
            for id in ids { _ = try await env.finished(id, seconds: 120) }
            try await worker.stop()
            let tasks = try await env.database.read { store in try await store.tasks.list(page: Page(limit: 100)) }
            // One claim stamps its tasks with one started_at.
            let claims = Dictionary(grouping: tasks, by: { $0.startedAt?.microseconds ?? 0 }).sorted { $0.key < $1.key }.map(\.value.count)
            #expect(claims.first == 4, "the idle worker claims for every slot at once: \(claims)")
            #expect(claims.dropLast().allSatisfy { $0 >= 2 }, "every claim but the one that emptied the queue took two tasks or more: \(claims)")
            #expect(claims.reduce(0, +) == 24)
        }
    }

    @Test("tasks enqueued while two workers claim: queued_at ≤ started_at ≤ completed_at for every task",
        arguments: Dialect.allCases)
    func timestampsInOrder(_ dialect: Dialect) async throws {
        try await withWorkerEnvironment(dialect) { env in
            let first = env.start(env.configuration(concurrency: 16))
            let second = env.start(env.configuration(concurrency: 16))
            let ids = try await withThrowingTaskGroup(of: [String].self) { group in
                for client in 0..<4 {
                    group.addTask {
                        var ids: [String] = []
                        for n in 0..<40 { ids.append(try await env.enqueue(objective: "Client \(client) task \(n)").id) }
                        return ids
                    }
                }
                return try await group.reduce(into: []) { $0 += $1 }
            }
            for id in ids { _ = try await env.finished(id, seconds: 120) }
            try await first.stop()
            try await second.stop()
            let tasks = try await env.database.read { store in try await store.tasks.list(page: Page(limit: 1000)) }
            #expect(tasks.count == 160)
            for task in tasks {
                let queued = try #require(task.queuedAt)
                let started = try #require(task.startedAt)
                let completed = try #require(task.completedAt)
                #expect(queued <= started, "task \(task.id) started \(started.iso8601) before it was queued \(queued.iso8601)")
                #expect(started <= completed)
            }
        }
    }

    @Test("cancelling: a queued task at once, a running one within a heartbeat", arguments: Dialect.allCases)
    func cancellation(_ dialect: Dialect) async throws {
        try await withWorkerEnvironment(dialect) { env in
            let api = TowerAPI(database: env.database, configuration: APIConfiguration(policy: PolicyConfig(allowedRepoPrefixes: ["testorg/"])), logger: quietLogger("tower.api"))
            let queued = try await env.enqueue()
            let response = await api.respond(APIRequest(method: "POST", path: "/tasks/\(queued.id)/cancel", query: nil, headers: [], body: []))
            #expect(response.status == 200)
            #expect(try await env.task(queued.id)?.status == .cancelled)
            let again = await api.respond(APIRequest(method: "POST", path: "/tasks/\(queued.id)/cancel", query: nil, headers: [], body: []))
            #expect(again.status == 409)

            let slow = try await env.enqueue(objective: "Sleep for a long time")
            let executor = try CommandExecutor(commandLine: "sleep 60")
            let running = env.start(env.configuration(executors: ExecutorRegistry(fallback: executor)))
            _ = try await env.waitFor(slow.id) { $0.status == .running }
            let accepted = await api.respond(APIRequest(method: "POST", path: "/tasks/\(slow.id)/cancel", query: nil, headers: [], body: []))
            #expect(accepted.status == 202)
            let cancelled = try await env.finished(slow.id, seconds: 20)
            try await running.stop()
            #expect(cancelled.status == .cancelled)
            let run = try await env.database.read { store in try await store.runs.get(cancelled.currentRunId ?? "") }
            #expect(run?.status == .canceled)
            #expect(try await env.task(queued.id)?.status == .cancelled, "the queued one was never run")
        }
    }

    @Test("a Run set to canceled while its executor runs: the executor stops, Run canceled, task cancelled, audited as such",
        arguments: Dialect.allCases)
    func cancelThroughRun(_ dialect: Dialect) async throws {
        try await withWorkerEnvironment(dialect) { env in
            // The API has an engine of its own, as a separate `tower api` process would: the worker
            // learns of the cancellation at its next heartbeat.
            let api = TowerAPI(database: env.database, configuration: APIConfiguration(policy: PolicyConfig(allowedRepoPrefixes: ["testorg/"])), logger: quietLogger("tower.api"))
            let slow = try await env.enqueue(objective: "Sleep for a long time")
            let running = env.start(env.configuration(executors: ExecutorRegistry(fallback: try CommandExecutor(commandLine: "sleep 60"))))
            let claimed = try await env.waitFor(slow.id) { $0.status == .running }
            let runId = try #require(claimed.currentRunId)
            let other = await api.respond(APIRequest(method: "PATCH", path: "/cwom/runs/\(runId)", query: nil, headers: [("content-type", "application/json")], body: Array(#"{"status":"done"}"#.utf8)))
            #expect(other.status == 409, "only a cancel may change a Run a worker executes")
            #expect(try JSONParser.parse(bytes: other.body)["detail"]?["error"] == "OWNED_BY_WORKER")
            let patched = await api.respond(APIRequest(method: "PATCH", path: "/cwom/runs/\(runId)", query: nil, headers: [("content-type", "application/json")], body: Array(#"{"status":"canceled"}"#.utf8)))
            #expect(patched.status == 202)
            let cancelled = try await env.finished(slow.id, seconds: 30)
            try await running.stop()
            #expect(cancelled.status == .cancelled)
            let (run, issue, audit) = try await env.database.read { store in
                (
                    try await store.runs.get(runId), try await store.issues.get(cancelled.cwomIssueId ?? ""),
                    try await store.audit.list(.init(traceId: cancelled.traceId), page: Page(limit: 1000)).reversed()
                )
            }
            #expect(run?.status == .canceled)
            #expect(issue?.status == .canceled)
            let events = try String(contentsOf: env.traceRoot.appendingPathComponent("\(runId)/events.jsonl"), encoding: .utf8)
            #expect(events.contains("execution_cancelled"), "the executor was stopped")
            let moves = audit.filter { $0.action == .statusChanged }.map {
                "\($0.entityKind) \($0.before?["status"]?.stringValue ?? "") → \($0.after?["status"]?.stringValue ?? "")"
            }
            #expect(moves == [
                "Task pending → queued", "Task queued → running", "Issue planned → running", "Task running → cancelled",
                "Run running → canceled", "Issue running → canceled",
            ])
        }
    }

    @Test("with one engine for API and worker (tower serve), a cancel stops the executor without waiting for a heartbeat",
        arguments: Dialect.allCases)
    func cancelThroughSharedEngine(_ dialect: Dialect) async throws {
        try await withWorkerEnvironment(dialect) { env in
            var configuration = env.configuration(executors: ExecutorRegistry(fallback: try CommandExecutor(commandLine: "sleep 60")), lease: 7200)
            configuration.heartbeatSeconds = 3600  // no heartbeat will come: only the engine's event can stop it
            let running = env.start(configuration)
            let api = TowerAPI(database: env.database, configuration: APIConfiguration(policy: PolicyConfig(allowedRepoPrefixes: ["testorg/"])), logger: quietLogger("tower.api"), engine: env.engine)
            let slow = try await env.enqueue(objective: "Sleep for a long time")
            _ = try await env.waitFor(slow.id) { $0.status == .running }
            let accepted = await api.respond(APIRequest(method: "POST", path: "/tasks/\(slow.id)/cancel", query: nil, headers: [], body: []))
            #expect(accepted.status == 202)
            let cancelled = try await env.finished(slow.id, seconds: 30)
            try await running.stop()
            #expect(cancelled.status == .cancelled)
        }
    }

    @Test("a failed task is retried over HTTP: a new attempt on a new Run, the old Run untouched", arguments: Dialect.allCases)
    func retryOverHTTP(_ dialect: Dialect) async throws {
        try await withWorkerEnvironment(dialect) { env in
            let marker = env.traceRoot.deletingLastPathComponent().appendingPathComponent("first-attempt-\(ULID.make())")
            defer { try? FileManager.default.removeItem(at: marker) }
            // Fails the first time, succeeds the second.
            let executor = CommandExecutor(
                executable: "/bin/sh", arguments: ["-c", "test -f \(marker.path) || { touch \(marker.path); exit 1; }"])
            let running = env.start(env.configuration(executors: ExecutorRegistry(fallback: executor)))
            let api = TowerAPI(database: env.database, configuration: APIConfiguration(policy: PolicyConfig(allowedRepoPrefixes: ["testorg/"])), logger: quietLogger("tower.api"), engine: env.engine)
            let task = try await env.enqueue()
            let failed = try await env.finished(task.id)
            #expect(failed.status == .failed)
            let firstRun = try await env.database.read { store in try await store.runs.get(failed.currentRunId ?? "") }
            let retry = await api.respond(APIRequest(method: "POST", path: "/tasks/\(task.id)/retry", query: nil, headers: [], body: []))
            #expect(retry.status == 200)
            #expect(try JSONParser.parse(bytes: retry.body)["task"]?["status"] == "queued")
            let done = try await env.finished(task.id)
            #expect(done.status == .completed)
            #expect(done.attempt == 2)
            let again = await api.respond(APIRequest(method: "POST", path: "/tasks/\(task.id)/retry", query: nil, headers: [], body: []))
            #expect(again.status == 409, "the Issue waits for its review first")
            #expect(try JSONParser.parse(bytes: again.body)["detail"]?["current_status"] == "under_review")
            try await running.stop()
            let runs = try await env.database.read { store in try await store.runs.list(.init(issueId: done.cwomIssueId)) }
            #expect(runs.count == 2)
            #expect(runs.first { $0.id == firstRun?.id } == firstRun, "the old Run is untouched")
            #expect(runs.first { $0.id == done.currentRunId }?.status == .underReview)
            let missing = await api.respond(APIRequest(method: "POST", path: "/tasks/\(UUID().uuidString)/retry", query: nil, headers: [], body: []))
            #expect(missing.status == 404)
        }
    }

    @Test("a trace folder kept in memory is on disk only once the attempt ends, however it ends: here a shutdown's requeue")
    func inMemoryTraceReachesTheDisk() async throws {
        try await withWorkerEnvironment(.sqlite) { env in
            let task = try await env.enqueue(objective: "Wait until stopped")
            let (started, signal) = AsyncStream<Void>.makeStream()
            let executor = WaitingInMemoryExecutor(started: signal)
            let running = env.start(env.configuration(executors: ExecutorRegistry(fallback: executor), grace: 0.2))
            for await _ in started { break }
            let claimed = try #require(try await env.task(task.id))
            let folder = env.traceRoot.appendingPathComponent(try #require(claimed.currentRunId))
            #expect(!FileManager.default.fileExists(atPath: folder.path), "nothing on disk while it runs")

            try await running.stop()
            #expect(try await env.task(task.id)?.status == .queued)
            let log = try String(contentsOf: folder.appendingPathComponent("trace.log"), encoding: .utf8)
            #expect(log.contains("] Execution started\n"), "what RunRecorder wrote at the start")
            #expect(log.contains("] waiting\n"), "what the executor wrote")
            #expect(log.hasSuffix("] Execution stopped: the worker shut down; the task was requeued\n"))
            let files = try TraceFile.scan(folder).map(\.path)
            #expect(files == ["constraints.json", "context.json", "events.jsonl", "manifest.json", "trace.log"])
        }
    }

    @Test("on an event loop (as in `tower worker`): a run kept in memory stays on it, timed out by the loop's timer; a run on disk leaves it")
    func eventLoopPlacement() async throws {
        try await withWorkerEnvironment(.sqlite) { env in
            let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
            let loop = EventLoopTaskExecutor(group.next())

            // On disk: files of any size or a child process, never on the loop. A run placed on it
            // stops this test's debug build at its start (`TaskExecutor.checkPlacement`).
            let probe = LoopProbe()
            var running = env.start(env.configuration(executors: ExecutorRegistry(fallback: probe)), executor: loop)
            #expect(try await env.finished(try await env.enqueue(objective: "Probe").id).status == .completed)
            try await running.stop()
            #expect(probe.sawLoop.withLock { $0 } == [false], "the run on disk ran off the loop")

            // In memory: the time budget is a timer of the loop's (`Timers.after`), which stops the run.
            let task = try await env.enqueue(objective: "Wait until stopped")
            try await env.database.write { store in
                try await store.session.query("UPDATE tasks SET time_budget_seconds = 1 WHERE id = $1", [.text(task.id)])
            }
            let (started, signal) = AsyncStream<Void>.makeStream()
            running = env.start(env.configuration(executors: ExecutorRegistry(fallback: WaitingInMemoryExecutor(started: signal))), executor: loop)
            let timedOut = try await env.finished(task.id)
            try await running.stop()
            for await _ in started { break }
            #expect(timedOut.status == .failed)
            #expect(timedOut.error?.contains("timed out after 1s") == true)
            try await group.shutdownGracefully()
        }
    }

    @Test("a trace root that cannot be written fails the attempt as a worker error, whether the folder is kept in memory or not",
        arguments: [true, false])
    func unwritableTraceRoot(inMemory: Bool) async throws {
        try await withWorkerEnvironment(.sqlite) { env in
            let executor: any TaskExecutor = inMemory ? StubExecutor() : WriteThroughStub()
            #expect(executor.keepsTraceInMemory == inMemory)
            let running = env.start(env.configuration(executors: ExecutorRegistry(fallback: executor)))
            // The worker runs (a worker refuses to start on a trace root it cannot make) ...
            let first = try await env.finished(try await env.enqueue(objective: "Keeps a trace").id)
            #expect(first.status == .completed)
            // ... then a file takes the trace root's place: no run folder can be made under it.
            try FileManager.default.removeItem(at: env.traceRoot)
            try Data("not a folder".utf8).write(to: env.traceRoot)
            let task = try await env.enqueue(objective: "Cannot keep a trace")
            let failed = try await env.finished(task.id)
            try await running.stop()
            #expect(failed.status == .failed)
            // What, where and why, in words a person can act on.
            #expect(failed.error?.hasPrefix("Worker error: trace folder: cannot create the folder \(env.traceRoot.path)/") == true, "\(failed.error ?? "no error")")
            #expect(failed.error?.hasSuffix(": Not a directory") == true, "\(failed.error ?? "no error")")
            let run = try await env.database.read { store in try await store.runs.get(failed.currentRunId ?? "") }
            #expect(run?.status == .failed)
        }
    }

    @Test("graceful shutdown: running work past the grace period is stopped and requeued without counting an attempt",
        arguments: Dialect.allCases)
    func gracefulShutdown(_ dialect: Dialect) async throws {
        try await withWorkerEnvironment(dialect) { env in
            let slow = try await env.enqueue(objective: "Sleep for a long time")
            let executor = try CommandExecutor(commandLine: "sleep 60")
            let running = env.start(env.configuration(executors: ExecutorRegistry(fallback: executor), grace: 0.5))
            let claimed = try await env.waitFor(slow.id) { $0.status == .running }
            #expect(claimed.attempt == 1)
            try await running.stop()
            let requeued = try #require(try await env.task(slow.id))
            #expect(requeued.status == .queued)
            #expect(requeued.attempt == 0)
            let run = try await env.database.read { store in try await store.runs.get(claimed.currentRunId ?? "") }
            #expect(run?.status == .canceled)
            // Another worker picks it up and finishes it.
            let next = env.start(env.configuration())
            let done = try await env.finished(slow.id)
            try await next.stop()
            #expect(done.status == .completed)
            #expect(done.attempt == 1)
        }
    }

    @Test("a lease that expires is rescued: the lost run fails, the task runs again on a new run", arguments: Dialect.allCases)
    func rescue(_ dialect: Dialect) async throws {
        try await withWorkerEnvironment(dialect) { env in
            let task = try await env.enqueue()
            // Simulate a worker that claimed the task and vanished: a running row with an expired lease.
            let worker = BridgeWorker(database: env.database, configuration: env.configuration(lease: 0.01), logger: quietLogger("tower.worker"))
            _ = worker
            let past = Timestamp.now().adding(seconds: -60)
            try await env.database.write { store in
                try await store.session.query(
                    "UPDATE tasks SET status = 'running', attempt = 1, assigned_to = 'ghost-worker', started_at = $1, lease_expires_at = $1 WHERE id = $2",
                    [.timestamp(past), .text(task.id)])
            }
            let running = env.start(env.configuration())
            let done = try await env.finished(task.id)
            try await running.stop()
            #expect(done.status == .completed)
            #expect(done.attempt == 2)
            let audit = try await env.database.read { store in try await store.audit.list(.init(entityKind: "Task", entityId: task.id)) }
            #expect(audit.contains { $0.note == "Rescued: requeued for attempt 2" })
        }
    }

    @Test("after the last attempt a lost task fails for good", arguments: Dialect.allCases)
    func attemptsExhausted(_ dialect: Dialect) async throws {
        try await withWorkerEnvironment(dialect) { env in
            let task = try await env.enqueue()
            let past = Timestamp.now().adding(seconds: -60)
            try await env.database.write { store in
                try await store.session.query(
                    "UPDATE tasks SET status = 'running', attempt = 3, assigned_to = 'ghost', lease_expires_at = $1 WHERE id = $2",
                    [.timestamp(past), .text(task.id)])
            }
            let worker = BridgeWorker(database: env.database, configuration: env.configuration(), logger: quietLogger("tower.worker"))
            #expect(try await worker.rescueExpired() == 1)
            #expect(try await worker.rescueExpired() == 0, "rescue is fenced: nothing twice")
            let failed = try #require(try await env.task(task.id))
            #expect(failed.status == .failed)
            #expect(failed.error?.contains("gave up after 3 attempts") == true)
        }
    }
}

/// A driver that runs `hook` once, right after the first statement of a claim that found
/// nothing: a test's way to put an event inside a claim's transaction, after its snapshot.
final class ClaimInterleaving: DatabaseDriver {
    let base: any DatabaseDriver
    private let hook: Mutex<(@Sendable () async throws -> Void)?>

    init(_ base: any DatabaseDriver, hook: @escaping @Sendable () async throws -> Void) {
        self.base = base
        self.hook = Mutex(hook)
    }

    var dialect: SQLDialect { base.dialect }
    var sessionsInUse: Int { base.sessionsInUse }

    struct Session: DatabaseSession {
        let base: any DatabaseSession
        let driver: ClaimInterleaving
        var dialect: SQLDialect { base.dialect }
        func query(_ sql: String, _ binds: [SQLValue]) async throws(StorageError) -> [SQLRow] {
            let rows = try await base.query(sql, binds)
            if rows.isEmpty, LifecycleEngine.operation == "claim", let hook = driver.hook.withLock({ hook in defer { hook = nil }; return hook }) {
                do { try await hook() } catch { throw StorageError(.query, "the test's hook failed: \(error)") }
            }
            return rows
        }
    }

    func write<T: Sendable>(_ body: @Sendable (any DatabaseSession) async throws -> T) async throws -> T {
        try await base.write { session in try await body(Session(base: session, driver: self)) }
    }
    func read<T: Sendable>(_ body: @Sendable (any DatabaseSession) async throws -> T) async throws -> T {
        try await base.read { session in try await body(Session(base: session, driver: self)) }
    }
    func withSession<T: Sendable>(_ body: @Sendable (any DatabaseSession) async throws -> T) async throws -> T {
        try await base.withSession { session in try await body(Session(base: session, driver: self)) }
    }
    func close() async {}
}

/// A driver whose first write transaction fails as if PostgreSQL had dropped the connection.
final class UnreachableOnce: DatabaseDriver {
    let base: any DatabaseDriver
    private let failed = Mutex(false)

    init(_ base: any DatabaseDriver) { self.base = base }

    var dialect: SQLDialect { base.dialect }
    var sessionsInUse: Int { base.sessionsInUse }

    func write<T: Sendable>(_ body: @Sendable (any DatabaseSession) async throws -> T) async throws -> T {
        if failed.withLock({ failed in defer { failed = true }; return !failed }) {
            throw StorageError(.unreachable, "lost the connection to PostgreSQL (57P01: terminating connection due to administrator command)")
        }
        return try await base.write(body)
    }
    func read<T: Sendable>(_ body: @Sendable (any DatabaseSession) async throws -> T) async throws -> T { try await base.read(body) }
    func withSession<T: Sendable>(_ body: @Sendable (any DatabaseSession) async throws -> T) async throws -> T {
        try await base.withSession(body)
    }
    func close() async {}
}

/// Holds the first execution it sees until `open()`; every later one passes at once.
actor FirstRunGate {
    private var first: String?
    private var isOpen = false
    private var held: CheckedContinuation<Void, Never>?
    private var arrivalWaiters: [CheckedContinuation<String, Never>] = []

    func pass(_ taskId: String) async {
        guard first == nil else { return }
        first = taskId
        for waiter in arrivalWaiters { waiter.resume(returning: taskId) }
        arrivalWaiters = []
        if !isOpen { await withCheckedContinuation { held = $0 } }
    }

    /// The task of the first execution, once it has started.
    func firstArrival() async -> String {
        if let first { return first }
        return await withCheckedContinuation { arrivalWaiters.append($0) }
    }

    func open() {
        isOpen = true
        held?.resume()
        held = nil
    }
}

/// The stub's work with its trace folder written as it goes (the default of executors).
struct WriteThroughStub: TaskExecutor {
    let name = "stub-through"
    let version = "1"

    func execute(_ context: ExecutionContext) async -> ExecutionResult { await StubExecutor().execute(context) }
}

/// Writes its trace as it goes (the default) and records whether it ran on an event loop.
final class LoopProbe: TaskExecutor {
    let name = "probe"
    let version = "1"
    let sawLoop = Mutex<[Bool]>([])

    func execute(_ context: ExecutionContext) async -> ExecutionResult {
        sawLoop.withLock { $0.append(EventLoops.onLoop) }
        return ExecutionResult(outcome: .succeeded)
    }
}

/// Keeps its trace in memory, writes to it, says it started, and waits until it is stopped.
struct WaitingInMemoryExecutor: TaskExecutor {
    let name = "waiting"
    let version = "1"
    let started: AsyncStream<Void>.Continuation
    var keepsTraceInMemory: Bool { true }

    func execute(_ context: ExecutionContext) async -> ExecutionResult {
        context.trace.log("waiting")
        context.trace.event("waiting")
        started.yield()
        // A stream nobody feeds: its iteration ends when the worker cancels this execution.
        let (stopped, feed) = AsyncStream<Void>.makeStream()
        for await _ in stopped {}
        feed.finish()
        return ExecutionResult(outcome: .canceled)
    }
}

/// Succeeds at once, after its gate lets it pass.
struct GatedExecutor: TaskExecutor {
    let name = "gated"
    let version = "1"
    let gate: FirstRunGate

    func execute(_ context: ExecutionContext) async -> ExecutionResult {
        await gate.pass(context.task.id)
        return ExecutionResult(outcome: .succeeded)
    }
}
