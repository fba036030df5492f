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
    public var skippedConcurrently = 0
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
/// workers and the legacy API (rows are locked and the final attach is fenced).
public struct Backfill: Sendable {
    public let database: Database
    public var batchSize: Int
    public var dryRun: Bool
    let logger: Logger
    static let actor = Actor(kind: .system, id: "backfill", display: "tower backfill")

    public init(database: Database, batchSize: Int = 2000, dryRun: Bool = false, logger: Logger = Logger(label: "tower.backfill")) {
        self.database = database
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
            } catch let conflict as ConcurrentAdaptation where retries < Self.maxRetries {
                // The batch was rolled back; the tasks a worker adapted meanwhile are no longer candidates.
                retries += 1
                logger.info("batch retried", metadata: ["reason": "\(conflict)", "retry": "\(retries)"])
                continue
            }
            retries = 0
            guard let last else { break }
            cursor = last
            report.migrated += batchReport.migrated
            report.skippedConcurrently += batchReport.skippedConcurrently
            for (k, v) in batchReport.byStatus { report.byStatus[k, default: 0] += v }
            for (k, v) in batchReport.byRepo { report.byRepo[k, default: 0] += v }
            for (k, v) in batchReport.created { report.created[k, default: 0] += v }
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

    /// One transaction: up to `batchSize` tasks. Returns the last task id seen (nil when done).
    func batch(after cursor: String) async throws -> (BackfillReport, String?) {
        let dryRun = self.dryRun
        let batchSize = self.batchSize
        return try await database.write { store in
            let candidates = try await store.backfill.candidates(after: cursor, limit: batchSize)
            guard let last = candidates.last?.id else { return (BackfillReport(), nil) }
            var report = BackfillReport()
            var tasks: [TaskRecord] = []
            for candidate in candidates {
                switch candidate.task {
                case .success(let task): tasks.append(task)
                case .failure(let error): report.failures.append((candidate.id, error.message))
                }
            }
            // One Repo per normalised slug.
            let slugs = Array(Set(tasks.map { TaskPolicy.normalizeRepo($0.target.repo) }))
            var repos = try await store.backfill.repos(slugs: slugs)
            let now = Timestamp.now()
            var batch = CWOMBatch()
            var attach: [(taskId: String, issueId: String)] = []
            for var task in tasks {
                let slug = TaskPolicy.normalizeRepo(task.target.repo)
                guard !slug.isEmpty else {
                    report.failures.append((task.id, "the task names no repository"))
                    continue
                }
                if repos[slug] == nil {
                    let candidate = Repo(
                        header: ObjectHeader(traceId: task.traceId), name: TaskBridge.repoName(for: slug), slug: slug,
                        source: Source(system: "jct", externalId: slug),
                        defaultBranch: task.target.ref.unicodeScalars.count <= 128 && !task.target.ref.isEmpty ? task.target.ref : "main",
                        createdAt: task.createdAt ?? now)
                    if dryRun {
                        repos[slug] = candidate
                    } else {
                        let (repo, created) = try await store.repos.getOrCreate(candidate)
                        repos[slug] = repo
                        if created {
                            batch.audit.append(
                                AuditEntry(ts: now, actor: Self.actor, action: .created, entityKind: "Repo", entityId: repo.id, after: repo.json, note: "Backfilled", traceId: task.traceId))
                        }
                    }
                    report.created["Repo", default: 0] += 1
                }
                guard let repo = repos[slug] else { continue }
                task.target.repo = slug
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
                batch.snapshots.append(
                    ConstraintSnapshot(
                        header: ObjectHeader(id: snapshot.id, traceId: task.traceId), scope: snapshot.scope,
                        capturedAt: snapshot.capturedAt, owner: snapshot.owner, constraints: snapshot.constraints, meta: snapshot.meta))
                batch.packets.append(
                    ContextPacket(
                        header: ObjectHeader(id: packet.id, traceId: task.traceId), forIssue: packet.forIssue, version: packet.version,
                        summary: packet.summary, assumptions: packet.assumptions, instructions: packet.instructions,
                        constraintSnapshot: packet.constraintSnapshot, meta: packet.meta, createdAt: created))
                if task.status.isFinished {
                    let (run, artifacts) = Self.run(for: task, issue: cwom.issue, packet: packet, snapshot: snapshot, now: now)
                    cwom.issue.runs = [run.ref]
                    batch.runs.append(run)
                    batch.artifacts += artifacts
                    report.created["Run", default: 0] += 1
                    report.created["Artifact", default: 0] += artifacts.count
                    batch.audit.append(
                        AuditEntry(ts: now, actor: Self.actor, action: .created, entityKind: "Run", entityId: run.id,
                            after: ["task_id": .string(task.id), "status": run.status.json],
                            note: "Backfilled from task \(task.id)", traceId: task.traceId))
                }
                batch.issues.append(cwom.issue)
                // A compact snapshot: the objects themselves are one GET away, and the backfill writes many.
                batch.audit.append(
                    AuditEntry(ts: now, actor: Self.actor, action: .created, entityKind: "Issue", entityId: cwom.issue.id,
                        after: ["task_id": .string(task.id), "status": cwom.issue.status.json, "repo_id": .string(repo.id)],
                        note: "Backfilled from task \(task.id)", traceId: task.traceId))
                report.created["Issue", default: 0] += 1
                report.created["ContextPacket", default: 0] += 1
                report.created["ConstraintSnapshot", default: 0] += 1
                attach.append((task.id, cwom.issue.id))
                report.migrated += 1
                report.byStatus[task.status.rawValue, default: 0] += 1
                report.byRepo[slug, default: 0] += 1
            }
            if dryRun { return (report, last) }
            try await store.write(batch)
            let attached = try await store.backfill.attach(attach)
            if attached.count != attach.count {
                // Someone (a worker adapting on claim) got there first: roll back and retry the batch.
                throw ConcurrentAdaptation(count: attach.count - attached.count)
            }
            return (report, last)
        }
    }

    static let maxRetries = 5

    /// A batch lost a race with a worker that adapted some of its tasks on claim.
    struct ConcurrentAdaptation: Error, CustomStringConvertible {
        let count: Int
        var description: String { "\(count) tasks of the batch were adapted concurrently by a worker" }
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

    /// The Run of a finished legacy task, with Artifacts for its trace folder and the files in it.
    static func run(for task: TaskRecord, issue: Issue, packet: ContextPacket, snapshot: ConstraintSnapshot, now: Timestamp)
        -> (Run, [Artifact])
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
        var root: URL?
        if let tracePath = task.tracePath, let url = URL(string: tracePath), url.isFileURL { root = url }
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
            let folder = URL(fileURLWithPath: root.path, isDirectory: true)
            var digest: String?
            var size: Int?
            if let files = try? TraceFile.scan(folder), FileManager.default.fileExists(atPath: folder.path) {
                digest = TraceFile.digest(files)
                size = files.reduce(0) { $0 + $1.size }
                for file in files where file.path.hasPrefix("artifacts/") {
                    artifacts.append(
                        Artifact(
                            header: ObjectHeader(traceId: task.traceId), producedBy: run.ref, forIssue: issue.ref,
                            type: file.path.hasSuffix(".md") ? .doc : .report, title: String(file.path.dropFirst("artifacts/".count).prefix(512)),
                            uri: folder.appendingPathComponent(file.path).absoluteURL.absoluteString, digest: "sha256:" + file.sha256,
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
