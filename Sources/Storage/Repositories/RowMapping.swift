import Synchronization
import CWOM
import TowerJSON

/// Builders for the SQL of simple statements. Table and column names are constants of this
/// module, never input; every value is a bind.
enum SQL {
    /// `INSERT INTO table (a, b) VALUES ($1, $2)` and its binds.
    static func insert(_ table: String, _ columns: Columns, suffix: String = "") -> (String, [SQLValue]) {
        let names = columns.pairs.map(\.0).joined(separator: ", ")
        let placeholders = (1...columns.pairs.count).map { "$\($0)" }.joined(separator: ", ")
        return ("INSERT INTO \(table) (\(names)) VALUES (\(placeholders))\(suffix)", columns.pairs.map(\.1))
    }

    /// Multi-row `INSERT`s of rows with the same columns, in chunks that stay under the bind
    /// limits of both databases. With `texts`, a text made once for its table, columns and
    /// number of rows is taken from there instead of written again.
    ///
    /// A value that every row of a chunk holds in a column `mayShare` names is bound once, and
    /// every row's placeholder for that column is its number (both databases number their binds,
    /// `$n` and SQLite's `?n`, and take one bind in several places). A batch's rows share the
    /// kinds and roles of their references, and a transaction's audit rows their time and actor:
    /// bound row by row, they were about a quarter of a worker's binds, each costing the worker
    /// about 1,600 instructions and the server an input function call.
    static func insertMany(_ table: String, _ rows: [Columns], suffix: String = "", texts: InsertTexts? = nil) -> [(String, [SQLValue])] {
        insertChunks(table, rows, suffix: suffix, texts: texts).map { ($0.text, $0.binds) }
    }

    /// The statements of `insertMany` before their binds are gathered into one array each: a
    /// driver that binds values one at a time (SQLite) binds them from the rows where they are.
    static func insertChunks(_ table: String, _ rows: [Columns], suffix: String = "", texts: InsertTexts? = nil) -> [InsertChunk] {
        guard let first = rows.first else { return [] }
        let names = first.pairs.map(\.0)
        let perChunk = max(1, 30_000 / names.count)
        let candidates = rows.count > 1 ? (texts?.candidates(table, names: names) ?? shareable(names)) : 0
        var chunks: [InsertChunk] = []
        var start = 0
        while start < rows.count {
            let chunk = rows[start..<min(rows.count, start + perChunk)]
            let shared = chunk.count > 1 ? sharedColumns(chunk, among: candidates) : 0
            let make = { insertText(table, names: names, rows: chunk.count, suffix: suffix, shared: shared) }
            let text = texts?.text(table, names: names, rows: chunk.count, suffix: suffix, shared: shared, make: make) ?? make()
            chunks.append(InsertChunk(text: text, rows: chunk, shared: shared))
            start += perChunk
        }
        return chunks
    }

    /// Whether a column's value is, by construction, one for all the rows of a statement: an
    /// object's kind, the kinds and roles of its references, and the time, actor, status, mode
    /// and executor of the rows one transaction writes. Only a name here is compared across rows
    /// (`sharedColumns`); others are bound row by row without looking. The set is fixed so that
    /// a statement's text does not change with its data: a value that differs in some batch
    /// gives a second text, not one per combination of equal columns.
    static func mayShare(_ name: String) -> Bool {
        switch name {
        case "kind", "ts", "actor_id", "created_at", "updated_at", "status", "mode", "executor", "evaluated_by_id",
            "evaluated_by_display":
            return true
        default:
            return name.hasSuffix("_kind") || name.hasSuffix("_role")
        }
    }

    /// The columns (of the first 64) that `mayShare` names, as bits.
    static func shareable(_ names: [String]) -> UInt64 {
        var bits: UInt64 = 0
        for (column, name) in names.prefix(64).enumerated() where mayShare(name) { bits |= 1 << UInt64(column) }
        return bits
    }

    /// Of the `candidates` columns, those in which every row of `rows` holds the first row's value.
    static func sharedColumns(_ rows: ArraySlice<Columns>, among candidates: UInt64) -> UInt64 {
        guard let head = rows.first else { return 0 }
        var shared = candidates
        for row in rows.dropFirst() {
            // Rows of one table have the same columns; one that does not shares nothing.
            guard row.pairs.count == head.pairs.count else { return 0 }
            var remaining = shared
            while remaining != 0 {
                let column = remaining.trailingZeroBitCount
                remaining &= remaining - 1
                if row.pairs[column].1 != head.pairs[column].1 { shared &= ~(1 << UInt64(column)) }
            }
            if shared == 0 { break }
        }
        return shared
    }

