import Bridge
import CWOM
import Foundation
import LegacyTasks
import Logging
import Storage
import TowerJSON

/// What a backfill did (or, in a dry run, would do).
public struct BackfillReport: Sendable {
    public var migrated = 0
    public var byStatus: [String: Int] = [:]
    public var byRepo: [String: Int] = [:]
    public var created = ["Repo": 0, "Issue": 0, "ContextPacket": 0, "ConstraintSnapshot": 0, "Run": 0, "Artifact": 0]
    public var failures: [(taskId: String, reason: String)] = []
    /// The slugs behind `created["Repo"]`: a dry run's batches each find the same new slug.
    var newRepos: Set<String> = [] {
        didSet { created["Repo"] = newRepos.count }
    }
    /// The tables with planner statistics after the backfill (PostgreSQL; see `run`).
    public var analyzed: [String] = []

    public init() {}

    public var json: JSONValue {
        [
            "migrated": .int(migrated), "by_status": .object(JSONObject(byStatus.sorted { $0.key < $1.key }.map { ($0.key, .int($0.value)) })),
            "by_repo": .object(JSONObject(byRepo.sorted { $0.key < $1.key }.map { ($0.key, .int($0.value)) })),
            "created": .object(JSONObject(created.sorted { $0.key < $1.key }.map { ($0.key, .int($0.value)) })),
            "failures": .array(failures.map { ["task_id": .string($0.taskId), "reason": .string($0.reason)] }),
            "analyzed_tables": .array(analyzed.map { .string($0) }),
        ]
    }
}

/// Migrates legacy tasks without CWOM objects (reference §3, docs/migration.md): live tasks get
/// Repo, Issue, ContextPacket and ConstraintSnapshot exactly as intake makes them; finished tasks
/// also get a Run that reflects what happened and Artifacts for their trace folder. Batched,
/// idempotent (a task with an issue is never touched again), resumable, and safe next to running
/// workers and the legacy API (rows are locked and the final attach is fenced). Each batch is one
/// operation of the lifecycle engine, which writes the objects and their audit rows; this type
/// says what a legacy task becomes, and loops, retries and reports.
public struct Backfill: Sendable {
    public let database: Database
    let engine: LifecycleEngine
    public var batchSize: Int
    public var dryRun: Bool
    let logger: Logger
    static let actor = Actor(kind: .system, id: "backfill", display: "tower backfill")

    public init(database: Database, batchSize: Int = 2000, dryRun: Bool = false, logger: Logger = Logger(label: "tower.backfill")) {
        self.database = database
        self.engine = LifecycleEngine(database: database)
        self.batchSize = max(1, batchSize)
        self.dryRun = dryRun
        self.logger = logger
    }

    public func remaining() async throws -> Int { try await database.read { try await $0.backfill.remaining() } }

    /// Runs batches until nothing is left; `progress(done)` after each batch.
    public func run(progress: @Sendable (Int) async -> Void = { _ in }) async throws -> BackfillReport {
        var report = BackfillReport()
        var cursor = ""
        var retries = 0
        while true {
            let batchReport: BackfillReport
            let last: String?
            do {
                (batchReport, last) = try await batch(after: cursor)
            } catch let conflict as LifecycleEngine.ConcurrentAdoption where retries < Self.maxRetries {
                // The batch was rolled back; the tasks a worker adopted meanwhile are no longer candidates.
                retries += 1
                logger.info("batch retried", metadata: ["reason": "\(conflict)", "retry": "\(retries)"])
                continue
            }
            retries = 0
            guard let last else { break }
            cursor = last
            report.migrated += batchReport.migrated
            for (k, v) in batchReport.byStatus { report.byStatus[k, default: 0] += v }
            for (k, v) in batchReport.byRepo { report.byRepo[k, default: 0] += v }
            for (k, v) in batchReport.created where k != "Repo" { report.created[k, default: 0] += v }
            report.newRepos.formUnion(batchReport.newRepos)
            report.failures += batchReport.failures
            await progress(report.migrated + report.failures.count)
            if Task.isCancelled { break }
        }
        if !dryRun && report.migrated > 0 {
            // A backfill is a bulk load: the tables it filled get their statistics now, not at
            // autovacuum's next pass, or the workers' first claims plan them as nearly empty and
            // read them whole (`StatisticsRepository`). A failure here loses nothing. Without a
            // statement deadline, as a schema change: sampling large tables may take a while.
            do {
                report.analyzed = try await database.driver.writeSchema { try await Store(session: $0).statistics.refreshAfterBulkLoad() }
                if !report.analyzed.isEmpty { logger.info("planner statistics refreshed", metadata: ["tables": "\(report.analyzed.joined(separator: ", "))"]) }
            } catch {
                logger.warning("planner statistics not refreshed after the backfill; autovacuum will", metadata: ["error": "\(error)"])
            }
        }
        return report
    }

