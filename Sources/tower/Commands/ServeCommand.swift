import API
import ArgumentParser
import Foundation
import Hummingbird
import LegacyTasks
import Logging
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
            port = flag
        } else if let text = environment["API_PORT"] {
            guard let value = Int(text), (0...65535).contains(value) else {
                throw CommandError("API_PORT must be a port number (0-65535), not '\(text)'")
            }
            port = value
        } else {
            port = 8000
        }
        let configuration = APIConfiguration(
            apiKey: environment["JCT_API_KEY"],
            policy: PolicyConfig(environmentValue: allowedRepoPrefixes ?? environment["JCT_ALLOWED_REPO_PREFIXES"]),
            version: Tower.version)
        return (host, port, configuration)
    }
}

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the HTTP API (legacy /tasks intake, health) on the embedded default: no configuration needed.",
        discussion: """
            Creates and migrates the database (SQLite at .tower/tower.db unless DATABASE_URL says otherwise),
            then serves on 127.0.0.1:8000 until SIGTERM or SIGINT. Environment: DATABASE_URL, API_HOST, API_PORT,
            JCT_ALLOWED_REPO_PREFIXES, JCT_API_KEY, LOG_LEVEL.
            """
    )

    @OptionGroup var database: DatabaseOptions
    @OptionGroup var api: APIOptions
    @OptionGroup var worker: WorkerOptions

    @Flag(help: "Serve the API only, without the worker (tower api does the same).")
    var noWorker = false

    func run() async throws {
        let logger = try Logs.bootstrap()
        let environment = ProcessInfo.processInfo.environment
        let (host, port, apiConfiguration) = try api.resolved(environment: environment)
        let location = try database.location()
        let workerConfiguration = noWorker ? nil : try worker.configuration(environment: environment)
        try await database.withDatabase(poolSize: try database.resolvedPoolSize(), requireCurrentSchema: false, logger: logger) { db in
            let migrated = try await db.migrator(logger: logger).migrate()
            if !migrated.isEmpty { logger.info("database migrated", metadata: ["migrations": "\(migrated.count)"]) }
            try await serve(
                db, host: host, port: port, configuration: apiConfiguration, worker: workerConfiguration, location: location,
                logger: logger)
        }
    }

    static func describe(_ configuration: APIConfiguration) -> String {
        configuration.policy.allowedRepoPrefixes.isEmpty
            ? "none (every enqueue is rejected: set JCT_ALLOWED_REPO_PREFIXES)"
            : configuration.policy.allowedRepoPrefixes.joined(separator: ", ")
    }

    func serve(_ db: Database, host: String, port: Int, configuration: APIConfiguration, worker: WorkerConfiguration?,
        location: DatabaseLocation, logger: Logger) async throws
    {
        let bridge = worker.map { BridgeWorker(database: db, configuration: $0, logger: logger) }
        // One engine for both: the worker hears of every enqueue, retry and cancel request at once.
        let api = TowerAPI(
            database: db, configuration: configuration, logger: logger, engine: bridge?.engine, metrics: Telemetry.emit)
        let app = Application(
            responder: api, configuration: .init(address: .hostname(host, port: port), serverName: "tower"),
            onServerRunning: { _ in
                logger.info(
                    "serving",
                    metadata: [
                        "address": "http://\(host):\(port)", "database": "\(location)",
                        "allowed_repo_prefixes": "\(Self.describe(configuration))",
                        "auth": "\(configuration.apiKey == nil ? "off" : "bearer key")",
                        "worker": "\(worker.map { "\($0.concurrency) slots, traces in \($0.traceRoot.path)" } ?? "off")",
                    ])
            }, logger: logger)
        // Shutdown runs in reverse: the worker drains first, then the HTTP server stops.
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [.init(service: app)]
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
        abstract: "Run the HTTP API only (no worker), on a database that `tower migrate` has prepared."
    )

    @OptionGroup var database: DatabaseOptions
    @OptionGroup var api: APIOptions

    func run() async throws {
        let logger = try Logs.bootstrap()
        let environment = ProcessInfo.processInfo.environment
        let (host, port, configuration) = try api.resolved(environment: environment)
        let location = try database.location()
        try await database.withDatabase(poolSize: try database.resolvedPoolSize(), logger: logger) { db in
            try await ServeCommand.parse([]).serve(
                db, host: host, port: port, configuration: configuration, worker: nil, location: location, logger: logger)
        }
    }
}
