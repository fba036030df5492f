import CWOM
import Foundation
import Logging
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

    /// Statements sent to a connection's thread from another thread since the driver opened
    /// (`SQLiteThread`): the statements of transactions run inline and do not count. A test
    /// signal, and a figure for `tower bench`.
    public var statementHops: Int { (writer.all + readers.all).reduce(0) { $0 + $1.thread.statementHops } }

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
        do throws(StorageError) {
            for index in 0...readerCount {
                let connection = try await SQLiteConnection.open(
                    path: path, busyTimeoutMilliseconds: busyTimeoutMilliseconds, name: index == 0 ? "tower.sqlite.writer" : "tower.sqlite.reader")
                opened.append(connection)
                if index == 0 { try await connection.execute("PRAGMA journal_mode = WAL") }
                try await connection.execute("PRAGMA foreign_keys = ON")
                try await connection.execute("PRAGMA synchronous = NORMAL")
            }
        } catch {
            for connection in opened { await connection.close() }
            throw StorageError(error.kind == .unreachable ? .unreachable : error.kind, "cannot open the SQLite database \(path): \(error.message)")
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
            let result = try await withTaskExecutorPreference(connection.thread) {
                try await body(SQLiteSession(connection: connection))
            }
            await writer.release(connection)
            return result
        } catch {
            await writer.release(connection)
            throw error
        }
    }

    /// The transaction's body runs with the connection's thread as its executor, so its
    /// statements run there inline: one thread hop in, one out (`SQLiteThread`).
    private func transaction<T: Sendable>(on pool: ConnectionPool<SQLiteConnection>, begin: String,
        _ body: @Sendable (any DatabaseSession) async throws -> T) async throws -> T
    {
        guard !closed.value else { throw StorageError(.unreachable, "the SQLite database \(path) is closed") }
        let connection = await pool.acquire()
        inUse.add(1, ordering: .relaxed)
        defer { inUse.subtract(1, ordering: .relaxed) }
        let session = SQLiteSession(connection: connection)
        do {
            let result = try await withTaskExecutorPreference(connection.thread) {
                try await session.query(begin, [])
                do {
                    let result = try await body(session)
                    try await session.query("COMMIT", [])
                    return result
                } catch {
                    _ = try? await session.query("ROLLBACK", [])
                    throw error
                }
            }
            await pool.release(connection)
            return result
        } catch {
            await pool.release(connection)
            throw error
        }
    }

    public func close() async {
        guard closed.set() else { return }
        // Wait for work in progress: take every connection before closing it.
        for _ in writer.all { _ = await writer.acquire() }
        for _ in readers.all { _ = await readers.acquire() }
        for connection in writer.all + readers.all { await connection.close() }
    }
}

/// One SQLite handle and the thread that uses it.
final class SQLiteConnection: Sendable {
    let thread: SQLiteThread
    private let handle: SQLiteHandle

    private init(thread: SQLiteThread, handle: SQLiteHandle) {
        self.thread = thread
        self.handle = handle
    }

    static func open(path: String, busyTimeoutMilliseconds: Int, name: String) async throws(StorageError) -> SQLiteConnection {
        let thread = SQLiteThread(name: name)
        do throws(StorageError) {
            let handle = try await thread.perform { () throws(StorageError) in
                try SQLiteHandle(path: path, busyTimeoutMilliseconds: busyTimeoutMilliseconds)
            }
            return SQLiteConnection(thread: thread, handle: handle)
        } catch {
            thread.stop()
            throw error
        }
    }

    func query(_ sql: String, _ binds: [SQLValue]) async throws(StorageError) -> [SQLRow] {
        let handle = handle
        return try await thread.perform { () throws(StorageError) in try handle.query(sql, binds) }
    }

    func execute(_ sql: String) async throws(StorageError) {
        _ = try await query(sql, [])
    }

    /// Closes the handle on its thread, then ends the thread.
    func close() async {
        let handle = handle
        _ = try? await thread.perform { handle.close() }
        thread.stop()
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
        return try await connection.query(sql, binds)
    }
}
