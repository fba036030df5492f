import TowerJSON

/// A value of the object model that can be read from JSON (with validation) and written back.
///
/// A model's `init(reading:)` is written once and serves three purposes: validating input with
/// pydantic-shaped errors, building the Swift value, and (with a describing reader) recording the
/// JSON Schema that `tower schema export` writes.
public protocol CWOMModel: Sendable, JSONRepresentable, JSONWritable {
    /// The name of the model in schemas and error messages (`Repo`, `Actor`, …).
    static var schemaName: String { get }
    init(reading reader: ObjectReader)
    /// The JSON form: snake_case keys, every optional member written out (as `null` when unset).
    var json: JSONValue { get }
    /// Whether unknown keys are ignored instead of rejected (pydantic `extra="ignore"`). CWOM
    /// models reject them; some legacy request models ignore them.
    static var ignoresExtraKeys: Bool { get }
}

extension CWOMModel {
    public static var ignoresExtraKeys: Bool { false }
}

/// A closed set of string values of the CWOM spec.
public protocol CWOMEnum: RawRepresentable<String>, CaseIterable, Sendable, Hashable, JSONRepresentable, JSONWritable {}

extension CWOMModel {
    /// A model whose shape is its `json` tree. The models an enqueue writes describe themselves
    /// to the sink instead, and derive `json` from that (`JSONSink`).
    public func write(to sink: inout JSONSink) { sink.value(json) }
}

extension CWOMEnum {
    // Closures, not key paths: a key path in generic code is built (demangled) at every call.
    public static var allValues: [String] { allCases.map { $0.rawValue } }
    public var json: JSONValue { .string(rawValue) }
    public func write(to sink: inout JSONSink) { sink.string(rawValue) }
    /// The first declared value (every CWOM enum has at least one).
    static var firstCase: Self { allCases[allCases.startIndex] }
}

/// Whether a reader reads a stored object (with `kind`, `id` and timestamps) or a create
/// payload (without them).
public enum ReadMode: Sendable {
    case object
    case create
}

final class ErrorSink {
    var errors: [FieldError] = []
}

final class SchemaRecorder {
    var definitions: [String: ModelSchema] = [:]
    var order: [String] = []

    func define<T: CWOMModel>(_ type: T.Type, mode: ReadMode) {
        guard definitions[T.schemaName] == nil else { return }
        definitions[T.schemaName] = ModelSchema(name: T.schemaName, properties: [])  // cycle guard
        let reader = ObjectReader(describing: self, mode: mode)
        _ = T(reading: reader)
        definitions[T.schemaName] = reader.modelSchema(T.self, name: T.schemaName)
        order.append(T.schemaName)
    }
}

/// Reads the fields of one JSON object. Every accessor returns a usable value (a placeholder
/// when the input is wrong) and records failures, so that all errors of a payload are reported
/// at once, in field order, as pydantic does.
public final class ObjectReader {
    public let mode: ReadMode
    let path: FieldPath
    private let sink: ErrorSink
    private let source: JSONObject?
    private let raw: JSONValue?
    /// The keys looked up, in order (with repeats): a model reads a few dozen at most, and the
    /// objects it reads mostly hold them in the same order (they were written from the same
    /// model), so `finish` walks both side by side. A `Set` hashed every key twice per object;
    /// decoding a claim's Issue, ContextPacket and ConstraintSnapshot spent 2 % of a worker's
    /// instructions in it (docs/benchmarks.md, forty-sixth session).
    private var seen: [String] = []
    /// Errors recorded before this reader started: invariants run only on clean fields.
    private let errorsAtStart: Int
    // Describing readers record the schema instead of reading values.
    private let recorder: SchemaRecorder?
    private(set) var recorded: [SchemaProperty] = []
    private(set) var recordedOneOf: [[String]] = []

    /// Whether this reader describes a schema (or builds a placeholder) instead of reading input.
    public var isDescribing: Bool { source == nil }

    init(object: JSONObject, raw: JSONValue, path: FieldPath, sink: ErrorSink, mode: ReadMode) {
        self.source = object
        self.raw = raw
        self.path = path
        self.sink = sink
        self.mode = mode
        self.recorder = nil
        self.errorsAtStart = sink.errors.count
        // One allocation, not one per doubling: a model looks up each of its keys, present or
        // not (a task request's body holds five of the twenty or so its model reads).
        seen.reserveCapacity(Swift.max(object.count, 24))
    }

