import CWOM
import TowerJSON

/// `cwom_context_packets` (immutable: insert and read only) and their doctrine links.
public struct ContextPacketRepository: Sendable {
    let session: any DatabaseSession

    /// The columns `decode` reads (what a join that brings a packet along selects).
    static let columnNames = [
        "id", "kind", "trace_id", "for_issue_id", "for_issue_kind", "for_issue_role", "version", "summary", "inputs",
        "assumptions", "open_questions", "instructions", "constraint_snapshot_id", "tags", "meta", "created_at", "updated_at",
    ]

    static func columns(_ packet: ContextPacket) -> Columns {
        [
            "id": .text(packet.id), "kind": .text("ContextPacket"), "trace_id": .text(packet.header.traceId),
            "for_issue_id": .text(packet.forIssue.id), "for_issue_kind": .text(packet.forIssue.kind.rawValue),
            "for_issue_role": .text(packet.forIssue.role), "version": .text(packet.version),
            "summary": .text(packet.summary), "inputs": .json(writing: packet.inputs),
            "assumptions": .json(writing: packet.assumptions), "open_questions": .json(writing: packet.openQuestions),
            "instructions": .text(packet.instructions), "constraint_snapshot_id": .text(packet.constraintSnapshot?.id),
            "tags": .json(writing: packet.tags), "meta": .json(writing: packet.meta),
            "created_at": .timestamp(packet.createdAt), "updated_at": .timestamp(packet.updatedAt),
        ]
    }

    public func insert(_ packet: ContextPacket) async throws(StorageError) {
        let (sql, binds) = SQL.insert("cwom_context_packets", Self.columns(packet))
        try await session.query(sql, binds)
        for ref in packet.doctrineRefs {
            try await session.query(
                "INSERT INTO cwom_context_packet_doctrine_refs (context_packet_id, doctrine_ref_id, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                [.text(packet.id), .text(ref.id), .timestamp(packet.createdAt)])
        }
    }

    /// `SELECT` of ContextPackets with the doctrine refs each links to (`linked_doctrine_ref_id`):
    /// a packet and its links are one statement.
    var select: String { Self.select[session.dialect] }
    static let select = PerDialect { selectColumns($0) + " FROM cwom_context_packets" }

    static func selectColumns(_ dialect: SQLDialect) -> String {
        let linked = SQL.linkedIds(
            "doctrine_ref_id", from: "cwom_context_packet_doctrine_refs", where: "context_packet_id = cwom_context_packets.id",
            dialect: dialect)
        return "SELECT cwom_context_packets.*, \(linked) AS linked_doctrine_ref_id"
    }

    public func get(_ id: String) async throws(StorageError) -> ContextPacket? {
        try await session.query("\(select) WHERE id = $1", [.text(id)]).first.map(Self.decode)
    }

    /// Every version for an issue, oldest first (the newest is last).
    public func list(forIssue issueId: String) async throws(StorageError) -> [ContextPacket] {
        try await session.query("\(select) WHERE for_issue_id = $1 ORDER BY created_at, id", [.text(issueId)]).map(Self.decode)
    }

    /// The newest version for an issue.
    public func latest(forIssue issueId: String) async throws(StorageError) -> ContextPacket? {
        try await session.query(
            "\(select) WHERE for_issue_id = $1 ORDER BY created_at DESC, id DESC LIMIT 1", [.text(issueId)]
        ).first.map(Self.decode)
    }

    /// A ContextPacket from a row of `select`.
    static func decode(_ row: SQLRow) throws(StorageError) -> ContextPacket {
        var legacy = JSONObject()
        return ContextPacket(
            header: try row.header(), forIssue: try row.ref("for_issue", kind: .issue),
            version: try row.string("version"), summary: try row.string("summary"),
            inputs: try row.model("inputs", ContextInputs.self, fallback: ContextInputs(), legacy: &legacy),
            assumptions: try row.strings("assumptions"), openQuestions: try row.strings("open_questions"),
            instructions: try row.optionalString("instructions") ?? "",
            doctrineRefs: try row.strings("linked_doctrine_ref_id").map { Ref(kind: .doctrineRef, id: $0) },
            constraintSnapshot: try row.optionalString("constraint_snapshot_id").map {
                Ref(kind: .constraintSnapshot, id: $0)
            }, tags: try row.strings("tags"), meta: try row.object("meta").addingLegacy(legacy),
            createdAt: try row.timestamp("created_at"), updatedAt: try row.timestamp("updated_at"))
    }
}

/// `cwom_constraint_snapshots` (immutable: insert and read only).
public struct ConstraintSnapshotRepository: Sendable {
    let session: any DatabaseSession

