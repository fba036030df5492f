import Logging

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
}

extension DatabaseSession {
    @discardableResult
    public func query(_ sql: String, _ binds: SQLValue...) async throws(StorageError) -> [SQLRow] {
        try await query(sql, binds)
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

    /// Runs `body` on a consistent read snapshot.
    @discardableResult
    func read<T: Sendable>(_ body: @Sendable (any DatabaseSession) async throws -> T) async throws -> T

    /// Runs `body` outside any transaction (for statements that manage their own, such as
    /// migrations taking locks).
    @discardableResult
    func withSession<T: Sendable>(_ body: @Sendable (any DatabaseSession) async throws -> T) async throws -> T

    /// Connections lent out right now (for the pool usage metric).
    var sessionsInUse: Int { get }

    /// Closes every connection. The driver cannot be used afterwards.
    func close() async
}
