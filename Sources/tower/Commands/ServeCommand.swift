import API
import ArgumentParser
import Foundation
import Hummingbird
import LegacyTasks
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import UnixSignals
import Storage
import Worker

/// Settings of the HTTP API, from flags or the legacy environment variable names.
struct APIOptions: ParsableArguments {
    @Option(help: "Address to bind (default: $API_HOST, else 127.0.0.1).")
    var host: String?

    @Option(help: "Port to bind (default: $API_PORT, else 8000).")
    var port: Int?

    @Option(
        name: .customLong("allowed-repo-prefixes"),
        help: "Comma-separated repository prefixes tasks may target (default: $JCT_ALLOWED_REPO_PREFIXES; empty denies all).")
    var allowedRepoPrefixes: String?

    func resolved(environment: [String: String]) throws -> (host: String, port: Int, configuration: APIConfiguration) {
        let host = host ?? environment["API_HOST"] ?? "127.0.0.1"
        let port: Int
        if let flag = self.port {
            port = try ListenPort.checked(flag, from: "--port", anyAllowed: true)
        } else if let text = environment["API_PORT"] {
            port = try ListenPort.parsed(text, from: "API_PORT", anyAllowed: true)
        } else {
            port = 8000
        }
        let configuration = APIConfiguration(
            access: try Self.access(environment),
            policy: PolicyConfig(environmentValue: allowedRepoPrefixes ?? environment["JCT_ALLOWED_REPO_PREFIXES"]),
            version: Tower.version, limits: try Self.limits(environment),
            traceRoot: try WorkerConfiguration.traceRoot(from: environment["JCT_TRACE_ROOT"], default: ".tower/runs"),
            reviewPolicy: try WorkerOptions.reviewPolicy(environment), cors: try Self.cors(environment),
            retry: try WorkerOptions.retryPolicy(environment), httpThreads: try Self.httpThreads(environment),
            artifactLimit: try WorkerOptions.artifactLimit(environment))
        return (host, port, configuration)
    }

    /// `JCT_API_KEY` (full access), `TOWER_API_KEYS_FILE` (scoped keys), `TOWER_METRICS_PUBLIC`,
    /// `TOWER_RATE_LIMIT` (per key, for keys without their own `rate=`).
    static func access(_ environment: [String: String]) throws -> AccessConfiguration {
        var keys: [KeyEntry]?
        if let path = environment["TOWER_API_KEYS_FILE"], !path.isEmpty {
            do {
                keys = try KeyFile.load(path: path)
            } catch {
                throw CommandError("TOWER_API_KEYS_FILE: \(error)")
            }
        }
        var rate: RateLimit?
        if let text = environment["TOWER_RATE_LIMIT"], !text.isEmpty, text != "off" {
            guard let limit = RateLimit(text) else {
                throw CommandError("TOWER_RATE_LIMIT must be N/s, N/m or N/h (requests per key), or off, not '\(text)'")
            }
            rate = limit
        }
        return AccessConfiguration(
            legacyKey: environment["JCT_API_KEY"], keys: keys, keysFile: environment["TOWER_API_KEYS_FILE"].flatMap { $0.isEmpty ? nil : $0 },
            metricsPublic: try WorkerOptions.flag("TOWER_METRICS_PUBLIC", environment), defaultRate: rate)
    }

    /// `TOWER_CORS_ORIGINS`: origins allowed to call the API from a browser.
    static func cors(_ environment: [String: String]) throws -> CORSPolicy {
        do {
            return try CORSPolicy(environmentValue: environment["TOWER_CORS_ORIGINS"])
        } catch {
            throw CommandError(error.description)
        }
    }

    /// `TOWER_HTTP_THREADS`: the HTTP server's event loops (`APIConfiguration.httpThreads`).
    static func httpThreads(_ environment: [String: String]) throws -> Int {
        guard let text = environment["TOWER_HTTP_THREADS"], !text.isEmpty else { return APIConfiguration.defaultHTTPThreads }
        guard let number = Int(text), (1...1024).contains(number) else {
            throw CommandError("TOWER_HTTP_THREADS must be a number of threads from 1 to 1024, not '\(text)'")
        }
        return number
    }

