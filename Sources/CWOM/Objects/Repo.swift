import TowerJSON

/// A work container: a codebase, a docs base, a project boundary.
public struct Repo: CWOMModel, Hashable {
    public static let schemaName = "Repo"
    public var header: ObjectHeader
    public var name: String
    public var slug: String
    public var source: Source
    public var defaultBranch: String
    public var visibility: Visibility
    public var owners: [Actor]
    public var policy: RepoPolicy?
    public var links: [String]
    public var tags: [String]
    public var meta: JSONObject
    public var createdAt: Timestamp
    public var updatedAt: Timestamp

    public var id: String { header.id }
    public var ref: Ref { Ref(kind: .repo, id: id) }

    public init(header: ObjectHeader = ObjectHeader(), name: String, slug: String, source: Source,
        defaultBranch: String = "main", visibility: Visibility = .private, owners: [Actor] = [],
        policy: RepoPolicy? = nil, links: [String] = [], tags: [String] = [], meta: JSONObject = [:],
        createdAt: Timestamp = .now(), updatedAt: Timestamp? = nil)
    {
        self.header = header
        self.name = name
        self.slug = slug
        self.source = source
        self.defaultBranch = defaultBranch
        self.visibility = visibility
        self.owners = owners
        self.policy = policy
        self.links = links
        self.tags = tags
        self.meta = meta
        self.createdAt = createdAt
        self.updatedAt = updatedAt ?? createdAt
    }

    public init(reading r: ObjectReader) {
        header = r.header(.repo)
        name = r.string("name", min: 1, max: 256)
        slug = r.string("slug", min: 1, max: 256)
        source = r.model("source", Source.self)
        defaultBranch = r.string("default_branch", min: 1, max: 128, default: "main")
        visibility = r.enumeration("visibility", default: .private)
        owners = r.models("owners", Actor.self)
        policy = r.optionalModel("policy", RepoPolicy.self)
        links = r.strings("links")
        tags = r.strings("tags")
        meta = r.dictionary("meta")
        (createdAt, updatedAt) = r.timestamps()
    }

    public var json: JSONValue {
        [
            "kind": "Repo", "id": id.json, "trace_id": header.traceId.json, "name": name.json, "slug": slug.json,
            "source": source.json, "default_branch": defaultBranch.json, "visibility": visibility.json,
            "owners": owners.json, "policy": policy.json, "links": links.json, "tags": tags.json, "meta": meta.json,
            "created_at": createdAt.json, "updated_at": updatedAt.json,
        ]
    }
}