    init(describing recorder: SchemaRecorder?, mode: ReadMode) {
        self.source = nil
        self.raw = nil
        self.path = FieldPath()
        self.sink = ErrorSink()
        self.mode = mode
        self.recorder = recorder
        self.errorsAtStart = 0
    }

    // MARK: - Entry points

    /// Validates `json` as a `T` and builds it, or throws every failure.
    public static func read<T: CWOMModel>(_ type: T.Type, from json: JSONValue, mode: ReadMode = .object,
        model: String? = nil) throws(CWOMValidationError) -> T
    {
        let sink = ErrorSink()
        let value = readNested(T.self, json: json, path: FieldPath(), sink: sink, mode: mode)
        if !sink.errors.isEmpty {
            throw CWOMValidationError(model: model ?? T.schemaName + (mode == .create ? "Create" : ""), errors: sink.errors)
        }
        return value
    }

    /// The JSON Schema of `T` with every model it uses under `$defs`.
    public static func schema<T: CWOMModel>(of type: T.Type, mode: ReadMode = .object, title: String? = nil) -> JSONObject {
        let recorder = SchemaRecorder()
        let reader = ObjectReader(describing: recorder, mode: mode)
        _ = T(reading: reader)
        var schema = reader.modelSchema(T.self, name: title ?? T.schemaName).jsonSchema
        var result: JSONObject = ["$schema": "https://json-schema.org/draft/2020-12/schema"]
        for (key, value) in schema { result[key] = value }
        if !recorder.order.isEmpty {
            var defs = JSONObject()
            for name in recorder.order.sorted() {
                if let def = recorder.definitions[name] { defs[name] = .object(def.jsonSchema) }
            }
            result["$defs"] = .object(defs)
        }
        schema = result
        return schema
    }

    /// What this describing reader recorded of `T`.
    func modelSchema<T: CWOMModel>(_ type: T.Type, name: String) -> ModelSchema {
        ModelSchema(name: name, properties: recorded, allowsExtraKeys: T.ignoresExtraKeys, oneOfRequired: recordedOneOf)
    }

    /// A value built from defaults only: what a describing reader produces.
    static func placeholder<T: CWOMModel>(_ type: T.Type, mode: ReadMode) -> T {
        T(reading: ObjectReader(describing: nil, mode: mode))
    }

    private static func readNested<T: CWOMModel>(_ type: T.Type, json: JSONValue, path: FieldPath, sink: ErrorSink,
        mode: ReadMode) -> T
    {
        guard case .object(let object) = json else {
            sink.errors.append(PydanticError.modelType(path, input: json))
            return placeholder(T.self, mode: mode)
        }
        let reader = ObjectReader(object: object, raw: json, path: path, sink: sink, mode: mode)
        let value = T(reading: reader)
        if !T.ignoresExtraKeys { reader.finish() }
        return value
    }

    /// Reports keys that no accessor asked for.
    private func finish() {
        guard let source else { return }
        var next = 0  // where in `seen` the next key of `source` is expected
        for (key, value) in source {
            if next < seen.count, seen[next] == key {
                next += 1
            } else if let at = seen.firstIndex(of: key) {
                next = at + 1
            } else {
                sink.errors.append(PydanticError.extraForbidden(path.appending(key), input: value))
            }
        }
    }

    // MARK: - Core

    /// The schema and default are built only by a describing reader: reading a request must not
    /// pay for them (an enum's list of values cost a tenth of the intake's CPU).
    private func record(
        _ key: String, _ node: @autoclosure () -> SchemaNode, required: Bool, default value: @autoclosure () -> JSONValue? = nil
    ) {
        guard source == nil, recorder != nil else { return }
        recorded.append(SchemaProperty(name: key, node: node(), required: required, defaultValue: value()))
    }

    /// The raw value of `key`, or nil when absent (recording `missing` if required).
    private func lookup(_ key: String, required: Bool) -> JSONValue? {
        guard let source else { return nil }
        seen.append(key)
        guard let value = source[key] else {
            if required { fail(PydanticError.missing(path.appending(key), input: raw)) }
            return nil
        }
        return value
    }

    private func fail(_ error: FieldError) { sink.errors.append(error) }