    /// `TOWER_MAX_BODY_BYTES`, `TOWER_MAX_HEADER_BYTES`, `TOWER_READ_TIMEOUT`, `TOWER_IDLE_TIMEOUT`.
    static func limits(_ environment: [String: String]) throws -> HTTPLimits {
        var limits = HTTPLimits()
        // Bounded above: a timeout past what NIO's nanoseconds hold trapped at the first request.
        func read(_ name: String, _ value: inout Int, unit: String, max: Int) throws {
            guard let text = environment[name], !text.isEmpty else { return }
            guard let number = Int(text), (1...max).contains(number) else {
                throw CommandError("\(name) must be a number of \(unit) from 1 to \(max), not '\(text)'")
            }
            value = number
        }
        try read("TOWER_MAX_BODY_BYTES", &limits.maxBodyBytes, unit: "bytes", max: 1 << 30)
        try read("TOWER_MAX_HEADER_BYTES", &limits.maxHeaderBytes, unit: "bytes", max: 1 << 20)
        try read("TOWER_READ_TIMEOUT", &limits.readTimeoutSeconds, unit: "seconds", max: 86_400)
        try read("TOWER_IDLE_TIMEOUT", &limits.idleTimeoutSeconds, unit: "seconds", max: 86_400)
        return limits
    }
}

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the HTTP API (legacy /tasks intake, health) on the embedded default: no configuration needed.",
        discussion: """
            Creates and migrates the database (SQLite at .tower/tower.db unless DATABASE_URL says otherwise), \
            then serves on 127.0.0.1:8000 until SIGTERM or SIGINT. Environment: DATABASE_URL, API_HOST, API_PORT, \
            JCT_ALLOWED_REPO_PREFIXES, JCT_API_KEY, TOWER_API_KEYS_FILE (SIGHUP re-reads it), TOWER_METRICS_PUBLIC, \
            TOWER_RATE_LIMIT, TOWER_MAX_BODY_BYTES, TOWER_MAX_HEADER_BYTES, TOWER_READ_TIMEOUT, TOWER_IDLE_TIMEOUT, \
            TOWER_CORS_ORIGINS, TOWER_HTTP_THREADS, TOWER_API_THREADS, TOWER_SQLITE_WRITER_CPU, TOWER_RETRY_*, TOWER_ARTIFACT_LIMIT, LOG_LEVEL \
            (docs/operations.md).
            """
    )

    @OptionGroup var database: DatabaseOptions
    @OptionGroup var api: APIOptions
    @OptionGroup var worker: WorkerOptions

    @Flag(help: "Serve the API only, without the worker (tower api does the same).")
    var noWorker = false

    func run() async throws {
        let environment = ProcessInfo.processInfo.environment
        // First: Swift concurrency on NIO's event loops, as in `tower api` and `tower worker`
        // (the API's intake and the worker's claims, statements and completions stay on a loop;
        // docs/api.md).
        let loops = try APILoops.read(environment, apiOnly: noWorker)
        let onEventLoops = EventLoops.runConcurrency(threads: loops.threads)
        let logger = Logger(label: "tower")
        let (host, port, apiConfiguration) = try api.resolved(environment: environment)
        let location = try database.location()
        let writerCPU = try WriterCPU.read(environment, location: location, withWorker: !noWorker)
        let workerConfiguration = noWorker ? nil : try worker.configuration(environment: environment)
        try await database.withDatabase(poolSize: try database.resolvedPoolSize(), requireCurrentSchema: false, logger: logger) { db in
            let migrated = try await db.migrator(logger: logger).migrate()
            if !migrated.isEmpty { logger.info("database migrated", metadata: ["migrations": "\(migrated.count)"]) }
            try await serve(
                db, host: host, port: port, configuration: apiConfiguration, worker: workerConfiguration, location: location,
                loops: onEventLoops ? loops : nil, writerCPU: writerCPU, logger: logger)
        }
    }

    static func describe(_ access: AccessConfiguration) -> String {
        guard access.isEnabled else { return "off (no JCT_API_KEY, no TOWER_API_KEYS_FILE): every route is open" }
        var parts: [String] = []
        if access.legacyKey != nil { parts.append("JCT_API_KEY") }
        if let keys = access.keys { parts.append("\(keys.count) scoped key(s): " + keys.map(\.name).joined(separator: ", ")) }
        return parts.joined(separator: " + ")
    }

    static func describe(_ configuration: APIConfiguration) -> String {
        configuration.policy.allowedRepoPrefixes.isEmpty
            ? "none (every enqueue is rejected: set JCT_ALLOWED_REPO_PREFIXES)"
            : configuration.policy.allowedRepoPrefixes.joined(separator: ", ")
    }

    /// `loops`: the event loops the process runs Swift concurrency on, nil when it runs on
    /// Dispatch; the HTTP server runs on them too when `loops.sharedWithHTTP`. `writerCPU`:
    /// `TOWER_SQLITE_WRITER_CPU`, the SQLite writer's own CPU.
    func serve(_ db: Database, host: String, port: Int, configuration: APIConfiguration, worker: WorkerConfiguration?,
        location: DatabaseLocation, loops concurrencyLoops: APILoops? = nil, writerCPU: WriterCPU? = nil, logger: Logger) async throws
    {
        let bridge = worker.map { BridgeWorker(database: db, configuration: $0, logger: logger) }
        // One engine for both: the worker hears of every enqueue, retry and cancel request at once.
        let api = TowerAPI(
            database: db, configuration: configuration, logger: logger, engine: bridge?.engine, metrics: Telemetry.emit)
        // The HTTP server's event loops: those Swift concurrency runs on (NIO's shared group,
        // `APILoops.sharedWithHTTP`), or loops of its own (`APIConfiguration.httpThreads`). Like
        // NIO's shared loops its own live as long as the process: Hummingbird ends a server's
        // graceful shutdown in a task of its own that can still use the loop after `run` has
        // returned, and shutting the loops down here raced with it (NIO's "Cannot schedule tasks
        // on an EventLoop that has already shut down", a crash under SWIFTNIO_STRICT, about one
        // stop in ten).
        let shared = concurrencyLoops?.sharedWithHTTP == true
        let loops = shared ? MultiThreadedEventLoopGroup.singleton : MultiThreadedEventLoopGroup(numberOfThreads: configuration.httpThreads)
        let httpThreads = shared ? (concurrencyLoops?.threads ?? 1) : configuration.httpThreads
        if let writerCPU {
            // Every loop that serves a request or runs its task: the HTTP server's, and NIO's
            // shared group when Swift concurrency runs on it.
            let concurrency: [any EventLoopGroup] = concurrencyLoops == nil || shared ? [] : [MultiThreadedEventLoopGroup.singleton]
            try await writerCPU.place(db, loops: [loops] + concurrency)
        }
        let app = Application(
            responder: api, server: HTTPServer.builder(configuration.limits, logger: logger),
            configuration: .init(address: .hostname(host, port: port), serverName: "tower"),
            onServerRunning: { _ in
                var metadata: Logger.Metadata = [
                    "address": "http://\(host):\(port)", "database": "\(location)",
                    "allowed_repo_prefixes": "\(Self.describe(configuration))",
                    "auth": "\(Self.describe(configuration.access))", "http_threads": "\(httpThreads)",
                    "http_loops": "\(shared ? "shared with concurrency" : "own")",
                    "concurrency": "\(concurrencyLoops == nil ? "dispatch" : "event loops")",
                    "worker": "\(worker.map { "\($0.concurrency) slots, traces in \($0.traceRoot.path)" } ?? "off")",
                ]
                if let concurrencyLoops { metadata["api_threads"] = "\(concurrencyLoops.threads)" }
                if let writerCPU { metadata["sqlite_writer_cpu"] = "\(writerCPU.cpu) (event loops on \(writerCPU.others))" }
                logger.info("serving", metadata: metadata)
            }, eventLoopGroupProvider: .shared(loops), logger: logger)
        // Shutdown runs in reverse: the worker drains first, then the HTTP server stops.
        // Shut down before the HTTP server: open MCP event streams end, so that it can drain.
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [
            .init(service: app), .init(service: StreamCloser(api: api)),
        ]
        if let path = configuration.access.keysFile {
            services.append(.init(service: KeyFileReloader(path: path, access: api.access, logger: logger)))
        }
        if let bridge { services.append(.init(service: bridge, successTerminationBehavior: .gracefullyShutdownGroup)) }
        let group = ServiceGroup(
            configuration: .init(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await runServices(group, listeningOn: "\(host):\(port)")
        logger.info("stopped")
    }
}

struct APICommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "api",
        abstract: "Run the HTTP API only (no worker), on a database that `tower migrate` has prepared.",
        discussion: """
            The environment of `tower serve`, and TOWER_API_THREADS: the event loops the process runs \
            Swift concurrency, its PostgreSQL connections and its HTTP server on (default: one fewer than \
            the cores, at least one; with TOWER_HTTP_THREADS set the HTTP server has loops of its own and \
            the default is 1; docs/operations.md).
            """
    )

    @OptionGroup var database: DatabaseOptions
    @OptionGroup var api: APIOptions

    func run() async throws {
        let environment = ProcessInfo.processInfo.environment
        // First, as `tower worker` does: Swift concurrency on NIO's event loops, where the
        // PostgreSQL connections live, so that the intake batcher's transactions and their
        // statements do not cross between Dispatch's threads and NIO's (the api's CPU per
        // request on PostgreSQL 8 % lower; docs/api.md), and the HTTP server on the same loops
        // (`APILoops`); what may block runs on `BlockingExecutor`.
        let loops = try APILoops.read(environment, apiOnly: true)
        let onEventLoops = EventLoops.runConcurrency(threads: loops.threads)
        let logger = Logger(label: "tower")
        let (host, port, configuration) = try api.resolved(environment: environment)
        let location = try database.location()
        let writerCPU = try WriterCPU.read(environment, location: location, withWorker: false)
        try await database.withDatabase(poolSize: try database.resolvedPoolSize(), logger: logger) { db in
            try await ServeCommand.parse([]).serve(
                db, host: host, port: port, configuration: configuration, worker: nil, location: location,
                loops: onEventLoops ? loops : nil, writerCPU: writerCPU, logger: logger)
        }
    }
}

