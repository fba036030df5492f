import ArgumentParser
import Foundation
import Logging
import Storage
import TowerJSON
import Worker

#if canImport(Glibc)
    import Glibc
#endif

struct BackfillCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backfill",
        abstract: "Give every legacy task without CWOM objects its Repo, Issue, ContextPacket, ConstraintSnapshot (and Run and Artifacts when finished).",
        discussion: """
            Idempotent and resumable: a task that has its issue is never touched again, so a second run reports nothing \
            to do and a run stopped with Ctrl-C continues where it stopped. Safe while workers and the legacy API run on \
            the same database. See docs/migration.md.
            """
    )

    @OptionGroup var database: DatabaseOptions
    @Option(help: "Tasks per transaction.") var batchSize = 2000
    @Flag(help: "Report what would be created without writing anything.") var dryRun = false
    @Flag(help: "Print the final report as JSON.") var json = false

    func validate() throws {
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be at least 1") }
    }

    func run() async throws {
        let logger = Logger(label: "tower")
        let (batchSize, dryRun, json) = (batchSize, dryRun, json)
        let report = try await database.withDatabase(logger: logger) { db -> BackfillReport? in
            let backfill = Backfill(database: db, batchSize: batchSize, dryRun: dryRun, logger: logger)
            let total = try await backfill.remaining()
            if total == 0 { return nil }
            let progress = Progress(total: total, terminal: isatty(STDOUT_FILENO) == 1 && !json)
            if !json { print("\(dryRun ? "Dry run: would migrate" : "Migrating") \(total) tasks in batches of \(batchSize)") }
            let report = try await backfill.run { done in await progress.update(done) }
            await progress.finish()
            return report
        }
        guard let report else {
            print(json ? BackfillReport().json.serialized() : "Nothing to do: every task has its CWOM objects.")
            return
        }
        if json {
            print(report.json.serialized(.init(pretty: true)))
            return
        }
        print("\n\(dryRun ? "Would migrate" : "Migrated") \(report.migrated) tasks.")
        print("By status:")
        for (status, count) in report.byStatus.sorted(by: { $0.key < $1.key }) { print("  \(status): \(count)") }
        print("By repo:")
        for (repo, count) in report.byRepo.sorted(by: { $0.value > $1.value || ($0.value == $1.value && $0.key < $1.key) }) {
            print("  \(repo): \(count)")
        }
        print("Objects \(dryRun ? "to create" : "created"): " + report.created.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
        if !report.analyzed.isEmpty { print("Planner statistics refreshed (ANALYZE): " + report.analyzed.joined(separator: ", ")) }
        if !report.failures.isEmpty {
            print("Not migrated (\(report.failures.count)):")
            for failure in report.failures { print("  \(failure.taskId): \(failure.reason)") }
            throw ExitCode(2)
        }
    }
}

/// A progress bar with rate and ETA on a terminal; a line every few seconds otherwise.
actor Progress {
    let total: Int
    let terminal: Bool
    let start = Date()
    var lastLine = Date.distantPast

    init(total: Int, terminal: Bool) {
        self.total = total
        self.terminal = terminal
    }

    func update(_ done: Int) {
        let elapsed = Date().timeIntervalSince(start)
        let rate = elapsed > 0 ? Double(done) / elapsed : 0
        let eta = rate > 0 ? Double(max(0, total - done)) / rate : 0
        let fraction = total > 0 ? min(1, Double(done) / Double(total)) : 1
        let text = String(format: "%d/%d (%.0f%%)  %.0f tasks/s  ETA %.0fs", done, total, fraction * 100, rate, eta)
        if terminal {
            let width = 30
            let filled = Int(fraction * Double(width))
            let bar = "\r[" + String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled) + "] " + text
            FileHandle.standardOutput.write(Data(bar.utf8))
        } else if Date().timeIntervalSince(lastLine) >= 5 || done >= total {
            lastLine = Date()
            print("progress: " + text)
        }
    }

    func finish() { if terminal { FileHandle.standardOutput.write(Data("\n".utf8)) } }
}
