import ArgumentParser
import CWOM
import Foundation
import Logging
import Storage
import Worker

/// `tower prune`: one retention pass (docs/operations.md, "Retention").
struct PruneCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prune",
        abstract: "Delete the trace folders of old finished Runs (and, if asked, old finished task rows).",
        discussion: """
            Trace folders of Runs that ended (done, failed, canceled) longer ago than --older-than are deleted; their \
            Artifacts are kept and marked pruned. CWOM objects and the audit log are never deleted. Runs under review \
            are never pruned. Works in short batches and audits every deletion; with several processes on one \
            PostgreSQL database, one prunes at a time. Environment: DATABASE_URL, TOWER_RETENTION_DAYS (the default age).
            """
    )

    @OptionGroup var database: DatabaseOptions

    @Option(help: "Age: 30d, 12h, 90m, 0d (default: $TOWER_RETENTION_DAYS days).")
    var olderThan: String?

    @Option(help: "Comma-separated Run statuses whose trace folders go (default: done,failed,canceled).")
    var status: String?

    @Flag(help: "Also delete the legacy rows of finished tasks (their CWOM records stay).")
    var deleteTasks = false

    @Flag(help: "Count what would go; change nothing.")
    var dryRun = false

    @Option(help: "Rows per batch (one short transaction each).")
    var batchSize = 200

    func run() async throws {
        let logger = Logger(label: "tower")
        let environment = ProcessInfo.processInfo.environment
        var options: Retention.Options
        if let olderThan {
            guard let age = Retention.Options.age(olderThan) else {
                throw ValidationError("--older-than must be a number and a unit (d, h, m or s), such as 30d, up to 36500d, not '\(olderThan)'")
            }
            options = Retention.Options(olderThan: age)
        } else if let configured = try WorkerOptions.retention(environment) {
            options = configured
        } else {
            throw ValidationError("give --older-than (such as 30d) or set TOWER_RETENTION_DAYS")
        }
        if let status { options.statuses = try Self.statuses(status) }
        options.deleteTasks = options.deleteTasks || deleteTasks
        options.dryRun = dryRun
        guard batchSize > 0 else { throw ValidationError("--batch-size must be at least 1") }
        options.batchSize = batchSize
        let actor = Actor(kind: .human, id: environment["USER"] ?? "cli", display: "tower prune")
        let report = try await database.withDatabase(logger: logger) { db in
            let retention = Retention(database: db, engine: LifecycleEngine(database: db), actor: actor, logger: logger)
            return try await retention.prune(options) { progress in
                FileHandle.standardError.write(Data("pruning: \(progress)\n".utf8))
            }
        }
        print((dryRun ? "would prune: " : "pruned: ") + report.description)
        if report.locked { throw ExitCode(5) }
    }

    /// Run statuses, also under the task names people type (`completed`, `cancelled`).
    static func statuses(_ text: String) throws -> [Status] {
        try text.split(separator: ",").map { word in
            let name = word.trimmingCharacters(in: .whitespaces).lowercased()
            let aliases = ["completed": "done", "cancelled": "canceled"]
            guard let status = Status(rawValue: aliases[name] ?? name), Retention.Options.finalStatuses.contains(status) else {
                throw ValidationError("--status takes done, failed and canceled (the final Run statuses), not '\(name)'")
            }
            return status
        }
    }
}