    static func isShared(_ column: Int, _ shared: UInt64) -> Bool { column < 64 && shared & (1 << UInt64(column)) != 0 }

    /// `INSERT INTO table (names) VALUES ($1,…),(…)` for `rows` rows, then `suffix`; a column in
    /// `shared` takes the first row's bind in every row (`insertMany`). Written as bytes into one
    /// buffer: an enqueue batch's statements hold hundreds of placeholders, and a `String` per
    /// placeholder was 6 % of SQLite's writer thread under `wrk` (a string per placeholder joined
    /// afterwards was 3 % more).
    static func insertText(_ table: String, names: [String], rows: Int, suffix: String, shared: UInt64 = 0) -> String {
        var sql = Array("INSERT INTO \(table) (".utf8)
        sql.reserveCapacity(sql.count + names.count * 16 + rows * (names.count * 7 + 4) + suffix.utf8.count)
        for (index, name) in names.enumerated() {
            if index > 0 { sql.append(UInt8(ascii: ",")) }
            sql += name.utf8
        }
        sql += ") VALUES ".utf8
        var next = names.count  // the number of the last bind written
        for row in 0..<rows {
            if row > 0 { sql.append(UInt8(ascii: ",")) }
            sql.append(UInt8(ascii: "("))
            if row == 0 || shared == 0 {
                appendPlaceholders(to: &sql, count: names.count, after: row == 0 ? 0 : next)
                if row > 0 { next += names.count }
            } else {
                for column in names.indices {
                    if column > 0 { sql.append(UInt8(ascii: ",")) }
                    sql.append(UInt8(ascii: "$"))
                    if isShared(column, shared) {
                        appendDecimal(column + 1, to: &sql)
                    } else {
                        next += 1
                        appendDecimal(next, to: &sql)
                    }
                }
            }
            sql.append(UInt8(ascii: ")"))
        }
        sql += suffix.utf8
        return String(decoding: sql, as: UTF8.self)
    }

    /// `$n, $n+1, …` for an `IN (…)` list starting after `offset` binds.
    static func placeholders(count: Int, after offset: Int) -> String {
        var text: [UInt8] = []
        appendPlaceholders(to: &text, count: count, after: offset)
        return String(decoding: text, as: UTF8.self)
    }

    /// `$a, $b, …`: `count` placeholders numbered from `offset + 1`.
    static func appendPlaceholders(to text: inout [UInt8], count: Int, after offset: Int) {
        for n in 0..<count {
            if n > 0 { text.append(UInt8(ascii: ",")) }
            text.append(UInt8(ascii: "$"))
            appendDecimal(offset + n + 1, to: &text)
        }
    }

