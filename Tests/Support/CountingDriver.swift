import Storage
import Synchronization

/// Wraps a driver and counts the statements sent through it and the transactions opened, so
/// that a test can show that an operation's cost does not grow with its input.
public final class CountingDriver: DatabaseDriver {
    public let base: any DatabaseDriver
    private let counts = Mutex<(statements: Int, transactions: Int)>((0, 0))

    public init(_ base: any DatabaseDriver) { self.base = base }

    public var dialect: SQLDialect { base.dialect }
    public var sessionsInUse: Int { base.sessionsInUse }

    /// Statements and transactions since the last call; resets both.
    public func take() -> (statements: Int, transactions: Int) {
        counts.withLock { value in
            defer { value = (0, 0) }
            return value
        }
    }

    struct Session: DatabaseSession {
        let base: any DatabaseSession
        let driver: CountingDriver
        var dialect: SQLDialect { base.dialect }
        func query(_ sql: String, _ binds: [SQLValue]) async throws(StorageError) -> [SQLRow] {
            driver.counts.withLock { $0.statements += 1 }
            return try await base.query(sql, binds)
        }
    }

    public func write<T: Sendable>(_ body: @Sendable (any DatabaseSession) async throws -> T) async throws -> T {
        counts.withLock { $0.transactions += 1 }
        return try await base.write { session in try await body(Session(base: session, driver: self)) }
    }

    public func read<T: Sendable>(_ body: @Sendable (any DatabaseSession) async throws -> T) async throws -> T {
        counts.withLock { $0.transactions += 1 }
        return try await base.read { session in try await body(Session(base: session, driver: self)) }
    }

    public func withSession<T: Sendable>(_ body: @Sendable (any DatabaseSession) async throws -> T) async throws -> T {
        try await base.withSession { session in try await body(Session(base: session, driver: self)) }
    }

    public func close() async { await base.close() }
}