    /// One engine transaction (`LifecycleEngine.adoptLegacyTasks`): up to `batchSize` tasks,
    /// each given the objects `adoption` builds. Returns the last task id seen (nil when done).
    func batch(after cursor: String) async throws -> (BackfillReport, String?) {
        // The trace folders of the batch's finished tasks are read and hashed before its
        // transaction, not in it: on SQLite the transaction holds the one writer, and an enqueue
        // sent during a backfill waited out whole batches while folders were read in them
        // (docs/migration.md). A folder the batch did not foresee (a task that finished
        // meanwhile) is read in the transaction.
        let paths = try await database.read { try await $0.backfill.tracePaths(after: cursor, limit: batchSize) }
        let folders = Dictionary(paths.map { ($0.path, Self.traceFolder($0.path, taskId: $0.taskId)) }) { first, _ in first }
        let batch = try await engine.adoptLegacyTasks(after: cursor, limit: batchSize, dryRun: dryRun, by: Self.actor) { task, repo, now in
            Self.adoption(for: task, repo: repo, now: now, folders: folders)
        }
        var report = BackfillReport()
        report.failures = batch.failures
        report.newRepos = Set(batch.reposCreated)
        for (task, adoption) in batch.adopted {
            report.migrated += 1
            report.byStatus[task.status.rawValue, default: 0] += 1
            report.byRepo[task.target.repo, default: 0] += 1
            report.created["Issue", default: 0] += 1
            report.created["ContextPacket", default: 0] += 1
            report.created["ConstraintSnapshot", default: 0] += 1
            if adoption.run != nil {
                report.created["Run", default: 0] += 1
                report.created["Artifact", default: 0] += adoption.artifacts.count
            }
        }
        return (report, batch.last)
    }

    static let maxRetries = 5

    /// What a legacy task becomes (its repository already normalised, its Repo found or made):
    /// Issue, ContextPacket and ConstraintSnapshot exactly as intake makes them, stamped with the
    /// task's own times and trace id, the Issue in the status the task reached; and for a
    /// finished task the Run that records what happened, with Artifacts for its trace folder.
    /// `folders` holds the trace folders already read, by `trace_path`; another is read here.
    public static func adoption(for task: TaskRecord, repo: Repo, now: Timestamp, folders: [String: TraceFolder] = [:])
        -> LifecycleEngine.LegacyAdoption
    {
        let actor = Actor(
            kind: ActorKind(rawValue: task.requestedBy.kind.rawValue) ?? .system, id: task.requestedBy.id,
            display: task.requestedBy.label)
        let created = task.createdAt ?? task.queuedAt ?? now
        var cwom = TaskBridge.cwom(
            for: task, repo: repo, actor: actor, acceptanceCriteria: Self.strings(task.metadata["acceptance_criteria"]),
            evidenceRequirements: Self.strings(task.metadata["evidence_requirements"]), now: created)
        cwom.issue.header.traceId = task.traceId
        cwom.issue.status = Self.issueStatus(task.status)
        cwom.issue.meta["backfilled_at"] = .string(now.iso8601)
        let snapshot = cwom.constraintSnapshot
        let packet = cwom.contextPacket
        var adoption = LifecycleEngine.LegacyAdoption(
            issue: cwom.issue,
            packet: ContextPacket(
                header: ObjectHeader(id: packet.id, traceId: task.traceId), forIssue: packet.forIssue, version: packet.version,
                summary: packet.summary, assumptions: packet.assumptions, instructions: packet.instructions,
                constraintSnapshot: packet.constraintSnapshot, meta: packet.meta, createdAt: created),
            snapshot: ConstraintSnapshot(
                header: ObjectHeader(id: snapshot.id, traceId: task.traceId), scope: snapshot.scope,
                capturedAt: snapshot.capturedAt, owner: snapshot.owner, constraints: snapshot.constraints, meta: snapshot.meta))
        if task.status.isFinished {
            let folder = task.tracePath.map { folders[$0] ?? Self.traceFolder($0, taskId: task.id) }
            let (run, artifacts) = Self.run(for: task, issue: cwom.issue, packet: packet, snapshot: snapshot, folder: folder, now: now)
            adoption.issue.runs = [run.ref]
            adoption.run = run
            adoption.artifacts = artifacts
        }
        return adoption
    }

    static func strings(_ value: JSONValue?) -> [String] { (value?.arrayValue ?? []).compactMap(\.stringValue) }

    static func issueStatus(_ status: TaskStatus) -> Status {
        switch status {
        case .pending, .queued: return .planned
        case .running: return .running
        case .completed: return .done
        case .failed: return .failed
        case .cancelled: return .canceled
        }
    }