    /// The digits of a non-negative `number`, written in place (no `String` per number: SQL
    /// texts hold hundreds of placeholders), most significant first, one append each.
    static func appendDecimal(_ number: Int, to text: inout [UInt8]) {
        if number >= 10 { appendDecimal(number / 10, to: &text) }
        text.append(UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: number % 10))
    }

    /// "`column` is one of `values`", the id list of every batch read and write, with its binds
    /// appended to `binds`.
    ///
    /// PostgreSQL, a batch of up to `listedUpTo` values (every claim and completion of a worker):
    /// `column IN ($n, $n+1, …)`, one text per length. PostgreSQL plans such a statement five
    /// times, then keeps its generic plan, which knows the list's length and so costs what the
    /// custom ones did. With the whole list as one `text[]` bind (`column = ANY(CAST($n AS
    /// text[]))`, River's shape) the generic plan has to assume ten elements, looks dearer than a
    /// custom plan for eight, and is never taken: the claim's reads of Issues and packets were
    /// planned at every call, longer than they ran (fifteenth session, docs/benchmarks.md).
    /// Longer lists (retention, backfill) keep the array: one bind whatever their length, far
    /// from PostgreSQL's 65,535. The array's text form quotes every element, so any text is
    /// taken as it is.
    ///
    /// (The fourth session had moved every list to the array: then a generic plan of an
    /// `IN` list, made without statistics, filtered rows through the status index and rebuilt
    /// the array for each. Guards now compare the status as text, `LifecycleSQL.statusIs`, and a
    /// bulk load is followed by `ANALYZE`, so lists are found by their index.)
    ///
    /// SQLite has no arrays: `column IN ($n, $n+1, …)`, one bind per value (its planner looks
    /// each one up by the column's index, and the driver keeps one prepared statement per text).
    static let listedUpTo = 32

    static func oneOf(_ column: String, _ values: [String], binds: inout [SQLValue], dialect: SQLDialect) -> String {
        switch dialect {
        case .postgres where values.isEmpty || values.count > listedUpTo:
            binds.append(.text(arrayLiteral(values)))
            return "\(column) = ANY(CAST($\(binds.count) AS text[]))"
        case .postgres:
            let list = placeholders(count: values.count, after: binds.count)
            binds += values.map { .text($0) }
            return "\(column) IN (\(list))"
        case .sqlite:
            let list = placeholders(count: values.count, after: binds.count)
            binds += values.map { .text($0) }
            return "\(column) IN (\(list))"
        }
    }

    /// `(SELECT … FROM table WHERE condition)`: the ids in `column` of the link rows that match,
    /// as a JSON array in the order they were linked (`created_at`, then id): read with the row
    /// that links them, as a column of its own, so that an object and its links are one
    /// statement. NULL (PostgreSQL) or `[]` (SQLite) when there are none.
    static func linkedIds(_ column: String, from table: String, where condition: String, dialect: SQLDialect) -> String {
        let aggregate = dialect == .postgres ? "json_agg" : "json_group_array"
        return "(SELECT \(aggregate)(\(column) ORDER BY created_at, \(column)) FROM \(table) WHERE \(condition))"
    }

    /// `oneOf` as the first binds of a statement: its condition and binds.
    static func oneOf(_ column: String, _ values: [String], dialect: SQLDialect) -> (String, [SQLValue]) {
        var binds: [SQLValue] = []
        let condition = oneOf(column, values, binds: &binds, dialect: dialect)
        return (condition, binds)
    }

    /// PostgreSQL's text form of a `text[]`: `{"a","b \"c\""}`, every element quoted, `"` and `\`
    /// escaped with a backslash.
    static func arrayLiteral(_ values: [String]) -> String {
        var literal = "{"
        for (index, value) in values.enumerated() {
            if index > 0 { literal += "," }
            literal += "\""
            for character in value.unicodeScalars {
                if character == "\"" || character == "\\" { literal += "\\" }
                literal.unicodeScalars.append(character)
            }
            literal += "\""
        }
        return literal + "}"
    }
}

/// A statement's text built once for each dialect (the texts that differ only by dialect).
struct PerDialect: Sendable {
    let postgres: String
    let sqlite: String

    init(_ make: (SQLDialect) -> String) {
        postgres = make(.postgres)
        sqlite = make(.sqlite)
    }

    subscript(dialect: SQLDialect) -> String { dialect == .postgres ? postgres : sqlite }
}

/// One multi-row `INSERT` of `SQL.insertChunks`: its text and the rows it binds, a column in
/// `shared` bound from the first row only.
struct InsertChunk: Sendable {
    let text: String
    let rows: ArraySlice<Columns>
    let shared: UInt64

    /// Every bind in order, each row's columns in turn (a shared column only in the first row).
    func forEachBind<E: Error>(_ body: (SQLValue) throws(E) -> Void) throws(E) {
        var first = true
        for row in rows {
            try row.pairs.withUnsafeBufferPointer { (pairs) throws(E) in
                for column in pairs.indices where first || !SQL.isShared(column, shared) { try body(pairs[column].1) }
            }
            first = false
        }
    }

    /// The binds as one array (`insertMany`, and drivers that send them so).
    var binds: [SQLValue] {
        var binds: [SQLValue] = []
        binds.reserveCapacity(rows.count * (rows.first?.pairs.count ?? 0))
        forEachBind { binds.append($0) }
        return binds
    }
}

/// Column names and values, in order.
struct Columns: ExpressibleByDictionaryLiteral, Sendable {
    var pairs: [(String, SQLValue)]
    init(dictionaryLiteral elements: (String, SQLValue)...) { pairs = elements }

