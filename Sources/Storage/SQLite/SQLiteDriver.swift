import CWOM
import Foundation
import Logging
import NIOCore
import SQLiteNIO
import Synchronization
import TowerJSON

/// The embedded driver: one SQLite file in WAL mode with foreign keys on.
///
/// Writer discipline: every write transaction runs on the single writer connection, one at a
/// time, and starts with `BEGIN IMMEDIATE`, so a transaction never has to upgrade its lock and
/// `database is locked` cannot surface inside this process. Other processes on the same file
/// wait up to the busy timeout. Reads run on their own connections against WAL snapshots and
/// never wait for writers.
public final class SQLiteDriver: DatabaseDriver {
    public let dialect = SQLDialect.sqlite
    public let path: String
    private let writer: ConnectionPool<SQLiteConnection>
    private let readers: ConnectionPool<SQLiteConnection>
    private let closed = ClosedFlag()
    private let inUse = Atomic<Int>(0)

    public var sessionsInUse: Int { inUse.load(ordering: .relaxed) }

    /// Opens (creating if needed) the database file at `path`.
    public static func open(path: String, readers readerCount: Int = 4, busyTimeoutMilliseconds: Int = 30_000,
        logger: Logger = Logger(label: "tower.sqlite")) async throws(StorageError) -> SQLiteDriver
    {
        let directory = URL(fileURLWithPath: path).deletingLastPathComponent()
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        } catch {
            throw StorageError(.configuration, "cannot create the folder for the SQLite database \(path): \(error)")
        }
        var opened: [SQLiteConnection] = []
        do {
            for index in 0...readerCount {
                let connection = try await SQLiteConnection.open(storage: .file(path: path), logger: logger)
                opened.append(connection)
                // busy_timeout replaces SQLiteNIO's retry-forever busy handler.
                _ = try await connection.query("PRAGMA busy_timeout = \(busyTimeoutMilliseconds)", [])
                if index == 0 { _ = try await connection.query("PRAGMA journal_mode = WAL", []) }
                _ = try await connection.query("PRAGMA foreign_keys = ON", [])
                _ = try await connection.query("PRAGMA synchronous = NORMAL", [])
            }
        } catch {
            for connection in opened { try? await connection.close() }
            throw StorageError(.unreachable, "cannot open the SQLite database \(path): \(error)")
        }
        return SQLiteDriver(path: path, writer: [opened[0]], readers: Array(opened.dropFirst()))
    }

    private init(path: String, writer: [SQLiteConnection], readers: [SQLiteConnection]) {
        self.path = path
        self.writer = ConnectionPool(writer)
        self.readers = ConnectionPool(readers)
    }

    public func write<T: Sendable>(_ body: @Sendable (any DatabaseSession) async throws -> T) async throws -> T {
        try await transaction(on: writer, begin: "BEGIN IMMEDIATE", body)
    }

    public func read<T: Sendable>(_ body: @Sendable (any DatabaseSession) async throws -> T) async throws -> T {
        try await transaction(on: readers, begin: "BEGIN", body)
    }

    public func withSession<T: Sendable>(_ body: @Sendable (any DatabaseSession) async throws -> T) async throws -> T {
        guard !closed.value else { throw StorageError(.unreachable, "the SQLite database \(path) is closed") }
        let connection = await writer.acquire()
        do {
            let result = try await body(SQLiteSession(connection: connection))
            await writer.release(connection)
            return result
        } catch {
            await writer.release(connection)
            throw error
        }
    }

    private func transaction<T: Sendable>(on pool: ConnectionPool<SQLiteConnection>, begin: String,
        _ body: @Sendable (any DatabaseSession) async throws -> T) async throws -> T
    {
        guard !closed.value else { throw StorageError(.unreachable, "the SQLite database \(path) is closed") }
        let connection = await pool.acquire()
        inUse.add(1, ordering: .relaxed)
        defer { inUse.subtract(1, ordering: .relaxed) }
        let session = SQLiteSession(connection: connection)
        do {
            try await session.query(begin, [])
            let result = try await body(session)
            try await session.query("COMMIT", [])
            await pool.release(connection)
            return result
        } catch {
            _ = try? await session.query("ROLLBACK", [])
            await pool.release(connection)
            throw error
        }
    }

    public func close() async {
        guard closed.set() else { return }
        // Wait for work in progress: take every connection before closing it.
        for _ in writer.all { _ = await writer.acquire() }
        for _ in readers.all { _ = await readers.acquire() }
        for connection in writer.all + readers.all { try? await connection.close() }
    }
}

