import CWOM
import Foundation
import LegacyTasks
import Logging
import Metrics
import Storage
import TowerJSON

/// Retention: deletes the trace folders of old finished Runs (their Artifacts are kept, marked
/// pruned) and, when asked, the legacy rows of old finished tasks, in short batches through the
/// lifecycle engine (`pruneTraces`, `pruneTasks`), under a maintenance lock that lets one process
/// prune at a time. `tower prune` runs one pass; a worker with `TOWER_RETENTION_DAYS` runs one
/// every hour (`loop`).
///
/// The policy (docs/operations.md, "Retention"): trace folders, the bulk of the disk, go after
/// the retention period; CWOM objects and the audit log are the record of the work and are never
/// deleted; task rows go only with `deleteTasks`. A Run under review is never pruned.
public struct Retention: Sendable {
    public struct Options: Sendable {
        /// Age, in seconds since the Run (or task) last changed.
        public var olderThan: Double
        /// Run statuses whose trace folders go: the final ones.
        public var statuses: [Status]
        /// Also delete the legacy rows of finished tasks.
        public var deleteTasks: Bool
        /// Count what would go; change nothing.
        public var dryRun: Bool
        public var batchSize: Int

        public static let finalStatuses: [Status] = [.done, .failed, .canceled]

        public init(olderThan: Double, statuses: [Status] = Options.finalStatuses, deleteTasks: Bool = false, dryRun: Bool = false,
            batchSize: Int = 200)
        {
            self.olderThan = olderThan
            self.statuses = statuses
            self.deleteTasks = deleteTasks
            self.dryRun = dryRun
            self.batchSize = max(1, batchSize)
        }

        /// `30d`, `12h`, `90m`, `0d`: a number and a unit (days, hours, minutes, seconds).
        public static func age(_ text: String) -> Double? {
            guard let unit = text.last, let number = Double(text.dropLast()), number >= 0, number.isFinite else { return nil }
            let seconds: Double
            switch unit {
            case "d": seconds = number * 86_400
            case "h": seconds = number * 3600
            case "m": seconds = number * 60
            case "s": seconds = number
            default: return nil
            }
            return seconds <= longestAge ? seconds : nil
        }

        /// A hundred years: an age past what a timestamp can go back (`1e300d`) is refused
        /// rather than trapping in the pass.
        public static let longestAge: Double = 36_500 * 86_400
    }

    /// What a pass did (or, in a dry run, would do).
    public struct Report: Sendable, Equatable, CustomStringConvertible {
        public var traceFolders = 0
        public var bytes = 0
        public var artifacts = 0
        public var tasks = 0
        /// Rows of the worker registry (`tower_workers`) of processes long gone.
        public var workers = 0
        public var batches = 0
        /// Another process held the maintenance lock: this pass stopped.
        public var locked = false
        public init() {}

        public var description: String {
            "\(traceFolders) trace folder(s), \(bytes) bytes, \(artifacts) artifact(s) marked pruned, \(tasks) task row(s) deleted, "
                + "\(workers) worker row(s) deleted in \(batches) batch(es)\(locked ? "; stopped: another process holds the maintenance lock" : "")"
        }
    }

    let database: Database
    let engine: LifecycleEngine
    let actor: Actor
    let logger: Logger

    public init(database: Database, engine: LifecycleEngine, actor: Actor, logger: Logger) {
        self.database = database
        self.engine = engine
        self.actor = actor
        self.logger = logger
    }

    /// One pass: batches until nothing old is left (or the lock is held elsewhere). `progress`
    /// hears the running totals after each batch.
    public func prune(_ options: Options, progress: (@Sendable (Report) -> Void)? = nil) async throws -> Report {
        let cutoff = engine.clock.now().adding(seconds: -options.olderThan)
        let reason = "retention: older than \(Self.describe(options.olderThan))"
        if options.dryRun { return try await peek(options, cutoff: cutoff) }
        var report = Report()
        while true {
            let batch = try await engine.pruneTraces(
                before: cutoff, statuses: options.statuses, limit: options.batchSize, reason: reason, by: actor, delete: Self.deleteFolder)
            if batch.locked { report.locked = true; break }
            report.add(batch)
            TowerMetrics.pruned("trace_folders").increment(by: Int64(batch.runs))
            TowerMetrics.prunedBytes.increment(by: Int64(batch.bytes))
            progress?(report)
            if batch.runs < options.batchSize { break }
        }
        while options.deleteTasks && !report.locked {
            let batch = try await engine.pruneTasks(before: cutoff, limit: options.batchSize, reason: reason, by: actor)
            if batch.locked { report.locked = true; break }
            report.add(batch)
            TowerMetrics.pruned("tasks").increment(by: Int64(batch.tasks))
            progress?(report)
            if batch.tasks < options.batchSize { break }
        }
        if !report.locked {
            report.workers = try await database.write { try await $0.retention.deleteWorkers(before: Self.workerCutoff(cutoff, engine)) }
            TowerMetrics.pruned("workers").increment(by: Int64(report.workers))
            TowerMetrics.pruneRuns.increment()
        }
        logger.info("retention pass", metadata: ["result": "\(report)", "cutoff": "\(cutoff.iso8601)"])
        return report
    }