    /// Records a failed invariant of the spec (a pydantic `value_error`) at `key`. Like a pydantic
    /// model validator, it is skipped when a field of this object already failed.
    public func check(_ condition: @autoclosure () -> Bool, at key: String? = nil, _ message: String) {
        guard source != nil, sink.errors.count == errorsAtStart, !condition() else { return }
        let fieldPath = key.map { path.appending($0) } ?? path
        fail(PydanticError.valueError(fieldPath, input: key.flatMap { source?[$0] } ?? raw, message: message))
    }

    /// The invariant that at least one of `keys` holds a value (present, not null), with
    /// `message` when none does; a describing reader records it as the schema's `anyOf`.
    public func check(oneOf keys: [String], _ message: String) {
        guard source != nil else {
            if recorder != nil { recordedOneOf.append(keys) }
            return
        }
        check(keys.contains { key in source?[key].map { !$0.isNull } ?? false }, message)
    }

    // MARK: - Strings

    private func validString(_ value: JSONValue, _ key: String, min: Int?, max: Int?) -> String? {
        let fieldPath = path.appending(key)
        guard case .string(let s) = value else {
            fail(PydanticError.stringType(fieldPath, input: value))
            return nil
        }
        let length = s.unicodeScalars.count
        if let min, length < min {
            fail(PydanticError.tooShort(fieldPath, input: value, min: min))
            return nil
        }
        if let max, length > max {
            fail(PydanticError.tooLong(fieldPath, input: value, max: max))
            return nil
        }
        return s
    }

    /// A required string (or one with a default) with length bounds in Unicode scalars.
    public func string(_ key: String, min: Int? = nil, max: Int? = nil, default defaultValue: String? = nil,
        format: String? = nil) -> String
    {
        record(key, .string(minLength: min, maxLength: max, format: format), required: defaultValue == nil,
            default: defaultValue.map { .string($0) })
        guard let value = lookup(key, required: defaultValue == nil) else { return defaultValue ?? "" }
        return validString(value, key, min: min, max: max) ?? defaultValue ?? ""
    }

    /// An optional string; `null` and absence both mean nil.
    public func optionalString(_ key: String, min: Int? = nil, max: Int? = nil) -> String? {
        record(key, .nullable(.string(minLength: min, maxLength: max, format: nil)), required: false, default: .null)
        guard let value = lookup(key, required: false), !value.isNull else { return nil }
        return validString(value, key, min: min, max: max)
    }

    /// The `kind` discriminator of an object: must equal `expected` when present.
    public func constant(_ key: String, _ expected: String) {
        record(key, .constant(expected), required: false, default: .string(expected))
        guard let value = lookup(key, required: false) else { return }
        if value != .string(expected) {
            fail(PydanticError.enumeration(path.appending(key), input: value, values: [expected], literal: true))
        }
    }

    /// An object id: 1..128 characters, a new ULID when absent.
    public func identifier(_ key: String = "id") -> String {
        record(key, .string(minLength: 1, maxLength: 128, format: nil), required: false)
        guard let value = lookup(key, required: false) else { return isDescribing ? "" : ULID.make() }
        return validString(value, key, min: 1, max: 128) ?? ""
    }

    // MARK: - Numbers and booleans

    private func laxInt(_ value: JSONValue, _ key: String) -> Int? {
        switch value {
        case .int(let i): return i
        case .bool(let b): return b ? 1 : 0
        case .double(let d) where d.rounded() == d && abs(d) < 9.2e18: return Int(d)
        case .string(let s):
            if let i = Int(s.trimmingWhitespace()) { return i }
        default: break
        }
        fail(PydanticError.intType(path.appending(key), input: value))
        return nil
    }

    private func bounded(_ i: Int, _ value: JSONValue, _ key: String, min: Int?, max: Int?) -> Int? {
        if let min, i < min {
            fail(PydanticError.greaterThanEqual(path.appending(key), input: value, ge: .int(min)))
            return nil
        }
        if let max, i > max {
            fail(PydanticError.lessThanEqual(path.appending(key), input: value, le: .int(max)))
            return nil
        }
        return i
    }

    /// An integer with a default, accepting pydantic's lax forms (`"300"`, `300.0`).
    public func int(_ key: String, min: Int? = nil, max: Int? = nil, default defaultValue: Int) -> Int {
        record(key, .integer(minimum: min, maximum: max), required: false, default: .int(defaultValue))
        guard let value = lookup(key, required: false) else { return defaultValue }
        guard let i = laxInt(value, key) else { return defaultValue }
        return bounded(i, value, key, min: min, max: max) ?? defaultValue
    }

