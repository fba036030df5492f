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
    public static func int(_ value: Int?) -> SQLValue { value.map { .int($0) } ?? .null }
}

/// The column names of one result, shared by its rows: a row keeps its values in column order
/// and finds a column through this one table, built once per result rather than a dictionary
/// per row (a claim reads dozens of columns of each of its rows). A repeated name is the last
/// column of that name, as a dictionary filled in column order would keep it.
final class SQLColumns: Sendable {
    /// Each name's position in a row's values.
    let positions: [String: Int]
    /// The column sets `prefixed` made, by prefix: the same few per result, each made once.
    private let prefixedSets = Mutex<[String: SQLColumns]>([:])

    convenience init(_ names: [String]) {
        var positions: [String: Int] = Dictionary(minimumCapacity: names.count)
        for (position, name) in names.enumerated() { positions[name] = position }
        self.init(positions: positions)
    }

    init(positions: [String: Int]) { self.positions = positions }

    /// The columns named `prefix…`, without the prefix, at their positions in the full row.
    func prefixed(_ prefix: String) -> SQLColumns {
        prefixedSets.withLock { sets in
            if let made = sets[prefix] { return made }
            var picked: [String: Int] = [:]
            for (name, position) in positions where name.hasPrefix(prefix) { picked[String(name.dropFirst(prefix.count))] = position }
            let made = SQLColumns(positions: picked)
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
    public var values: [String: SQLValue] { columns.positions.mapValues { cells[$0] } }

    /// The columns named `prefix…`, without the prefix: a joined row's other object. Shares the
    /// row's values.
    public func prefixed(_ prefix: String) -> SQLRow { SQLRow(columns: columns.prefixed(prefix), cells: cells) }

    private func value(_ column: String) throws(StorageError) -> SQLValue {
        guard let position = columns.positions[column] else {
            throw StorageError(.decoding, "column '\(column)' is missing from the result")
        }
        return cells[position]
    }

    /// True for `NULL`, and for a column the result does not have.
    public func isNull(_ column: String) -> Bool {
        guard let position = columns.positions[column] else { return true }
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