/// The event loops of an API process: `TOWER_API_THREADS` of them run its Swift concurrency (its
/// PostgreSQL connections, the intake batcher's transactions, in `tower serve` its worker), and
/// whether its HTTP server runs on the same loops or on loops of its own (`TOWER_HTTP_THREADS`).
///
/// An API-only process (`tower api`, `tower serve --no-worker`) serves HTTP on its concurrency
/// loops unless `TOWER_HTTP_THREADS` is set: a request, its intake transaction on PostgreSQL and
/// the answer then stay on one thread, where the handler's loop handed every enqueue to another
/// thread and took the answer back. On PostgreSQL under `wrk -c 4` 7–17 % more requests for
/// 10–17 % less of the api's CPU each; on SQLite, whose writer is a thread of its own either
/// way, no difference (docs/benchmarks.md, thirty-sixth session). Those loops then serve all of
/// HTTP, so their default is the HTTP server's (one fewer than the cores, at least one). With a
/// worker in the process (`tower serve`) the HTTP server keeps loops of its own: on one loop
/// with the worker's claims and completions both answered fewer requests and runs.
struct APILoops: Sendable {
    /// `TOWER_API_THREADS`.
    let threads: Int
    /// The HTTP server runs on the `threads` loops, not on loops of its own.
    let sharedWithHTTP: Bool