/// A flag set once, readable from any thread.
final class ClosedFlag: Sendable {
    private let state = Mutex(false)
    var value: Bool { state.withLock { $0 } }
    /// Sets the flag; false when it was already set.
    func set() -> Bool { state.withLock { old in defer { old = true }; return !old } }
}

struct SQLiteSession: DatabaseSession {
    let connection: SQLiteConnection
    var dialect: SQLDialect { .sqlite }

    @discardableResult
    func query(_ sql: String, _ binds: [SQLValue]) async throws(StorageError) -> [SQLRow] {
        try StorageError.checkBinds(binds)
        let rows: [SQLiteRow]
        do {
            rows = try await connection.query(Self.rewritePlaceholders(sql), binds.map(Self.bind))
        } catch let error as SQLiteError {
            throw Self.map(error, sql: sql)
        } catch {
            throw StorageError(.query, "SQLite query failed: \(error)")
        }
        return rows.map { row in
            var values: [String: SQLValue] = [:]
            for column in row.columns { values[column.name] = Self.value(column.data) }
            return SQLRow(values: values)
        }
    }

    /// `$1` → `?1`: SQLite's numbered parameters bind the same array in the same order.
    static func rewritePlaceholders(_ sql: String) -> String {
        guard sql.contains("$") else { return sql }
        var out = ""
        out.reserveCapacity(sql.utf8.count)
        var inString = false
        var previous: Character = " "
        for ch in sql {
            if ch == "'" { inString.toggle() }
            if ch == "$" && !inString {
                out.append("?")
            } else {
                out.append(ch)
            }
            previous = ch
        }
        _ = previous
        return out
    }

    static func bind(_ value: SQLValue) -> SQLiteData {
        switch value {
        case .null: return .null
        case .int(let i): return .integer(i)
        case .double(let d): return .float(d)
        case .bool(let b): return .integer(b ? 1 : 0)
        case .text(let s): return .text(s)
        case .timestamp(let t): return .text(t.sqliteText)
        case .json(let j): return .text(j.serialized())
        }
    }

    static func value(_ data: SQLiteData) -> SQLValue {
        switch data {
        case .null: return .null
        case .integer(let i): return .int(i)
        case .float(let d): return .double(d)
        case .text(let s): return .text(s)
        case .blob(let buffer): return .text(String(buffer: buffer))
        }
    }

    static func map(_ error: SQLiteError, sql: String) -> StorageError {
        switch error.reason {
        case .constraintUniqueFailed, .constraintPrimaryKeyFailed:
            // "UNIQUE constraint failed: tasks.idempotency_key"
            let column = error.message.components(separatedBy: ": ").last
            return StorageError(.uniqueViolation, error.message, constraint: column)
        case .constraintForeignKeyFailed:
            return StorageError(.foreignKeyViolation, error.message)
        case .busy, .locked, .busyTimeout:
            return StorageError(.query, "the SQLite database stayed locked by another process past the busy timeout: \(error.message)")
        default:
            if error.message.contains("no such table") {
                return StorageError(.schemaBehind, "the database schema is missing tables (\(error.message)); run `tower migrate`")
            }
            return StorageError(.query, "SQLite: \(error.message)")
        }
    }
}
