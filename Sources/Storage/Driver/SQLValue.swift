import CWOM
import Synchronization
import TowerJSON

/// A value bound to a SQL statement. Drivers turn it into their native bind: PostgreSQL receives
/// text and JSON as untyped literals (so the same statement works on `json` and `jsonb` columns
/// and on the legacy enum types), SQLite receives text, integers and reals.
public enum SQLValue: Sendable, Hashable {
    case null
    case int(Int)
    case double(Double)
    case bool(Bool)
    case text(String)
    case timestamp(Timestamp)
    case json(JSONValue)

    public static func text(_ value: String?) -> SQLValue { value.map { .text($0) } ?? .null }
    public static func timestamp(_ value: Timestamp?) -> SQLValue { value.map { .timestamp($0) } ?? .null }
    public static func json(_ value: JSONValue?) -> SQLValue { value.map { .json($0) } ?? .null }

    /// A JSON column written straight from a model as its compact text (`JSONSink`), instead of
    /// a tree built, written out and freed; a value holding NUL stays a tree, which storing
    /// refuses as it refuses any JSON holding NUL (`StorageError.storableString`).
    static func json(writing value: some JSONWritable) -> SQLValue {
        if let text = JSONSink.textWithoutNUL(of: value) { return .text(text) }
        return .json(JSONSink.tree(of: value))
    }
    public static func int(_ value: Int?) -> SQLValue { value.map { .int($0) } ?? .null }
}

/// The column names of one result, shared by its rows: a row keeps its values in column order
/// and finds a column through this one table, built once per result rather than a dictionary
/// per row (a claim reads dozens of columns of each of its rows). A repeated name is the last
/// column of that name, as a dictionary filled in column order would keep it.
///
/// The table is open addressing on an FNV-1a hash of the name's bytes, not a `Dictionary`:
/// `String`'s hashing (SipHash with a per-process seed, through `Hasher`) cost about 370
/// instructions a lookup, and a claimed task's rows are decoded by about 86 lookups.
final class SQLColumns: Sendable {
    /// Each distinct name with its position in a row's values, in the order first seen.
    let entries: [(name: String, position: Int)]
    /// Indexes into `entries` (or -1 for an empty slot); a power of two at least twice their count.
    private let slots: [Int32]
    /// The column sets `prefixed` made, by prefix: the same few per result, each made once.
    private let prefixedSets = Mutex<[String: SQLColumns]>([:])

    convenience init(_ names: [String]) {
        self.init(entries: names.enumerated().map { ($0.element, $0.offset) })
    }

    /// `entries` may repeat a name: the last one's position is kept.
    init(entries given: [(name: String, position: Int)]) {
        var capacity = 8
        while capacity < given.count * 2 { capacity *= 2 }
        var slots = [Int32](repeating: -1, count: capacity)
        var entries: [(name: String, position: Int)] = []
        entries.reserveCapacity(given.count)
        for (name, position) in given {
            var slot = Int(truncatingIfNeeded: Self.hash(name)) & (capacity - 1)
            while true {
                let index = Int(slots[slot])
                if index < 0 {
                    slots[slot] = Int32(entries.count)
                    entries.append((name, position))
                    break
                }
                if entries[index].name == name {
                    entries[index].position = position
                    break
                }
                slot = (slot + 1) & (capacity - 1)
            }
        }
        self.entries = entries
        self.slots = slots
    }

    /// FNV-1a of the name's UTF-8 bytes.
    @inline(__always)
    static func hash(_ name: String) -> UInt64 {
        func fnv<Bytes: Sequence<UInt8>>(_ bytes: Bytes) -> UInt64 {
            var hash: UInt64 = 0xcbf2_9ce4_8422_2325
            for byte in bytes { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
            return hash
        }
        // A native string's bytes are walked in place (the `UTF8View` checks every step).
        return name.utf8.withContiguousStorageIfAvailable(fnv) ?? fnv(name.utf8)
    }

    /// The position of `name` in a row's values.
    func position(_ name: String) -> Int? {
        let mask = slots.count - 1
        var slot = Int(truncatingIfNeeded: Self.hash(name)) & mask
        while true {
            let index = Int(slots[slot])
            if index < 0 { return nil }
            if entries[index].name == name { return entries[index].position }
            slot = (slot + 1) & mask
        }
    }

    /// The columns named `prefix…`, without the prefix, at their positions in the full row.
    func prefixed(_ prefix: String) -> SQLColumns {
        prefixedSets.withLock { sets in
            if let made = sets[prefix] { return made }
            let picked = entries.filter { $0.name.hasPrefix(prefix) }.map { (String($0.name.dropFirst(prefix.count)), $0.position) }
            let made = SQLColumns(entries: picked)
            sets[prefix] = made
            return made
        }
    }
}

/// One result row, by column name. Accessors convert between the storage forms of both
/// dialects (for example SQLite keeps timestamps as text and booleans as 0/1 or `'false'`).
public struct SQLRow: Sendable {
    let columns: SQLColumns
    /// The row's values in the order of the result's columns.
    let cells: [SQLValue]

