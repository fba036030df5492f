import TowerJSON

/// A unit of intent: what we want done.
public struct Issue: CWOMModel, Hashable {
    public static let schemaName = "Issue"
    public var header: ObjectHeader
    public var repo: Ref
    public var title: String
    public var description: String
    public var type: IssueType
    public var priority: Priority
    public var status: Status
    public var assignees: [Actor]
    public var watchers: [Actor]
    public var doctrineRefs: [Ref]
    public var constraints: [Ref]
    public var contextPackets: [Ref]
    public var acceptance: Acceptance
    public var relationships: IssueRelationships
    public var runs: [Ref]
    public var tags: [String]
    public var meta: JSONObject
    public var createdAt: Timestamp
    public var updatedAt: Timestamp

    public var id: String { header.id }
    public var ref: Ref { Ref(kind: .issue, id: id) }

    public init(header: ObjectHeader = ObjectHeader(), repo: Ref, title: String, description: String = "",
        type: IssueType, priority: Priority = .p2, status: Status = .planned, assignees: [Actor] = [],
        watchers: [Actor] = [], doctrineRefs: [Ref] = [], constraints: [Ref] = [], contextPackets: [Ref] = [],
        acceptance: Acceptance = Acceptance(), relationships: IssueRelationships = IssueRelationships(),
        runs: [Ref] = [], tags: [String] = [], meta: JSONObject = [:], createdAt: Timestamp = .now(),
        updatedAt: Timestamp? = nil)
    {
        self.header = header
        self.repo = repo
        self.title = title
        self.description = description
        self.type = type
        self.priority = priority
        self.status = status
        self.assignees = assignees
        self.watchers = watchers
        self.doctrineRefs = doctrineRefs
        self.constraints = constraints
        self.contextPackets = contextPackets
        self.acceptance = acceptance
        self.relationships = relationships
        self.runs = runs
        self.tags = tags
        self.meta = meta
        self.createdAt = createdAt
        self.updatedAt = updatedAt ?? createdAt
    }

    public init(reading r: ObjectReader) {
        header = r.header(.issue)
        repo = r.ref("repo", kind: .repo)
        title = r.string("title", min: 1, max: 512)
        description = r.string("description", max: 16000, default: "")
        type = r.enumeration("type")
        priority = r.enumeration("priority", default: .p2)
        status = r.enumeration("status", default: .planned)
        assignees = r.models("assignees", Actor.self)
        watchers = r.models("watchers", Actor.self)
        doctrineRefs = r.refs("doctrine_refs", kind: .doctrineRef)
        constraints = r.refs("constraints", kind: .constraintSnapshot)
        contextPackets = r.refs("context_packets", kind: .contextPacket)
        acceptance = r.model("acceptance", default: Acceptance())
        relationships = r.model("relationships", default: IssueRelationships())
        runs = r.mode == .object ? r.refs("runs", kind: .run) : []
        tags = r.strings("tags")
        meta = r.dictionary("meta")
        (createdAt, updatedAt) = r.timestamps()
    }

    /// Refs held in join tables (doctrine refs, constraints, context packets) are shown without
    /// `role`, as the legacy service shows them.
    public func write(to sink: inout JSONSink) {
        header.beginJSON(.issue, to: &sink)
        sink.member("repo", repo)
        sink.member("title", title)
        sink.member("description", description)
        sink.member("type", type)
        sink.member("priority", priority)
        sink.member("status", status)
        sink.member("assignees", assignees)
        sink.member("watchers", watchers)
        sink.key("doctrine_refs")
        Ref.writeWithoutRoles(doctrineRefs, to: &sink)
        sink.key("constraints")
        Ref.writeWithoutRoles(constraints, to: &sink)
        sink.key("context_packets")
        Ref.writeWithoutRoles(contextPackets, to: &sink)
        sink.member("acceptance", acceptance)
        sink.member("relationships", relationships)
        sink.member("runs", runs)
        ObjectHeader.endJSON(tags: tags, meta: meta, createdAt: createdAt, updatedAt: updatedAt, to: &sink)
    }

    public var json: JSONValue { JSONSink.tree(of: self) }
}