    /// A required integer.
    public func requiredInt(_ key: String, min: Int? = nil, max: Int? = nil) -> Int {
        record(key, .integer(minimum: min, maximum: max), required: true)
        guard let value = lookup(key, required: true), let i = laxInt(value, key) else { return 0 }
        return bounded(i, value, key, min: min, max: max) ?? 0
    }

    public func optionalInt(_ key: String, min: Int? = nil, max: Int? = nil) -> Int? {
        record(key, .nullable(.integer(minimum: min, maximum: max)), required: false, default: .null)
        guard let value = lookup(key, required: false), !value.isNull, let i = laxInt(value, key) else { return nil }
        return bounded(i, value, key, min: min, max: max)
    }

    public func optionalDouble(_ key: String, min: Double? = nil) -> Double? {
        record(key, .nullable(.number(minimum: min)), required: false, default: .null)
        guard let value = lookup(key, required: false), !value.isNull else { return nil }
        let number: Double?
        switch value {
        case .int(let i): number = Double(i)
        case .double(let d): number = d
        case .bool(let b): number = b ? 1 : 0
        case .string(let s): number = Double(s.trimmingWhitespace())
        default: number = nil
        }
        guard let number, number.isFinite else {
            fail(PydanticError.floatType(path.appending(key), input: value))
            return nil
        }
        if let min, number < min {
            fail(PydanticError.greaterThanEqual(path.appending(key), input: value, ge: .double(min)))
            return nil
        }
        return number
    }

    /// pydantic's lax booleans: `true/false`, `0/1`, and `yes/no/on/off/t/f/y/n/1/0` strings.
    public static func laxBool(_ value: JSONValue) -> Bool? {
        switch value {
        case .bool(let b): return b
        case .int(0): return false
        case .int(1): return true
        case .double(0): return false
        case .double(1): return true
        case .string(let s):
            switch s.lowercased() {
            case "true", "yes", "on", "t", "y", "1": return true
            case "false", "no", "off", "f", "n", "0": return false
            default: return nil
            }
        default: return nil
        }
    }

    public func bool(_ key: String, default defaultValue: Bool) -> Bool {
        record(key, .boolean, required: false, default: .bool(defaultValue))
        guard let value = lookup(key, required: false) else { return defaultValue }
        guard let b = Self.laxBool(value) else {
            fail(PydanticError.boolType(path.appending(key), input: value))
            return defaultValue
        }
        return b
    }

    public func requiredBool(_ key: String) -> Bool {
        record(key, .boolean, required: true)
        guard let value = lookup(key, required: true) else { return false }
        guard let b = Self.laxBool(value) else {
            fail(PydanticError.boolType(path.appending(key), input: value))
            return false
        }
        return b
    }

    // MARK: - Enums

    private func validEnum<E: CWOMEnum>(_ value: JSONValue, _ key: String, literal: Bool) -> E? {
        if case .string(let s) = value, let e = E(rawValue: s) { return e }
        fail(PydanticError.enumeration(path.appending(key), input: value, values: E.allValues, literal: literal))
        return nil
    }

    /// An enum value; required when `default` is nil. `literal` selects pydantic's
    /// `literal_error` (for `Literal[...]` fields) instead of `enum`.
    public func enumeration<E: CWOMEnum>(_ key: String, default defaultValue: E? = nil, literal: Bool = false) -> E {
        record(key, .enumeration(E.allValues), required: defaultValue == nil, default: defaultValue.map { $0.json })
        let fallback = defaultValue ?? E.firstCase
        guard let value = lookup(key, required: defaultValue == nil) else { return fallback }
        return validEnum(value, key, literal: literal) ?? fallback
    }

    public func optionalEnumeration<E: CWOMEnum>(_ key: String, literal: Bool = false) -> E? {
        record(key, .nullable(.enumeration(E.allValues)), required: false, default: .null)
        guard let value = lookup(key, required: false), !value.isNull else { return nil }
        return validEnum(value, key, literal: literal)
    }

    /// An optional free-form JSON object; `null` and absence mean nil.
    public func optionalDictionary(_ key: String) -> JSONObject? {
        record(key, .nullable(.dictionary), required: false, default: .null)
        guard let value = lookup(key, required: false), !value.isNull else { return nil }
        guard case .object(let o) = value else {
            fail(PydanticError.dictType(path.appending(key), input: value))
            return nil
        }
        return o
    }

