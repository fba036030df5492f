import CWOM
import Foundation
import LegacyTasks
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
            let process = Process()
            process.executableURL = TowerBinary.url
            process.arguments = ["worker", "--concurrency", "1"]
            var environment = ProcessInfo.processInfo.environment
            environment["DATABASE_URL"] = url
            environment["TOWER_EXECUTOR"] = "command"
            environment["TOWER_EXECUTOR_COMMAND"] = "sleep 20"
            environment["WORKER_LEASE_SECONDS"] = "2"
            environment["WORKER_POLL_INTERVAL"] = "0.2"
            environment["JCT_TRACE_ROOT"] = env.traceRoot.path
            environment["LOG_LEVEL"] = "warning"
            process.environment = environment
            process.standardOutput = FileHandle.nullDevice
            try process.run()
            let pid = process.processIdentifier
            let claimed = try await env.waitFor(task.id, seconds: 60) { $0.status == .running }
            #expect(claimed.assignedTo?.contains("-\(pid)-") == true, "the subprocess claimed it")
            kill(pid, SIGKILL)
            process.waitUntilExit()
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
}
