import Logging
import Synchronization

/// The SQL dialect of a driver.
public enum SQLDialect: String, Sendable {
    case postgres
    case sqlite
}

/// A connection inside a transaction (or a read snapshot). Statements use `$1`, `$2`, …
/// placeholders in both dialects; the SQLite driver rewrites them to `?1`, `?2`, ….
public protocol DatabaseSession: Sendable {
    var dialect: SQLDialect { get }
    /// Runs one statement and returns its rows (use `RETURNING` to learn what a write touched).
    @discardableResult
    func query(_ sql: String, _ binds: [SQLValue]) async throws(StorageError) -> [SQLRow]
    /// Runs the transaction's last statement: the body sends nothing after it. A driver may send
    /// it as the whole transaction when nothing came before it (PostgreSQL: one statement is
    /// atomic on its own, so no `BEGIN` and `COMMIT` round trips).
    func queryLast(_ sql: String, _ binds: [SQLValue]) async throws(StorageError)
    /// Where `writeAll` keeps the texts it combined, per driver (nil: none kept).
    var combinedTexts: WriteBatch.Texts? { get }
}

extension DatabaseSession {
    @discardableResult
    public func query(_ sql: String, _ binds: SQLValue...) async throws(StorageError) -> [SQLRow] {
        try await query(sql, binds)
    }

    public func queryLast(_ sql: String, _ binds: [SQLValue]) async throws(StorageError) {
        try await query(sql, binds)
    }

    public var combinedTexts: WriteBatch.Texts? { nil }

    /// Runs writes whose results nobody reads, in order. On PostgreSQL they go as one statement
    /// (`WriteBatch.combined`): a transaction's inserts cost one round trip instead of one each.
    /// `last`: nothing follows them in the transaction (see `queryLast`).
    public func writeAll(_ statements: [(String, [SQLValue])], last: Bool = false) async throws(StorageError) {
        let sent = dialect == .postgres ? WriteBatch.combined(statements, texts: combinedTexts) : statements
        for (index, (sql, binds)) in sent.enumerated() {
            if last && index == sent.count - 1 {
                try await queryLast(sql, binds)
            } else {
                try await query(sql, binds)
            }
        }
    }
}

extension DatabaseSession {
    /// `rows` (one multi-row `INSERT` per table, `InsertRows`) and then `statements`, as
    /// `writeAll`. A driver that binds one value at a time (`ChunkWriting`) binds the rows where
    /// they are; the others get each insert's binds as one array.
    func writeAll(_ rows: InsertRows, texts: InsertTexts?, then statements: [(String, [SQLValue])], last: Bool = false)
        async throws(StorageError)
    {
        if self is any ChunkWriting {
            try await insertEach(rows, texts: texts)
            try await writeAll(statements, last: last)
        } else {
            try await writeAll(rows.statements(texts: texts) + statements, last: last)
        }
    }

    /// `rows`, each multi-row `INSERT` a statement of its own (never combined), bound from the
    /// rows where the driver can (`ChunkWriting`).
    func insertEach(_ rows: InsertRows, texts: InsertTexts?) async throws(StorageError) {
        guard !rows.isEmpty else { return }
        if let writer = self as? any ChunkWriting {
            try await writer.write(rows.chunks(texts: texts))
        } else {
            for (sql, binds) in rows.statements(texts: texts) { try await query(sql, binds) }
        }
    }
}

/// A session that binds multi-row inserts from their rows (`InsertChunk.forEachBind`): SQLite,
/// whose binds are calls of one value each. Gathered into one array per statement first, a
/// batch's binds were built, copied and freed on SQLite's writer thread, the intake's one
/// thread that every write waits for (docs/benchmarks.md).
protocol ChunkWriting {
    func write(_ chunks: [InsertChunk]) async throws(StorageError)
}

/// The values a statement binds, in order: an array of them, or the rows of a multi-row insert.
protocol SQLBinds {
    func forEachBind<E: Error>(_ body: (SQLValue) throws(E) -> Void) throws(E)
}

extension Array: SQLBinds where Element == SQLValue {
    func forEachBind<E: Error>(_ body: (SQLValue) throws(E) -> Void) throws(E) {
        for value in self { try body(value) }
    }
}

extension InsertChunk: SQLBinds {}

