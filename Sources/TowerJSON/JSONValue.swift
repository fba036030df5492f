#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A JSON value that keeps the order of object keys.
///
/// Control Tower builds every response body, trace file and stored JSON column from these
/// values, so key order and number formatting are deterministic and match what the legacy
/// Python service printed. Integers and floating-point numbers stay distinct (`300` and `300.0`
/// are different inputs to the legacy validation rules).
public enum JSONValue: Sendable, Hashable {
    case null
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object(JSONObject)
}

/// An ordered JSON object. Setting an existing key replaces its value in place (Python `dict`
/// semantics, which is also what "the last duplicate key wins" means for `json.loads`).
public struct JSONObject: Sendable, Hashable, Sequence, ExpressibleByDictionaryLiteral {
    /// The members in order. Most objects Control Tower builds or reads have a few dozen keys at
    /// most, for which a search along this array is cheaper than hashing the key (and a flat array
    /// is one allocation where a dictionary and a key list were two, plus an iterator box per
    /// walk): building, serialising and freeing the JSON of audit rows and columns was a quarter
    /// of a request thread at intake (`perf`, docs/benchmarks.md).
    /// (Tuples without labels: a literal's elements are kept as they come, not copied into
    /// labelled ones.)
    private(set) var members: [(String, JSONValue)] = []
    /// Positions by key, kept once an object has more than `indexedFrom` keys, so that a parsed
    /// body of 100,000 keys costs 100,000 hash lookups, not 10^10 comparisons. An object made
    /// from a literal gets them at its first insertion (`init(literal:)`).
    private var positions: [String: Int]?
    private static let indexedFrom = 16

    public init() {}

    public init(_ pairs: [(String, JSONValue)]) {
        members.reserveCapacity(pairs.count)
        for (key, value) in pairs { self[key] = value }
    }

    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        self.init(literal: elements)
    }

    /// The members of a literal, whose keys are distinct (checked in debug builds), taken as they
    /// are: no search for a duplicate per key and no index of positions, which a literal's
    /// object (a row's JSON, a response body, an audit entry's snapshot) is built to be written
    /// out, not searched. A lookup searches along it; a first insertion builds the index. These
    /// searches and indexes were 7 % of a request thread at intake (`perf`, docs/benchmarks.md).
    init(literal elements: [(String, JSONValue)]) {
        assert(Set(elements.map(\.0)).count == elements.count, "a key is repeated in a JSON object literal")
        members = elements
    }

    /// The keys in order.
    public var keys: [String] { members.map { $0.0 } }

    private func position(of key: String) -> Int? {
        if let positions { return positions[key] }
        return members.firstIndex { $0.0 == key }
    }

    private mutating func reindex() {
        guard members.count > Self.indexedFrom else {
            positions = nil
            return
        }
        var index: [String: Int] = [:]
        index.reserveCapacity(members.count)
        for (offset, member) in members.enumerated() { index[member.0] = offset }
        positions = index
    }

    public subscript(key: String) -> JSONValue? {
        get { position(of: key).map { members[$0].1 } }
        set {
            if let newValue {
                if let existing = position(of: key) {
                    members[existing].1 = newValue
                } else {
                    // A parsed body's objects are filled key by key: room for a few at once
                    // rather than a reallocation at the second, third and fifth key.
                    if members.isEmpty { members.reserveCapacity(8) }
                    members.append((key, newValue))
                    if positions != nil {
                        positions?[key] = members.count - 1
                    } else if members.count > Self.indexedFrom {
                        reindex()
                    }
                }
            } else if let existing = position(of: key) {
                members.remove(at: existing)
                reindex()
            }
        }
    }

    public var count: Int { members.count }
    public var isEmpty: Bool { members.isEmpty }

    public func makeIterator() -> some IteratorProtocol<(key: String, value: JSONValue)> {
        members.lazy.map { (key: $0.0, value: $0.1) }.makeIterator()
    }

    /// Objects compare equal when they hold the same keys and values, in any order.
    public static func == (lhs: JSONObject, rhs: JSONObject) -> Bool {
        guard lhs.count == rhs.count else { return false }
        return lhs.members.allSatisfy { member in rhs[member.0] == member.1 }
    }

    /// Independent of the order of keys, as `==` is.
    public func hash(into hasher: inout Hasher) {
        var members = 0
        for member in self.members {
            var one = Hasher()
            one.combine(member.0)
            one.combine(member.1)
            members ^= one.finalize()
        }
        hasher.combine(count)
        hasher.combine(members)
    }
}

