import CWOM
import TowerJSON

/// The creation of CWOM objects by callers outside the task lifecycle: the `POST /cwom/...`
/// routes and the MCP tool an agent reports an Artifact with.
///
/// Each is one engine transaction that checks every ref the object names resolves (a
/// `missingReference` otherwise), refuses a duplicate where the model has a natural key (an
/// `alreadyExists`, also when a concurrent create of the same key commits first), inserts the
/// object and its links, and writes its audit rows: one `created` row with the object's
/// snapshot, and one `linked` row per link an Issue gains.
/// Routes never write audit rows themselves; the objects an enqueue or an execution creates
/// get theirs from `enqueue`, `claim` and `complete` in the same way, and those of a backfill
/// from `adoptLegacyTasks`.
extension LifecycleEngine {
    /// `POST /cwom/repos`: a Repo whose slug is new.
    public func create(_ repo: Repo, by actor: Actor) async throws {
        try await transaction("create Repo", by: actor) { tx in
            try await tx.unique(.alreadyExists("Repo with slug '\(repo.slug)' already exists")) {
                try await tx.store.repos.insert(repo)
            }
            tx.created("Repo", repo.id, repo.json, traceId: repo.header.traceId)
        }
    }

    /// `POST /cwom/issues`: an Issue whose repo, doctrine refs, constraints, context packets and
    /// related Issues exist, linked to its constraints, doctrine refs and context packets.
    public func create(_ issue: Issue, by actor: Actor) async throws {
        try await transaction("create Issue", by: actor) { tx in
            let rel = issue.relationships
            try await tx.requireExisting(
                [issue.repo] + issue.doctrineRefs + issue.constraints + issue.contextPackets
                    + [rel.parent].compactMap { $0 } + rel.blocks + rel.blockedBy + rel.duplicates)
            try await tx.store.issues.insert(issue)  // links doctrine refs, constraints and context packets
            let trace = issue.header.traceId
            tx.created("Issue", issue.id, issue.json, traceId: trace)
            for ref in issue.constraints + issue.doctrineRefs + issue.contextPackets {
                tx.linked("Issue", issue.id, to: ref, traceId: trace)
            }
        }
    }

    /// `POST /cwom/context-packets`: a new version of its Issue's context, linked to the Issue.
    /// A version the Issue already has is refused: packets are immutable, a change is a new one.
    /// No constraint of the legacy layout keeps versions apart, so the Issue is locked while its
    /// versions are read: of two concurrent creates of one version, the second finds the first's.
    public func create(_ packet: ContextPacket, by actor: Actor) async throws {
        try await transaction("create ContextPacket", by: actor) { tx in
            guard try await tx.sql.lockIssue(packet.forIssue.id) else {
                throw LifecycleError.missingReference(kind: packet.forIssue.kind.rawValue, id: packet.forIssue.id)
            }
            try await tx.requireExisting(packet.doctrineRefs + [packet.constraintSnapshot].compactMap { $0 })
            let versions = try await tx.store.contextPackets.list(forIssue: packet.forIssue.id)
            if versions.contains(where: { $0.version == packet.version }) {
                throw LifecycleError.alreadyExists(
                    "ContextPacket version '\(packet.version)' already exists for Issue '\(packet.forIssue.id)'; create it with a new version")
            }
            try await tx.store.contextPackets.insert(packet)
            try await tx.store.issues.link(packet.forIssue.id, to: packet.ref, at: tx.now)
            let trace = packet.header.traceId
            tx.created("ContextPacket", packet.id, packet.json, note: "Immutable object created", traceId: trace)
            tx.linked("Issue", packet.forIssue.id, to: packet.ref, traceId: trace)
        }
    }

    /// `POST /cwom/constraint-snapshots`: an immutable snapshot; it names no other object.
    public func create(_ snapshot: ConstraintSnapshot, by actor: Actor) async throws {
        try await transaction("create ConstraintSnapshot", by: actor) { tx in
            try await tx.store.constraintSnapshots.insert(snapshot)
            tx.created("ConstraintSnapshot", snapshot.id, snapshot.json, note: "Immutable object created", traceId: snapshot.header.traceId)
        }
    }

