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
    public var json: JSONValue { .array(map(\.json)) }
}
