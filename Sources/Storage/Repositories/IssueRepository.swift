import CWOM
import TowerJSON

/// `cwom_issues` and the join tables that link an Issue to its context packets, doctrine refs
/// and constraint snapshots.
public struct IssueRepository: Sendable {
    let session: any DatabaseSession

    /// The three join tables of an issue: (table, column, kind).
    static let links: [(table: String, column: String, kind: ObjectKind)] = [
        ("cwom_issue_doctrine_refs", "doctrine_ref_id", .doctrineRef),
        ("cwom_issue_constraint_snapshots", "constraint_snapshot_id", .constraintSnapshot),
        ("cwom_issue_context_packets", "context_packet_id", .contextPacket),
    ]

    /// Inserts the issue and links every ref in its `doctrine_refs`, `constraints` and
    /// `context_packets`.
    static func columns(_ issue: Issue) -> Columns {
        [
            "id": .text(issue.id), "kind": .text("Issue"), "trace_id": .text(issue.header.traceId),
            "repo_id": .text(issue.repo.id), "repo_kind": .text(issue.repo.kind.rawValue),
            "repo_role": .text(issue.repo.role), "title": .text(issue.title),
            "description": .text(issue.description), "type": .text(issue.type.rawValue),
            "priority": .text(issue.priority.rawValue), "status": .text(issue.status.rawValue),
            "assignees": .json(writing: issue.assignees), "watchers": .json(writing: issue.watchers),
            "acceptance": .json(writing: issue.acceptance), "relationships": .json(writing: issue.relationships),
            "runs": .json(writing: issue.runs), "tags": .json(writing: issue.tags), "meta": .json(writing: issue.meta),
            "created_at": .timestamp(issue.createdAt), "updated_at": .timestamp(issue.updatedAt),
        ]
    }

    public func insert(_ issue: Issue) async throws(StorageError) {
        let (sql, binds) = SQL.insert("cwom_issues", Self.columns(issue))
        try await session.query(sql, binds)
        for ref in issue.doctrineRefs + issue.constraints + issue.contextPackets {
            try await link(issue.id, to: ref, at: issue.createdAt)
        }
    }