    /// `POST /cwom/doctrine-refs`: a doctrine whose `namespace/name@version` is new and whose
    /// applicable repos exist.
    public func create(_ doctrine: DoctrineRef, by actor: Actor) async throws {
        try await transaction("create DoctrineRef", by: actor) { tx in
            try await tx.requireExisting(doctrine.applicability.repoRefs)
            try await tx.unique(.alreadyExists("DoctrineRef '\(doctrine.namespace)/\(doctrine.name)@\(doctrine.version)' already exists")) {
                try await tx.store.doctrineRefs.insert(doctrine)
            }
            tx.created("DoctrineRef", doctrine.id, doctrine.json, traceId: doctrine.header.traceId)
        }
    }

    /// `POST /cwom/runs`: a Run of an existing Issue and Repo, pinned to inputs that exist, and
    /// appended to its Issue's runs (`appendRun`: concurrent Runs of one Issue, and a claim's, are
    /// each listed). Its later statuses go through `updateRun`.
    public func create(_ run: Run, by actor: Actor) async throws {
        try await transaction("create Run", by: actor) { tx in
            try await tx.requireExisting(
                [run.forIssue, run.repo] + run.inputs.contextPackets + run.inputs.doctrineRefs
                    + [run.inputs.constraintSnapshot].compactMap { $0 })
            try await tx.store.runs.insert(run)
            try await tx.store.issues.appendRun(run.forIssue.id, run.ref, at: tx.now)
            tx.created("Run", run.id, run.json, traceId: run.header.traceId)
        }
    }

    /// `POST /cwom/artifacts` and the MCP tool `jct_report_artifact`: an Artifact of an existing
    /// Run and Issue. `note` says where it came from, in the audit row.
    public func create(_ artifact: Artifact, by actor: Actor, note: String? = nil) async throws {
        try await transaction("create Artifact", by: actor) { tx in
            try await tx.requireExisting([artifact.producedBy, artifact.forIssue])
            try await tx.store.artifacts.insert(artifact)
            tx.created("Artifact", artifact.id, artifact.json, note: note, traceId: artifact.header.traceId)
        }
    }
}

extension LifecycleTransaction {
    /// Refuses the operation with `missingReference` for the first ref that resolves to nothing.
    func requireExisting(_ refs: [Ref]) async throws {
        for ref in refs where !(try await store.exists(ref)) {
            throw LifecycleError.missingReference(kind: ref.kind.rawValue, id: ref.id)
        }
    }

    /// Runs the insert of an object whose natural key has a unique constraint in the layout
    /// (`uq_cwom_repos_slug`, `uq_doctrine_ref_nv`): the key taken, by a row that exists or by a
    /// concurrent create that committed first, is `taken` rather than a storage error. The
    /// constraint decides, so there is no read before it that a concurrent create could pass.
    func unique(_ taken: LifecycleError, _ insert: () async throws -> Void) async throws {
        do {
            try await insert()
        } catch let error as StorageError where error.kind == .uniqueViolation {
            throw taken
        }
    }

    /// The `created` row of a new object: no before, its snapshot after (reference §7).
    mutating func created(_ kind: String, _ id: String, _ snapshot: JSONValue, note: String? = nil, traceId: String?) {
        audit.append(
            AuditEntry(ts: now, actor: actor, action: .created, entityKind: kind, entityId: id, after: snapshot, note: note, traceId: traceId))
    }

    /// The `linked` row of an object that gained a link: after `{"linked_kind", "linked_id"}`,
    /// note `Linked to Kind:id` (reference §7).
    mutating func linked(_ kind: String, _ id: String, to ref: Ref, traceId: String?) {
        audit.append(
            AuditEntry(
                ts: now, actor: actor, action: .linked, entityKind: kind, entityId: id,
                after: ["linked_kind": .string(ref.kind.rawValue), "linked_id": .string(ref.id)],
                note: "Linked to \(ref.kind.rawValue):\(ref.id)", traceId: traceId))
    }
}
