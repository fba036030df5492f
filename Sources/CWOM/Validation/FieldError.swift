import TowerJSON

/// One step of a path into a JSON document: an object key or an array index.
public enum PathComponent: Sendable, Hashable, CustomStringConvertible {
    case key(String)
    case index(Int)

    public var json: JSONValue {
        switch self {
        case .key(let k): return .string(k)
        case .index(let i): return .int(i)
        }
    }

    public var description: String {
        switch self {
        case .key(let k): return k
        case .index(let i): return "[\(i)]"
        }
    }
}

/// A path such as `inputs.documents[2].uri`.
public struct FieldPath: Sendable, Hashable, CustomStringConvertible {
    public var components: [PathComponent]

    public init(_ components: [PathComponent] = []) { self.components = components }

    /// A path of object keys (strings) and array indexes (integers), as `JSONValue.firstUnstorable`
    /// gives it.
    public init(json path: [JSONValue]) {
        self.init(path.map { $0.intValue.map(PathComponent.index) ?? .key($0.stringValue ?? "") })
    }

    public func appending(_ key: String) -> FieldPath { FieldPath(components + [.key(key)]) }
    public func appending(_ index: Int) -> FieldPath { FieldPath(components + [.index(index)]) }

    public var description: String {
        var text = ""
        for component in components {
            switch component {
            case .key(let k): text += text.isEmpty ? k : "." + k
            case .index(let i): text += "[\(i)]"
            }
        }
        return text.isEmpty ? "(root)" : text
    }
}

/// One validation failure, shaped like a pydantic error so that the HTTP layer can render the
/// legacy `{"detail":[{"type","loc","msg","input","ctx"}]}` list.
public struct FieldError: Sendable, Hashable, CustomStringConvertible {
    /// pydantic's error type, e.g. `string_too_short`.
    public var type: String
    public var path: FieldPath
    /// pydantic's message, e.g. `String should have at least 1 character`.
    public var message: String
    /// The offending input (the enclosing object for `missing`).
    public var input: JSONValue?
    /// Error context: the bound (`min_length`, `ge`, …) or the expected values.
    public var context: JSONObject?

    public init(type: String, path: FieldPath, message: String, input: JSONValue?, context: JSONObject? = nil) {
        self.type = type
        self.path = path
        self.message = message
        self.input = input
        self.context = context
    }

    /// `inputs.documents[2].uri: String should have at least 1 character`.
    public var description: String { "\(path): \(message)" }
}

/// The error thrown when a CWOM object or payload fails validation. It lists every failure.
public struct CWOMValidationError: Error, Sendable, CustomStringConvertible {
    /// The object or payload that was validated, e.g. `IssueCreate`.
    public var model: String
    public var errors: [FieldError]

    public init(model: String, errors: [FieldError]) {
        self.model = model
        self.errors = errors
    }

    public var description: String {
        let count = errors.count
        let header = "\(count) validation error\(count == 1 ? "" : "s") for \(model)"
        return ([header] + errors.map { "  " + $0.description }).joined(separator: "\n")
    }
}

/// Builders for pydantic-compatible errors.
public enum PydanticError {
    public static func missing(_ path: FieldPath, input: JSONValue?) -> FieldError {
        FieldError(type: "missing", path: path, message: "Field required", input: input)
    }

    public static func extraForbidden(_ path: FieldPath, input: JSONValue) -> FieldError {
        FieldError(type: "extra_forbidden", path: path, message: "Extra inputs are not permitted", input: input)
    }

    public static func stringType(_ path: FieldPath, input: JSONValue) -> FieldError {
        FieldError(type: "string_type", path: path, message: "Input should be a valid string", input: input)
    }

    public static func tooShort(_ path: FieldPath, input: JSONValue, min: Int) -> FieldError {
        FieldError(
            type: "string_too_short", path: path,
            message: "String should have at least \(min) character\(min == 1 ? "" : "s")", input: input,
            context: ["min_length": .int(min)])
    }

    public static func tooLong(_ path: FieldPath, input: JSONValue, max: Int) -> FieldError {
        FieldError(
            type: "string_too_long", path: path,
            message: "String should have at most \(max) character\(max == 1 ? "" : "s")", input: input,
            context: ["max_length": .int(max)])
    }

