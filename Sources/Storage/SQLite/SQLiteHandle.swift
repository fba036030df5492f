// The SQLite C API of the library SQLiteNIO vendors (its `sqlite_nio_`-prefixed build of
// SQLite): the same SQLite the project already ships, no second copy and no system library to
// install. SQLiteNIO's product does not list this module; it is built as part of it.
import CWOM
import Foundation
import Synchronization
import TowerJSON
import VaporCSQLite

/// An open `sqlite3` handle with its prepared statements.
///
/// Not thread-safe: used only on its connection's `SQLiteThread` (SQLite's multi-thread mode,
/// `SQLITE_OPEN_NOMUTEX`: one thread at a time per connection, and here always the same one).
final class SQLiteHandle: @unchecked Sendable {
    private var db: OpaquePointer?
    private var statements: [StatementText: CachedStatement] = [:]
    private var uses: UInt64 = 0
    private let compiled = Atomic<Int>(0)
    /// Set when a statement failed inside a transaction and SQLite rolled the transaction back
    /// with it (`INSERT OR ROLLBACK`, see `rollingBackOnConflict`): what failed, so that the
    /// statements after it are refused until `ROLLBACK` instead of each committing on its own.
    private var rolledBackBy: String?
    /// The bytes of one statement's text binds (`bindAll`), bound from here without SQLite
    /// copying them: kept from statement to statement, since one runs at a time on a handle.
    private var bindBytes = UnsafeMutableRawBufferPointer(start: nil, count: 0)
    /// What `bindBytes` may keep between statements; a larger one (a big artifact's text) is
    /// given back after its statement.
    static let keptBindBytes = 1 << 20

    /// Statements compiled on this handle: prepared for the cache, and prepared again by SQLite
    /// inside a step (after a schema change, or a rebound parameter the plan depended on).
    /// Readable from any thread; a test signal.
    var compilations: Int { compiled.load(ordering: .relaxed) }

    /// Prepared statements kept per connection: a hot statement is compiled once instead of on
    /// every call (SQLiteNIO prepared and finalized each one). The texts that vary with a batch's
    /// size stay well under this.
    static let statementCapacity = 256

    /// A statement's text as the key of kept statements, hashed by its length and its first and
    /// last 32 bytes: an intake batch's multi-row inserts are a kilobyte or two each, and hashing
    /// them whole at every run was 1.3 % of SQLite's writer thread under `wrk`. Texts that agree
    /// there are told apart by `==`, as any key is (a kept text passed again is the same
    /// `String`, which compares at once).
    private struct StatementText: Hashable {
        let text: String

        init(_ text: String) { self.text = text }