/// Several writes made one statement, for PostgreSQL.
///
/// Each statement of a transaction is a round trip, and on the server a protocol exchange, a
/// snapshot and an executor start: for the dozen small inserts of an enqueue, claim or completion
/// that was most of what they cost (a `perf` profile of `tower api` under `wrk` spent more time
/// in socket writes and reads to PostgreSQL than in everything else). PostgreSQL runs
/// data-modifying statements in `WITH` clauses, so `WITH w1 AS (INSERT …), w2 AS (INSERT …)
/// INSERT …` writes several tables in one statement. Why that is safe here:
/// * all the parts run on one snapshot and none sees the others' rows, which is why only writes
///   whose results nobody reads come here, and never a statement that reads what an earlier one
///   wrote (`UPDATE` of a row inserted in the same batch);
/// * foreign keys are checked at the end of the whole statement, so a child may come before its
///   parent, and a violation still fails the statement (and the transaction) as before;
/// * a `SELECT` (`pg_notify`) can only be the main statement (a `WITH` query that nothing refers to
///   is not run), so a batch carries at most one; statements with their own `WITH` stay alone;
/// * binds are renumbered, and a statement is cut before PostgreSQL's 65,535 binds.
public enum WriteBatch {
    static let maximumBinds = 60_000

    /// Combined texts by the texts they were made of. A claim's or completion's parts have the
    /// same texts at every batch of the same size, and renumbering them (a walk of every byte)
    /// was 2 % of a worker's instructions (`callgrind`); looking the parts up hashes them once.
    /// A driver keeps one; it holds at most `capacity` texts and starts over when full.
    public final class Texts: Sendable {
        let capacity: Int
        private let texts = Mutex<[[String]: String]>([:])

        public init(capacity: Int = 256) { self.capacity = capacity }

        func combined(_ parts: [String], _ make: () -> String) -> String {
            if let known = texts.withLock({ $0[parts] }) { return known }
            let made = make()
            texts.withLock { texts in
                if texts.count >= capacity { texts.removeAll(keepingCapacity: true) }
                texts[parts] = made
            }
            return made
        }

        /// Texts kept now.
        public var count: Int { texts.withLock { $0.count } }
    }

    public static func combined(_ statements: [(String, [SQLValue])], texts: Texts? = nil) -> [(String, [SQLValue])] {
        var result: [(String, [SQLValue])] = []
        var writes: [(String, [SQLValue])] = []
        var main: (String, [SQLValue])?
        func flush() {
            defer {
                writes = []
                main = nil
            }
            var parts = writes
            if let main { parts.append(main) }
            guard parts.count > 1, let last = parts.last else {
                result += parts
                return
            }
            var binds: [SQLValue] = []
            binds.reserveCapacity(parts.reduce(0) { $0 + $1.1.count })
            for part in parts { binds += part.1 }
            let make = {
                var clauses: [String] = []
                var offset = 0
                for (index, part) in parts.dropLast().enumerated() {
                    clauses.append("w\(index + 1) AS (\(renumbered(part.0, after: offset)))")
                    offset += part.1.count
                }
                return "WITH " + clauses.joined(separator: ", ") + " " + renumbered(last.0, after: offset)
            }
            // The same texts with other bind counts number differently: the counts are part of
            // the key (each text's own placeholders fix its count, but not every text is one's).
            let key = parts.map(\.0) + parts.map { String($0.1.count) }
            result.append((texts?.combined(key, make) ?? make(), binds))
        }
        for statement in statements {
            let kind = leadingKeyword(statement.0)
            let count = writes.reduce(main?.1.count ?? 0) { $0 + $1.1.count }
            if count + statement.1.count > maximumBinds { flush() }
            switch kind {
            case "INSERT", "UPDATE", "DELETE":
                writes.append(statement)
            case "SELECT" where main == nil:
                main = statement
            default:
                // Its own WITH, a second SELECT, or anything else: alone, in its place.
                flush()
                result.append(statement)
            }
        }
        flush()
        return result
    }

