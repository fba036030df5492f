import Bridge
import CWOM
import LegacyTasks
import TowerJSON

/// `tower backfill`: legacy tasks without CWOM objects get theirs, one batch per transaction
/// (reference §3, docs/migration.md).
///
/// The caller says what a task becomes (`LegacyAdoption`: its Issue, ContextPacket and
/// ConstraintSnapshot, and for a finished task the Run that records what happened, with its
/// Artifacts); the engine picks the tasks, finds or creates their Repos, writes the objects with
/// the audit rows of their creation and attaches each Issue to its task. The objects are created
/// in the state their task reached (a completed task's Issue and Run are `done`): a creation, so
/// a `created` row each, and no status-changed row for moves the legacy service made.
extension LifecycleEngine {
    /// What one legacy task becomes.
    public struct LegacyAdoption: Sendable {
        public var issue: Issue
        public var packet: ContextPacket
        public var snapshot: ConstraintSnapshot
        /// The Run of a finished task, with its Artifacts; nil for a task that has not run.
        public var run: Run?
        public var artifacts: [Artifact]

        public init(issue: Issue, packet: ContextPacket, snapshot: ConstraintSnapshot, run: Run? = nil, artifacts: [Artifact] = []) {
            self.issue = issue
            self.packet = packet
            self.snapshot = snapshot
            self.run = run
            self.artifacts = artifacts
        }
    }

    /// What one batch did (or, in a dry run, would do).
    public struct AdoptionBatch: Sendable {
        /// The last task id the batch read (the next batch's cursor); nil when none was left.
        public var last: String?
        /// The tasks adopted, as adopted (their repository normalised), with their objects.
        public var adopted: [(task: TaskRecord, adoption: LegacyAdoption)] = []
        /// The slugs of the Repos created (in a dry run: that this batch would create).
        public var reposCreated: [String] = []
        /// Tasks that cannot be adopted, with the reason.
        public var failures: [(taskId: String, reason: String)] = []
    }

    /// A batch lost a race with a worker that adopted some of its tasks on claim; nothing of it
    /// was written, and the next batch no longer finds those tasks.
    public struct ConcurrentAdoption: Error, CustomStringConvertible {
        public let count: Int
        public var description: String { "\(count) tasks of the batch were adopted concurrently by a worker" }
    }

    /// Adopts up to `limit` tasks without CWOM objects after `cursor` (by id) in one transaction:
    /// each task's Repo is found by its normalised slug or created, `build` makes its objects,
    /// and the Issue is attached to the task only where the task still has none. A worker that
    /// adopted one of them first (on claim) makes the whole batch roll back with
    /// `ConcurrentAdoption`. On PostgreSQL the tasks are locked while the batch runs, skipping
    /// those a worker holds. A `dryRun` reads and builds but writes nothing.
    ///
    /// Audit rows, one `created` row per object a reader looks for in the trail: a new Repo (its
    /// snapshot), each Issue and each Run (compact: the task, the status, the Repo; a backfill
    /// writes many, and the objects are one GET away), by `actor`, noted "Backfilled".
    public func adoptLegacyTasks(after cursor: String, limit: Int, dryRun: Bool, by actor: Actor,
        _ build: @Sendable (_ task: TaskRecord, _ repo: Repo, _ now: Timestamp) -> LegacyAdoption) async throws -> AdoptionBatch
    {
        try await transaction("backfill", by: actor) { tx in
            let candidates = try await tx.store.backfill.candidates(after: cursor, limit: limit)
            var batch = AdoptionBatch(last: candidates.last?.id)
            var tasks: [TaskRecord] = []
            for candidate in candidates {
                switch candidate.task {
                case .success(let task): tasks.append(task)
                case .failure(let error): batch.failures.append((candidate.id, error.message))
                }
            }
            var repos = try await tx.store.backfill.repos(slugs: Array(Set(tasks.map { TaskPolicy.normalizeRepo($0.target.repo) })))
            var objects = CWOMBatch()
            var attach: [(taskId: String, issueId: String)] = []
            for var task in tasks {
                let slug = TaskPolicy.normalizeRepo(task.target.repo)
                guard !slug.isEmpty else {
                    batch.failures.append((task.id, "the task names no repository"))
                    continue
                }
                task.target.repo = slug
                if repos[slug] == nil {
                    var candidate = TaskBridge.cwom(for: task, acceptanceCriteria: [], evidenceRequirements: [], now: task.createdAt ?? tx.now).repo
                    candidate.header.traceId = task.traceId
                    if dryRun {
                        repos[slug] = candidate
                        batch.reposCreated.append(slug)
                    } else {
                        let (repo, created) = try await tx.store.repos.getOrCreate(candidate)
                        repos[slug] = repo
                        if created {
                            batch.reposCreated.append(slug)
                            tx.created("Repo", repo.id, repo.json, note: "Backfilled", traceId: task.traceId)
                        }
                    }
                }
                guard let repo = repos[slug] else { continue }
                let adoption = build(task, repo, tx.now)
                objects.snapshots.append(adoption.snapshot)
                objects.packets.append(adoption.packet)
                objects.issues.append(adoption.issue)
                if let run = adoption.run {
                    objects.runs.append(run)
                    objects.artifacts += adoption.artifacts
                }
                batch.adopted.append((task, adoption))
                attach.append((task.id, adoption.issue.id))
            }
            if dryRun { return batch }
            for (task, adoption) in batch.adopted {
                if let run = adoption.run {
                    tx.created(
                        "Run", run.id, ["task_id": .string(task.id), "status": run.status.json], note: "Backfilled from task \(task.id)",
                        traceId: task.traceId)
                }
                tx.created(
                    "Issue", adoption.issue.id,
                    ["task_id": .string(task.id), "status": adoption.issue.status.json, "repo_id": .string(adoption.issue.repo.id)],
                    note: "Backfilled from task \(task.id)", traceId: task.traceId)
            }
            try await tx.store.write(objects)
            let attached = try await tx.store.backfill.attach(attach)
            if attached.count != attach.count { throw ConcurrentAdoption(count: attach.count - attached.count) }
            return batch
        }
    }
}