        func hash(into hasher: inout Hasher) {
            var text = text
            text.withUTF8 { bytes in
                hasher.combine(bytes.count)
                hasher.combine(bytes: UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: bytes.prefix(32))))
                hasher.combine(bytes: UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: bytes.suffix(32))))
            }
        }
    }

    private final class CachedStatement {
        let pointer: OpaquePointer
        var lastUse: UInt64

        init(pointer: OpaquePointer, lastUse: UInt64) {
            self.pointer = pointer
            self.lastUse = lastUse
        }
    }

    init(path: String, busyTimeoutMilliseconds: Int) throws(StorageError) {
        var handle: OpaquePointer?
        let flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX
        let opened = sqlite_nio_sqlite3_open_v2(path, &handle, flags, GatheredWAL.registered ? GatheredWAL.name : nil)
        guard opened == SQLITE_OK, let handle else {
            let message = handle.flatMap { sqlite_nio_sqlite3_errmsg($0) }.map { String(cString: $0) } ?? "error \(opened)"
            sqlite_nio_sqlite3_close_v2(handle)
            // The driver says which database; this is SQLite's reason.
            throw StorageError(.unreachable, message)
        }
        db = handle
        // Constraint failures then say which kind (UNIQUE, FOREIGN KEY) by their code.
        sqlite_nio_sqlite3_extended_result_codes(handle, 1)
        sqlite_nio_sqlite3_busy_timeout(handle, Int32(clamping: busyTimeoutMilliseconds))
    }

    deinit {
        close()
        bindBytes.deallocate()
    }

    /// What the WAL hook does after a commit (`watchWAL`).
    enum WALStep {
        /// Nothing on this connection (the step may have handed work elsewhere).
        case nothing
        /// Checkpoint on this connection, right after the commit, before its next transaction.
        case checkpointHere
    }

    /// How a checkpoint run from the WAL hook ended.
    enum WALCheckpoint {
        case done
        /// Another checkpoint was running (a passive one does not wait for it).
        case busy
        /// Any other error, an I/O error say.
        case failed
    }

    /// What the WAL hook calls, kept alive by the handle (SQLite holds only a raw pointer).
    private final class WALWatch {
        let step: @Sendable (_ walPages: Int32) -> WALStep
        let checkpointed: @Sendable (WALCheckpoint) -> Void

        init(step: @escaping @Sendable (Int32) -> WALStep, checkpointed: @escaping @Sendable (WALCheckpoint) -> Void) {
            self.step = step
            self.checkpointed = checkpointed
        }
    }
    private var walWatch: WALWatch?

    /// After each commit, asks `step` what to do with a WAL of that many pages, instead of SQLite
    /// checkpointing on this connection at 1,000 pages (a WAL hook replaces the automatic
    /// checkpoint). `.checkpointHere` runs a `PASSIVE` checkpoint on this connection at once and
    /// tells `checkpointed` how it ended. Both closures run inside the commit, on this
    /// connection's thread.
    func watchWAL(step: @escaping @Sendable (Int32) -> WALStep, checkpointed: @escaping @Sendable (WALCheckpoint) -> Void) {
        let watch = WALWatch(step: step, checkpointed: checkpointed)
        walWatch = watch
        sqlite_nio_sqlite3_wal_hook(db, { context, db, name, pages in
            guard let context else { return SQLITE_OK }
            let watch = Unmanaged<WALWatch>.fromOpaque(context).takeUnretainedValue()
            if watch.step(pages) == .checkpointHere {
                // What SQLite's own automatic checkpoint does from this hook. A passive
                // checkpoint never waits: another one running answers SQLITE_BUSY at once.
                let code = sqlite_nio_sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, nil, nil)
                let primary = code & 0xFF
                watch.checkpointed(primary == SQLITE_OK ? .done : primary == SQLITE_BUSY ? .busy : .failed)
            }
            return SQLITE_OK
        }, Unmanaged.passUnretained(watch).toOpaque())
    }

    /// Syncs the database file and its WAL to disk through SQLite's own open files (their VFS's
    /// `xSync`, as a checkpoint syncs them), outside any transaction. Durability is unchanged (it
    /// only writes to disk sooner what is in the page cache already); what it buys is that a
    /// later checkpoint's own syncs, inside the writer's commit, find little left to write
    /// (`SQLiteCheckpointer`). A file not open yet (no WAL read so far) is skipped.
    func syncFiles() throws(StorageError) {
        guard let db else { throw StorageError(.unreachable, "the SQLite connection is closed") }
        for operation in [SQLITE_FCNTL_FILE_POINTER, SQLITE_FCNTL_JOURNAL_POINTER] {
            var file: UnsafeMutablePointer<sqlite3_file>?
            guard sqlite_nio_sqlite3_file_control(db, "main", operation, &file) == SQLITE_OK, let file,
                let sync = file.pointee.pMethods?.pointee.xSync
            else { continue }
            let code = sync(file, SQLITE_SYNC_NORMAL)
            guard code == SQLITE_OK else {
                throw StorageError(.query, "cannot sync the SQLite \(operation == SQLITE_FCNTL_FILE_POINTER ? "database" : "WAL") file (error \(code))")
            }
        }
    }

    func close() {
        if let db, walWatch != nil { sqlite_nio_sqlite3_wal_hook(db, nil, nil) }
        walWatch = nil
        for statement in statements.values { sqlite_nio_sqlite3_finalize(statement.pointer) }
        statements = [:]
        if let db { sqlite_nio_sqlite3_close_v2(db) }
        db = nil
    }

    /// Runs one statement and returns its rows. `$1`, `$2`, … placeholders.
    func query(_ sql: String, _ binds: [SQLValue]) throws(StorageError) -> [SQLRow] { try run(sql, binds) }

    /// Runs one multi-row insert, bound from its rows where they are (no array of its binds).
    func insert(_ chunk: InsertChunk) throws(StorageError) { _ = try run(chunk.text, chunk) }

    private func run(_ sql: String, _ binds: some SQLBinds) throws(StorageError) -> [SQLRow] {
        if let failed = rolledBackBy {
            // The transaction is gone already: its `ROLLBACK` has nothing left to do, and a `BEGIN`
            // starts the next one; anything else would run outside any transaction.
            if sql == "ROLLBACK" {
                rolledBackBy = nil
                return []
            }
            guard sql.hasPrefix("BEGIN") else {
                throw StorageError(
                    .query,
                    "SQLite rolled this transaction back when a statement in it failed (\(failed)); nothing of it is kept, and no statement may follow in it but ROLLBACK")
            }
            rolledBackBy = nil
        }
        let statement = try prepared(sql)
        let pointer = statement.pointer
        defer {
            // SQLite lets go of `bindBytes` here: nothing bound points into them any more.
            sqlite_nio_sqlite3_reset(pointer)
            sqlite_nio_sqlite3_clear_bindings(pointer)
            if bindBytes.count > Self.keptBindBytes {
                bindBytes.deallocate()
                bindBytes = UnsafeMutableRawBufferPointer(start: nil, count: 0)
            }
        }
        try bindAll(binds, to: pointer, sql: sql)
        var rows: [SQLRow] = []
        var columns: SQLColumns?
        defer {
            // Read and reset: what the steps below had SQLite compile again.
            let again = sqlite_nio_sqlite3_stmt_status(pointer, SQLITE_STMTSTATUS_REPREPARE, 1)
            if again > 0 { compiled.add(Int(again), ordering: .relaxed) }
        }
        let inTransaction = sqlite_nio_sqlite3_get_autocommit(db) == 0
        while true {
            let code = sqlite_nio_sqlite3_step(pointer)
            if code == SQLITE_DONE { break }
            guard code == SQLITE_ROW else {
                let error = failure(code, sql: sql)
                if inTransaction && sqlite_nio_sqlite3_get_autocommit(db) != 0 { rolledBackBy = error.message }
                throw error
            }
            // Named at each run, not at preparation: SQLite prepares a kept statement again when
            // the schema changed, and `SELECT *` may then have other columns.
            let names = columns ?? SQLColumns(
                (0..<sqlite_nio_sqlite3_column_count(pointer)).map { index in
                    sqlite_nio_sqlite3_column_name(pointer, index).map { String(cString: $0) } ?? "column\(index)"
                })
            columns = names
            let width = sqlite_nio_sqlite3_column_count(pointer)
            var cells: [SQLValue] = []
            cells.reserveCapacity(Int(width))
            for index in 0..<width { cells.append(Self.value(of: pointer, at: index)) }
            rows.append(SQLRow(columns: names, cells: cells))
        }
        return rows
    }

    private func prepared(_ sql: String) throws(StorageError) -> CachedStatement {
        uses &+= 1
        let key = StatementText(sql)
        if let cached = statements[key] {
            cached.lastUse = uses
            return cached
        }
        guard let db else { throw StorageError(.unreachable, "the SQLite connection is closed") }
        var pointer: OpaquePointer?
        var trailing = false
        let code = Self.rollingBackOnConflict(Self.rewritePlaceholders(sql)).withCString { text in
            var rest: UnsafePointer<CChar>?
            let code = sqlite_nio_sqlite3_prepare_v3(db, text, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &pointer, &rest)
            if code == SQLITE_OK, let rest, rest.pointee != 0 {
                // SQLite runs only the first statement of a text and drops the rest unseen;
                // what follows may only be blanks, semicolons and comments (no statement).
                var more: OpaquePointer?
                trailing = sqlite_nio_sqlite3_prepare_v2(db, rest, -1, &more, nil) != SQLITE_OK || more != nil
                sqlite_nio_sqlite3_finalize(more)
            }
            return code
        }
        guard code == SQLITE_OK else { throw failure(code, sql: sql) }
        compiled.add(1, ordering: .relaxed)
        guard let pointer else {
            // An empty text or only a comment: nothing to run.
            throw StorageError(.query, "SQLite: no statement in \(sql.debugDescription)")
        }
        guard !trailing else {
            sqlite_nio_sqlite3_finalize(pointer)
            throw StorageError(.query, "SQLite: one statement per query; this text holds more: \(sql.prefix(200))")
        }
        if statements.count >= Self.statementCapacity, let oldest = statements.min(by: { $0.value.lastUse < $1.value.lastUse }) {
            sqlite_nio_sqlite3_finalize(oldest.value.pointer)
            statements[oldest.key] = nil
        }
        let statement = CachedStatement(pointer: pointer, lastUse: uses)
        statements[key] = statement
        return statement
    }

    /// `$1` → `?1`: SQLite's numbered parameters bind the same array in the same order.
    ///
    /// `LIMIT $n` becomes `LIMIT +?n`. SQLite (3.54) reads a bound LIMIT's value into the plan and
    /// marks the statement to be compiled again whenever that parameter is bound, which a kept
    /// statement is at every run: the worker's claim (`LIMIT` its free slots) was compiled anew
    /// at each of its runs, 4 % of a burn-down's writer thread. The unary `+` is SQLite's own way
    /// to keep an expression out of the planner; the value, still bound, limits the rows alike.
    static func rewritePlaceholders(_ sql: String) -> String {
        guard sql.contains("$") else { return sql }
        var out = ""
        out.reserveCapacity(sql.utf8.count + 8)
        var inString = false
        for ch in sql {
            if ch == "'" { inString.toggle() }
            guard ch == "$", !inString else {
                out.append(ch)
                continue
            }
            if out.hasSuffix("LIMIT ") { out.append("+") }
            out.append("?")
        }
        return out
    }

    /// `INSERT INTO …` → `INSERT OR ROLLBACK INTO …` and `UPDATE t …` → `UPDATE OR ROLLBACK t …`;
    /// a text that names a conflict algorithm of its own keeps it (an upsert's `ON CONFLICT` still
    /// decides its uniqueness conflicts).
    ///
    /// Why: a transaction of ours is all or nothing. A failed statement fails its body, and the
    /// driver rolls the whole transaction back (`SQLiteDriver.transaction`; the intake's batcher
    /// then writes a failed batch's enqueues one by one). SQLite's default, `ABORT`, undoes just
    /// the failed statement and keeps the transaction, and to be able to, it keeps a statement
    /// journal for every statement that writes several rows and may fail on a constraint: a copy
    /// of each page the statement changes, in chunks of a kilobyte it allocates and frees. That
    /// was a tenth of the intake's writer thread under `wrk`, all of it thrown away. `ROLLBACK`
    /// ends the transaction at the failure instead and needs no such copy for UNIQUE, NOT NULL and
    /// CHECK constraints (an immediate foreign key still asks for one). The error is the same;
    /// `query` then refuses the body's next statements, which would otherwise commit one by one.
    static func rollingBackOnConflict(_ sql: String) -> String {
        let text = sql.drop { $0 == " " || $0 == "\n" }
        if text.hasPrefix("INSERT INTO ") {
            return "INSERT OR ROLLBACK INTO " + text.dropFirst("INSERT INTO ".count)
        }
        if text.hasPrefix("UPDATE "), !text.hasPrefix("UPDATE OR ") {
            return "UPDATE OR ROLLBACK " + text.dropFirst("UPDATE ".count)
        }
        return sql
    }

    private static let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)
    /// `SQLITE_STATIC`: SQLite reads the bytes in place and never frees them.
    private static let unowned: sqlite3_destructor_type? = nil
    /// Room kept for a timestamp's text (at most 27 bytes; a year past 9999 is longer, and is then
    /// bound as SQLite's own copy).
    private static let timestampRoom = 32

    /// Binds `binds` to `$1`, `$2`, …, refusing text with the NUL character (`StorageError.nulMessage`:
    /// both drivers refuse it alike; SQLite would cut the text short).
    ///
    /// Texts and timestamps are copied, one after another, into `bindBytes` and bound from there
    /// as `SQLITE_STATIC`, which SQLite reads in place until the statement is reset. Bound as
    /// `SQLITE_TRANSIENT`, each was SQLite's own `malloc`, copy and `free`: about 125 a request
    /// on the intake's writer thread under `wrk`, a tenth of its instructions with the separate
    /// NUL check of every text before them.
    private func bindAll(_ binds: some SQLBinds, to statement: OpaquePointer, sql: String) throws(StorageError) {
        var needed = 0
        binds.forEachBind { value in
            switch value {
            case .text(let s): needed += s.utf8.count
            case .timestamp: needed += Self.timestampRoom
            default: break
            }
        }
        if needed > bindBytes.count || bindBytes.baseAddress == nil {
            bindBytes.deallocate()
            // Never empty: an empty text is bound from a pointer too (a null one binds NULL).
            bindBytes = .allocate(byteCount: Swift.max(needed, 4_096, bindBytes.count * 2), alignment: 1)
        }
        guard let base = bindBytes.baseAddress else { return }
        let room = bindBytes.count
        var offset = 0
        var position: Int32 = 0
        try binds.forEachBind { (value) throws(StorageError) in
            position += 1
            let code: Int32
            switch value {
            case .null: code = sqlite_nio_sqlite3_bind_null(statement, position)
            case .int(let i): code = sqlite_nio_sqlite3_bind_int64(statement, position, Int64(i))
            case .double(let d): code = sqlite_nio_sqlite3_bind_double(statement, position, d)
            case .bool(let b): code = sqlite_nio_sqlite3_bind_int64(statement, position, b ? 1 : 0)
            case .text(let s):
                var text = s
                let start = base + offset
                let count = text.withUTF8 { bytes in
                    if let source = bytes.baseAddress { start.copyMemory(from: source, byteCount: bytes.count) }
                    return bytes.count
                }
                if memchr(start, 0, count) != nil { throw StorageError(.invalidValue, StorageError.nulMessage) }
                code = Self.bindText(UnsafeRawBufferPointer(start: start, count: count), to: statement, at: position, Self.unowned)
                offset += count
            case .timestamp(let t):
                let start = base + offset
                let left = room - offset
                code = t.withSQLiteText { bytes in
                    guard bytes.count <= left, let source = bytes.baseAddress else {
                        return Self.bindText(UnsafeRawBufferPointer(bytes), to: statement, at: position, Self.transient)
                    }
                    start.copyMemory(from: source, byteCount: bytes.count)
                    offset += bytes.count
                    return Self.bindText(UnsafeRawBufferPointer(start: start, count: bytes.count), to: statement, at: position, Self.unowned)
                }
            case .json(let j):
                // Intake rows come with their JSON written already (`Columns.makeBindReady`).
                let bytes = try StorageError.storableText(j)
                code = bytes.withUnsafeBytes { Self.bindText($0, to: statement, at: position, Self.transient) }
            }
            guard code == SQLITE_OK else { throw failure(code, sql: sql) }
        }
    }

    /// UTF-8 bytes as a text value: copied by SQLite with `transient`, read in place until the
    /// statement is reset with `unowned`.
    private static func bindText(
        _ bytes: UnsafeRawBufferPointer, to statement: OpaquePointer, at index: Int32, _ destructor: sqlite3_destructor_type?
    ) -> Int32 {
        // A null pointer would bind NULL: an empty text points at a byte it does not read.
        let pointer = bytes.baseAddress ?? UnsafeRawPointer(bitPattern: 1)
        return sqlite_nio_sqlite3_bind_text64(
            statement, index, pointer?.assumingMemoryBound(to: CChar.self), UInt64(bytes.count), destructor, UInt8(SQLITE_UTF8))
    }

    private static func value(of statement: OpaquePointer, at index: Int32) -> SQLValue {
        switch sqlite_nio_sqlite3_column_type(statement, index) {
        case SQLITE_NULL: return .null
        case SQLITE_INTEGER: return .int(Int(sqlite_nio_sqlite3_column_int64(statement, index)))
        case SQLITE_FLOAT: return .double(sqlite_nio_sqlite3_column_double(statement, index))
        case SQLITE_BLOB:
            let count = Int(sqlite_nio_sqlite3_column_bytes(statement, index))
            guard count > 0, let bytes = sqlite_nio_sqlite3_column_blob(statement, index) else { return .text("") }
            return .text(String(decoding: UnsafeRawBufferPointer(start: bytes, count: count), as: UTF8.self))
        default:
            // Ask for the text before its length: the length is of the value as converted.
            guard let bytes = sqlite_nio_sqlite3_column_text(statement, index) else { return .text("") }
            let count = Int(sqlite_nio_sqlite3_column_bytes(statement, index))
            return .text(String(decoding: UnsafeBufferPointer(start: bytes, count: count), as: UTF8.self))
        }
    }

    // Extended result codes; the header defines them as expressions Swift does not import.
    private static let constraintUnique = SQLITE_CONSTRAINT | (8 << 8)
    private static let constraintPrimaryKey = SQLITE_CONSTRAINT | (6 << 8)
    private static let constraintForeignKey = SQLITE_CONSTRAINT | (3 << 8)

    private func failure(_ code: Int32, sql: String) -> StorageError {
        let message = db.flatMap { sqlite_nio_sqlite3_errmsg($0) }.map { String(cString: $0) } ?? "error \(code)"
        switch code {
        case Self.constraintUnique, Self.constraintPrimaryKey:
            // "UNIQUE constraint failed: tasks.idempotency_key"
            return StorageError(.uniqueViolation, message, constraint: message.components(separatedBy: ": ").last)
        case Self.constraintForeignKey:
            return StorageError(.foreignKeyViolation, message)
        default:
            if code & 0xFF == SQLITE_BUSY || code & 0xFF == SQLITE_LOCKED {
                return StorageError(.query, "the SQLite database stayed locked by another process past the busy timeout: \(message)")
            }
            if message.contains("no such table") {
                return StorageError(.schemaBehind, "the database schema is missing tables (\(message)); run `tower migrate`")
            }
            return StorageError(.query, "SQLite: \(message)")
        }
    }
}