    static func read(_ environment: [String: String], apiOnly: Bool) throws -> APILoops {
        let ownHTTPLoops = !(environment["TOWER_HTTP_THREADS"] ?? "").isEmpty
        let shared = apiOnly && !ownHTTPLoops
        let threads = try LoopThreads.read(environment, "TOWER_API_THREADS", default: shared ? APIConfiguration.defaultHTTPThreads : 1)
        return APILoops(threads: threads, sharedWithHTTP: shared)
    }
}

/// `TOWER_SQLITE_WRITER_CPU`: SQLite's writer thread on a CPU of its own, and the process's
/// event loops (its HTTP server, its Swift concurrency) on the others, for a process that only
/// serves the API on SQLite: `tower api`, `tower serve --no-worker`. Unset by default.
///
/// Why: every enqueue crosses from an event loop to the writer and back, and on a machine of
/// few cores the kernel often puts both on one core while `wrk`, a worker or the checkpointer
/// has the other; each then waits its turn although the machine is partly idle. On this
/// project's two-core VM, `tower api` under `wrk -c 4` answered 3–32 % more enqueues with the
/// writer on CPU 1 and the loop on CPU 0 (docs/benchmarks.md, fifty-second and fifty-third
/// sessions). Why not by default: a fixed placement takes the kernel's balancing away, and on a
/// host whose cores other processes need (a PostgreSQL, the workers, other services) a pinned
/// thread waits for its one core where it could have moved: beside one busy process the placed
/// api answered 15–31 % fewer. So it is an operator's choice for
/// a machine or container given to the API. Threads other than the loops and the writer
/// (SQLite's readers and checkpointer, the pool for files) keep every CPU. Not with a worker in
/// the process: a thread inherits the mask of the thread that starts it, and so does a child
/// process, so the worker's runs (an agent's process, started from Dispatch's pool, whose threads
/// a loop may have started) would land on the loops' CPUs or on all of them by chance.
struct WriterCPU: Sendable {
    static let variable = "TOWER_SQLITE_WRITER_CPU"