    public static func greaterThanEqual(_ path: FieldPath, input: JSONValue, ge: JSONValue) -> FieldError {
        FieldError(
            type: "greater_than_equal", path: path, message: "Input should be greater than or equal to \(ge)",
            input: input, context: ["ge": ge])
    }

    public static func lessThanEqual(_ path: FieldPath, input: JSONValue, le: JSONValue) -> FieldError {
        FieldError(
            type: "less_than_equal", path: path, message: "Input should be less than or equal to \(le)",
            input: input, context: ["le": le])
    }

    public static func intType(_ path: FieldPath, input: JSONValue) -> FieldError {
        switch input {
        case .string:
            return FieldError(
                type: "int_parsing", path: path,
                message: "Input should be a valid integer, unable to parse string as an integer", input: input)
        case .double:
            return FieldError(
                type: "int_from_float", path: path,
                message: "Input should be a valid integer, got a number with a fractional part", input: input)
        default:
            return FieldError(type: "int_type", path: path, message: "Input should be a valid integer", input: input)
        }
    }

    public static func floatType(_ path: FieldPath, input: JSONValue) -> FieldError {
        if case .string = input {
            return FieldError(
                type: "float_parsing", path: path,
                message: "Input should be a valid number, unable to parse string as a number", input: input)
        }
        return FieldError(type: "float_type", path: path, message: "Input should be a valid number", input: input)
    }

    public static func boolType(_ path: FieldPath, input: JSONValue) -> FieldError {
        switch input {
        case .string, .int, .double:
            return FieldError(
                type: "bool_parsing", path: path,
                message: "Input should be a valid boolean, unable to interpret input", input: input)
        default:
            return FieldError(type: "bool_type", path: path, message: "Input should be a valid boolean", input: input)
        }
    }

    /// `'a', 'b' or 'c'`, pydantic's rendering of the expected values.
    public static func expectedList(_ values: [String]) -> String {
        let quoted = values.map { "'\($0)'" }
        guard quoted.count > 1 else { return quoted.first ?? "" }
        return quoted.dropLast().joined(separator: ", ") + " or " + (quoted.last ?? "")
    }

    public static func enumeration(_ path: FieldPath, input: JSONValue, values: [String], literal: Bool = false)
        -> FieldError
    {
        let expected = expectedList(values)
        return FieldError(
            type: literal ? "literal_error" : "enum", path: path, message: "Input should be \(expected)",
            input: input, context: ["expected": .string(expected)])
    }

    public static func modelType(_ path: FieldPath, input: JSONValue) -> FieldError {
        FieldError(
            type: "model_attributes_type", path: path,
            message: "Input should be a valid dictionary or object to extract fields from", input: input)
    }

    public static func dictType(_ path: FieldPath, input: JSONValue) -> FieldError {
        FieldError(type: "dict_type", path: path, message: "Input should be a valid dictionary", input: input)
    }

    public static func listType(_ path: FieldPath, input: JSONValue) -> FieldError {
        FieldError(type: "list_type", path: path, message: "Input should be a valid list", input: input)
    }

    public static func datetime(_ path: FieldPath, input: JSONValue) -> FieldError {
        FieldError(
            type: "datetime_from_date_parsing", path: path,
            message: "Input should be a valid datetime or date, invalid format", input: input)
    }

    /// A number of seconds (or milliseconds) since 1970 outside the dates a datetime holds.
    public static func datetimeParsing(_ path: FieldPath, input: JSONValue, error: String) -> FieldError {
        FieldError(
            type: "datetime_parsing", path: path, message: "Input should be a valid datetime, \(error)", input: input,
            context: ["error": .string(error)])
    }

    /// NaN or an infinity where a number is stored (pydantic's `allow_inf_nan=False`).
    public static func finiteNumber(_ path: FieldPath, input: JSONValue) -> FieldError {
        FieldError(type: "finite_number", path: path, message: "Input should be a finite number", input: input)
    }

    /// A cross-field rule (an invariant of the CWOM spec).
    public static func valueError(_ path: FieldPath, input: JSONValue?, message: String) -> FieldError {
        FieldError(
            type: "value_error", path: path, message: "Value error, \(message)", input: input,
            context: ["error": .object([:])])
    }
}
