/// A Swift value with a JSON form.
public protocol JSONRepresentable {
    var json: JSONValue { get }
}

extension String: JSONRepresentable { public var json: JSONValue { .string(self) } }
extension Int: JSONRepresentable { public var json: JSONValue { .int(self) } }
extension Double: JSONRepresentable { public var json: JSONValue { .double(self) } }
extension Bool: JSONRepresentable { public var json: JSONValue { .bool(self) } }
extension JSONValue: JSONRepresentable { public var json: JSONValue { self } }
extension JSONObject: JSONRepresentable { public var json: JSONValue { .object(self) } }

extension Optional: JSONRepresentable where Wrapped: JSONRepresentable {
    /// `null` when nil.
    public var json: JSONValue { self?.json ?? .null }
}

extension Array: JSONRepresentable where Element: JSONRepresentable {
    // A closure, not `map(\.json)`: in this generic context the key path is built at run time on
    // every call (a twentieth of a request thread at intake, in `perf`).
    public var json: JSONValue { .array(map { $0.json }) }
}
