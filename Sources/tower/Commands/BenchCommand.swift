import API
import ArgumentParser
import CWOM
import Foundation
import LegacyTasks
import Logging
import Spawn
import Storage
import TowerJSON
import Worker

struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure throughput and latency end to end with the stub executor.",
        discussion: """
            --mode mixed (default) starts a worker in this process, enqueues --tasks tasks from --clients concurrent \
            clients while it runs, and waits until every task is finished with full CWOM bookkeeping (Run, Artifacts, \
            trace folder, evidence pack, audit). --mode burn-down enqueues --tasks tasks first, then drains the backlog \
            with --workers separate `tower worker` processes of --concurrency slots each (how River and graphile-worker \
            publish their figures); with --backlog, that many more tasks wait behind them, and the figure is the drain \
            of the first --tasks off that deeper queue. --path http sends each enqueue through the HTTP handler of \
            POST /tasks/enqueue (validation, policy, transaction; in process, no socket); --path storage calls the \
            engine directly. \
            Every run prints the statements per task of intake, claim and completion (counted), and the idle \
            enqueue-to-start latency. --ceiling also writes the very rows of an enqueue, a claim and a completion with \
            plain multi-row SQL in batches of 32 (--ceiling-batch), without the application, and prints our figures as a share of it. \
            Use a throwaway database: the default is a new SQLite file in a temporary folder.
            """
    )

    @Option(help: "postgres://… or sqlite:///path.db (default: a new temporary SQLite file).")
    var databaseURL: String?

    @Option(help: "Tasks to run.") var tasks = 2000
    @Option(help: "Concurrent enqueuing clients.") var clients = 8
    @Option(help: "Worker slots.") var concurrency = 8
    @Option(help: "http or storage.") var path = "http"
    @Option(help: "Single-task samples for the idle latency.") var idleSamples = 50
    @Option(help: "Samples of the trace folder cost, each way (0: not measured).") var traceSamples = 200
    @Option(help: "mixed or burn-down.") var mode = "mixed"
    @Option(help: "burn-down: worker processes draining the backlog.") var workers = 2
    @Option(help: """
        burn-down: tasks enqueued behind the --tasks ones and left queued: the figure is the drain of the first \
        --tasks tasks off a queue this much deeper (a claim that sorts the whole queue slows with it).
        """)
    var backlog = 0
    @Option(help: "burn-down: the tower binary the workers run (default: this one), to compare builds.")
    var workerBinary: String?
    @Flag(help: """
        burn-down: the database gets the worker binary's own schema (its `tower migrate`) instead of this build's, \
        so a previous build is measured as it ran, without this build's indexes. Measures the burn-down only.
        """)
    var workerSchema = false
    @Flag(help: "Also measure the database's ceiling for our rows, and print our figures as a share of it.")
    var ceiling = false

    @Option(help: """
        Where the runs' trace folders go (default: the scratch folder under TMPDIR, with the SQLite file). A \
        folder of its own is made inside and removed at the end. docs/benchmarks.md says why scripts/bench puts \
        them on tmpfs.
        """)
    var traceRoot: String?

    @Option(help: "Concurrent writers of the ceiling (default: 1 on SQLite, 4 on PostgreSQL, as the pgbench reference).")
    var ceilingClients: Int?

    @Option(help: """
        Tasks per transaction of the ceiling (default: 32, as River's and Oban's batches). Four `wrk` connections \
        give the intake transactions of at most 4 enqueues: --ceiling-batch 4 shows what that alone costs.
        """)
    var ceilingBatch = 32

    func run() async throws {
        guard path == "http" || path == "storage" else { throw ValidationError("--path must be http or storage") }
        guard mode == "mixed" || mode == "burn-down" else { throw ValidationError("--mode must be mixed or burn-down") }
        // Zero of any of these measured nothing, or waited for ever (no worker process drains a backlog).
        for (flag, value) in [("--tasks", tasks), ("--clients", clients), ("--concurrency", concurrency), ("--workers", workers)] where value < 1 {
            throw ValidationError("\(flag) must be at least 1")
        }
        guard idleSamples >= 0 else { throw ValidationError("--idle-samples must be 0 or more") }
        guard traceSamples >= 0 else { throw ValidationError("--trace-samples must be 0 or more") }
        if let ceilingClients, ceilingClients < 1 { throw ValidationError("--ceiling-clients must be at least 1") }
        guard ceilingBatch >= 1 else { throw ValidationError("--ceiling-batch must be at least 1") }
        guard backlog >= 0 else { throw ValidationError("--backlog must be 0 or more") }
        if backlog > 0 {
            // The idle samples and the ceiling would run on a queue that still holds the backlog.
            guard mode == "burn-down", idleSamples == 0, !ceiling else {
                throw ValidationError("--backlog measures a burn-down only: it needs --mode burn-down and --idle-samples 0, and no --ceiling")
            }
        }
        if workerSchema {
            // The idle samples and the ceiling run this build's code, which needs this build's schema.
            guard mode == "burn-down", workerBinary != nil, idleSamples == 0, !ceiling else {
                throw ValidationError("--worker-schema measures a burn-down only: it needs --mode burn-down, --worker-binary and --idle-samples 0, and no --ceiling")
            }
        }
        var logger = Logger(label: "tower.bench")
        logger.logLevel = .error
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("tower-bench-\(ULID.make())")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: scratch) }
        let traces = traceRoot.map { URL(fileURLWithPath: $0).appendingPathComponent("tower-bench-\(ULID.make())") } ?? scratch
        try FileManager.default.createDirectory(at: traces, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: traces) }
        let location = try DatabaseLocation(url: databaseURL ?? scratch.appendingPathComponent("bench.db").path)
        let opened = try await Database.open(location, poolSize: concurrency + clients + 4, requireCurrentSchema: false, logger: logger)
        do {
            try await measure(opened, location: location, traces: traces, logger: logger)
        } catch {
            await opened.close()
            throw error
        }
        await opened.close()
    }

    /// `traces`: the folder the runs' trace folders go in (`runs/`), and the trace-cost samples.
    func measure(_ opened: Database, location: DatabaseLocation, traces: URL, logger: Logger) async throws {
        if workerSchema, let workerBinary {
            // This build's intake writes the same rows into the previous build's tables (the legacy
            // layout); only the previous build's workers touch the database after that.
            let migrate = try ChildProcess([workerBinary, "migrate"], environment: workerEnvironment(location, traces: traces), stderr: .inherit)
            let status = await migrate.wait()
            guard status.succeeded else { throw CommandError("\(workerBinary) migrate failed: \(status)") }
        } else {
            try await opened.migrator(logger: logger).migrate()
        }
        // Every figure reads the tasks table as a whole (a drain's first start and its completions,
        // the latencies): an earlier run's tasks would be taken for this run's, and a second run on
        // the same schema printed the first one's figures.
        let earlier = try await opened.read { try await $0.tasks.countByStatus() }.values.reduce(0, +)
        guard earlier == 0 else {
            throw CommandError(
                "tower bench measures on an empty database, and \(location) already holds \(earlier == 1 ? "1 task" : "\(earlier) tasks") (an earlier run's?): "
                    + "give it a new schema (…?search_path=<new>) or a new SQLite file, or no --database-url for a scratch database of its own")
        }
        // Every statement is counted, by the engine operation that sent it.
        let counting = CountingDriver(opened.driver)
        let db = Database(driver: counting, location: location)
        let configuration = WorkerConfiguration(
            concurrency: concurrency, pollInterval: 1, traceRoot: traces.appendingPathComponent("runs"))
        let worker = BridgeWorker(database: db, configuration: configuration, logger: logger)
        let api = TowerAPI(
            database: db, configuration: APIConfiguration(policy: PolicyConfig(allowedRepoPrefixes: ["bench/"])), logger: logger,
            engine: worker.engine)

        Self.say("tower bench: --mode \(mode), \(tasks) tasks, \(clients) clients, \(path) path, \(location)")
        var measured = Measured()
        if mode == "burn-down" {
            measured = try await burnDown(db: db, counting: counting, api: api, worker: worker, location: location, traces: traces)
            // The previous build's tables: this build's worker does not run on them.
            if workerSchema { return }
        }
        let running = Task { try await worker.run() }
        if mode == "mixed" {
            measured = try await mixed(db: db, counting: counting, api: api, worker: worker)
        }

        // Idle latency: one task at a time on an idle worker.
        _ = counting.takeByOperation()
        var idle: [Double] = []
        for n in 0..<idleSamples {
            // Subscribed before the enqueue, so that its completion cannot be missed.
            let events = worker.engine.events.subscribe()
            let id = try await enqueue(api: api, db: db, worker: worker, n: n, client: 999)
            let task = try await finished(id, events: events, db: db)
            if let queued = task.queuedAt, let started = task.startedAt { idle.append(started.seconds(since: queued)) }
        }
        await worker.shutdown()
        _ = try? await running.value
        Self.say("enqueue-to-start, idle:   p50 \(Self.ms(percentile(idle, 0.5)))  p99 \(Self.ms(percentile(idle, 0.99)))  (\(idle.count) samples)")
        Self.say("  one task at a time:")
        printStatements(counting, tasks: idle.count, operations: ["enqueue", "claim", "complete"])
        if traceSamples > 0 { try traceFolderCost(traces) }
        if ceiling {
            // As many writers as the database takes at once: one on SQLite, the reference pgbench's 4 on PostgreSQL.
            let writers = ceilingClients ?? (opened.dialect == .postgres ? 4 : 1)
            let ceilingStart = MachineCPUTime.now()
            let figures = try await Ceiling(database: opened).measure(tasks: tasks, batch: ceilingBatch, clients: writers)
            Self.say(String(format: "ceiling (plain multi-row SQL, batches of %d, %d writer(s)): intake %.0f tasks/s, claim + complete %.0f tasks/s", ceilingBatch, writers, figures.intake, figures.work))
            Self.printSteal("the ceiling", from: ceilingStart)
            if let enqueueRate = measured.enqueue {
                Self.say(String(format: "  enqueue at %.0f %% of the intake ceiling", 100 * enqueueRate / figures.intake))
            }
            if let workRate = measured.work {
                Self.say(String(format: "  %@ at %.0f %% of the claim + complete ceiling", mode, 100 * workRate / figures.work))
            }
        }
    }

    /// One line of the report, out at once also into a file or a pipe (stdio would hold it in
    /// its buffer until the end): a run stopped half-way, or killed at a timeout, keeps the
    /// figures it printed.
    static func say(_ line: String) {
        print(line)
        fflush(nil)
    }

    static func ms(_ s: Double) -> String { String(format: "%.2f ms", s * 1000) }

    /// How much of a measurement's CPU time the host gave to other guests (`MachineCPUTime`): a
    /// figure taken while it was high measured them too. Nothing where it cannot be read.
    static func printSteal(_ measurement: String, from start: MachineCPUTime?, to end: MachineCPUTime? = MachineCPUTime.now()) {
        guard let start, let share = end?.stealShare(since: start) else { return }
        Self.say(String(format: "host steal:              %5.1f %% of the machine's CPU time during %@ (/proc/stat: the host ran other guests on these cores)", 100 * share, measurement))
    }

    /// What the files of a stub run cost, without the database: the trace folder with its
    /// manifest, context, constraints, log, events, output, evidence and the final manifest
    /// digest, written through as it goes (the digest reads every file back) and kept in memory
    /// until one flush at the end (what the worker does for the stub executor).
    func traceFolderCost(_ traces: URL) throws {
        let root = traces.appendingPathComponent("trace-cost")
        let samples = traceSamples
        let body: JSONValue = ["objective": "Benchmark task", "constraints": ["time_budget_seconds": 900], "instructions": .array((0..<10).map { .string("step \($0)") })]
        var costs: [Double] = []
        for inMemory in [false, true] {
            let start = Date()
            for _ in 0..<samples {
                let trace = try TraceStore(root: root, runId: ULID.make(), inMemory: inMemory)
                try trace.writeJSON("manifest.json", body)
                try trace.writeJSON("context.json", body)
                try trace.writeJSON("constraints.json", body)
                trace.log("Execution started", details: ["Executor: stub"])
                trace.event("execution_started", ["executor": "stub"])
                try trace.write("artifacts/output.md", "# Stub Execution Report\n")
                trace.event("execution_completed", ["status": "succeeded"])
                try trace.writeJSON("evidence/verdict.json", body)
                try trace.writeJSON("evidence/collected.json", body)
                try trace.writeJSON("manifest.json", body)
                _ = try trace.manifestDigest()
                try trace.flush()
            }
            costs.append(Date().timeIntervalSince(start) / Double(samples))
        }
        Self.say(String(format: "trace folder per run:    %.2f ms written through, %.2f ms kept in memory and flushed  (the files of a stub run and the manifest digest, %d samples each, under %@)", costs[0] * 1000, costs[1] * 1000, samples, root.path))
        try? FileManager.default.removeItem(at: root)
    }

    /// The figures the ceiling is compared with: enqueues per second and tasks worked per second.
    struct Measured {
        var enqueue: Double?
        var work: Double?
    }

    /// Statements per task of each engine operation since the last call.
    func printStatements(_ counting: CountingDriver, tasks: Int, operations: [String]) {
        let counts = counting.takeByOperation()
        let parts = operations.map { operation -> String in
            let count = counts[operation] ?? (0, 0)
            return String(format: "%@ %.1f (%.2f transactions)", operation, Double(count.statements) / Double(max(1, tasks)), Double(count.transactions) / Double(max(1, tasks)))
        }
        Self.say("statements per task:     " + parts.joined(separator: ", "))
    }

    /// Enqueues the whole backlog, then drains it with separate `tower worker` processes.
    func burnDown(db: Database, counting: CountingDriver, api: TowerAPI, worker: BridgeWorker, location: DatabaseLocation,
        traces: URL) async throws -> Measured
    {
        _ = counting.takeByOperation()
        let start = Date()
        let ids = try await enqueueAll(tasks + backlog, api: api, db: db, worker: worker)
        let enqueueSeconds = Date().timeIntervalSince(start)
        var measured = Measured(enqueue: Double(ids.count) / enqueueSeconds)
        Self.say(String(format: "enqueue rate:            %8.0f tasks/s  (%d tasks in %.2f s, %d clients)", Double(ids.count) / enqueueSeconds, ids.count, enqueueSeconds, clients))
        printStatements(counting, tasks: ids.count, operations: ["enqueue"])
        if db.dialect == .postgres {
            // As autovacuum's first pass after the load would, within a minute: the drain is
            // measured as a running queue has it (`StatisticsRepository`).
            let analyzed = try await db.write { try await $0.statistics.refreshAfterBulkLoad() }
            Self.say("analyzed after the load:  \(analyzed.isEmpty ? "none" : analyzed.joined(separator: ", "))")
        }

        let binary = URL(fileURLWithPath: workerBinary ?? Bundle.main.executablePath ?? CommandLine.arguments[0]).path
        let environment = workerEnvironment(location, traces: traces)
        let drainStart = Date()
        let drainCPU = MachineCPUTime.now()
        let processes = try (0..<workers).map { _ in
            try ChildProcess(
                [binary, "worker", "--concurrency", String(concurrency)], environment: environment,
                stderr: .inherit)
        }
        try await waitUntilFinished(db, count: tasks, workers: processes)
        let drainSeconds = Date().timeIntervalSince(drainStart)
        let drainCPUEnd = MachineCPUTime.now()
        // SIGTERM: the workers claim no more and finish what they run; a backlog stays queued.
        for process in processes { process.send(SIGTERM) }
        for process in processes { _ = await process.wait() }
        let (first, nth, finished, queued) = try await db.read { store -> (Timestamp?, Timestamp?, Int, Int) in
            let all = try await store.tasks.list(page: Page(limit: 1_000_000))
            let done = all.filter { $0.status.isFinished }
            // The `tasks`-th completion, not the last: with a backlog the workers finish a few more
            // after it while they stop (without one, it is the last).
            let completions = done.compactMap(\.completedAt).sorted { $0.microseconds < $1.microseconds }
            return (done.compactMap(\.startedAt).min(), completions.count >= tasks ? completions[tasks - 1] : completions.last,
                done.count, all.count { $0.status == .queued })
        }
        let working = (nth?.seconds(since: first ?? .now()) ?? drainSeconds)
        measured.work = Double(tasks) / working
        let upTo = backlog > 0 ? "completion \(tasks)" : "last completion"
        Self.say(String(format: "burn-down:               %8.0f tasks/s  (first start to %@, %.2f s; %.2f s with process start-up; %d workers × %d slots)", Double(tasks) / working, upTo, working, drainSeconds, workers, concurrency))
        Self.printSteal("the drain", from: drainCPU, to: drainCPUEnd)
        if backlog > 0 {
            Self.say("backlog:                 \(ids.count) tasks enqueued, \(finished) finished by the workers, \(queued) left queued")
        }
        // CPU per task moves less with this machine's speed than a rate does, and says how much
        // of the drain's CPU is the workers' (the database server's is not ours to read here).
        let workerCPU = processes.compactMap(\.cpuSeconds).reduce(0, +)
        Self.say(String(format: "workers' CPU per task:   %8.3f ms  (user + system of the %d worker processes, start-up included)", workerCPU * 1000 / Double(max(1, finished)), workers))
        return measured
    }

    /// The environment of the worker processes (and of the worker binary's `migrate`).
    func workerEnvironment(_ location: DatabaseLocation, traces: URL) -> [String: String] {
        let url: String
        switch location {
        case .sqlite(let path): url = path
        case .postgres(let postgres): url = postgres
        }
        return ProcessInfo.processInfo.environment.merging([
            "DATABASE_URL": url, "JCT_TRACE_ROOT": traces.appendingPathComponent("runs").path, "LOG_LEVEL": "error",
            "WORKER_POLL_INTERVAL": "1", "TOWER_EXECUTOR": "stub",
        ]) { _, new in new }
    }

    /// Enqueues while the in-process worker runs.
    func mixed(db: Database, counting: CountingDriver, api: TowerAPI, worker: BridgeWorker) async throws -> Measured {
        _ = counting.takeByOperation()
        let start = Date()
        let startCPU = MachineCPUTime.now()
        let ids = try await enqueueAll(tasks, api: api, db: db, worker: worker)
        let enqueued = Date()
        try await waitUntilFinished(db, count: ids.count)
        let finished = Date()
        let finishedCPU = MachineCPUTime.now()
        let latencies = try await startLatencies(db)
        let enqueueSeconds = enqueued.timeIntervalSince(start)
        let totalSeconds = finished.timeIntervalSince(start)
        Self.say(String(format: "enqueue rate:            %8.0f tasks/s  (%d tasks in %.2f s)", Double(ids.count) / enqueueSeconds, ids.count, enqueueSeconds))
        Self.say(String(format: "end to end throughput:   %8.0f tasks/s  (enqueue to last completion, %.2f s)", Double(ids.count) / totalSeconds, totalSeconds))
        Self.say("enqueue-to-start, loaded: p50 \(Self.ms(percentile(latencies, 0.5)))  p99 \(Self.ms(percentile(latencies, 0.99)))")
        Self.printSteal("the run", from: startCPU, to: finishedCPU)
        printStatements(counting, tasks: ids.count, operations: ["enqueue", "claim", "complete"])
        return Measured(enqueue: Double(ids.count) / enqueueSeconds, work: Double(ids.count) / totalSeconds)
    }

    func enqueueAll(_ count: Int, api: TowerAPI, db: Database, worker: BridgeWorker) async throws -> [String] {
        var ids: [String] = []
        try await withThrowingTaskGroup(of: [String].self) { group in
            for client in 0..<clients {
                let share = count / clients + (client < count % clients ? 1 : 0)
                group.addTask {
                    var mine: [String] = []
                    for n in 0..<share { mine.append(try await enqueue(api: api, db: db, worker: worker, n: n, client: client)) }
                    return mine
                }
            }
            for try await batch in group { ids += batch }
        }
        return ids
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
        let id = TaskRecord.newId()
        _ = try await worker.engine.enqueue(request, id: id, traceId: TaskRecord.newTraceId(), createCWOM: true)
        return id
    }

    /// Waits until `count` tasks are finished. With `workers` (the burn-down's processes), a
    /// worker that exits before then stops the wait with an error: the backlog would stay queued
    /// and the bench wait for ever.
    func waitUntilFinished(_ db: Database, count: Int, workers: [ChildProcess] = []) async throws {
        while true {
            let counts = try await db.read { try await $0.tasks.countByStatus() }
            let done = counts.filter { TaskStatus(rawValue: $0.key)?.isFinished == true }.values.reduce(0, +)
            if done >= count { return }
            let ended = workers.compactMap(\.status)
            if !ended.isEmpty {
                for process in workers where process.status == nil { process.terminate() }
                throw CommandError(
                    "\(ended.count) of the \(workers.count) worker processes ended (\(ended.map(\.description).joined(separator: ", "))) "
                        + "with \(done) of \(count) tasks finished; their messages are above")
            }
            // Not more often: the count scans the tasks table on the cores the workers use, and the
            // figures come from the tasks' own timestamps, not from this loop.
            try await Task.sleep(for: .milliseconds(250))
        }
    }

    /// The task `id` once the engine has finished it, awaited on the engine's events rather than
    /// by reading the task in a loop (which took CPU from the very worker it waits on).
    /// `seconds` bounds the wait: an idle worker that never finishes the task is an error.
    func finished(_ id: String, events: AsyncStream<LifecycleEvent>, db: Database, seconds: Int = 60) async throws -> TaskRecord {
        try await withThrowingTaskGroup(of: TaskRecord?.self) { group in
            group.addTask {
                for await event in events where event.kind == .completed && event.taskId == id {
                    // A completion that retries the task leaves it queued: wait for the next one.
                    if let task = try await db.read({ try await $0.tasks.get(id) }), task.status.isFinished { return task }
                }
                return nil
            }
            group.addTask {
                try await Task.sleep(for: .seconds(seconds))
                return nil
            }
            defer { group.cancelAll() }
            guard let task = try await group.next() ?? nil else {
                throw CommandError("task \(id) was not finished \(seconds) s after its enqueue: the idle worker did not run it")
            }
            return task
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
