import TowerJSON

/// The shape of one JSON value, as recorded from a model's reading code. The same reading code
/// validates input and describes the JSON Schema, so the two cannot drift apart.
public indirect enum SchemaNode: Sendable, Hashable {
    case string(minLength: Int?, maxLength: Int?, format: String?)
    case integer(minimum: Int?, maximum: Int?)
    case number(minimum: Double?)
    case boolean
    case enumeration([String])
    case constant(String)
    case array(SchemaNode)
    /// Another model, by its schema name (rendered as a `$defs` reference).
    case model(String)
    /// A `Ref` whose `kind` must be the given object kind.
    case refOfKind(String)
    /// Any JSON object.
    case dictionary
    case nullable(SchemaNode)

    /// The JSON Schema (draft 2020-12) rendering of this node.
    public var jsonSchema: JSONValue {
        switch self {
        case .string(let min, let max, let format):
            var o: JSONObject = ["type": "string"]
            if let min { o["minLength"] = .int(min) }
            if let max { o["maxLength"] = .int(max) }
            if let format { o["format"] = .string(format) }
            return .object(o)
        case .integer(let min, let max):
            var o: JSONObject = ["type": "integer"]
            if let min { o["minimum"] = .int(min) }
            if let max { o["maximum"] = .int(max) }
            return .object(o)
        case .number(let min):
            var o: JSONObject = ["type": "number"]
            if let min { o["minimum"] = .double(min) }
            return .object(o)
        case .boolean:
            return ["type": "boolean"]
        case .enumeration(let values):
            return ["type": "string", "enum": .array(values.map { .string($0) })]
        case .constant(let value):
            return ["const": .string(value)]
        case .array(let items):
            return ["type": "array", "items": items.jsonSchema]
        case .model(let name):
            return ["$ref": .string("#/$defs/\(name)")]
        case .refOfKind(let kind):
            return [
                "allOf": [
                    ["$ref": "#/$defs/Ref"],
                    ["properties": ["kind": ["const": .string(kind)]]],
                ]
            ]
        case .dictionary:
            return ["type": "object"]
        case .nullable(let inner):
            return ["anyOf": [inner.jsonSchema, ["type": "null"]]]
        }
    }
}

/// One property of a model, as recorded by a describing reader.
public struct SchemaProperty: Sendable, Hashable {
    public var name: String
    public var node: SchemaNode
    public var required: Bool
    public var defaultValue: JSONValue?
}

/// The recorded shape of one model (object or primitive).
public struct ModelSchema: Sendable, Hashable {
    public var name: String
    public var properties: [SchemaProperty]
    /// Unknown keys are ignored rather than refused (`CWOMModel.ignoresExtraKeys`).
    public var allowsExtraKeys = false
    /// Groups of keys of which at least one must hold a value (`ObjectReader.check(oneOf:)`).
    public var oneOfRequired: [[String]] = []

    /// The model as a JSON Schema object (without `$defs`).
    public var jsonSchema: JSONObject {
        var props = JSONObject()
        for property in properties {
            var node = property.node.jsonSchema
            if let defaultValue = property.defaultValue, case .object(var o) = node {
                o["default"] = defaultValue
                node = .object(o)
            }
            props[property.name] = node
        }
        var schema: JSONObject = ["title": .string(name), "type": "object", "properties": .object(props)]
        let required = properties.filter(\.required).map { JSONValue.string($0.name) }
        if !required.isEmpty { schema["required"] = .array(required) }
        if !allowsExtraKeys { schema["additionalProperties"] = false }
        // One of the keys present and not null; several groups must all hold.
        let groups: [JSONValue] = oneOfRequired.map { keys in
            .object(["anyOf": .array(keys.map { key in ["required": [.string(key)], "properties": [key: ["not": ["type": "null"]]]] })])
        }
        if groups.count == 1, case .object(let group) = groups[0] {
            for (key, value) in group { schema[key] = value }
        } else if !groups.isEmpty {
            schema["allOf"] = .array(groups)
        }
        return schema
    }
}