    /// The columns `decode` reads (what a join that brings a snapshot along selects).
    static let columnNames = [
        "id", "trace_id", "scope", "captured_at", "owner_kind", "owner_id", "owner_display", "constraints", "tags", "meta",
    ]

    static func columns(_ snapshot: ConstraintSnapshot) -> Columns {
        [
            "id": .text(snapshot.id), "kind": .text("ConstraintSnapshot"),
            "trace_id": .text(snapshot.header.traceId), "scope": .text(snapshot.scope.rawValue),
            "captured_at": .timestamp(snapshot.capturedAt), "owner_kind": .text(snapshot.owner.actorKind.rawValue),
            "owner_id": .text(snapshot.owner.actorId), "owner_display": .text(snapshot.owner.display),
            "constraints": .json(writing: snapshot.constraints), "tags": .json(writing: snapshot.tags),
            "meta": .json(writing: snapshot.meta),
        ]
    }

    public func insert(_ snapshot: ConstraintSnapshot) async throws(StorageError) {
        let (sql, binds) = SQL.insert("cwom_constraint_snapshots", Self.columns(snapshot))
        try await session.query(sql, binds)
    }

    public func get(_ id: String) async throws(StorageError) -> ConstraintSnapshot? {
        try await session.query("SELECT * FROM cwom_constraint_snapshots WHERE id = $1", [.text(id)]).first.map(
            Self.decode)
    }

    public func list(scope: String? = nil, ownerId: String? = nil, page: Page = Page()) async throws(StorageError)
        -> [ConstraintSnapshot]
    {
        var filters = Filters()
        filters.add("scope", scope, as: ConstraintScope.self)
        // The index on the owner is (owner_kind, owner_id), on SQLite (scope, owner_kind,
        // owner_id) (migration 0011): without the open columns before it named with every value
        // every snapshot (one per task) was read.
        if ownerId != nil && scope == nil && session.dialect == .sqlite { filters.addEveryValue(of: "scope", ConstraintScope.self) }
        filters.add("owner_id", ownerId, behind: "owner_kind", of: ActorKind.self)
        let limit = filters.page(limit: page.limit, offset: page.offset)
        if filters.matchesNothing { return [] }
        return try await session.query(
            "SELECT * FROM cwom_constraint_snapshots\(filters.whereClause) ORDER BY captured_at DESC, id DESC\(limit)",
            filters.binds
        ).map(Self.decode)
    }

    /// The snapshots linked to an issue, oldest first.
    /// Several snapshots by id, in one query.
    public func get(ids: [String]) async throws(StorageError) -> [String: ConstraintSnapshot] {
        guard !ids.isEmpty else { return [:] }
        let (list, binds) = SQL.oneOf("id", ids, dialect: session.dialect)
        let rows = try await session.query("SELECT * FROM cwom_constraint_snapshots WHERE \(list)", binds)
        var snapshots: [String: ConstraintSnapshot] = [:]
        for row in rows {
            let snapshot = try Self.decode(row)
            snapshots[snapshot.id] = snapshot
        }
        return snapshots
    }

    public func list(forIssue issueId: String) async throws(StorageError) -> [ConstraintSnapshot] {
        try await session.query(
            """
            SELECT s.* FROM cwom_constraint_snapshots s
            JOIN cwom_issue_constraint_snapshots l ON l.constraint_snapshot_id = s.id
            WHERE l.issue_id = $1 ORDER BY s.captured_at, s.id
            """, [.text(issueId)]
        ).map(Self.decode)
    }

