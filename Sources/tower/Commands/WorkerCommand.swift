import API
import ArgumentParser
import CWOM
import Foundation
import Hummingbird
import NIOCore
import LegacyTasks
import Logging
import ServiceLifecycle
import Storage
import UnixSignals
import TowerJSON
import Worker

/// Worker settings, from flags or environment variables (legacy names first).
struct WorkerOptions: ParsableArguments {
    /// A boolean environment variable read as pydantic-settings reads them (true/false, 1/0,
    /// yes/no, on/off, any case); unset or empty is false, anything else stops the command.
    static func flag(_ name: String, _ environment: [String: String]) throws -> Bool {
        guard let text = environment[name]?.trimmingCharacters(in: .whitespaces), !text.isEmpty else { return false }
        guard let value = ObjectReader.laxBool(.string(text)) else {
            throw CommandError("\(name) must be true or false (or 1/0, yes/no, on/off), not '\(text)'")
        }
        return value
    }

    /// `JCT_REVIEW_AUTO_APPROVE` and `JCT_REVIEW_AUTO_APPROVE_VERDICTS`: what a finished run's
    /// review policy does, for workers and for agents' completions over MCP alike.
    static func reviewPolicy(_ environment: [String: String]) throws -> ReviewPolicy {
        let autoApprove = try Self.flag("JCT_REVIEW_AUTO_APPROVE", environment)
        let verdicts = (environment["JCT_REVIEW_AUTO_APPROVE_VERDICTS"] ?? "pass").split(separator: ",")
            .map { $0.trimmingCharacters(in: .whitespaces).lowercased() }.filter { !$0.isEmpty }
        for verdict in verdicts where Verdict(rawValue: verdict) == nil {
            throw CommandError(
                "JCT_REVIEW_AUTO_APPROVE_VERDICTS: '\(verdict)' is not a verdict (\(Verdict.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        return ReviewPolicy(autoApprove: autoApprove, verdicts: verdicts)
    }

    @Option(help: "Tasks run at once (default: $WORKER_CONCURRENCY, else the number of cores).")
    var concurrency: Int?

    @Option(help: "Seconds between polls when nothing wakes the worker (default: $WORKER_POLL_INTERVAL, else 5).")
    var pollInterval: Double?

    @Option(help: "Root folder of the trace folders (default: $JCT_TRACE_ROOT, else .tower/runs).")
    var traceRoot: String?

    @Option(help: "Root folder of the executors' workspaces, one per Run (default: $TOWER_WORKSPACE_ROOT, else workspaces/ beside the trace root).")
    var workspaceRoot: String?

    @Flag(help: "Keep each Run's workspace after it ends, for debugging (default: $TOWER_KEEP_WORKSPACES, else removed).")
    var keepWorkspaces = false

    @Option(help: "Seconds running work may finish after SIGTERM before it is requeued (default: $WORKER_GRACE_PERIOD, else 30).")
    var gracePeriod: Double?

    @Option(help: "Seconds a claim holds without a heartbeat (default: $WORKER_LEASE_SECONDS, else 30).")
    var leaseSeconds: Double?

    @Option(help: "stub or command (default: $TOWER_EXECUTOR, else stub).")
    var executor: String?

    func configuration(environment: [String: String]) throws -> WorkerConfiguration {
        // Bounded above as well: a value past what a timer or a timestamp holds (`1e300`)
        // trapped in the worker's first poll or claim instead of being refused here.
        func number(_ flag: Double?, _ name: String, default value: Double, max: Double) throws -> Double {
            if let flag {
                // `WORKER_LEASE_SECONDS` is given as `--lease-seconds`.
                let option = "--" + name.dropFirst("WORKER_".count).lowercased().replacingOccurrences(of: "_", with: "-")
                guard flag > 0, flag <= max else {
                    throw CommandError("\(option) must be a positive number of seconds up to \(Timers.secondsText(max)), not \(Timers.secondsText(flag))")
                }
                return flag
            }
            guard let text = environment[name], !text.isEmpty else { return value }
            guard let parsed = Double(text), parsed > 0, parsed <= max else {
                throw CommandError("\(name) must be a positive number of seconds up to \(Timers.secondsText(max)), not '\(text)'")
            }
            return parsed
        }
        let cores = ProcessInfo.processInfo.activeProcessorCount
        let concurrency: Int
        if let flag = self.concurrency {
            concurrency = flag
        } else if let text = environment["WORKER_CONCURRENCY"], !text.isEmpty {
            guard let parsed = Int(text) else { throw CommandError("WORKER_CONCURRENCY must be a whole number of slots from 1 to 1024, not '\(text)'") }
            concurrency = parsed
        } else {
            concurrency = cores
        }
        guard (1...1024).contains(concurrency) else {
            throw CommandError("the worker's concurrency (--concurrency, WORKER_CONCURRENCY) must be from 1 to 1024 slots, not \(concurrency)")
        }
        let root = try WorkerConfiguration.traceRoot(from: traceRoot ?? environment["JCT_TRACE_ROOT"], default: ".tower/runs")
        let review = try Self.reviewPolicy(environment)
        let (autoApprove, verdicts) = (review.autoApprove, review.verdicts)
        var configuration = WorkerConfiguration(
            concurrency: concurrency, pollInterval: try number(pollInterval, "WORKER_POLL_INTERVAL", default: 5, max: 3_600),
            leaseSeconds: try number(leaseSeconds, "WORKER_LEASE_SECONDS", default: 30, max: 86_400),
            gracePeriodSeconds: try number(gracePeriod, "WORKER_GRACE_PERIOD", default: 30, max: 86_400), retry: try Self.retryPolicy(environment),
            traceRoot: root, retention: try Self.retention(environment),
            workspaceRoot: try WorkerConfiguration.workspaceRoot(from: workspaceRoot ?? environment["TOWER_WORKSPACE_ROOT"], traceRoot: root),
            keepWorkspaces: try keepWorkspaces || Self.flag("TOWER_KEEP_WORKSPACES", environment), executors: try executors(environment), reviewAutoApprove: autoApprove, autoApproveVerdicts: verdicts)
        // A lease that can run out between two heartbeats lets another worker rescue a task that
        // still runs, and run it again.
        guard configuration.leaseSeconds >= 2 * configuration.heartbeatSeconds else {
            throw CommandError(
                "WORKER_LEASE_SECONDS (--lease-seconds) must be at least \(Timers.secondsText(2 * configuration.heartbeatSeconds)), not \(Timers.secondsText(configuration.leaseSeconds)): "
                    + "the heartbeat renews leases every \(Timers.secondsText(configuration.heartbeatSeconds)) s, and a lease that runs out "
                    + "while its task runs lets another worker run the task again")
        }
        configuration.claimGather = try Self.milliseconds("TOWER_CLAIM_GATHER_MS", environment) ?? configuration.claimGather
        configuration.completionLinger = try Self.milliseconds("TOWER_COMPLETION_LINGER_MS", environment) ?? configuration.completionLinger
        configuration.artifactLimit = try Self.artifactLimit(environment)
        return configuration
    }

    /// `TOWER_ARTIFACT_LIMIT`: how many files of a Run's `artifacts/` become Artifacts (default
    /// 10000; 0: every one).
    static func artifactLimit(_ environment: [String: String]) throws -> Int? {
        guard let text = environment["TOWER_ARTIFACT_LIMIT"]?.trimmingCharacters(in: .whitespaces), !text.isEmpty else {
            return RunRecorder.defaultArtifactLimit
        }
        guard let limit = Int(text), limit >= 0 else {
            throw CommandError("TOWER_ARTIFACT_LIMIT must be a whole number of files (0: no limit), not '\(text)'")
        }
        return limit == 0 ? nil : limit
    }

    /// A duration in milliseconds from 0 to 1000 (fractions allowed), nil when unset or empty.
    static func milliseconds(_ name: String, _ environment: [String: String]) throws -> Duration? {
        guard let text = environment[name], !text.isEmpty else { return nil }
        guard let milliseconds = Double(text), milliseconds >= 0, milliseconds <= 1_000 else {
            throw CommandError("\(name) must be a number of milliseconds from 0 to 1000, not '\(text)'")
        }
        return .microseconds(Int(milliseconds * 1_000))
    }

    /// `TOWER_RETENTION_DAYS` (fractions allowed; unset or empty: no retention) and
    /// `TOWER_RETENTION_DELETE_TASKS`: the maintenance loop's pass, and `tower prune`'s default.
    static func retention(_ environment: [String: String]) throws -> Retention.Options? {
        guard let text = environment["TOWER_RETENTION_DAYS"]?.trimmingCharacters(in: .whitespaces), !text.isEmpty else { return nil }
        guard let days = Double(text), days >= 0, days <= Retention.Options.longestAge / 86_400 else {
            throw CommandError("TOWER_RETENTION_DAYS must be a number of days from 0 to 36500, not '\(text)'")
        }
        return Retention.Options(olderThan: days * 86_400, deleteTasks: try flag("TOWER_RETENTION_DELETE_TASKS", environment))
    }

    /// `TOWER_RETRY_MAX_ATTEMPTS`, `TOWER_RETRY_BASE_DELAY` (each with `_<OPERATION>`),
    /// `TOWER_RETRY_TIMEOUTS`: read by the API (the attempts a new task gets) and the worker (the
    /// delay after a failure) alike.
    static func retryPolicy(_ environment: [String: String]) throws -> RetryPolicy {
        do {
            return try RetryPolicy(environment: environment)
        } catch {
            throw CommandError(error.description)
        }
    }

    /// `TOWER_EXECUTOR_OUTPUT_LIMIT_MB`: the MiB each of a command's `stdout.log` and `stderr.log`
    /// keeps (default 64; 0: no limit).
    static func outputLimit(_ environment: [String: String]) throws -> Int? {
        guard let text = environment["TOWER_EXECUTOR_OUTPUT_LIMIT_MB"]?.trimmingCharacters(in: .whitespaces), !text.isEmpty else {
            return CommandExecutor.defaultOutputLimit
        }
        guard let megabytes = Int(text), megabytes >= 0, megabytes <= 1 << 30 else {
            throw CommandError("TOWER_EXECUTOR_OUTPUT_LIMIT_MB must be a whole number of MiB (0: no limit), not '\(text)'")
        }
        return megabytes == 0 ? nil : megabytes << 20
    }

    /// `TOWER_EXECUTOR=command` runs `TOWER_EXECUTOR_COMMAND` (or `TOWER_EXECUTOR_COMMAND_<OPERATION>`
    /// for one operation); `TOWER_SANDBOX=1` cuts the network of tasks that do not allow it.
    func executors(_ environment: [String: String]) throws -> ExecutorRegistry {
        let kind = executor ?? environment["TOWER_EXECUTOR"] ?? "stub"
        let sandbox = try Self.flag("TOWER_SANDBOX", environment)
        let outputLimit = try Self.outputLimit(environment)
        switch kind {
        case "stub":
            return ExecutorRegistry()
        case "command":
            var registry = ExecutorRegistry()
            var any = false
            // A program no task could start is reported now, not as the failure of every task.
            func command(_ name: String) throws -> CommandExecutor? {
                guard let line = environment[name], !line.isEmpty else { return nil }
                let executor = try CommandExecutor(commandLine: line, sandbox: sandbox, outputLimit: outputLimit)
                do { _ = try executor.checkedExecutable(path: environment["PATH"]) } catch { throw CommandError("\(name): \(error)") }
                any = true
                return executor
            }
            if let fallback = try command("TOWER_EXECUTOR_COMMAND") { registry.fallback = fallback }
            for operation in TaskOperation.allCases {
                registry.byOperation[operation] = try command("TOWER_EXECUTOR_COMMAND_\(operation.rawValue.uppercased())")
            }
            guard any else {
                throw CommandError("TOWER_EXECUTOR=command needs TOWER_EXECUTOR_COMMAND (or TOWER_EXECUTOR_COMMAND_<OPERATION>)")
            }
            return registry
        default:
            throw CommandError("unknown executor '\(kind)': use stub or command")
        }
    }
}

struct WorkerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker",
        abstract: "Run a bridge worker: claim queued tasks, execute them, record Runs, Artifacts and traces.",
        discussion: """
            Runs until SIGTERM or SIGINT, then stops claiming, lets running work finish within the grace \
            period and requeues the rest. Any number of workers may share one PostgreSQL database.

            Environment: DATABASE_URL, WORKER_CONCURRENCY, WORKER_POLL_INTERVAL, JCT_TRACE_ROOT, TOWER_WORKSPACE_ROOT, \
            TOWER_KEEP_WORKSPACES, TOWER_EXECUTOR, TOWER_EXECUTOR_COMMAND, TOWER_EXECUTOR_OUTPUT_LIMIT_MB, TOWER_ARTIFACT_LIMIT, TOWER_SANDBOX, TOWER_RETRY_*, TOWER_RETENTION_DAYS, \
            TOWER_RETENTION_DELETE_TASKS, TOWER_WORKER_THREADS, JCT_REVIEW_AUTO_APPROVE, JCT_REVIEW_AUTO_APPROVE_VERDICTS, LOG_LEVEL.
            """
    )