    // MARK: - Timestamps

    private func validTimestamp(_ value: JSONValue, _ key: String) -> Timestamp? {
        switch value {
        case .string(let s):
            if let t = Timestamp(iso8601: s.trimmingWhitespace()) { return t }
        case .int(let i):
            // Whole seconds or milliseconds, in whole microseconds (checked in range first).
            guard unixTimeInRange(Double(i), value, key) else { return nil }
            return Timestamp(microseconds: Int64(i) * (abs(i) > 20_000_000_000 ? 1_000 : 1_000_000))
        case .double(let d) where d.isFinite:
            guard unixTimeInRange(d, value, key) else { return nil }
            return Timestamp(microseconds: Int64(((abs(d) > 2e10 ? d / 1_000 : d) * 1_000_000).rounded()))
        default: break
        }
        fail(PydanticError.datetime(path.appending(key), input: value))
        return nil
    }

    /// Whether a number is a datetime as pydantic reads one: seconds since 1970, or milliseconds
    /// when its magnitude passes 2×10¹⁰, between the years 1600 and 9999; the error when not.
    /// (Multiplied into microseconds unchecked, `"deadline": 1e300` trapped and took the process
    /// down.)
    private func unixTimeInRange(_ number: Double, _ value: JSONValue, _ key: String) -> Bool {
        let seconds = abs(number) > 2e10 ? number / 1_000 : number
        let error =
            if seconds >= 253_402_300_800 { "dates after 9999 are not supported as unix timestamps" }
            else if seconds < -11_676_096_000 { "dates before 1600 are not supported as unix timestamps" }
            else { String?.none }
        if let error { fail(PydanticError.datetimeParsing(path.appending(key), input: value, error: error)) }
        return error == nil
    }

    /// A date-time that defaults to the time of reading.
    public func timestamp(_ key: String) -> Timestamp {
        record(key, .string(minLength: nil, maxLength: nil, format: "date-time"), required: false)
        guard let value = lookup(key, required: false) else { return .now() }
        return validTimestamp(value, key) ?? .now()
    }

    public func optionalTimestamp(_ key: String) -> Timestamp? {
        record(key, .nullable(.string(minLength: nil, maxLength: nil, format: "date-time")), required: false,
            default: .null)
        guard let value = lookup(key, required: false), !value.isNull else { return nil }
        return validTimestamp(value, key)
    }

    // MARK: - Containers

    /// A free-form JSON object (`meta`, `inputs`, …), `{}` when absent.
    public func dictionary(_ key: String) -> JSONObject {
        record(key, .dictionary, required: false, default: .object([:]))
        guard let value = lookup(key, required: false) else { return [:] }
        guard case .object(let o) = value else {
            fail(PydanticError.dictType(path.appending(key), input: value))
            return [:]
        }
        return o
    }

    private func list(_ value: JSONValue, _ key: String) -> [JSONValue]? {
        guard case .array(let elements) = value else {
            fail(PydanticError.listType(path.appending(key), input: value))
            return nil
        }
        return elements
    }

    /// A list of strings, `[]` when absent.
    public func strings(_ key: String, min: Int? = nil, max: Int? = nil) -> [String] {
        record(key, .array(.string(minLength: min, maxLength: max, format: nil)), required: false, default: .array([]))
        guard let value = lookup(key, required: false), let elements = list(value, key) else { return [] }
        return stringElements(elements, key, min: min, max: max)
    }

    public func optionalStrings(_ key: String) -> [String]? {
        record(key, .nullable(.array(.string(minLength: nil, maxLength: nil, format: nil))), required: false,
            default: .null)
        guard let value = lookup(key, required: false), !value.isNull, let elements = list(value, key) else {
            return nil
        }
        return stringElements(elements, key, min: nil, max: nil)
    }

    private func stringElements(_ elements: [JSONValue], _ key: String, min: Int?, max: Int?) -> [String] {
        var result: [String] = []
        for (index, element) in elements.enumerated() {
            let elementPath = path.appending(key).appending(index)
            guard case .string(let s) = element else {
                fail(PydanticError.stringType(elementPath, input: element))
                continue
            }
            let length = s.unicodeScalars.count
            if let min, length < min { fail(PydanticError.tooShort(elementPath, input: element, min: min)); continue }
            if let max, length > max { fail(PydanticError.tooLong(elementPath, input: element, max: max)); continue }
            result.append(s)
        }
        return result
    }

