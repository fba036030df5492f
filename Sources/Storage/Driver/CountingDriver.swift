import Synchronization

/// Wraps a driver and counts the statements sent through it and the transactions opened, so
/// that a test can show that an operation's cost does not grow with its input, and `tower bench`
/// can print statements per task. Statements are also tallied by the lifecycle engine operation
/// that sent them (`LifecycleEngine.operation`), and, while `record` is on, kept with their binds
/// (a test reads the plan of the engine's own SQL).
public final class CountingDriver: DatabaseDriver {
    public let base: any DatabaseDriver
    private let counts = Mutex<(statements: Int, transactions: Int)>((0, 0))
    private let perOperation = Mutex<[String: (statements: Int, transactions: Int)]>([:])
    private let recorded = Mutex<[(sql: String, binds: [SQLValue])]?>(nil)

    public init(_ base: any DatabaseDriver) { self.base = base }

    public var dialect: SQLDialect { base.dialect }
    public var sessionsInUse: Int { base.sessionsInUse }
    public var writeExecutor: (any TaskExecutor)? { base.writeExecutor }

    /// Statements and transactions since the last call; resets both.
    public func take() -> (statements: Int, transactions: Int) {
        counts.withLock { value in
            defer { value = (0, 0) }
            return value
        }
    }

    /// Statements and transactions by engine operation (`claim`, `complete`, …; `other` outside
    /// the engine) since the last call; resets them.
    public func takeByOperation() -> [String: (statements: Int, transactions: Int)] {
        perOperation.withLock { value in
            defer { value = [:] }
            return value
        }
    }

    /// Starts keeping every statement sent from now on.
    public func record() { recorded.withLock { $0 = [] } }

    /// The statements kept since `record()`; stops keeping them.
    public func takeRecorded() -> [(sql: String, binds: [SQLValue])] {
        recorded.withLock { value in
            defer { value = nil }
            return value ?? []
        }
    }

    struct Session: DatabaseSession {
        let base: any DatabaseSession
        let driver: CountingDriver
        var dialect: SQLDialect { base.dialect }
        var combinedTexts: WriteBatch.Texts? { base.combinedTexts }
        func query(_ sql: String, _ binds: [SQLValue]) async throws(StorageError) -> [SQLRow] {
            count(sql, binds)
            return try await base.query(sql, binds)
        }
        func queryLast(_ sql: String, _ binds: [SQLValue]) async throws(StorageError) {
            count(sql, binds)
            try await base.queryLast(sql, binds)
        }
        private func count(_ sql: String, _ binds: [SQLValue]) {
            driver.counts.withLock { $0.statements += 1 }
            driver.perOperation.withLock { $0[LifecycleEngine.operation ?? "other", default: (0, 0)].statements += 1 }
            driver.recorded.withLock { $0?.append((sql, binds)) }
        }
    }

    public func write<T: Sendable>(_ body: @Sendable (any DatabaseSession) async throws -> T) async throws -> T {
        counts.withLock { $0.transactions += 1 }
        perOperation.withLock { $0[LifecycleEngine.operation ?? "other", default: (0, 0)].transactions += 1 }
        return try await base.write { session in try await body(Session(base: session, driver: self)) }
    }

    public func writeSchema<T: Sendable>(_ body: @Sendable (any DatabaseSession) async throws -> T) async throws -> T {
        counts.withLock { $0.transactions += 1 }
        return try await base.writeSchema { session in try await body(Session(base: session, driver: self)) }
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