    static func decode(_ row: SQLRow) throws(StorageError) -> ConstraintSnapshot {
        var legacy = JSONObject()
        return ConstraintSnapshot(
            header: try row.header(), scope: ConstraintScope(rawValue: try row.string("scope")) ?? .run,
            capturedAt: try row.timestamp("captured_at"),
            owner: Actor(
                kind: ActorKind(rawValue: try row.string("owner_kind")) ?? .system, id: try row.string("owner_id"),
                display: try row.optionalString("owner_display")),
            constraints: try row.model("constraints", Constraints.self, fallback: Constraints(), legacy: &legacy),
            tags: try row.strings("tags"), meta: try row.object("meta").addingLegacy(legacy))
    }
}

/// `cwom_doctrine_refs`.
public struct DoctrineRefRepository: Sendable {
    let session: any DatabaseSession

    public func insert(_ doctrine: DoctrineRef) async throws(StorageError) {
        let (sql, binds) = SQL.insert(
            "cwom_doctrine_refs",
            [
                "id": .text(doctrine.id), "kind": .text("DoctrineRef"), "trace_id": .text(doctrine.header.traceId),
                "namespace": .text(doctrine.namespace), "name": .text(doctrine.name), "version": .text(doctrine.version),
                "type": .text(doctrine.type.rawValue), "priority": .text(doctrine.priority.rawValue),
                "statement": .text(doctrine.statement), "rationale": .text(doctrine.rationale),
                "links": .json(doctrine.links.json), "applicability": .json(doctrine.applicability.json),
                "tags": .json(doctrine.tags.json), "meta": .json(doctrine.meta.json),
                "created_at": .timestamp(doctrine.createdAt), "updated_at": .timestamp(doctrine.updatedAt),
            ])
        try await session.query(sql, binds)
    }

    public func get(_ id: String) async throws(StorageError) -> DoctrineRef? {
        try await session.query("SELECT * FROM cwom_doctrine_refs WHERE id = $1", [.text(id)]).first.map(Self.decode)
    }

    public func list(namespace: String? = nil, type: String? = nil, priority: String? = nil, page: Page = Page())
        async throws(StorageError) -> [DoctrineRef]
    {
        var filters = Filters()
        filters.add("namespace", namespace)
        filters.add("type", type, as: DoctrineType.self)
        if type == nil {
            // A priority alone is read through the layout's (type, priority) index.
            filters.add("priority", priority, as: DoctrinePriority.self, behind: "type", of: DoctrineType.self)
        } else {
            filters.add("priority", priority, as: DoctrinePriority.self)
        }
        let limit = filters.page(limit: page.limit, offset: page.offset)
        if filters.matchesNothing { return [] }
        return try await session.query(
            "SELECT * FROM cwom_doctrine_refs\(filters.whereClause) ORDER BY namespace, name, version\(limit)",
            filters.binds
        ).map(Self.decode)
    }

    static func decode(_ row: SQLRow) throws(StorageError) -> DoctrineRef {
        var legacy = JSONObject()
        return DoctrineRef(
            header: try row.header(), namespace: try row.string("namespace"), name: try row.string("name"),
            version: try row.string("version"), type: DoctrineType(rawValue: try row.string("type")) ?? .principle,
            priority: DoctrinePriority(rawValue: try row.string("priority")) ?? .should,
            statement: try row.string("statement"), rationale: try row.optionalString("rationale"),
            links: try row.strings("links"),
            applicability: try row.model(
                "applicability", DoctrineApplicability.self, fallback: DoctrineApplicability(), legacy: &legacy),
            tags: try row.strings("tags"), meta: try row.object("meta").addingLegacy(legacy),
            createdAt: try row.timestamp("created_at"), updatedAt: try row.timestamp("updated_at"))
    }
}

extension DoctrineRefRepository {
    /// Several doctrine refs by id, in one query.
    public func get(ids: [String]) async throws(StorageError) -> [DoctrineRef] {
        guard !ids.isEmpty else { return [] }
        let (list, binds) = SQL.oneOf("id", ids, dialect: session.dialect)
        return try await session.query("SELECT * FROM cwom_doctrine_refs WHERE \(list) ORDER BY namespace, name, version", binds)
            .map(Self.decode)
    }
}
