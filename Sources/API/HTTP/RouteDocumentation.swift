import CWOM
import TowerJSON

/// A query parameter or header a route reads, as `/openapi.json` describes it. Declared with its
/// route (`Router.add(…, parameters:)`), and a handler that reads an undeclared query parameter
/// stops a debug build (`APIRequest.queryValue`): the document lists what the handlers read, and
/// the schema says what they accept.
public struct Parameter: Sendable {
    public enum Location: String, Sendable {
        case query, header
    }
    public var name: String
    public var location: Location
    /// Its JSON Schema.
    public var schema: JSONValue
    public var required: Bool
    public var description: String

    public init(_ name: String, in location: Location = .query, schema: JSONValue = ["type": "string"], required: Bool = false,
        _ description: String)
    {
        self.name = name
        self.location = location
        self.schema = schema
        self.required = required
        self.description = description
    }

    /// A filter matched exactly against one of `E`'s values. Any other value is not refused: it
    /// matches nothing (an empty list), as the legacy service answers on SQLite (reference §1.4,
    /// §4), so the schema is a string, with the values as its examples and in the description.
    public static func filter<E: CWOMEnum>(_ name: String, _ type: E.Type, _ what: String) -> Parameter {
        Parameter(
            name, schema: ["type": "string", "examples": .array(E.allValues.map { .string($0) })],
            "\(what): one of \(E.allValues.joined(separator: ", ")); any other value matches nothing.")
    }

    /// One of `E`'s values, checked: any other is a 422 naming the values.
    public static func choice<E: CWOMEnum>(_ name: String, _ type: E.Type, required: Bool = false, _ description: String)
        -> Parameter
    {
        Parameter(name, schema: ["type": "string", "enum": .array(E.allValues.map { .string($0) })], required: required, description)
    }

    /// An integer with its bounds and default, checked: anything else is a 422. Without a
    /// `maximum` the bound is the largest 64-bit integer, which is as far as it is read.
    public static func integer(_ name: String, minimum: Int, maximum: Int = .max, default value: Int, _ description: String) -> Parameter {
        Parameter(
            name, schema: ["type": "integer", "minimum": .int(minimum), "maximum": .int(maximum), "default": .int(value)], description)
    }

    /// `limit` 1..1000 (default 100) and `offset` ≥ 0 of every CWOM list (`CWOMContext.page`).
    public static let page: [Parameter] = [
        .integer("limit", minimum: 1, maximum: 1000, default: 100, "How many objects at most."),
        .integer("offset", minimum: 0, default: 0, "How many to skip."),
    ]

    /// `X-Trace-Id` of a CWOM write: the objects it creates carry it when it is 1–36 printable
    /// ASCII characters (`CWOMContext.traceId`); any other value is ignored, not refused.
    public static let traceId = Parameter(
        "X-Trace-Id", in: .header, "A trace id for the objects this creates: used when 1–36 printable ASCII characters, ignored otherwise.")

    /// The OpenAPI Parameter Object.
    var openAPI: JSONValue {
        ["name": .string(name), "in": .string(location.rawValue), "required": .bool(required), "description": .string(description), "schema": schema]
    }
}

/// The JSON body a route reads, as `/openapi.json` describes it. Declared with its route
/// (`Router.add(…, body:)`).
public struct RequestBody: Sendable {
    public var schema: JSONValue
    public var required: Bool

    public init(schema: JSONValue, required: Bool = true) {
        self.schema = schema
        self.required = required
    }

    /// A model's create payload (`RepoCreate`, …), as `CWOMContext.payload` reads it.
    public static func create<T: CWOMModel>(_ type: T.Type) -> RequestBody { RequestBody(schema: Answer.reference(T.schemaName + "Create")) }

    /// A model read as it is (`RunUpdate`).
    public static func model<T: CWOMModel>(_ type: T.Type) -> RequestBody { RequestBody(schema: Answer.reference(T.schemaName)) }

    /// The Request Body Object.
    var openAPI: JSONValue { ["required": .bool(required), "content": ["application/json": ["schema": schema]]] }
}

/// What a route answers when it succeeds, as `/openapi.json` describes it: the status codes, the
/// content type and the body's schema (a CWOM schema by reference where there is one). Declared
/// with its route (`Router.add(…, answers:)`); schemathesis checks the running API's answers
/// against it (`APIConformanceTests`).
public struct Answer: Sendable {
    public var statuses: [Int]
    public var contentType: String?
    public var schema: JSONValue?
    public var description: String

    public init(_ statuses: [Int], contentType: String? = "application/json", schema: JSONValue? = nil, _ description: String) {
        self.statuses = statuses
        self.contentType = contentType
        self.schema = schema
        self.description = description
    }

    static func reference(_ name: String) -> JSONValue { ["$ref": .string("#/components/schemas/\(name)")] }

    /// JSON of a shape without a schema of its own (a legacy task, a status answer).
    public static func json(_ statuses: [Int], schema: JSONValue? = nil, _ description: String) -> Answer {
        Answer(statuses, schema: schema, description)
    }

    /// 200 with the object.
    public static func object<T: CWOMModel>(_ type: T.Type) -> Answer { Answer([200], schema: reference(T.schemaName), "The \(T.schemaName).") }

    /// 200 with an array of objects.
    public static func list<T: CWOMModel>(_ type: T.Type) -> Answer {
        Answer([200], schema: ["type": "array", "items": reference(T.schemaName)], "\(T.schemaName)s.")
    }

    /// `statuses` (201 for a create) with `{"status": "success", "<key>": <object>}`.
    public static func success<T: CWOMModel>(_ key: String, _ type: T.Type, status: Int = 201) -> Answer {
        Answer(
            [status],
            schema: [
                "type": "object", "required": ["status", .string(key)],
                "properties": .object(["status": ["const": "success"], key: reference(T.schemaName)]),
            ], "`{\"status\": \"success\", \"\(key)\": …}`.")
    }

    /// 200 `{"status": "success", "<key>": <object>}`, or 202 `{"status": "cancel_requested",
    /// "<key>": …, "task": …}` when the change cancels the task a worker runs.
    public static func changed<T: CWOMModel>(_ key: String, _ type: T.Type) -> Answer {
        Answer(
            [200, 202],
            schema: [
                "type": "object", "required": ["status", .string(key)],
                "properties": .object(["status": ["enum": ["success", "cancel_requested"]], key: reference(T.schemaName)]),
            ], "The changed \(T.schemaName); 202 when its task is being cancelled.")
    }

    /// Never a success: the route always refuses (an immutable object's `PUT` and `PATCH`).
    public static func refused(_ status: Int, _ description: String) -> Answer { Answer([status], description) }
}