    /// Turns the row's values into what `dialect`'s driver binds, so that whoever writes it later
    /// (SQLite's writer thread, in a batch) has nothing left to format: JSON serialized (and
    /// refused when it holds NUL, `StorageError.storableString`), as both drivers bind it, and on SQLite
    /// timestamps as their stored text (a dozen per enqueue, formatted on the writer thread they
    /// were 1 % of it under `wrk`). PostgreSQL binds timestamps as such. In place: a copy of the
    /// row made to change it was 2 % of `tower api`'s instructions on SQLite (`callgrind`).
    /// Texts are left as they are: each driver refuses one with NUL as it binds it.
    ///
    /// `times` keeps the text of the timestamps already formatted for the rows of one write:
    /// nearly all of an enqueue's sixteen are its one `now`, formatted (about 800 instructions)
    /// and allocated once instead of sixteen times.
    mutating func makeBindReady(for dialect: SQLDialect, times: inout TimestampTexts) throws(StorageError) {
        for index in pairs.indices {
            switch pairs[index].1 {
            case .json(let json):
                pairs[index].1 = .text(try StorageError.storableString(json))
            case .timestamp(let t) where dialect == .sqlite:
                pairs[index].1 = .text(times.text(t))
            default:
                break
            }
        }
    }
}

/// The SQLite texts of the last few timestamps formatted (see `Columns.makeBindReady`).
struct TimestampTexts {
    private var kept: [(Timestamp, String)] = []

    mutating func text(_ time: Timestamp) -> String {
        for (known, text) in kept where known == time { return text }
        let text = time.sqliteText
        if kept.count == 4 { kept.removeFirst() }
        kept.append((time, text))
        return text
    }
}

/// The texts of multi-row `INSERT`s (`SQL.insertText`), kept by table, columns, number of rows
/// and suffix: an intake batch writes eleven of them, for one to a few enqueues, and writing
/// them again for every transaction (a kilobyte or two each, hundreds of placeholders) was 5 %
/// of `tower api`'s instructions on SQLite. Their number is small (the tables of an enqueue
/// times the batch sizes seen); past `capacity` the kept texts are dropped and made again.
public final class InsertTexts: Sendable {
    private struct Key: Hashable {
        let table: String
        let rows: Int
        let suffix: String
        let shared: UInt64
    }
    private let texts = Mutex<[Key: (names: [String], text: String)]>([:])
    private let shapes = Mutex<[String: (names: [String], bits: UInt64)]>([:])
    public let capacity: Int
    private let madeCount = Atomic<Int>(0)

    public init(capacity: Int = 1_024) { self.capacity = capacity }

    /// How many texts `make` has written so far. A test signal.
    public var made: Int { madeCount.load(ordering: .relaxed) }

    /// `SQL.shareable(names)`, kept by table (its names compared, as in `text`): the names of a
    /// table's rows are the same few constants each time, and matching each against `mayShare`'s
    /// list was 2.6 % of SQLite's writer thread under `wrk`.
    func candidates(_ table: String, names: [String]) -> UInt64 {
        if let kept = shapes.withLock({ $0[table] }), kept.names == names { return kept.bits }
        let bits = SQL.shareable(names)
        shapes.withLock { shapes in
            if shapes.count >= capacity { shapes.removeAll() }
            shapes[table] = (names, bits)
        }
        return bits
    }

    /// The text for these rows, made by `make` the first time.
    public func text(_ table: String, names: [String], rows: Int, suffix: String, shared: UInt64 = 0, make: () -> String) -> String {
        let key = Key(table: table, rows: rows, suffix: suffix, shared: shared)
        // The names are compared, not hashed: they are the same few constants each time.
        if let kept = texts.withLock({ $0[key] }), kept.names == names { return kept.text }
        let text = make()
        madeCount.add(1, ordering: .relaxed)
        texts.withLock { texts in
            if texts.count >= capacity { texts.removeAll() }
            texts[key] = (names, text)
        }
        return text
    }
}

/// Rows to insert, table by table: gathered from many sources (the enqueues of one transaction)
/// and written as one multi-row `INSERT` per table, parents before the rows that refer to them.
struct InsertRows: Sendable {
    /// Every table rows are gathered for, in foreign-key order: a row's parents are written
    /// first, whichever source added its table first.
    static let order = [
        "cwom_constraint_snapshots", "cwom_issues", "cwom_issue_constraint_snapshots", "cwom_issue_doctrine_refs",
        "cwom_context_packets", "cwom_issue_context_packets", "cwom_runs", "cwom_run_context_packets", "cwom_run_doctrine_refs",
        "cwom_artifacts", "tasks", "audit_log",
    ]