    /// A dry run: what a pass would remove, read page by page, nothing changed.
    func peek(_ options: Options, cutoff: Timestamp) async throws -> Report {
        var report = Report()
        var offset = 0
        while true {
            let start = offset
            let page = try await database.read { store in
                try await store.retention.unprunedRuns(
                    before: cutoff, statuses: options.statuses, limit: options.batchSize, peek: true, offset: start)
            }
            for candidate in page {
                guard let folder = Self.folder(of: candidate) else { continue }
                report.traceFolders += 1
                report.bytes += Self.size(of: folder)
            }
            report.batches += 1
            offset += page.count
            if page.count < options.batchSize { break }
        }
        report.workers = try await database.read {
            try await $0.retention.deleteWorkers(before: Self.workerCutoff(cutoff, engine), peek: true)
        }
        if options.deleteTasks {
            offset = 0
            while true {
                let start = offset
                let page = try await database.read { store in
                    try await store.retention.finishedTasks(before: cutoff, limit: options.batchSize, peek: true, offset: start)
                }
                report.tasks += page.count
                offset += page.count
                if page.count < options.batchSize { break }
            }
        }
        return report
    }

    /// Runs a pass every `interval` until cancelled; a failed pass is logged and retried at the
    /// next tick. The first pass waits `initialDelay`, so that a restart loop does not prune in a
    /// loop.
    public func loop(_ options: Options, interval: Duration = .seconds(3600), initialDelay: Duration = .seconds(60)) async {
        try? await Task.sleep(for: initialDelay)
        while !Task.isCancelled {
            do {
                _ = try await prune(options)
            } catch {
                logger.error("retention pass failed", metadata: ["error": "\(error)"])
            }
            try? await Task.sleep(for: interval)
        }
    }

    /// Worker rows go after the retention period, and never before a day without a heartbeat:
    /// with `--older-than 0d` a running worker's row (a second old) would go, and come back from
    /// its next heartbeat as a process started then.
    static func workerCutoff(_ cutoff: Timestamp, _ engine: LifecycleEngine) -> Timestamp {
        let aDayAgo = engine.clock.now().adding(seconds: -86_400)
        return cutoff.microseconds < aDayAgo.microseconds ? cutoff : aDayAgo
    }

    // MARK: - Folders

    /// The trace folder of a Run, by the one rule of which folder is a Run's
    /// (`Run.localTraceFolder`: named after the Run, or after the legacy task of a backfilled
    /// one): a uri set any other way can never make retention delete anything else.
    static func folder(of candidate: RetentionRepository.Candidate) -> URL? {
        Run.localTraceFolder(candidate.artifactRootUri, runId: candidate.runId, taskId: candidate.taskId)
    }

    static func size(of folder: URL) -> Int {
        ((try? TraceFile.scan(folder)) ?? []).reduce(0) { $0 + $1.size }
    }

    /// Deletes a Run's trace folder: its size, or nil when it could not be deleted (the Run waits
    /// for a later pass). A folder already gone counts as deleted; a Run with no local folder has
    /// nothing to delete and is marked too.
    @Sendable static func deleteFolder(_ candidate: RetentionRepository.Candidate) -> Int? {
        guard let folder = folder(of: candidate) else { return 0 }
        guard FileManager.default.fileExists(atPath: folder.path) else { return 0 }
        let bytes = size(of: folder)
        do {
            try FileManager.default.removeItem(at: folder)
            return bytes
        } catch {
            return nil
        }
    }

    static func describe(_ seconds: Double) -> String {
        seconds.truncatingRemainder(dividingBy: 86_400) == 0 ? "\(Int(seconds / 86_400))d" : "\(Int(seconds))s"
    }
}

extension Retention.Report {
    mutating func add(_ batch: LifecycleEngine.PruneBatch) {
        traceFolders += batch.runs
        bytes += batch.bytes
        artifacts += batch.artifacts
        tasks += batch.tasks
        batches += 1
    }
}