    init(columns: SQLColumns, cells: [SQLValue]) {
        self.columns = columns
        self.cells = cells
    }

    /// Every column by name.
    public var values: [String: SQLValue] {
        Dictionary(columns.entries.map { ($0.name, cells[$0.position]) }, uniquingKeysWith: { _, last in last })
    }

    /// The columns named `prefix…`, without the prefix: a joined row's other object. Shares the
    /// row's values.
    public func prefixed(_ prefix: String) -> SQLRow { SQLRow(columns: columns.prefixed(prefix), cells: cells) }

    private func value(_ column: String) throws(StorageError) -> SQLValue {
        guard let position = columns.position(column) else {
            throw StorageError(.decoding, "column '\(column)' is missing from the result")
        }
        return cells[position]
    }

    /// True for `NULL`, and for a column the result does not have.
    public func isNull(_ column: String) -> Bool {
        guard let position = columns.position(column) else { return true }
        if case .null = cells[position] { return true }
        return false
    }

    public func string(_ column: String) throws(StorageError) -> String {
        guard let s = try optionalString(column) else { throw StorageError(.decoding, "column '\(column)' is NULL") }
        return s
    }

    public func optionalString(_ column: String) throws(StorageError) -> String? {
        switch try value(column) {
        case .null: return nil
        case .text(let s): return s
        case .int(let i): return String(i)
        case .double(let d): return String(d)
        case .bool(let b): return b ? "true" : "false"
        case .timestamp(let t): return t.iso8601
        case .json(let j): return j.serialized()
        }
    }

    public func int(_ column: String) throws(StorageError) -> Int {
        guard let i = try optionalInt(column) else { throw StorageError(.decoding, "column '\(column)' is NULL") }
        return i
    }

    public func optionalInt(_ column: String) throws(StorageError) -> Int? {
        switch try value(column) {
        case .null: return nil
        case .int(let i): return i
        // A REAL in an integer column (SQLite keeps what a program gave it) is read as before,
        // its fraction dropped; NaN or 1e300 is an error naming the column, not a trap.
        case .double(let d) where abs(d) < 9.2e18: return Int(d)
        case .bool(let b): return b ? 1 : 0
        case .text(let s):
            if let i = Int(s) { return i }
        default: break
        }
        throw StorageError(.decoding, "column '\(column)' is not an integer")
    }

    public func bool(_ column: String) throws(StorageError) -> Bool {
        switch try value(column) {
        case .bool(let b): return b
        case .int(let i): return i != 0
        case .text(let s):
            switch s.lowercased() {
            case "true", "t", "1": return true
            case "false", "f", "0": return false
            default: break
            }
        default: break
        }
        throw StorageError(.decoding, "column '\(column)' is not a boolean")
    }

    public func timestamp(_ column: String) throws(StorageError) -> Timestamp {
        guard let t = try optionalTimestamp(column) else { throw StorageError(.decoding, "column '\(column)' is NULL") }
        return t
    }

    public func optionalTimestamp(_ column: String) throws(StorageError) -> Timestamp? {
        switch try value(column) {
        case .null: return nil
        case .timestamp(let t): return t
        case .text(let s):
            if let t = Timestamp(iso8601: s) { return t }
        // Numbers only in a database another program wrote (a legacy one being backfilled): one
        // past the microseconds an Int64 holds is an error naming the column, not a trap.
        case .double(let d) where abs(d) < 9.2e12: return Timestamp(microseconds: Int64((d * 1_000_000).rounded()))
        case .int(let i):
            let (microseconds, overflow) = Int64(i).multipliedReportingOverflow(by: 1_000_000)
            if !overflow { return Timestamp(microseconds: microseconds) }
        default: break
        }
        throw StorageError(.decoding, "column '\(column)' is not a timestamp")
    }

    /// A JSON column, parsed. `NULL` is nil.
    public func optionalJSON(_ column: String) throws(StorageError) -> JSONValue? {
        switch try value(column) {
        case .null: return nil
        case .json(let j): return j
        case .text(let s):
            do { return try JSONParser.parse(s) } catch {
                throw StorageError(.decoding, "column '\(column)' holds invalid JSON: \(error)")
            }
        default:
            throw StorageError(.decoding, "column '\(column)' is not JSON")
        }
    }

    public func json(_ column: String) throws(StorageError) -> JSONValue {
        try optionalJSON(column) ?? .null
    }

    /// A JSON object column; `NULL` and non-objects read as `{}`.
    public func object(_ column: String) throws(StorageError) -> JSONObject {
        try optionalJSON(column)?.objectValue ?? [:]
    }
}