    /// What follows the rows of `table`: a Run's links to its pinned context packets and
    /// doctrine refs skip a pair already there (a packet that names a doctrine ref twice pins it
    /// once); every other table's new rows are new, and a conflict fails the transaction.
    static func suffix(for table: String) -> String {
        switch table {
        case "cwom_run_context_packets", "cwom_run_doctrine_refs": return " ON CONFLICT DO NOTHING"
        default: return ""
        }
    }

    /// The rows of each table of `order`, at its place there: the rows of many enqueues are
    /// merged slot by slot, without a table's name compared (merged by name, an intake batch
    /// compared about sixty names an enqueue on SQLite's writer thread).
    private var slots: [[Columns]] = Array(repeating: [], count: order.count)
    /// Tables outside `order`, after those of `order` in the order they came.
    private var others: [(name: String, rows: [Columns])] = []

    /// The tables that have rows, in the order they are written.
    var tables: [(name: String, rows: [Columns])] {
        zip(Self.order, slots).filter { !$0.1.isEmpty }.map { (name: $0.0, rows: $0.1) } + others
    }

    var isEmpty: Bool { others.isEmpty && slots.allSatisfy(\.isEmpty) }

    /// Adds rows to `table`.
    mutating func add(_ table: String, _ rows: [Columns]) {
        guard !rows.isEmpty else { return }
        if let rank = Self.order.firstIndex(of: table) {
            Self.append(rows, to: &slots[rank])
        } else if let index = others.firstIndex(where: { $0.name == table }) {
            others[index].rows += rows
        } else {
            others.append((table, rows))
        }
    }

    mutating func add(_ other: InsertRows) {
        for rank in slots.indices where !other.slots[rank].isEmpty { Self.append(other.slots[rank], to: &slots[rank]) }
        for table in other.others { add(table.name, table.rows) }
    }

    /// `rows` after `slot`'s: an empty slot takes the array itself (one retain), where `+=`
    /// allocated a new one and copied the rows into it, a dozen times an enqueue.
    private static func append(_ rows: [Columns], to slot: inout [Columns]) {
        if slot.isEmpty { slot = rows } else { slot += rows }
    }

    var statements: [(String, [SQLValue])] { statements(texts: nil) }

    /// The statements, their texts taken from `texts` where it has them (see `InsertTexts`).
    func statements(texts: InsertTexts?) -> [(String, [SQLValue])] { chunks(texts: texts).map { ($0.text, $0.binds) } }

    /// The statements before their binds are gathered (`SQL.insertChunks`).
    func chunks(texts: InsertTexts?) -> [InsertChunk] {
        tables.flatMap { SQL.insertChunks($0.name, $0.rows, suffix: Self.suffix(for: $0.name), texts: texts) }
    }

    /// Every row as its driver binds it, each changed where it is (see `Columns.makeBindReady`).
    mutating func makeBindReady(for dialect: SQLDialect) throws(StorageError) {
        var times = TimestampTexts()
        for rank in slots.indices {
            for row in slots[rank].indices { try slots[rank][row].makeBindReady(for: dialect, times: &times) }
        }
        for table in others.indices {
            for row in others[table].rows.indices { try others[table].rows[row].makeBindReady(for: dialect, times: &times) }
        }
    }
}

/// Collects optional `column = $n` filters into a WHERE clause.
struct Filters {
    private(set) var clauses: [String] = []
    private(set) var binds: [SQLValue] = []

    mutating func add(_ column: String, _ value: String?) {
        guard let value else { return }
        binds.append(.text(value))
        clauses.append("\(column) = $\(binds.count)")
    }

    /// A filter on an enum column. A value outside the enum matches nothing (PostgreSQL would
    /// reject it as invalid input for the enum type; the legacy service answered that with a 500).
    mutating func add<E: CWOMEnum>(_ column: String, _ value: String?, as type: E.Type) {
        guard let value else { return }
        if E(rawValue: value) == nil { matchesNothing = true }
        add(column, value)
    }

    /// A filter on the second column of a two-column index whose first column, `leading`, is a
    /// NOT NULL column holding one of `L`'s values. A filter on the second column alone makes
    /// neither database seek that index (SQLite reads the table, PostgreSQL the whole index);
    /// naming every value of the first selects the same rows and seeks once per value. The values
    /// are the enum's, in the statement's text: none comes from the request.
    mutating func add<L: CWOMEnum>(_ column: String, _ value: String?, behind leading: String, of _: L.Type) {
        guard let value else { return }
        addEveryValue(of: leading, L.self)
        add(column, value)
    }

