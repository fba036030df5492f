import Bridge
import CWOM
import LegacyTasks
import TowerJSON

/// The outcome of an enqueue.
public enum EnqueueOutcome: Sendable {
    /// The task was stored (with its CWOM objects when asked for).
    case created(Created)
    /// A task with the same idempotency key exists (reference §1.2.5).
    case conflict(TaskRecord)

    /// A stored task and its CWOM objects, as the intake built them.
    ///
    /// A class, immutable: a task and its four objects hold about seventy strings and arrays,
    /// and the outcome is handed from the transaction through the intake batcher's results to
    /// the request. As a struct each hand-off retained every one of them on SQLite's writer
    /// thread (and released them again); a reference is one retain (docs/benchmarks.md).
    public final class Created: Sendable {
        public let task: TaskRecord
        public let objects: TaskCWOM?

        public init(task: TaskRecord, objects: TaskCWOM?) {
            self.task = task
            self.objects = objects
        }
    }
}

extension Store {
    /// The actor CWOM service rows are written by (reference §1.2.7).
    public static let cwomService = Actor(kind: .system, id: "cwom-service")

    /// Writes the CWOM objects of a stored or about-to-be-stored task and returns them with the
    /// audit entries to record (reference §1.2.7 rows 3–8). Used at intake, on claim of a task
    /// that has none, and by the backfill.
    public func writeCWOM(for task: TaskRecord, acceptanceCriteria: [String], evidenceRequirements: [String],
        traceId: String?, now: Timestamp = .now()) async throws -> (TaskCWOM, [AuditEntry])
    {
        let (repo, repoCreated) = try await repo(for: task, traceId: traceId, now: now)
        let (cwom, entries) = Self.buildCWOM(
            for: task, repo: repo, repoCreated: repoCreated, acceptanceCriteria: acceptanceCriteria,
            evidenceRequirements: evidenceRequirements, traceId: traceId, now: now)
        var batch = CWOMBatch()
        batch.add(cwom)
        try await write(batch)
        return (cwom, entries)
    }

    /// The Repo of a task's normalised repository, created when it is new.
    func repo(for task: TaskRecord, traceId: String?, now: Timestamp) async throws -> (Repo, Bool) {
        var candidate = TaskBridge.cwom(for: task, acceptanceCriteria: [], evidenceRequirements: [], now: now).repo
        candidate.header.traceId = traceId
        return try await repos.getOrCreate(candidate)
    }

    /// The CWOM objects of a task whose Repo is known, and the audit entries of their creation,
    /// built without writing anything.
    static func buildCWOM(for task: TaskRecord, repo: Repo, repoCreated: Bool, acceptanceCriteria: [String],
        evidenceRequirements: [String], traceId: String?, now: Timestamp) -> (TaskCWOM, [AuditEntry])
    {
        let actor = Actor(
            kind: ActorKind(rawValue: task.requestedBy.kind.rawValue) ?? .system, id: task.requestedBy.id,
            display: task.requestedBy.label)
        let cwom = TaskBridge.cwom(
            for: task, repo: repo, actor: actor, acceptanceCriteria: acceptanceCriteria,
            evidenceRequirements: evidenceRequirements, traceId: traceId, now: now)
        var issueRow = cwom.issue
        issueRow.contextPackets = []

        let service = Self.cwomService
        var entries: [AuditEntry] = []
        entries.reserveCapacity(6)
        if repoCreated {
            entries.append(
                AuditEntry(
                    ts: now, actor: service, action: .created, entityKind: "Repo", entityId: repo.id, after: repo.json,
                    traceId: traceId))
        }
        entries.append(contentsOf: [
            AuditEntry(
                ts: now, actor: service, action: .created, entityKind: "ConstraintSnapshot",
                entityId: cwom.constraintSnapshot.id, snapshot: cwom.constraintSnapshot,
                note: "Immutable object created", traceId: traceId),
            AuditEntry(
                ts: now, actor: service, action: .created, entityKind: "Issue", entityId: cwom.issue.id,
                snapshot: issueRow, traceId: traceId),
            Self.linkEntry(cwom.issue.id, cwom.constraintSnapshot.ref, now: now, traceId: traceId),
            AuditEntry(
                ts: now, actor: service, action: .created, entityKind: "ContextPacket",
                entityId: cwom.contextPacket.id, snapshot: cwom.contextPacket, note: "Immutable object created",
                traceId: traceId),
            Self.linkEntry(cwom.issue.id, cwom.contextPacket.ref, now: now, traceId: traceId),
        ])
        return (cwom, entries)
    }

    static func linkEntry(_ issueId: String, _ ref: Ref, now: Timestamp, traceId: String?) -> AuditEntry {
        AuditEntry(
            ts: now, actor: cwomService, action: .linked, entityKind: "Issue", entityId: issueId,
            after: ["linked_kind": .string(ref.kind.rawValue), "linked_id": .string(ref.id)],
            note: "Linked to \(ref.kind.rawValue):\(ref.id)", traceId: traceId)
    }
}