    @OptionGroup var database: DatabaseOptions
    @OptionGroup var worker: WorkerOptions

    @Option(help: "Serve Prometheus /metrics on this port (default: $WORKER_METRICS_PORT; off when unset).")
    var metricsPort: Int?

    func run() async throws {
        let environment = ProcessInfo.processInfo.environment
        // First: a worker process runs Swift concurrency on NIO's event loops, where its
        // PostgreSQL connections live, so that a drain's claims, statements, completions and
        // timers do not change threads (docs/worker.md, "Where a worker's code runs").
        let threads = try LoopThreads.read(environment, "TOWER_WORKER_THREADS")
        let onEventLoops = EventLoops.runConcurrency(threads: threads)
        let logger = Logger(label: "tower")
        let configuration = try worker.configuration(environment: environment)
        let location = try database.location()
        var port = try metricsPort.map { try ListenPort.checked($0, from: "--metrics-port", anyAllowed: false) }
        if port == nil, let text = environment["WORKER_METRICS_PORT"], !text.isEmpty {
            port = try ListenPort.parsed(text, from: "WORKER_METRICS_PORT", anyAllowed: false)
        }
        // The same keys as the API: with keys configured, /metrics needs a read key unless
        // TOWER_METRICS_PUBLIC=true.
        let metrics = try port.map { ($0, AccessControl(try APIOptions.access(environment)), try APIOptions.limits(environment)) }
        try await database.withDatabase(poolSize: try database.resolvedPoolSize(), logger: logger) { db in
            logger.info(
                "worker for \(location)",
                metadata: [
                    "worker_id": "\(configuration.workerId)", "concurrency": "\(onEventLoops ? "event loops" : "dispatch")",
                    "threads": "\(threads)",
                ])
            try await serve(db, configuration: configuration, metrics: metrics, logger: logger)
        }
    }