extension JSONValue: ExpressibleByNilLiteral, ExpressibleByBooleanLiteral, ExpressibleByIntegerLiteral,
    ExpressibleByFloatLiteral, ExpressibleByStringLiteral, ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral
{
    public init(nilLiteral: ()) { self = .null }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(integerLiteral value: Int) { self = .int(value) }
    public init(floatLiteral value: Double) { self = .double(value) }
    public init(stringLiteral value: String) { self = .string(value) }
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, JSONValue)...) { self = .object(JSONObject(literal: elements)) }
}

extension JSONValue {
    public var isNull: Bool { if case .null = self { return true } else { return false } }

    public var stringValue: String? { if case .string(let s) = self { return s } else { return nil } }

    public var objectValue: JSONObject? { if case .object(let o) = self { return o } else { return nil } }

    public var arrayValue: [JSONValue]? { if case .array(let a) = self { return a } else { return nil } }

    public var boolValue: Bool? { if case .bool(let b) = self { return b } else { return nil } }

    public var intValue: Int? {
        switch self {
        case .int(let i): return i
        case .double(let d) where d.rounded() == d && abs(d) < 9.2e18: return Int(d)
        default: return nil
        }
    }

    public var doubleValue: Double? {
        switch self {
        case .int(let i): return Double(i)
        case .double(let d): return d
        default: return nil
        }
    }

    /// Looks up a key when this value is an object.
    public subscript(key: String) -> JSONValue? {
        objectValue?[key]
    }

    /// The name of the JSON type, as used in error messages.
    public var typeName: String {
        switch self {
        case .null: return "null"
        case .bool: return "boolean"
        case .int, .double: return "number"
        case .string: return "string"
        case .array: return "array"
        case .object: return "object"
        }
    }
}

extension JSONValue {
    /// The first value that the two databases cannot both store as it is, with its path of keys
    /// and indexes; nil when there is none:
    /// - a string or key holding the NUL character U+0000 (`.string`): PostgreSQL refuses it,
    ///   SQLite cuts the text at it;
    /// - a number that is NaN or infinite (`.double`): JSON has no such number, PostgreSQL's
    ///   `json` refuses it, SQLite would keep it.
    public func firstUnstorable() -> (path: [JSONValue], value: JSONValue)? {
        switch self {
        case .string(let s): return s.containsNUL ? ([], self) : nil
        case .double(let d): return d.isFinite ? nil : ([], self)
        case .array(let elements):
            for (index, element) in elements.enumerated() {
                if let found = element.firstUnstorable() { return ([.int(index)] + found.path, found.value) }
            }
            return nil
        case .object(let object):
            for (key, value) in object {
                if key.containsNUL { return ([.string(key)], .string(key)) }
                if let found = value.firstUnstorable() { return ([.string(key)] + found.path, found.value) }
            }
            return nil
        case .null, .bool, .int: return nil
        }
    }

    /// Why a value that `firstUnstorable` found cannot be stored, in words for an error message.
    public var unstorableReason: String {
        if case .double = self { "\(serialized()), which JSON has no number for" } else { "text with the NUL character (U+0000)" }
    }
}

extension StringProtocol {
    /// Whether the text holds the NUL character U+0000.
    public var containsNUL: Bool {
        utf8.withContiguousStorageIfAvailable { bytes in bytes.contains(0) } ?? utf8.contains(0)
    }
}

extension String {
    /// Whether the text holds the NUL character U+0000. Every text bind of every statement is
    /// checked, hundreds per intake batch on SQLite's writer thread: this one is specialized
    /// for `String` and inlined where it is used (the generic one above was 1.3 % of the writer
    /// under `wrk`), and it asks `memchr`, which reads a vector's width at a time.
    @inlinable public var containsNUL: Bool {
        var text = self
        return text.withUTF8 { bytes in
            guard let base = bytes.baseAddress else { return false }
            return memchr(base, 0, bytes.count) != nil
        }
    }
}
