import CWOM
import TowerJSON

/// `cwom_repos`.
public struct RepoRepository: Sendable {
    let session: any DatabaseSession

    static func columns(_ repo: Repo) -> Columns {
        [
            "id": .text(repo.id), "kind": .text("Repo"), "trace_id": .text(repo.header.traceId),
            "name": .text(repo.name), "slug": .text(repo.slug), "default_branch": .text(repo.defaultBranch),
            "visibility": .text(repo.visibility.rawValue), "source": .json(repo.source.json),
            "owners": .json(repo.owners.json), "policy": .json(repo.policy?.json), "links": .json(repo.links.json),
            "tags": .json(repo.tags.json), "meta": .json(repo.meta.json), "created_at": .timestamp(repo.createdAt),
            "updated_at": .timestamp(repo.updatedAt),
        ]
    }

    public func insert(_ repo: Repo) async throws(StorageError) {
        let (sql, binds) = SQL.insert("cwom_repos", Self.columns(repo))
        try await session.query(sql, binds)
    }

    /// Inserts `repo` unless a repo with its slug exists; returns the stored one and whether it
    /// was created. Safe under concurrency (the slug is unique).
    public func getOrCreate(_ repo: Repo) async throws(StorageError) -> (repo: Repo, created: Bool) {
        if let existing = try await get(slug: repo.slug) { return (existing, false) }
        let (sql, binds) = SQL.insert(
            "cwom_repos", Self.columns(repo), suffix: " ON CONFLICT (slug) DO NOTHING RETURNING id")
        if try await !session.query(sql, binds).isEmpty { return (repo, true) }
        guard let existing = try await get(slug: repo.slug) else {
            throw StorageError(.query, "repo '\(repo.slug)' vanished while it was being created")
        }
        return (existing, false)
    }

    public func get(_ id: String) async throws(StorageError) -> Repo? {
        try await session.query("SELECT * FROM cwom_repos WHERE id = $1", [.text(id)]).first.map(Self.decode)
    }

    public func get(slug: String) async throws(StorageError) -> Repo? {
        try await session.query("SELECT * FROM cwom_repos WHERE slug = $1", [.text(slug)]).first.map(Self.decode)
    }

    public func list(visibility: String? = nil, page: Page = Page()) async throws(StorageError) -> [Repo] {
        var filters = Filters()
        filters.add("visibility", visibility, as: Visibility.self)
        let limit = filters.page(limit: page.limit, offset: page.offset)
        if filters.matchesNothing { return [] }
        return try await session.query(
            "SELECT * FROM cwom_repos\(filters.whereClause) ORDER BY created_at DESC, id DESC\(limit)", filters.binds
        ).map(Self.decode)
    }

    static func decode(_ row: SQLRow) throws(StorageError) -> Repo {
        var legacy = JSONObject()
        let source = try row.model("source", Source.self, fallback: Source(system: "unknown"), legacy: &legacy)
        return Repo(
            header: try row.header(), name: try row.string("name"), slug: try row.string("slug"), source: source,
            defaultBranch: try row.string("default_branch"),
            visibility: Visibility(rawValue: try row.string("visibility")) ?? .private,
            owners: try row.models("owners", Actor.self, legacy: &legacy),
            policy: try row.optionalModel("policy", RepoPolicy.self, legacy: &legacy), links: try row.strings("links"),
            tags: try row.strings("tags"), meta: try row.object("meta").addingLegacy(legacy),
            createdAt: try row.timestamp("created_at"), updatedAt: try row.timestamp("updated_at"))
    }
}