    func serve(_ db: Database, configuration: WorkerConfiguration, metrics: (port: Int, access: AccessControl, limits: HTTPLimits)?,
        logger: Logger) async throws
    {
        let service = BridgeWorker(database: db, configuration: configuration, logger: logger)
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = []
        if let (port, access, limits) = metrics {
            let responder = CallbackResponder<BasicRequestContext> { request, _ in
                guard request.uri.path == "/metrics" else { return Response(status: .notFound) }
                let asked = APIRequest(
                    method: request.method.rawValue, path: "/metrics", query: nil,
                    headers: request.headers.map { (name: $0.name.canonicalName, value: $0.value) }, body: [])
                do {
                    _ = try access.admit(asked, to: .metrics, route: "GET /metrics")
                } catch let refusal as APIError {
                    return TowerAPI.encode(refusal.response)
                }
                return Response(
                    status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                    body: ResponseBody(byteBuffer: ByteBuffer(string: Telemetry.emit())))
            }
            services.append(
                .init(
                    service: Application(
                        responder: responder, server: HTTPServer.builder(limits, logger: logger),
                        configuration: .init(address: .hostname("0.0.0.0", port: port)), logger: logger)))
        }
        services.append(.init(service: service, successTerminationBehavior: .gracefullyShutdownGroup))
        let group = ServiceGroup(
            configuration: .init(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await runServices(group, listeningOn: "0.0.0.0:\(metrics?.port ?? 0) (metrics)")
    }
}

/// The event loops a long-running process runs Swift concurrency and its PostgreSQL connections
/// on (`EventLoops.runConcurrency`): `TOWER_WORKER_THREADS` for `tower worker`,
/// `TOWER_API_THREADS` for `tower api` and `tower serve` (`APILoops`); `defaultThreads` (one
/// unless said) when unset, 1 to 1024.
enum LoopThreads {
    static func read(_ environment: [String: String], _ variable: String, default defaultThreads: Int = 1) throws -> Int {
        guard let text = environment[variable], !text.isEmpty else { return defaultThreads }
        guard let threads = Int(text), (1...1024).contains(threads) else {
            throw CommandError("\(variable) must be a number of threads from 1 to 1024, not '\(text)'")
        }
        return threads
    }
}
