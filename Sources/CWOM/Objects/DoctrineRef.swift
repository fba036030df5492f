import TowerJSON

/// A governing rule for how we decide and how we work, identified by namespace, name and version.
public struct DoctrineRef: CWOMModel, Hashable {
    public static let schemaName = "DoctrineRef"
    public var header: ObjectHeader
    public var namespace: String
    public var name: String
    public var version: String
    public var type: DoctrineType
    public var priority: DoctrinePriority
    public var statement: String
    public var rationale: String?
    public var links: [String]
    public var applicability: DoctrineApplicability
    public var tags: [String]
    public var meta: JSONObject
    public var createdAt: Timestamp
    public var updatedAt: Timestamp

    public var id: String { header.id }
    public var ref: Ref { Ref(kind: .doctrineRef, id: id) }

    public init(header: ObjectHeader = ObjectHeader(), namespace: String, name: String, version: String,
        type: DoctrineType, priority: DoctrinePriority = .should, statement: String, rationale: String? = nil,
        links: [String] = [], applicability: DoctrineApplicability = DoctrineApplicability(), tags: [String] = [],
        meta: JSONObject = [:], createdAt: Timestamp = .now(), updatedAt: Timestamp? = nil)
    {
        self.header = header
        self.namespace = namespace
        self.name = name
        self.version = version
        self.type = type
        self.priority = priority
        self.statement = statement
        self.rationale = rationale
        self.links = links
        self.applicability = applicability
        self.tags = tags
        self.meta = meta
        self.createdAt = createdAt
        self.updatedAt = updatedAt ?? createdAt
    }

    public init(reading r: ObjectReader) {
        header = r.header(.doctrineRef)
        namespace = r.string("namespace", min: 1, max: 128)
        name = r.string("name", min: 1, max: 256)
        version = r.string("version", min: 1, max: 64)
        type = r.enumeration("type")
        priority = r.enumeration("priority", default: .should)
        statement = r.string("statement", min: 1, max: 4000)
        rationale = r.optionalString("rationale", max: 4000)
        links = r.strings("links")
        applicability = r.model("applicability", default: DoctrineApplicability())
        tags = r.strings("tags")
        meta = r.dictionary("meta")
        (createdAt, updatedAt) = r.timestamps()
    }

    public var json: JSONValue {
        [
            "kind": "DoctrineRef", "id": id.json, "trace_id": header.traceId.json, "namespace": namespace.json,
            "name": name.json, "version": version.json, "type": type.json, "priority": priority.json,
            "statement": statement.json, "rationale": rationale.json, "links": links.json,
            "applicability": applicability.json, "tags": tags.json, "meta": meta.json,
            "created_at": createdAt.json, "updated_at": updatedAt.json,
        ]
    }
}