    /// A legacy task's trace folder (`trace_path`, a `file:` URL), with its files when it can be
    /// read.
    public struct TraceFolder: Sendable {
        public var root: URL?
        public var files: [TraceFile]?
    }

    /// Reads the folder a `trace_path` names: nil `root` for anything but a `file:` URL, nil
    /// `files` for a folder that is gone or unreadable, or not named after its task (as the
    /// legacy worker names a folder it makes without a Run). Any write key sets a task's
    /// `trace_path` (`PATCH /tasks/{id}/status`): `file:///` would have had the backfill hash the
    /// whole file system, and block for ever on a file such as `/proc/kmsg`.
    public static func traceFolder(_ tracePath: String, taskId: String) -> TraceFolder {
        guard let url = URL(string: tracePath), url.isFileURL else { return TraceFolder() }
        let folder = URL(fileURLWithPath: url.path, isDirectory: true).standardizedFileURL
        guard folder.lastPathComponent == taskId, FileManager.default.fileExists(atPath: folder.path) else { return TraceFolder(root: url) }
        return TraceFolder(root: url, files: try? TraceFile.scan(path: folder.path))
    }

    /// The Run of a finished legacy task, with Artifacts for its trace `folder` and the files in it.
    static func run(for task: TaskRecord, issue: Issue, packet: ContextPacket, snapshot: ConstraintSnapshot, folder: TraceFolder?,
        now: Timestamp) -> (Run, [Artifact])
    {
        let started = task.startedAt ?? task.queuedAt ?? task.createdAt ?? now
        let ended = max(task.completedAt ?? started, started)
        let worker = String((task.assignedTo.flatMap { $0.isEmpty ? nil : $0 } ?? "unknown").prefix(128))
        let status: Status
        var failure: Failure?
        switch task.status {
        case .completed: status = .done
        case .cancelled: status = .canceled
        default:
            status = .failed
            let message = task.error.flatMap { $0.isEmpty ? nil : $0 } ?? "the legacy task failed without an error message"
            failure = Failure(category: .unknown, message: String(message.prefix(4000)))
        }
        let resultText = task.result.map { $0.serialized() }
        let summary = task.result?["message"]?.stringValue ?? resultText
        let root = folder?.root
        let runId = ULID.make()
        var run = Run(
            header: ObjectHeader(id: runId, traceId: task.traceId), forIssue: issue.ref, repo: issue.repo, status: status, mode: .system,
            executor: Executor(actor: Actor(kind: worker == "claude-code" ? .agent : .system, id: worker), runtime: "jct-legacy"),
            inputs: RunInputs(contextPackets: [packet.ref], constraintSnapshot: snapshot.ref),
            telemetry: Telemetry(startedAt: started, endedAt: ended, durationS: ended.seconds(since: started)),
            outputs: RunOutputs(resultSummary: summary.map { String($0.prefix(4000)) }), failure: failure,
            artifactRootUri: root.map { $0.absoluteString.hasSuffix("/") ? $0.absoluteString : $0.absoluteString + "/" },
            meta: ["task_id": .string(task.id), "backfilled": true, "task_result": task.result ?? .null],
            createdAt: started, updatedAt: ended)
        var artifacts: [Artifact] = []
        if let root {
            let base = URL(fileURLWithPath: root.path, isDirectory: true)
            var digest: String?
            var size: Int?
            if let files = folder?.files {
                digest = TraceFile.digest(files)
                size = files.reduce(0) { $0 + $1.size }
                for file in files where file.path.hasPrefix("artifacts/") {
                    artifacts.append(
                        Artifact(
                            header: ObjectHeader(traceId: task.traceId), producedBy: run.ref, forIssue: issue.ref,
                            type: file.path.hasSuffix(".md") ? .doc : .report, title: String(file.path.dropFirst("artifacts/".count).prefix(512)),
                            uri: base.appendingPathComponent(file.path).absoluteURL.absoluteString, digest: "sha256:" + file.sha256,
                            mediaType: TraceFile.mediaType(file.path), sizeBytes: file.size, createdAt: ended))
                }
            }
            artifacts.append(
                Artifact(
                    header: ObjectHeader(traceId: task.traceId), producedBy: run.ref, forIssue: issue.ref, type: .trace,
                    title: "Trace folder", uri: String((task.tracePath ?? root.absoluteString).prefix(2000)), digest: digest,
                    mediaType: "inode/directory", sizeBytes: size,
                    meta: digest == nil ? ["note": "the trace folder was not readable when the task was backfilled"] : [:],
                    createdAt: ended))
        }
        run.outputs.artifacts = artifacts.map(\.ref)
        return (run, artifacts)
    }
}
