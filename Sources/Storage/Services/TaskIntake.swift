import Bridge
import CWOM
import LegacyTasks
import TowerJSON

/// The outcome of an enqueue.
public enum EnqueueOutcome: Sendable {
    /// The task was stored (with its CWOM objects when asked for).
    case created(TaskRecord, TaskCWOM?)
    /// A task with the same idempotency key exists (reference §1.2.5).
    case conflict(TaskRecord)
}

extension Store {
    /// The actor CWOM service rows are written by (reference §1.2.7).
    public static let cwomService = Actor(kind: .system, id: "cwom-service")

    /// Stores a new task and, when `createCWOM`, its Repo (got or created by the normalised
    /// slug), ConstraintSnapshot, Issue, ContextPacket, links and audit rows, all in this
    /// transaction: either everything is stored or nothing is. Every audit row and CWOM object
    /// carries the trace id. A bounded number of statements, independent of the payload.
    public func enqueue(_ request: TaskRequest, id: String, traceId: String, createCWOM: Bool,
        now: Timestamp = .now()) async throws -> EnqueueOutcome
    {
        if let key = request.idempotencyKey, let existing = try await tasks.get(idempotencyKey: key) {
            return .conflict(existing)
        }
        var task = TaskRecord(request: request, id: id, traceId: traceId, now: now)
        let requester = Actor(
            kind: ActorKind(rawValue: request.requestedBy.kind.rawValue) ?? .system, id: request.requestedBy.id,
            display: request.requestedBy.label)
        var entries: [AuditEntry] = []
        var objects: TaskCWOM?
        if createCWOM {
            let (cwom, cwomEntries) = try await writeCWOM(
                for: task, acceptanceCriteria: request.acceptanceCriteria,
                evidenceRequirements: request.evidenceRequirements, traceId: traceId, now: now)
            task.cwomIssueId = cwom.issue.id
            objects = cwom
            entries = cwomEntries
        }
        try await tasks.insert(task)
        var pending = task
        pending.status = .pending
        pending.queuedAt = nil
        let taskEntries = [
            AuditEntry(
                ts: now, actor: requester, action: .created, entityKind: "Task", entityId: task.id, after: pending.json,
                note: "Task created via /tasks/enqueue", traceId: traceId),
            AuditEntry(
                ts: now, actor: Actor(kind: .system, id: "task-enqueue"), action: .statusChanged, entityKind: "Task",
                entityId: task.id, before: ["status": "pending"], after: ["status": "queued"],
                note: "Status changed: pending -> queued", traceId: traceId),
        ]
        // The legacy order (task rows first); ids are re-issued so that they follow it.
        try await audit.append((taskEntries + entries).map { entry in
            var ordered = entry
            ordered.id = ULID.make()
            return ordered
        })
        try await queue.notify()  // delivered on commit: one wake-up hint per transaction
        return .created(task, objects)
    }

    /// Writes the CWOM objects of a stored or about-to-be-stored task and returns them with the
    /// audit entries to record (reference §1.2.7 rows 3–8). Used at intake, on claim of a task
    /// that has none, and by the backfill.
    public func writeCWOM(for task: TaskRecord, acceptanceCriteria: [String], evidenceRequirements: [String],
        traceId: String?, now: Timestamp = .now()) async throws -> (TaskCWOM, [AuditEntry])
    {
        var candidate = TaskBridge.cwom(
            for: task, acceptanceCriteria: acceptanceCriteria, evidenceRequirements: evidenceRequirements, now: now)
        candidate.repo.header.traceId = traceId
        let (repo, repoCreated) = try await repos.getOrCreate(candidate.repo)
        let actor = Actor(
            kind: ActorKind(rawValue: task.requestedBy.kind.rawValue) ?? .system, id: task.requestedBy.id,
            display: task.requestedBy.label)
        var cwom = TaskBridge.cwom(
            for: task, repo: repo, actor: actor, acceptanceCriteria: acceptanceCriteria,
            evidenceRequirements: evidenceRequirements, now: now)
        cwom.constraintSnapshot = ConstraintSnapshot(
            header: ObjectHeader(id: cwom.constraintSnapshot.id, traceId: traceId), scope: cwom.constraintSnapshot.scope,
            capturedAt: cwom.constraintSnapshot.capturedAt, owner: cwom.constraintSnapshot.owner,
            constraints: cwom.constraintSnapshot.constraints, tags: cwom.constraintSnapshot.tags,
            meta: cwom.constraintSnapshot.meta)
        cwom.issue.header.traceId = traceId
        let packet = cwom.contextPacket
        cwom.contextPacket = ContextPacket(
            header: ObjectHeader(id: packet.id, traceId: traceId), forIssue: packet.forIssue, version: packet.version,
            summary: packet.summary, inputs: packet.inputs, assumptions: packet.assumptions,
            openQuestions: packet.openQuestions, instructions: packet.instructions, doctrineRefs: packet.doctrineRefs,
            constraintSnapshot: packet.constraintSnapshot, tags: packet.tags, meta: packet.meta,
            createdAt: packet.createdAt)

        try await constraintSnapshots.insert(cwom.constraintSnapshot)
        var issueRow = cwom.issue
        issueRow.contextPackets = []
        try await issues.insert(issueRow)  // links the constraint snapshot
        try await contextPackets.insert(cwom.contextPacket)
        try await issues.link(cwom.issue.id, to: cwom.contextPacket.ref, at: now)

        let service = Self.cwomService
        var entries: [AuditEntry] = []
        if repoCreated {
            entries.append(
                AuditEntry(
                    ts: now, actor: service, action: .created, entityKind: "Repo", entityId: repo.id, after: repo.json,
                    traceId: traceId))
        }
        entries += [
            AuditEntry(
                ts: now, actor: service, action: .created, entityKind: "ConstraintSnapshot",
                entityId: cwom.constraintSnapshot.id, after: cwom.constraintSnapshot.json,
                note: "Immutable object created", traceId: traceId),
            AuditEntry(
                ts: now, actor: service, action: .created, entityKind: "Issue", entityId: cwom.issue.id,
                after: issueRow.json, traceId: traceId),
            Self.linkEntry(cwom.issue.id, cwom.constraintSnapshot.ref, now: now, traceId: traceId),
            AuditEntry(
                ts: now, actor: service, action: .created, entityKind: "ContextPacket",
                entityId: cwom.contextPacket.id, after: cwom.contextPacket.json, note: "Immutable object created",
                traceId: traceId),
            Self.linkEntry(cwom.issue.id, cwom.contextPacket.ref, now: now, traceId: traceId),
        ]
        return (cwom, entries)
    }

    static func linkEntry(_ issueId: String, _ ref: Ref, now: Timestamp, traceId: String?) -> AuditEntry {
        AuditEntry(
            ts: now, actor: cwomService, action: .linked, entityKind: "Issue", entityId: issueId,
            after: ["linked_kind": .string(ref.kind.rawValue), "linked_id": .string(ref.id)],
            note: "Linked to \(ref.kind.rawValue):\(ref.id)", traceId: traceId)
    }
}
