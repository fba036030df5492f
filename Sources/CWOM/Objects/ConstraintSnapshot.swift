import TowerJSON

/// The operating envelope at one moment: time, money, tools, risk. Immutable: a changed
/// envelope is a new snapshot (`superseded`), never an edit.
public struct ConstraintSnapshot: CWOMModel, Hashable {
    public static let schemaName = "ConstraintSnapshot"
    public let header: ObjectHeader
    public let scope: ConstraintScope
    public let capturedAt: Timestamp
    public let owner: Actor
    public let constraints: Constraints
    public let tags: [String]
    public let meta: JSONObject

    public var id: String { header.id }
    public var ref: Ref { Ref(kind: .constraintSnapshot, id: id) }

    public init(header: ObjectHeader = ObjectHeader(), scope: ConstraintScope, capturedAt: Timestamp = .now(),
        owner: Actor, constraints: Constraints = Constraints(), tags: [String] = [], meta: JSONObject = [:])
    {
        self.header = header
        self.scope = scope
        self.capturedAt = capturedAt
        self.owner = owner
        self.constraints = constraints
        self.tags = tags
        self.meta = meta
    }

    public init(reading r: ObjectReader) {
        header = r.header(.constraintSnapshot)
        scope = r.enumeration("scope")
        capturedAt = r.mode == .object ? r.timestamp("captured_at") : .now()
        owner = r.model("owner", Actor.self)
        constraints = r.model("constraints", default: Constraints())
        tags = r.strings("tags")
        meta = r.dictionary("meta")
    }

    /// A new snapshot with a new id, captured now, with the given constraints.
    public func superseded(by constraints: Constraints, meta: JSONObject? = nil) -> ConstraintSnapshot {
        ConstraintSnapshot(scope: scope, owner: owner, constraints: constraints, tags: tags, meta: meta ?? self.meta)
    }

    public func write(to sink: inout JSONSink) {
        header.beginJSON(.constraintSnapshot, to: &sink)
        sink.member("scope", scope)
        sink.member("captured_at", capturedAt)
        sink.member("owner", owner)
        sink.member("constraints", constraints)
        sink.member("tags", tags)
        sink.member("meta", meta)
        sink.endObject()
    }

    public var json: JSONValue { JSONSink.tree(of: self) }
}
