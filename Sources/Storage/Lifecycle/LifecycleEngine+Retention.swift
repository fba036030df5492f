import CWOM
import Foundation
import LegacyTasks
import TowerJSON

extension LifecycleEngine {
    /// What one retention batch did.
    public struct PruneBatch: Sendable, Equatable {
        /// Another process holds the maintenance lock: nothing was done.
        public var locked = false
        public var runs = 0
        public var bytes = 0
        public var artifacts = 0
        public var tasks = 0
        public init() {}
    }

    /// One batch of trace-folder retention, in one short transaction under the maintenance lock:
    /// up to `limit` finished Runs (`statuses`) last changed before `cutoff` whose trace folder is
    /// still there. `delete` removes a Run's folder and answers its size in bytes (nil when it
    /// could not, and the Run is then left for a later pass); the Run is marked pruned, its
    /// Artifacts that lived in the folder get `pruned_at` in their meta (they are kept), and each
    /// pruned Run is audited. Folders are deleted before the commit: a Run is never marked pruned
    /// while its folder is still on disk.
    public func pruneTraces(before cutoff: Timestamp, statuses: [Status], limit: Int, reason: String, by actor: Actor,
        delete: @escaping @Sendable (RetentionRepository.Candidate) -> Int?) async throws -> PruneBatch
    {
        try await pruneBatch(by: actor) { tx, batch in
            let retention = tx.store.retention
            var pruned: [String] = []
            var roots: [String: String] = [:]
            for candidate in try await retention.unprunedRuns(before: cutoff, statuses: statuses, limit: limit) {
                guard let bytes = delete(candidate) else { continue }
                pruned.append(candidate.runId)
                if let root = candidate.artifactRootUri { roots[candidate.runId] = root }
                batch.bytes += bytes
                tx.audit.append(
                    AuditEntry(
                        ts: tx.now, actor: actor, action: .updated, entityKind: "Run", entityId: candidate.runId,
                        after: ["trace_pruned_at": .string(tx.now.iso8601), "bytes": .int(bytes)],
                        note: "Trace folder pruned (\(reason))", traceId: candidate.traceId))
            }
            try await retention.markRunsPruned(pruned, at: tx.now)
            tx.events += pruned.map { LifecycleEvent(.pruned, runId: $0) }
            batch.artifacts = try await retention.markArtifactsPruned(ofRuns: pruned, inFolders: roots, at: tx.now, reason: reason)
            batch.runs = pruned.count
        }
    }

    /// One batch of task retention: up to `limit` finished legacy task rows that ended before
    /// `cutoff` are deleted (never one whose Issue waits for a review), each audited. Their CWOM
    /// records and the audit log are the record of the work and stay.
    public func pruneTasks(before cutoff: Timestamp, limit: Int, reason: String, by actor: Actor) async throws -> PruneBatch {
        try await pruneBatch(by: actor) { tx, batch in
            let retention = tx.store.retention
            let ids = try await retention.finishedTasks(before: cutoff, limit: limit)
            try await retention.deleteTasks(ids)
            for id in ids {
                tx.audit.append(
                    AuditEntry(ts: tx.now, actor: actor, action: .deleted, entityKind: "Task", entityId: id, note: "Task row pruned (\(reason))"))
            }
            tx.events += ids.map { LifecycleEvent(.pruned, taskId: $0) }
            batch.tasks = ids.count
        }
    }

    /// One "prune" transaction under the maintenance lock; when another process holds it the
    /// batch does nothing and says `locked`.
    func pruneBatch(by actor: Actor, _ body: @Sendable (inout LifecycleTransaction, inout PruneBatch) async throws -> Void)
        async throws -> PruneBatch
    {
        try await transaction("prune", by: actor) { tx in
            var batch = PruneBatch()
            guard try await tx.store.retention.tryLock() else {
                batch.locked = true
                return batch
            }
            try await body(&tx, &batch)
            return batch
        }
    }
}