    /// The same for an enum column (a value outside the enum matches nothing).
    mutating func add<E: CWOMEnum, L: CWOMEnum>(_ column: String, _ value: String?, as _: E.Type, behind leading: String, of lead: L.Type) {
        guard let value else { return }
        if E(rawValue: value) == nil { matchesNothing = true }
        add(column, value, behind: leading, of: lead)
    }

    /// `column IN (…every value of L…)`: no row is left out (the column is NOT NULL and holds
    /// one of `L`'s values), but an index that leads with `column` can then be sought for the
    /// filters on its later columns, once per value. The values are the enum's, in the text.
    mutating func addEveryValue<L: CWOMEnum>(of column: String, _: L.Type) {
        clauses.append("\(column) IN (\(Self.everyValue(of: L.self)))")
    }

    /// `'a', 'b', …`: every value of `L`, as SQL literals (constants of the code, never input).
    static func everyValue<L: CWOMEnum>(of _: L.Type) -> String {
        L.allCases.map { "'\($0.rawValue)'" }.joined(separator: ", ")
    }

    /// Set when a filter can match no row: the query need not run.
    private(set) var matchesNothing = false

    mutating func addRaw(_ clause: (Int) -> String, _ value: SQLValue) {
        binds.append(value)
        clauses.append(clause(binds.count))
    }

    var whereClause: String { clauses.isEmpty ? "" : " WHERE " + clauses.joined(separator: " AND ") }

    /// ` LIMIT $n OFFSET $m` with their binds appended.
    mutating func page(limit: Int, offset: Int) -> String {
        binds.append(.int(limit))
        binds.append(.int(offset))
        return " LIMIT $\(binds.count - 1) OFFSET $\(binds.count)"
    }
}

/// A page of a list: `limit` rows after skipping `offset`.
public struct Page: Sendable, Hashable {
    public var limit: Int
    public var offset: Int
    public init(limit: Int = 100, offset: Int = 0) {
        self.limit = limit
        self.offset = offset
    }
}

extension SQLRow {
    /// A ref stored as `<name>_id`, `<name>_kind`, `<name>_role` columns.
    func ref(_ name: String, kind: ObjectKind) throws(StorageError) -> Ref {
        let storedKind = try optionalString(name + "_kind").flatMap(ObjectKind.init(rawValue:)) ?? kind
        return Ref(kind: storedKind, id: try string(name + "_id"), role: try optionalString(name + "_role"))
    }

    func header() throws(StorageError) -> ObjectHeader {
        ObjectHeader(id: try string("id"), traceId: try optionalString("trace_id"))
    }

    func strings(_ column: String) throws(StorageError) -> [String] {
        (try optionalJSON(column)?.arrayValue ?? []).compactMap(\.stringValue)
    }

    /// A JSON column read as a CWOM value. Rows written by the legacy service may hold shapes
    /// that break the CWOM schema (reference §12 item 17); they read as `fallback`, and the raw
    /// value is kept in `legacy` so nothing is lost.
    func model<T: CWOMModel>(_ column: String, _ type: T.Type, fallback: T, legacy: inout JSONObject)
        throws(StorageError) -> T
    {
        guard let json = try optionalJSON(column), !json.isNull else { return fallback }
        do { return try T.decode(json) } catch {
            legacy[column] = json
            return fallback
        }
    }

    func optionalModel<T: CWOMModel>(_ column: String, _ type: T.Type, legacy: inout JSONObject)
        throws(StorageError) -> T?
    {
        guard let json = try optionalJSON(column), !json.isNull else { return nil }
        do { return try T.decode(json) } catch {
            legacy[column] = json
            return nil
        }
    }

    func models<T: CWOMModel>(_ column: String, _ type: T.Type, legacy: inout JSONObject) throws(StorageError) -> [T] {
        guard let elements = try optionalJSON(column)?.arrayValue else { return [] }
        var result: [T] = []
        for element in elements {
            do { result.append(try T.decode(element)) } catch { legacy[column] = .array(elements) }
        }
        return result
    }
}

extension JSONObject {
    /// `meta` with the legacy values that did not fit the schema under `legacy_fields`.
    func addingLegacy(_ legacy: JSONObject) -> JSONObject {
        guard !legacy.isEmpty else { return self }
        var copy = self
        copy["legacy_fields"] = .object(legacy)
        return copy
    }
}