    /// The statement's first word in upper case (`INSERT`, `WITH`, …): the ASCII letters after
    /// any ASCII white space, read from the UTF-8 bytes. SQL's keywords are ASCII; a text that
    /// starts otherwise gets a word no case above takes, and stays alone. Asking each `Character`
    /// whether it is a letter looked up its Unicode properties, 1 % of `tower api` on PostgreSQL.
    public static func leadingKeyword(_ sql: String) -> String {
        var keyword = ""
        for byte in sql.utf8 {
            switch byte {
            case UInt8(ascii: " "), 0x09...0x0D:  // space, tab, newlines, form feed
                if !keyword.isEmpty { return keyword }
            case UInt8(ascii: "A")...UInt8(ascii: "Z"): keyword.unicodeScalars.append(Unicode.Scalar(byte))
            case UInt8(ascii: "a")...UInt8(ascii: "z"): keyword.unicodeScalars.append(Unicode.Scalar(byte - 0x20))
            default: return keyword
            }
        }
        return keyword
    }

    /// `sql` with every placeholder `$n` raised by `offset`; quoted text is left alone.
    /// Works on UTF-8 bytes (`$`, `'` and digits are ASCII, never part of a longer character):
    /// walking `Character`s cost a tenth of `tower api`'s CPU on PostgreSQL.
    static func renumbered(_ sql: String, after offset: Int) -> String {
        guard offset > 0 else { return sql }
        let dollar = UInt8(ascii: "$"), quote = UInt8(ascii: "'"), zero = UInt8(ascii: "0"), nine = UInt8(ascii: "9")
        var output: [UInt8] = []
        output.reserveCapacity(sql.utf8.count + 16)
        var inQuote = false
        var placeholder: Int??  // after a `$`: the digits read so far (nil before the first)
        func close() {
            if let read = placeholder {
                output.append(dollar)
                if let number = read { SQL.appendDecimal(number + offset, to: &output) }
            }
            placeholder = nil
        }
        for byte in sql.utf8 {
            if let read = placeholder {
                if byte >= zero && byte <= nine {
                    placeholder = .some((read ?? 0) * 10 + Int(byte - zero))
                    continue
                }
                close()
            }
            if byte == quote { inQuote.toggle() }
            if byte == dollar && !inQuote {
                placeholder = .some(nil)
                continue
            }
            output.append(byte)
        }
        close()
        return String(decoding: output, as: UTF8.self)
    }
}

/// One database: SQLite (embedded) or PostgreSQL. Business logic is written once against this
/// protocol; what differs between the two lives in the drivers and in `DialectSQL`.
public protocol DatabaseDriver: Sendable {
    var dialect: SQLDialect { get }

    /// Runs `body` in a write transaction: committed when it returns, rolled back when it throws.
    /// SQLite serialises writers (`BEGIN IMMEDIATE`), so `database is locked` never surfaces.
    @discardableResult
    func write<T: Sendable>(_ body: @Sendable (any DatabaseSession) async throws -> T) async throws -> T

    /// `write` for a schema change, which may rightly take minutes: an index built over a large
    /// table, or the wait for another process's migration of the same database (it holds the
    /// migration lock for as long as its own statements run). No statement deadline applies, not
    /// PostgreSQL's `query_timeout` nor SQLite's busy timeout: a migration ends when its work is
    /// done, or when the operator who started it stops it. The `Migrator` writes only through this.
    @discardableResult
    func writeSchema<T: Sendable>(_ body: @Sendable (any DatabaseSession) async throws -> T) async throws -> T

    /// Runs `body` on a consistent read snapshot.
    @discardableResult
    func read<T: Sendable>(_ body: @Sendable (any DatabaseSession) async throws -> T) async throws -> T

    /// Runs `body` outside any transaction (for statements that manage their own, such as
    /// migrations taking locks).
    @discardableResult
    func withSession<T: Sendable>(_ body: @Sendable (any DatabaseSession) async throws -> T) async throws -> T

    /// Connections lent out right now (for the pool usage metric).
    var sessionsInUse: Int { get }

    /// Where write transactions run, when they all run on one thread (SQLite's writer): a task
    /// that starts there reaches its transactions without a thread hop (`Batcher`).
    var writeExecutor: (any TaskExecutor)? { get }

    /// Closes every connection. The driver cannot be used afterwards.
    func close() async
}

extension DatabaseDriver {
    public var writeExecutor: (any TaskExecutor)? { nil }

    /// For drivers without a statement deadline of their own (test doubles): `write`.
    public func writeSchema<T: Sendable>(_ body: @Sendable (any DatabaseSession) async throws -> T) async throws -> T {
        try await write(body)
    }
}
