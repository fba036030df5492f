import CWOM
import Foundation
import LegacyTasks
import Spawn
import Storage
import Testing
import TowerJSON
import TowerTestSupport
import Worker

@Suite("Crashes")
struct CrashTests {
    @Test("kill -9 of a worker process mid-task: another worker rescues and completes the task, the lost run fails",
        arguments: Dialect.allCases)
    func killNine(_ dialect: Dialect) async throws {
        try #require(TowerBinary.isBuilt, "build tower first (scripts/test does)")
        try await withWorkerEnvironment(dialect) { env in
            let task = try await env.enqueue(objective: "Survive a crash")
            let url: String
            switch env.database.location {
            case .sqlite(let path): url = path
            case .postgres(let postgres): url = postgres
            case nil: throw WorkerTestError("no location")
            }
            let log = try LogFile(FileManager.default.temporaryDirectory.appendingPathComponent("worker-\(ULID.make()).log"))
            defer { try? FileManager.default.removeItem(at: log.url) }
            // The run must outlast the time between its start and the kill: 20 s was not enough
            // once (the whole suite, both cores busy: the first worker completed the task before
            // its kill). The orphaned `sleep` ends on its own.
            let process = try TowerBinary.start(
                ["worker", "--concurrency", "1"],
                environment: [
                    "DATABASE_URL": url, "TOWER_EXECUTOR": "command", "TOWER_EXECUTOR_COMMAND": "sleep 120",
                    "WORKER_LEASE_SECONDS": "2", "WORKER_POLL_INTERVAL": "0.2", "JCT_TRACE_ROOT": env.traceRoot.path,
                    "LOG_LEVEL": "info",
                ], stderr: log.url)
            // The subprocess logs the run's start once its claim is committed.
            try await log.require("the subprocess starts the task's run") { $0.contains("run started") && $0.contains(task.id) }
            let claimed = try #require(try await env.task(task.id))
            #expect(claimed.status == .running)
            #expect(claimed.assignedTo?.contains("-\(process.pid)-") == true, "the subprocess claimed it")
            process.send(SIGKILL)
            _ = await process.wait()
            let lostRunId = try #require(claimed.currentRunId)

            let survivor = env.start(env.configuration())
            let done = try await env.finished(task.id, seconds: 60)
            try await survivor.stop()
            #expect(done.status == .completed)
            #expect(done.attempt == 2)
            #expect(done.assignedTo == survivor.worker.workerId)
            let (lost, runs) = try await env.database.read { store in
                (try await store.runs.get(lostRunId), try await store.runs.list(.init(issueId: done.cwomIssueId)))
            }
            #expect(lost?.status == .failed)
            #expect(lost?.failure?.category == .runtime)
            #expect(lost?.failure?.message.contains("worker lost") == true)
            #expect(runs.count == 2, "every attempt is a new run")
            #expect(runs.filter { $0.status == .underReview || $0.status == .done }.count == 1, "done once")
        }
    }

    @Test("PostgreSQL drops every connection of a worker, three times mid-run: each task completes exactly once, none stays running")
    func connectionsDropped() async throws {
        try await withWorkerEnvironment(.postgres) { env in
            guard case .postgres(let url)? = env.database.location else { throw WorkerTestError("no PostgreSQL URL") }
            // The worker's connections carry a name of their own, so that only they are dropped.
            let name = "tower-test-" + ULID.make().lowercased()
            let workerDatabase = try await Database.open(
                .postgres(url: url + "&application_name=\(name)&query_timeout=3"), poolSize: 4, requireCurrentSchema: false)
            var ids: [String] = []
            for n in 0..<40 { ids.append(try await env.enqueue(objective: "Survive dropped connections \(n)").id) }
            let executor = try CommandExecutor(commandLine: "sleep 0.2")
            let worker = env.start(
                env.configuration(executors: ExecutorRegistry(fallback: executor), concurrency: 4, lease: 3), on: workerDatabase)
            var dropped = 0
            let finishedCount: @Sendable () async throws -> Int = {
                let counts = try await env.database.read { try await $0.tasks.countByStatus() }
                return counts.filter { TaskStatus(rawValue: $0.key)?.isFinished == true }.values.reduce(0, +)
            }
            var finishedBefore = 0
            for round in 0..<3 {
                // Each drop hits a worker that is running tasks: the first one finished, or one
                // more since the last drop (the worker came back).
                let before = finishedBefore
                try await env.when("a task finished before drop \(round + 1)") { try await finishedCount() > before }
                finishedBefore = try await finishedCount()
                dropped += try await env.database.read { store in
                    try await store.session.query(
                        "SELECT pg_terminate_backend(pid) AS done FROM pg_stat_activity WHERE application_name = $1", [.text(name)]
                    ).count
                }
            }
            #expect(dropped > 0, "there were connections to drop")
            do {
                for id in ids { _ = try await env.finished(id, seconds: 120) }
            } catch {
                // What the worker's connections were doing: a task that never leaves the queue
                // is either not claimed at all or locked by a transaction that never ends.
                let activity = try? await env.database.read { store in
                    try await store.session.query(
                        """
                        SELECT pid, state, (now() - state_change)::text AS for, left(query, 100) AS query FROM pg_stat_activity
                        WHERE application_name = $1
                        """, [.text(name)])
                }
                let inUse = (workerDatabase.driver as? PostgresDriver)?.sessionsInUse ?? -1
                Issue.record("the worker's connections (\(inUse) leased): \(activity.map { "\($0)" } ?? "unknown")")
                throw error
            }
            try await worker.stop()
            await workerDatabase.close()

            let (tasks, runs) = try await env.database.read { store in
                (try await store.tasks.list(page: Page(limit: 1000)), try await store.runs.list(page: Page(limit: 1000)))
            }
            #expect(tasks.count == 40)
            #expect(tasks.allSatisfy { $0.status == .completed }, "\(tasks.filter { $0.status != .completed }.map { ($0.id, $0.status, $0.error ?? "") })")
            let succeeded = runs.filter { $0.status == .underReview }
            #expect(succeeded.count == 40, "one successful run per task")
            #expect(Set(succeeded.compactMap { $0.meta["task_id"]?.stringValue }) == Set(ids), "done once each")
            for run in runs where run.status != .underReview {
                #expect(run.status == .failed && run.failure?.category == .runtime, "a lost attempt fails: \(run.id) \(run.status)")
            }
        }
    }
}
