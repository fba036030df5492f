import TowerJSON

/// The fields every stored CWOM object carries besides its own: `kind`, `id`, `trace_id`.
/// Create payloads have none of them; the object gets a new ULID and no trace id.
public struct ObjectHeader: Sendable, Hashable {
    public var id: String
    public var traceId: String?

    public init(id: String = ULID.make(), traceId: String? = nil) {
        self.id = id
        self.traceId = traceId
    }
}

extension ObjectHeader {
    /// `{"kind": …, "id": …, "trace_id": …`: how a stored object's JSON begins (`JSONSink`).
    func beginJSON(_ kind: ObjectKind, to sink: inout JSONSink) {
        sink.beginObject()
        sink.member("kind", kind)
        sink.member("id", id)
        sink.member("trace_id", traceId)
    }

    /// `…, "tags": …, "meta": …, "created_at": …, "updated_at": …}`: how a stored object's JSON
    /// ends (`JSONSink`).
    static func endJSON(tags: [String], meta: JSONObject, createdAt: Timestamp, updatedAt: Timestamp, to sink: inout JSONSink) {
        sink.member("tags", tags)
        sink.member("meta", meta)
        sink.member("created_at", createdAt)
        sink.member("updated_at", updatedAt)
        sink.endObject()
    }
}

extension ObjectReader {
    /// Reads `kind`, `id` and `trace_id` of a stored object; makes a fresh header for a payload.
    public func header(_ kind: ObjectKind) -> ObjectHeader {
        guard mode == .object else { return ObjectHeader(id: isDescribing ? "" : ULID.make()) }
        constant("kind", kind.rawValue)
        return ObjectHeader(id: identifier(), traceId: optionalString("trace_id", min: 1, max: 36))
    }

    /// Reads `created_at` and `updated_at` of a stored object; both are now for a payload.
    public func timestamps() -> (created: Timestamp, updated: Timestamp) {
        guard mode == .object else {
            let now = Timestamp.now()
            return (now, now)
        }
        return (timestamp("created_at"), timestamp("updated_at"))
    }
}

extension CWOMModel {
    /// Validates a stored object's JSON and builds it.
    public static func decode(_ json: JSONValue) throws(CWOMValidationError) -> Self {
        try ObjectReader.read(Self.self, from: json, mode: .object)
    }

    /// Checks an object built in Swift against the spec's bounds and invariants, as a stored
    /// object's JSON is checked: what a reader would refuse is refused before it is written.
    public func validate() throws(CWOMValidationError) {
        _ = try Self.decode(json)
    }

    /// Validates a create payload (no `kind`, `id` or timestamps; unknown keys rejected) and
    /// builds a new object from it, with a fresh id.
    public static func create(from payload: JSONValue) throws(CWOMValidationError) -> Self {
        try ObjectReader.read(Self.self, from: payload, mode: .create)
    }

    /// The JSON Schema of the stored object.
    public static var jsonSchema: JSONObject { ObjectReader.schema(of: Self.self, mode: .object) }

    /// The JSON Schema of the create payload.
    public static var createSchema: JSONObject {
        ObjectReader.schema(of: Self.self, mode: .create, title: schemaName + "Create")
    }
}
