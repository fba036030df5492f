import API
import CWOM
import Foundation
import LegacyTasks
import Storage
import Testing
import TowerJSON
import TowerTestSupport
import Worker

/// A worker running in this process against a test database, with a trace root of its own.
final class RunningWorker: Sendable {
    let worker: BridgeWorker
    let task: Task<Void, any Error>

    /// `executor`: where the worker's code prefers to run (a `tower worker` process runs it on
    /// NIO's event loops); none by default.
    init(_ worker: BridgeWorker, on executor: (any _Concurrency.TaskExecutor)? = nil) {
        self.worker = worker
        self.task = Task(executorPreference: executor) { try await worker.run() }
    }

    /// Graceful shutdown; returns when the worker has stopped.
    func stop() async throws {
        await worker.shutdown()
        try await task.value
    }
}

struct WorkerEnvironment: Sendable {
    let database: Database
    let dialect: Dialect
    let traceRoot: URL
    /// One engine for the test and every worker it starts, so that the test hears their events.
    let engine: LifecycleEngine

    func configuration(
        executors: ExecutorRegistry = ExecutorRegistry(), concurrency: Int = 2, lease: Double = 30, grace: Double = 5,
        autoApprove: Bool = false, keepWorkspaces: Bool = false
    ) -> WorkerConfiguration {
        WorkerConfiguration(
            concurrency: concurrency, pollInterval: 0.2, leaseSeconds: lease, heartbeatSeconds: 0.2, rescueSeconds: 0.3,
            gracePeriodSeconds: grace, retry: Self.retry, traceRoot: traceRoot, keepWorkspaces: keepWorkspaces,
            executors: executors, reviewAutoApprove: autoApprove)
    }

    /// Short delays, so that retried and rescued tasks come back at once.
    static let retry = RetryPolicy(baseDelay: 0.1, maxDelay: 0.5)

    var workspaceRoot: URL { traceRoot.deletingLastPathComponent().appendingPathComponent("workspaces", isDirectory: true) }

    /// A worker on this environment's database, or on `other` (the same data through another
    /// driver or pool) with an engine of its own that shares this one's events and retry policy.
    func start(_ configuration: WorkerConfiguration, on other: Database? = nil, executor: (any _Concurrency.TaskExecutor)? = nil) -> RunningWorker {
        var database = self.database
        var workerEngine = engine
        if let other {
            database = other
            workerEngine = LifecycleEngine(database: other, events: engine.events, retry: Self.retry)
        }
        return RunningWorker(
            BridgeWorker(database: database, configuration: configuration, logger: quietLogger("tower.worker"), engine: workerEngine),
            on: executor)
    }

    /// Inserts a queued task directly (as the legacy service would), optionally with CWOM.
    @discardableResult
    func enqueue(objective: String = "Update the docs", budget: Int = 900, allowNetwork: Bool = false,
        allowSecrets: Bool = false, createCWOM: Bool = true) async throws -> TaskRecord
    {
        let request = TaskRequest(
            requestedBy: Requester(kind: .human, id: "alice"), objective: objective, operation: .docs,
            target: TaskTarget(repo: "testorg/docs"),
            constraints: TaskConstraints(timeBudgetSeconds: budget, allowNetwork: allowNetwork, allowSecrets: allowSecrets))
        let outcome = try await engine.enqueue(
            request, id: UUID().uuidString.lowercased(), traceId: UUID().uuidString.lowercased(), createCWOM: createCWOM)
        guard case .created(let created) = outcome else { throw WorkerTestError("enqueue failed") }
        return created.task
    }

    func task(_ id: String) async throws -> TaskRecord? {
        try await database.read { store in try await store.tasks.get(id) }
    }

    /// Waits until `condition` holds for the task: the task is read again at every engine event
    /// about it (no polling), and the wait gives up after `seconds`. `events` are those of the
    /// engine that changes it, when not this environment's.
    func waitFor(_ id: String, seconds: Double = 60, on events: LifecycleEvents? = nil,
        _ condition: @escaping @Sendable (TaskRecord) -> Bool) async throws -> TaskRecord
    {
        let found = try await first(seconds: seconds, on: events, after: { $0.taskId == id }) {
            try await self.task(id).flatMap { condition($0) ? $0 : nil }
        }
        guard let found else {
            throw WorkerTestError("task \(id) did not reach the expected state in \(seconds)s: \(String(describing: try await task(id)?.status))")
        }
        return found
    }

    /// Waits until `condition` holds: checked now and again after each event of this
    /// environment's engine (no polling), for at most `seconds`.
    func when(_ what: String, seconds: Double = 60, _ condition: @escaping @Sendable () async throws -> Bool) async throws {
        guard try await first(seconds: seconds, { try await condition() ? true : nil }) == true else {
            throw WorkerTestError("\(what): not within \(seconds) s")
        }
    }

    /// The first value `probe` gives: asked now, then again after each engine event that
    /// `relevant` admits, for at most `seconds` (nil then). Subscribed before the first ask, so
    /// that no change between the two goes unheard.
    func first<T: Sendable>(seconds: Double, on events: LifecycleEvents? = nil,
        after relevant: @escaping @Sendable (LifecycleEvent) -> Bool = { _ in true },
        _ probe: @escaping @Sendable () async throws -> T?) async throws -> T?
    {
        let stream = (events ?? engine.events).subscribe()
        if let value = try await probe() { return value }
        return try await withDeadline(seconds: seconds) {
            for await event in stream where relevant(event) {
                if let value = try await probe() { return value }
            }
            return nil
        }
    }

    func finished(_ id: String, seconds: Double = 60) async throws -> TaskRecord {
        try await waitFor(id, seconds: seconds) { $0.status.isFinished }
    }
}

struct WorkerTestError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// A worker environment on a fresh database, or (`legacyLayout`) on a database that the legacy
/// service created (the fixture of its last migration), adopted by `tower migrate`.
func withWorkerEnvironment(_ dialect: Dialect, legacyLayout: Bool = false, _ body: (WorkerEnvironment) async throws -> Void)
    async throws
{
    // Trace folders in runs/, workspaces beside them in workspaces/ (the default layout).
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("tower-worker-\(ULID.make())")
    let root = folder.appendingPathComponent("runs", isDirectory: true)
    defer { try? FileManager.default.removeItem(at: folder) }
    try await withDatabase(dialect, migrate: !legacyLayout) { database, test in
        if legacyLayout {
            let fixture = testsFolder.appendingPathComponent("StorageTests/Fixtures/legacy-\(dialect.rawValue).sql")
            try await test.runScript(try String(contentsOf: fixture, encoding: .utf8), on: database)
            let outcome = try await database.migrator().migrate()
            #expect(outcome.first?.state == .adopted)
        }
        try await body(
            WorkerEnvironment(
                database: database, dialect: dialect, traceRoot: root,
                engine: LifecycleEngine(database: database, retry: WorkerEnvironment.retry)))
    }
}
