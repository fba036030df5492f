import API
import ArgumentParser
import CWOM
import Foundation
import LegacyTasks
import Logging
import Storage
import TowerJSON
import Worker

struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure throughput and latency end to end with the stub executor.",
        discussion: """
            Starts a worker in this process, enqueues --tasks tasks from --clients concurrent clients, and waits until
            every task is finished with full CWOM bookkeeping (Run, Artifacts, trace folder, evidence pack, audit).
            --path http sends each enqueue through the HTTP handler of POST /tasks/enqueue (validation, policy,
            transaction; in process, no socket); --path storage calls the enqueue transaction directly. Then it
            measures enqueue-to-start latency on an idle worker with one task at a time. Use a throwaway database:
            the default is a new SQLite file in a temporary folder.
            """
    )

    @Option(help: "postgres://… or sqlite:///path.db (default: a new temporary SQLite file).")
    var databaseURL: String?

    @Option(help: "Tasks to run.") var tasks = 2000
    @Option(help: "Concurrent enqueuing clients.") var clients = 8
    @Option(help: "Worker slots.") var concurrency = 8
    @Option(help: "http or storage.") var path = "http"
    @Option(help: "Single-task samples for the idle latency.") var idleSamples = 50

    func run() async throws {
        guard path == "http" || path == "storage" else { throw ValidationError("--path must be http or storage") }
        var logger = Logger(label: "tower.bench")
        logger.logLevel = .error
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("tower-bench-\(ULID.make())")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: scratch) }
        let location = try DatabaseLocation(url: databaseURL ?? scratch.appendingPathComponent("bench.db").path)
        let db = try await Database.open(location, poolSize: concurrency + clients + 4, requireCurrentSchema: false, logger: logger)
        try await db.migrator(logger: logger).migrate()
        let configuration = WorkerConfiguration(
            concurrency: concurrency, pollInterval: 1, traceRoot: scratch.appendingPathComponent("runs"))
        let worker = BridgeWorker(database: db, configuration: configuration, logger: logger)
        let running = Task { try await worker.run() }
        let api = TowerAPI(
            database: db, configuration: APIConfiguration(policy: PolicyConfig(allowedRepoPrefixes: ["bench/"])), logger: logger,
            engine: worker.engine)

        print("tower bench: \(tasks) tasks, \(clients) clients, \(concurrency) worker slots, \(path) path, \(location)")
        let start = Date()
        var ids: [String] = []
        try await withThrowingTaskGroup(of: [String].self) { group in
            for client in 0..<clients {
                let share = tasks / clients + (client < tasks % clients ? 1 : 0)
                group.addTask {
                    var mine: [String] = []
                    for n in 0..<share { mine.append(try await enqueue(api: api, db: db, worker: worker, n: n, client: client)) }
                    return mine
                }
            }
            for try await batch in group { ids += batch }
        }
        let enqueued = Date()
        try await waitUntilFinished(db, count: ids.count)
        let finished = Date()
        let latencies = try await startLatencies(db)

        // Idle latency: one task at a time on an idle worker.
        var idle: [Double] = []
        for n in 0..<idleSamples {
            let id = try await enqueue(api: api, db: db, worker: worker, n: n, client: 999)
            while true {
                if let task = try await db.read({ try await $0.tasks.get(id) }), task.status.isFinished,
                    let queued = task.queuedAt, let started = task.startedAt
                {
                    idle.append(started.seconds(since: queued))
                    break
                }
                try await Task.sleep(for: .milliseconds(1))
            }
        }
        await worker.shutdown()
        _ = try? await running.value
        await db.close()

        let enqueueSeconds = enqueued.timeIntervalSince(start)
        let totalSeconds = finished.timeIntervalSince(start)
        func ms(_ s: Double) -> String { String(format: "%.2f ms", s * 1000) }
        print("")
        print(String(format: "enqueue rate:            %8.0f tasks/s  (%d tasks in %.2f s)", Double(ids.count) / enqueueSeconds, ids.count, enqueueSeconds))
        print(String(format: "end to end throughput:   %8.0f tasks/s  (enqueue to last completion, %.2f s)", Double(ids.count) / totalSeconds, totalSeconds))
        print("enqueue-to-start, loaded: p50 \(ms(percentile(latencies, 0.5)))  p99 \(ms(percentile(latencies, 0.99)))")
        print("enqueue-to-start, idle:   p50 \(ms(percentile(idle, 0.5)))  p99 \(ms(percentile(idle, 0.99)))  (\(idle.count) samples)")
    }

    func enqueue(api: TowerAPI, db: Database, worker: BridgeWorker, n: Int, client: Int) async throws -> String {
        let objective = "Benchmark task \(client)-\(n)"
        if path == "http" {
            let body: JSONValue = [
                "requested_by": ["kind": "system", "id": "bench"], "objective": .string(objective), "operation": "ops",
                "target": ["repo": "bench/repo"],
            ]
            let response = await api.respond(
                APIRequest(method: "POST", path: "/tasks/enqueue", query: nil, headers: [("content-type", "application/json")], body: body.bytes()))
            guard response.status == 201, let id = try JSONParser.parse(bytes: response.body)["task_id"]?.stringValue else {
                throw CommandError("enqueue failed with \(response.status): \(String(decoding: response.body, as: UTF8.self))")
            }
            return id
        }
        let request = TaskRequest(
            requestedBy: Requester(kind: .system, id: "bench"), objective: objective, operation: .ops,
            target: TaskTarget(repo: "bench/repo"))
        let id = UUID().uuidString.lowercased()
        _ = try await worker.engine.enqueue(request, id: id, traceId: UUID().uuidString.lowercased(), createCWOM: true)
        return id
    }

    func waitUntilFinished(_ db: Database, count: Int) async throws {
        while true {
            let counts = try await db.read { try await $0.tasks.countByStatus() }
            let done = counts.filter { TaskStatus(rawValue: $0.key)?.isFinished == true }.values.reduce(0, +)
            if done >= count { return }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    func startLatencies(_ db: Database) async throws -> [Double] {
        try await db.read { store in
            try await store.tasks.list(page: Page(limit: 1_000_000)).compactMap { task in
                guard let queued = task.queuedAt, let started = task.startedAt else { return nil }
                return started.seconds(since: queued)
            }
        }
    }

    func percentile(_ values: [Double], _ p: Double) -> Double {
        guard !values.isEmpty else { return 0 }
        let sorted = values.sorted()
        return sorted[min(sorted.count - 1, Int((Double(sorted.count - 1) * p).rounded()))]
    }
}