    /// A required nested model.
    public func model<T: CWOMModel>(_ key: String, _ type: T.Type) -> T {
        describeModel(T.self)
        record(key, .model(T.schemaName), required: true)
        guard let value = lookup(key, required: true) else { return Self.placeholder(T.self, mode: mode) }
        return Self.readNested(T.self, json: value, path: path.appending(key), sink: sink, mode: mode)
    }

    /// A nested model that takes its defaults when absent.
    public func model<T: CWOMModel>(_ key: String, default makeDefault: @autoclosure () -> T) -> T {
        describeModel(T.self)
        let defaultValue = makeDefault()
        record(key, .model(T.schemaName), required: false, default: isDescribing ? defaultValue.json : nil)
        guard let value = lookup(key, required: false) else { return defaultValue }
        return Self.readNested(T.self, json: value, path: path.appending(key), sink: sink, mode: mode)
    }

    public func optionalModel<T: CWOMModel>(_ key: String, _ type: T.Type) -> T? {
        describeModel(T.self)
        record(key, .nullable(.model(T.schemaName)), required: false, default: .null)
        guard let value = lookup(key, required: false), !value.isNull else { return nil }
        return Self.readNested(T.self, json: value, path: path.appending(key), sink: sink, mode: mode)
    }

    /// A list of nested models, `[]` when absent.
    public func models<T: CWOMModel>(_ key: String, _ type: T.Type) -> [T] {
        describeModel(T.self)
        record(key, .array(.model(T.schemaName)), required: false, default: .array([]))
        guard let value = lookup(key, required: false), let elements = list(value, key) else { return [] }
        return elements.enumerated().map { index, element in
            Self.readNested(T.self, json: element, path: path.appending(key).appending(index), sink: sink, mode: mode)
        }
    }

    private func describeModel<T: CWOMModel>(_ type: T.Type) {
        recorder?.define(T.self, mode: mode)
    }

    // MARK: - References

    private func checkKind(_ ref: Ref, _ kind: ObjectKind, at refPath: FieldPath, input: JSONValue?) {
        guard source != nil, ref.kind != kind else { return }
        fail(
            PydanticError.valueError(
                refPath.appending("kind"), input: .string(ref.kind.rawValue),
                message: "expected a \(kind.rawValue) reference, got \(ref.kind.rawValue)"))
    }

    /// A required reference that must point at an object of `kind`.
    public func ref(_ key: String, kind: ObjectKind) -> Ref {
        describeModel(Ref.self)
        record(key, .refOfKind(kind.rawValue), required: true)
        guard let value = lookup(key, required: true) else { return Ref(kind: kind, id: "") }
        let ref = Self.readNested(Ref.self, json: value, path: path.appending(key), sink: sink, mode: mode)
        checkKind(ref, kind, at: path.appending(key), input: value)
        return ref
    }

    public func optionalRef(_ key: String, kind: ObjectKind) -> Ref? {
        describeModel(Ref.self)
        record(key, .nullable(.refOfKind(kind.rawValue)), required: false, default: .null)
        guard let value = lookup(key, required: false), !value.isNull else { return nil }
        let ref = Self.readNested(Ref.self, json: value, path: path.appending(key), sink: sink, mode: mode)
        checkKind(ref, kind, at: path.appending(key), input: value)
        return ref
    }

    /// A list of references of one kind, `[]` when absent.
    public func refs(_ key: String, kind: ObjectKind) -> [Ref] {
        describeModel(Ref.self)
        record(key, .array(.refOfKind(kind.rawValue)), required: false, default: .array([]))
        guard let value = lookup(key, required: false), let elements = list(value, key) else { return [] }
        return elements.enumerated().map { index, element in
            let elementPath = path.appending(key).appending(index)
            let ref = Self.readNested(Ref.self, json: element, path: elementPath, sink: sink, mode: mode)
            checkKind(ref, kind, at: elementPath, input: element)
            return ref
        }
    }
}

extension String {
    func trimmingWhitespace() -> String {
        let scalars = unicodeScalars
        guard let start = scalars.firstIndex(where: { !$0.properties.isWhitespace }),
            let end = scalars.lastIndex(where: { !$0.properties.isWhitespace })
        else { return "" }
        return String(scalars[start...end])
    }
}