    /// Links the issue to a context packet, doctrine ref or constraint snapshot (idempotent).
    public func link(_ issueId: String, to ref: Ref, at time: Timestamp = .now()) async throws(StorageError) {
        guard let link = Self.links.first(where: { $0.kind == ref.kind }) else {
            throw StorageError(.query, "an Issue cannot be linked to a \(ref.kind.rawValue)")
        }
        try await session.query(
            "INSERT INTO \(link.table) (issue_id, \(link.column), created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            [.text(issueId), .text(ref.id), .timestamp(time)])
    }

    /// `SELECT` of Issues with the ids each links to, a column per join table
    /// (`linked_<column>`): an Issue and its links are one statement.
    var select: String { Self.select[session.dialect] }
    static let select = PerDialect { selectColumns($0) + " FROM cwom_issues" }

    static func selectColumns(_ dialect: SQLDialect) -> String {
        let linked = links.map { link in
            SQL.linkedIds(link.column, from: link.table, where: "issue_id = cwom_issues.id", dialect: dialect) + " AS linked_\(link.column)"
        }
        return "SELECT cwom_issues.*, \(linked.joined(separator: ", "))"
    }

    /// `select` with each Issue's newest ContextPacket joined (its columns as `packet__*`, its
    /// doctrine links as `packet__linked_doctrine_ref_id`) and the ConstraintSnapshot that packet
    /// pins (`snapshot__*`): what a claim reads of its Issues, in one statement.
    static let selectWithContext = PerDialect { dialect in
        let packetLinks = SQL.linkedIds(
            "doctrine_ref_id", from: "cwom_context_packet_doctrine_refs", where: "context_packet_id = p.id", dialect: dialect)
        return selectColumns(dialect)
            + ContextPacketRepository.columnNames.map { ", p.\($0) AS packet__\($0)" }.joined()
            + ", \(packetLinks) AS packet__linked_doctrine_ref_id"
            + ConstraintSnapshotRepository.columnNames.map { ", s.\($0) AS snapshot__\($0)" }.joined()
            + """
             FROM cwom_issues LEFT JOIN cwom_context_packets p ON p.id = (SELECT id FROM cwom_context_packets
            WHERE for_issue_id = cwom_issues.id ORDER BY created_at DESC, id DESC LIMIT 1)
            LEFT JOIN cwom_constraint_snapshots s ON s.id = p.constraint_snapshot_id
            """
    }

    public func get(_ id: String) async throws(StorageError) -> Issue? {
        try await session.query("\(select) WHERE id = $1", [.text(id)]).first.map(Self.decode)
    }

    /// Several issues by id, each with its newest ContextPacket (nil when it has none) and the
    /// ConstraintSnapshot that packet pins (nil when it pins none), in one statement.
    public func getWithContexts(ids: [String]) async throws(StorageError)
        -> [(issue: Issue, packet: ContextPacket?, snapshot: ConstraintSnapshot?)]
    {
        guard !ids.isEmpty else { return [] }
        let (list, binds) = SQL.oneOf("cwom_issues.id", ids, dialect: session.dialect)
        return try await session.query("\(Self.selectWithContext[session.dialect]) WHERE \(list)", binds).map { row throws(StorageError) in
            let packet = row.prefixed("packet__")
            let snapshot = row.prefixed("snapshot__")
            return (
                try Self.decode(row), packet.isNull("id") ? nil : try ContextPacketRepository.decode(packet),
                snapshot.isNull("id") ? nil : try ConstraintSnapshotRepository.decode(snapshot)
            )
        }
    }

    public struct Filter: Sendable {
        public var repoId: String?
        public var status: String?
        public var type: String?
        public var priority: String?
        public init(repoId: String? = nil, status: String? = nil, type: String? = nil, priority: String? = nil) {
            self.repoId = repoId
            self.status = status
            self.type = type
            self.priority = priority
        }
    }

    public func list(_ filter: Filter = Filter(), page: Page = Page()) async throws(StorageError) -> [Issue] {
        var filters = Filters()
        filters.add("repo_id", filter.repoId)
        filters.add("status", filter.status, as: Status.self)
        filters.add("type", filter.type, as: IssueType.self)
        filters.add("priority", filter.priority, as: Priority.self)
        if session.dialect == .sqlite && filter.repoId == nil && (filter.status != nil || filter.priority != nil) {
            // SQLite's one index for these filters is (type, status, priority) (migrations 0010
            // and 0011): the columns before a filtered one, when open, are named with every value
            // so that it is sought once per value rather than the table read.
            if filter.type == nil { filters.addEveryValue(of: "type", IssueType.self) }
            if filter.status == nil && filter.priority != nil { filters.addEveryValue(of: "status", Status.self) }
        }
        let limit = filters.page(limit: page.limit, offset: page.offset)
        if filters.matchesNothing { return [] }
        return try await session.query(
            "\(select)\(filters.whereClause) ORDER BY created_at DESC, id DESC\(limit)", filters.binds
        ).map(Self.decode)
    }

    /// Appends a run ref to the issue's `runs` unless it is listed. On PostgreSQL in one
    /// statement, to the list as the row is when written (concurrent appends each stay); SQLite's
    /// one writer serializes the read and the write.
    public func appendRun(_ issueId: String, _ run: Ref, at time: Timestamp = .now()) async throws(StorageError) {
        if session.dialect == .postgres {
            try await session.query(
                """
                UPDATE cwom_issues SET runs = CAST(CAST(runs AS jsonb) || CAST($1 AS jsonb) AS json), updated_at = $2
                WHERE id = $3 AND NOT CAST(runs AS jsonb) @> CAST($1 AS jsonb)
                """, [.json([run].json), .timestamp(time), .text(issueId)])
            return
        }
        guard var issue = try await get(issueId) else { return }
        guard !issue.runs.contains(where: { $0.id == run.id }) else { return }
        issue.runs.append(run)
        try await session.query(
            "UPDATE cwom_issues SET runs = $1, updated_at = $2 WHERE id = $3",
            [.json(issue.runs.json), .timestamp(time), .text(issueId)])
    }

    /// An Issue from a row of `select`.
    static func decode(_ row: SQLRow) throws(StorageError) -> Issue {
        var legacy = JSONObject()
        func linked(_ kind: ObjectKind) throws(StorageError) -> [Ref] {
            guard let link = links.first(where: { $0.kind == kind }) else { return [] }
            return try row.strings("linked_\(link.column)").map { Ref(kind: kind, id: $0) }
        }
        return Issue(
            header: try row.header(), repo: try row.ref("repo", kind: .repo), title: try row.string("title"),
            description: try row.optionalString("description") ?? "",
            type: IssueType(rawValue: try row.string("type")) ?? .feature,
            priority: Priority(rawValue: try row.string("priority")) ?? .p2,
            status: Status(rawValue: try row.string("status")) ?? .planned,
            assignees: try row.models("assignees", Actor.self, legacy: &legacy),
            watchers: try row.models("watchers", Actor.self, legacy: &legacy),
            doctrineRefs: try linked(.doctrineRef), constraints: try linked(.constraintSnapshot),
            contextPackets: try linked(.contextPacket),
            acceptance: try row.model("acceptance", Acceptance.self, fallback: Acceptance(), legacy: &legacy),
            relationships: try row.model(
                "relationships", IssueRelationships.self, fallback: IssueRelationships(), legacy: &legacy),
            runs: try row.models("runs", Ref.self, legacy: &legacy), tags: try row.strings("tags"),
            meta: try row.object("meta").addingLegacy(legacy), createdAt: try row.timestamp("created_at"),
            updatedAt: try row.timestamp("updated_at"))
    }
}
