import CWOM
import TowerJSON

/// What happened to an entity (reference §7).
public enum AuditAction: String, CWOMEnum {
    case created, updated
    case statusChanged = "status_changed"
    case deleted, linked, unlinked
}

/// One row of `audit_log`.
public struct AuditEntry: Sendable, Hashable {
    public var id: String
    public var ts: Timestamp
    public var actor: Actor
    public var action: AuditAction
    public var entityKind: String
    public var entityId: String
    public var before: JSONValue?
    /// Setting it drops `afterText`, which would otherwise be stored instead.
    public var after: JSONValue? { didSet { afterText = nil } }
    /// `after` as its compact text, when the entry was made from a model (`init(…snapshot:…)`):
    /// what is stored instead of `after`, written straight from the model rather than built as
    /// a tree, written out and freed (`JSONSink`; an enqueue's four snapshots).
    public private(set) var afterText: String?
    public var note: String?
    public var traceId: String?

    public init(id: String = ULID.make(), ts: Timestamp = .now(), actor: Actor, action: AuditAction,
        entityKind: String, entityId: String, before: JSONValue? = nil, after: JSONValue? = nil, note: String? = nil,
        traceId: String? = nil)
    {
        self.id = id
        self.ts = ts
        self.actor = actor
        self.action = action
        self.entityKind = entityKind
        self.entityId = entityId
        self.before = before
        self.after = after
        self.note = note
        self.traceId = traceId
    }

    /// An entry whose `after` is `snapshot`'s JSON, kept as text (`afterText`). A snapshot that
    /// holds the NUL character is kept as a tree instead, which storing refuses as it refuses
    /// any JSON holding NUL (`StorageError.storableString`).
    public init(ts: Timestamp, actor: Actor, action: AuditAction, entityKind: String, entityId: String,
        snapshot: some JSONWritable, note: String? = nil, traceId: String?)
    {
        self.init(ts: ts, actor: actor, action: action, entityKind: entityKind, entityId: entityId, note: note, traceId: traceId)
        if let text = JSONSink.textWithoutNUL(of: snapshot) {
            afterText = text
        } else {
            after = JSONSink.tree(of: snapshot)
        }
    }

    /// `after`, read back from `afterText` when that is what the entry holds.
    var afterValue: JSONValue? { after ?? afterText.flatMap { try? JSONParser.parse(bytes: Array($0.utf8)) } }

    public var json: JSONValue {
        [
            "id": id.json, "ts": ts.json, "actor_kind": actor.actorKind.json, "actor_id": actor.actorId.json,
            "action": action.json, "entity_kind": entityKind.json, "entity_id": entityId.json,
            "before": before ?? .null, "after": afterValue ?? .null, "note": note.json, "trace_id": traceId.json,
        ]
    }
}

/// The audit log: rows appended, and read back newest first. The rows themselves come from the
/// lifecycle engine (`LifecycleTransaction.moved`, `created`, `linked`, with the conventions of
/// the legacy helpers of reference §7) and from the backfill's batches; no route writes one.
public struct AuditLog: Sendable {
    let session: any DatabaseSession

    static func columns(_ entry: AuditEntry) -> Columns {
        [
            "id": .text(entry.id), "ts": .timestamp(entry.ts), "actor_kind": .text(entry.actor.actorKind.rawValue),
            "actor_id": .text(entry.actor.actorId), "action": .text(entry.action.rawValue),
            "entity_kind": .text(entry.entityKind), "entity_id": .text(entry.entityId), "before": .json(entry.before),
            "after": entry.afterText.map { .text($0) } ?? .json(entry.after), "note": .text(entry.note), "trace_id": .text(entry.traceId),
        ]
    }

    /// Writes one entry. Audit rows come from the lifecycle engine, which writes those of each
    /// transaction at its end with its other new rows (`LifecycleTransaction.rows`); the `append`s are the trail's own test hooks
    /// (a row written and read back), not a way around the engine.
    public func append(_ entry: AuditEntry) async throws(StorageError) {
        let (sql, binds) = SQL.insert("audit_log", Self.columns(entry))
        try await session.query(sql, binds)
    }

    /// Appends several entries in one statement, in order.
    public func append(_ entries: [AuditEntry]) async throws(StorageError) {
        try await session.writeAll(SQL.insertMany("audit_log", entries.map(Self.columns)))
    }

    public struct Filter: Sendable {
        public var entityKind: String?
        public var entityId: String?
        public var traceId: String?
        public init(entityKind: String? = nil, entityId: String? = nil, traceId: String? = nil) {
            self.entityKind = entityKind
            self.entityId = entityId
            self.traceId = traceId
        }
    }

    /// Newest first.
    public func list(_ filter: Filter = Filter(), page: Page = Page()) async throws(StorageError) -> [AuditEntry] {
        var filters = Filters()
        filters.add("entity_kind", filter.entityKind)
        filters.add("entity_id", filter.entityId)
        filters.add("trace_id", filter.traceId)
        let limit = filters.page(limit: page.limit, offset: page.offset)
        return try await session.query(
            "SELECT * FROM audit_log\(filters.whereClause) ORDER BY ts DESC, id DESC\(limit)", filters.binds
        ).map { row throws(StorageError) in
            AuditEntry(
                id: try row.string("id"), ts: try row.timestamp("ts"),
                actor: Actor(
                    kind: ActorKind(rawValue: try row.string("actor_kind")) ?? .system, id: try row.string("actor_id")),
                action: AuditAction(rawValue: try row.string("action")) ?? .updated,
                entityKind: try row.string("entity_kind"), entityId: try row.string("entity_id"),
                before: try row.optionalJSON("before"), after: try row.optionalJSON("after"),
                note: try row.optionalString("note"), traceId: try row.optionalString("trace_id"))
        }
    }
}