    /// The writer's CPU.
    let cpu: Int
    /// The CPUs the event loops keep to: the process's own but `cpu`.
    let others: CPUSet

    /// Nil when unset; otherwise checked against the CPUs the process may run on
    /// (`sched_getaffinity`, which a container's or `taskset`'s limits narrow).
    static func read(_ environment: [String: String], location: DatabaseLocation, withWorker: Bool) throws -> WriterCPU? {
        guard let text = environment[variable], !text.isEmpty else { return nil }
        guard !withWorker else {
            throw CommandError(
                "\(variable) is for a process that only serves the API (tower api, tower serve --no-worker): a worker's runs would start on the event loops' CPUs; unset it or run the worker apart")
        }
        guard case .sqlite = location else {
            throw CommandError("\(variable) places SQLite's writer thread, and the database is \(location): unset it")
        }
        let allowed = try CPUSet.ofCurrentThread()
        guard let cpu = Int(text), allowed.cpus.contains(cpu) else {
            throw CommandError("\(variable) must be one of the CPUs this process may run on (\(allowed)), not '\(text)'")
        }
        guard allowed.cpus.count >= 2 else {
            throw CommandError("\(variable) needs two CPUs or more, one for the writer and one for the rest; this process may run on CPU \(allowed) only")
        }
        return WriterCPU(cpu: cpu, others: CPUSet(allowed.cpus.filter { $0 != cpu }))
    }

    /// Moves the writer of `db` onto `cpu` and every loop of `groups` off it. Run before the
    /// server starts, so that no request is served from the wrong place.
    func place(_ db: Database, loops groups: [any EventLoopGroup]) async throws {
        guard let driver = db.driver as? SQLiteDriver else {
            throw CommandError("\(Self.variable) places SQLite's writer thread, and the database is not SQLite")
        }
        try await driver.placeWriter(on: CPUSet([cpu]))
        for group in groups {
            for loop in group.makeIterator() {
                try await loop.submit { () throws -> Void in try others.applyToCurrentThread() }.get()
            }
        }
    }
}

/// Re-reads `TOWER_API_KEYS_FILE` on SIGHUP, so keys are added and revoked without a restart. A
/// file that no longer parses is reported and the keys in force are kept.
struct KeyFileReloader: Service {
    let path: String
    let access: AccessControl
    let logger: Logger

    func run() async throws {
        let signals = await UnixSignalsSequence(trapping: .sighup)
        for await _ in signals.cancelOnGracefulShutdown() {
            do {
                // A file read: off the event loops (`BlockingExecutor`).
                let keys = try await withTaskExecutorPreference(BlockingExecutor.shared) { try KeyFile.load(path: path) }
                access.replaceKeys(keys)
                logger.notice("API keys reloaded", metadata: ["file": "\(path)", "keys": "\(keys.map(\.name).joined(separator: ", "))"])
            } catch {
                logger.error("API keys not reloaded; the previous keys stay in force", metadata: ["file": "\(path)", "error": "\(error)"])
            }
        }
    }
}

/// Ends the MCP sessions when the process shuts down: their event streams never end by
/// themselves, and the HTTP server's graceful shutdown waits for every response.
struct StreamCloser: Service {
    let api: TowerAPI

    func run() async throws {
        try? await gracefulShutdown()
        await api.endStreams()
    }
}
