import CWOM
import Foundation
import Logging
import NIOCore
import PostgresNIO
import Synchronization
import TowerJSON

/// Where and how to reach PostgreSQL, parsed from a `postgres://` URL.
public struct PostgresSettings: Sendable {
    public var host: String
    public var port: Int
    public var username: String
    public var password: String?
    public var database: String
    /// The schema to use instead of `public` (tests use one schema per test).
    public var searchPath: String?
    /// The most connections the pool opens.
    public var maximumConnections: Int
    /// How the connections name themselves (`pg_stat_activity.application_name`).
    public var applicationName: String = "tower"
    /// The longest a statement of a transaction may wait for its answer before its connection is
    /// closed and the transaction fails as `unreachable` (`?query_timeout=SECONDS`).
    public var queryTimeout: Double = 60
    /// The longest a transaction waits for a connection when all `maximumConnections` are in use
    /// (`?acquire_timeout=SECONDS`) before it fails as `unreachable` (a 503 from the API); see
    /// `PostgresPool`.
    public var acquireTimeout: Double = 10
    /// The longest opening a connection may take, TCP, startup and authentication together
    /// (`?connect_timeout=SECONDS`, libpq's name), before it fails as `unreachable`.
    public var connectTimeout: Double = 10
    /// Where the pool reads the time, for how long a connection has been idle; tests set it.
    public var clock: any LifecycleClock = SystemClock()
    /// Uses of a statement text after which each connection keeps it prepared
    /// (`?prepare_threshold=N`; 0 never prepares, for PgBouncer's transaction pooling). See
    /// `StatementCatalog`.
    public var prepareThreshold: Int = 3

    public init(host: String, port: Int = 5432, username: String, password: String?, database: String,
        searchPath: String? = nil, maximumConnections: Int = 10)
    {
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self.database = database
        self.searchPath = searchPath
        self.maximumConnections = maximumConnections
    }

    /// Parses `postgres://user:password@host:port/database?search_path=…&pool_size=…`.
    /// `postgresql://` and SQLAlchemy's `postgresql+psycopg2://` are accepted too.
    public init(url: String, maximumConnections: Int = 10) throws(StorageError) {
        guard let components = URLComponents(string: url), let scheme = components.scheme,
            scheme == "postgres" || scheme.hasPrefix("postgresql")
        else {
            throw StorageError(.configuration, "DATABASE_URL '\(Self.redacted(url))' is not a postgres:// URL")
        }
        guard let host = components.host, !host.isEmpty else {
            throw StorageError(.configuration, "DATABASE_URL '\(Self.redacted(url))' names no host")
        }
        let database = String(components.path.drop(while: { $0 == "/" }))
        guard !database.isEmpty else {
            throw StorageError(.configuration, "DATABASE_URL '\(Self.redacted(url))' names no database (…/DATABASE)")
        }
        var searchPath: String?
        var applicationName: String?
        var queryTimeout: Double?
        var acquireTimeout: Double?
        var connectTimeout: Double?
        var prepareThreshold: Int?
        var pool = maximumConnections
        for item in components.queryItems ?? [] {
            switch item.name {
            case "search_path", "schema": searchPath = item.value
            case "application_name": applicationName = item.value
            // Bounded above: the server's idle_in_transaction_session_timeout is set from it in
            // milliseconds, and `1e300` trapped converting it.
            case "query_timeout":
                guard let value = item.value.flatMap(Double.init), value > 0, value <= 86_400 else {
                    throw StorageError(.configuration, "DATABASE_URL: query_timeout must be a number of seconds above 0, at most 86400")
                }
                queryTimeout = value
            case "acquire_timeout":
                guard let value = item.value.flatMap(Double.init), value > 0, value <= 86_400 else {
                    throw StorageError(.configuration, "DATABASE_URL: acquire_timeout must be a number of seconds above 0, at most 86400")
                }
                acquireTimeout = value
            case "connect_timeout":
                guard let value = item.value.flatMap(Double.init), value > 0, value <= 86_400 else {
                    throw StorageError(.configuration, "DATABASE_URL: connect_timeout must be a number of seconds above 0, at most 86400")
                }
                connectTimeout = value
            case "prepare_threshold":
                guard let value = item.value.flatMap(Int.init), value >= 0 else {
                    throw StorageError(.configuration, "DATABASE_URL: prepare_threshold must be 0 (never prepare) or a positive integer")
                }
                prepareThreshold = value
            case "pool_size", "max_connections":
                guard let value = item.value.flatMap(Int.init), value > 0 else {
                    throw StorageError(.configuration, "DATABASE_URL: \(item.name) must be a positive integer")
                }
                pool = value
            case "sslmode":
                if item.value != "disable" && item.value != "prefer" && item.value != "allow" {
                    throw StorageError(
                        .configuration,
                        "DATABASE_URL: sslmode=\(item.value ?? "") is not supported yet; use sslmode=disable on a trusted network")
                }
            default: break
            }
        }
        self.init(
            host: host, port: components.port ?? 5432, username: components.user?.removingPercentEncoding ?? "postgres",
            password: components.password?.removingPercentEncoding, database: database, searchPath: searchPath,
            maximumConnections: pool)
        if let applicationName, !applicationName.isEmpty { self.applicationName = applicationName }
        if let queryTimeout { self.queryTimeout = queryTimeout }
        if let acquireTimeout { self.acquireTimeout = acquireTimeout }
        if let connectTimeout { self.connectTimeout = connectTimeout }
        if let prepareThreshold { self.prepareThreshold = prepareThreshold }
    }

    /// Startup parameters of every connection.
    ///
    /// `idle_in_transaction_session_timeout` is the server's half of the query deadline: a
    /// transaction that waits longer than `query_timeout` for its client's next statement is
    /// ended by the server, its locks released. Without it, a transaction whose client side is gone
    /// while its socket is not (a connection the deadline abandoned, a frozen or partitioned
    /// process) keeps its row locks: a task locked by a claim that never commits is skipped by
    /// every other claim (`FOR UPDATE SKIP LOCKED`) and stays queued for as long as that
    /// backend lives. Tower's transactions never wait on their client for long: each runs its
    /// statements back to back.
    var startupParameters: [(String, String)] {
        [
            ("application_name", applicationName),
            ("idle_in_transaction_session_timeout", String(max(1, Int((queryTimeout * 1000).rounded(.up))))),
        ] + (searchPath.map { [("search_path", $0)] } ?? [])
    }

    /// The URL with its password replaced by `***`, for messages and logs.
    public static func redacted(_ url: String) -> String {
        if var components = URLComponents(string: url) {
            guard components.password != nil else { return url }
            components.password = "***"
            if let redacted = components.string { return redacted }
        }
        // Not a URL Foundation can read (a port that is no number, say), which is when an error
        // quotes it: everything from the first ':' after the user to the last '@' goes, even if
        // that hides more than the password.
        guard let scheme = url.range(of: "://"), let at = url[scheme.upperBound...].lastIndex(of: "@"),
            let colon = url[scheme.upperBound..<at].firstIndex(of: ":")
        else { return url }
        return String(url[...colon]) + "***" + String(url[at...])
    }

    var description: String { "\(username)@\(host):\(port)/\(database)" }

    func connectionConfiguration() -> PostgresConnection.Configuration {
        var configuration = PostgresConnection.Configuration(
            host: host, port: port, username: username, password: password, database: database, tls: .disable)
        configuration.options.additionalStartupParameters = startupParameters
        configuration.options.connectTimeout = .milliseconds(Int64((connectTimeout * 1000).rounded(.up)))
        return configuration
    }

    /// Opens a connection within `connectTimeout`, TCP, startup and authentication together.
    /// PostgresNIO's own timeout covers the TCP connection only: a server that accepts it and
    /// then says nothing (a stopped postmaster, whose kernel still completes the handshake) kept
    /// the caller waiting for ever.
    func connect(id: Int, logger: Logger) async throws(StorageError) -> PostgresConnection {
        let configuration = connectionConfiguration()
        let timeout = Duration.milliseconds(Int64((connectTimeout * 1000).rounded(.up)))
        let expired = Atomic<Bool>(false)
        let handle = Mutex<Task<PostgresConnection, any Error>?>(nil)
        let attempt = Task {
            // Timed from here, not from the call: a task may wait for a thread first (seen in the
            // test suite, whose tasks share two threads: 7 s), and that wait is not the server's.
            let deadline = Timers.after(timeout) {
                expired.store(true, ordering: .sequentiallyConsistent)
                handle.withLock { $0 }?.cancel()
            }
            defer { deadline.cancel() }
            guard let address = try? SocketAddress(ipAddress: host, port: port) else {
                return try await PostgresConnection.connect(configuration: configuration, id: id, logger: logger)
            }
            // An address needs no resolver. NIO's, which PostgresNIO uses for every host, runs
            // getaddrinfo on a Dispatch queue even for an address; with Dispatch's threads busy
            // (blocking waits elsewhere in the process) the TCP connection waited out its
            // timeout: 43 tests of one CI run failed with "Connect timeout (10 s)" on 127.0.0.1.
            let channel = try await ClientBootstrap(group: PostgresConnection.defaultEventLoopGroup.any())
                .connectTimeout(configuration.options.connectTimeout).connect(to: address).get()
            var established = PostgresConnection.Configuration(
                establishedChannel: channel, username: username, password: password, database: database)
            established.options = configuration.options
            do {
                return try await PostgresConnection.connect(on: channel.eventLoop, configuration: established, id: id, logger: logger)
            } catch {
                channel.close(promise: nil)
                throw error
            }
        }
        handle.withLock { $0 = attempt }
        // The deadline may have passed before the handle was there to cancel.
        if expired.load(ordering: .sequentiallyConsistent) { attempt.cancel() }
        do {
            return try await withTaskCancellationHandler { try await attempt.value } onCancel: { attempt.cancel() }
        } catch {
            guard expired.load(ordering: .sequentiallyConsistent) else { throw PostgresDriver.mapConnectError(error, settings: self) }
            throw StorageError(
                .unreachable,
                "PostgreSQL at \(description) did not complete a connection within \(Timers.secondsText(connectTimeout)) s (connect_timeout): is the server stopped or overloaded?")
        }
    }
}

/// The production driver: PostgresNIO connections in a pool of our own (`PostgresPool`).
public final class PostgresDriver: DatabaseDriver {
    public let dialect = SQLDialect.postgres
    public let settings: PostgresSettings
    let pool: PostgresPool
    let watchdog = QueryWatchdog()
    let statements: StatementCatalog
    /// `writeAll`'s combined texts (`WriteBatch.Texts`).
    let combinedTexts: WriteBatch.Texts
    private let watchdogTask: Task<Void, Never>
    let logger: Logger
    private let inUse = Atomic<Int>(0)
    private let begun = Atomic<Int>(0)

    /// Write transactions that sent `BEGIN` and `COMMIT` since the driver opened; one whose only
    /// statement was its last went alone and does not count (`PostgresTransaction`). A test signal.
    public var transactionsCommitted: Int { begun.load(ordering: .relaxed) }

    public var sessionsInUse: Int { inUse.load(ordering: .relaxed) }

    /// Connections the pool has open or is opening (a test signal).
    public var openConnections: Int { pool.openConnections }

    /// Connects once to check the server, the credentials and the database (turning each failure
    /// into an actionable error); that connection is the pool's first.
    public static func open(_ settings: PostgresSettings, logger: Logger = Logger(label: "tower.postgres"))
        async throws(StorageError) -> PostgresDriver
    {
        let connection = try await settings.connect(id: 0, logger: logger)
        return PostgresDriver(settings: settings, logger: logger, first: connection)
    }

    private init(settings: PostgresSettings, logger: Logger, first: PostgresConnection) {
        self.settings = settings
        self.logger = logger
        self.statements = StatementCatalog(threshold: settings.prepareThreshold)
        self.combinedTexts = WriteBatch.Texts()
        self.pool = PostgresPool(settings: settings, watchdog: watchdog, logger: logger, first: first)
        let watchdog = self.watchdog
        self.watchdogTask = Task { await watchdog.run() }
    }

    /// BEGIN, `body`, COMMIT (`BEGIN` goes with the body's first statement, and a body whose only
    /// statement is its last, `queryLast`, sends it alone: see `PostgresTransaction`); ROLLBACK
    /// when `body` throws, except after the connection was lost:
    /// PostgresNIO 1.33 can wait forever for a ROLLBACK sent on a connection the server has just
    /// terminated (`PostgresClient.withTransaction` does that, and a worker hung on it), and the
    /// server has rolled the transaction back anyway.
    public func write<T: Sendable>(_ body: @Sendable (any DatabaseSession) async throws -> T) async throws -> T {
        try await transaction(timeout: settings.queryTimeout, body)
    }

    /// A write whose statements have no deadline: see `DatabaseDriver.writeSchema`. The server's
    /// `idle_in_transaction_session_timeout` still ends the transaction if this process stops
    /// sending statements.
    public func writeSchema<T: Sendable>(_ body: @Sendable (any DatabaseSession) async throws -> T) async throws -> T {
        try await transaction(timeout: nil, body)
    }

    /// `timeout`: seconds each statement may wait for its answer; nil waits as long as it takes.
    private func transaction<T: Sendable>(timeout: Double?, _ body: @Sendable (any DatabaseSession) async throws -> T)
        async throws -> T
    {
        do {
            return try await pool.withConnection { connection in
                inUse.add(1, ordering: .relaxed)
                defer { inUse.subtract(1, ordering: .relaxed) }
                let transaction = PostgresTransaction()
                let session = PostgresSession(
                    connection: connection, logger: logger, timeout: timeout, watchdog: watchdog, statements: statements,
                    combinedTexts: combinedTexts, transaction: transaction)
                do {
                    let value = try await body(session)
                    guard transaction.begun else { return value }
                    begun.add(1, ordering: .relaxed)
                    try await session.run("COMMIT", [])
                    return value
                } catch {
                    if transaction.begun, (error as? StorageError)?.kind != .unreachable {
                        _ = try? await session.run("ROLLBACK", [])
                    }
                    throw error
                }
            }
        } catch let error as PSQLError {
            throw Self.map(error)
        }
    }

    public func read<T: Sendable>(_ body: @Sendable (any DatabaseSession) async throws -> T) async throws -> T {
        try await write(body)
    }

    public func withSession<T: Sendable>(_ body: @Sendable (any DatabaseSession) async throws -> T) async throws -> T {
        do {
            return try await pool.withConnection { connection in
                inUse.add(1, ordering: .relaxed)
                defer { inUse.subtract(1, ordering: .relaxed) }
                return try await body(
                    PostgresSession(
                        connection: connection, logger: logger, timeout: settings.queryTimeout, watchdog: watchdog, statements: statements,
                        combinedTexts: combinedTexts, transaction: nil))
            }
        } catch let error as PSQLError {
            throw Self.map(error)
        }
    }

    /// Calls `handler` for every notification on `channel` until the calling task is cancelled;
    /// `listening` once the server has taken the LISTEN.
    ///
    /// On a connection of its own, outside the pool (the "one more" of `DATABASE_POOL_SIZE`,
    /// docs/operations.md): LISTEN holds its connection for as long as it listens, and taken from
    /// a pool of one it left none for the claims it wakes; such a worker claimed nothing and did
    /// not stop on SIGTERM either.
    public func listen(channel: String, listening: @Sendable () -> Void = {}, _ handler: @escaping @Sendable () async -> Void)
        async throws
    {
        let connection = try await settings.connect(id: Self.listenConnectionId, logger: logger)
        do {
            try await connection.listen(on: channel) { notifications in
                listening()
                for try await _ in notifications { await handler() }
            }
        } catch {
            try? await connection.close()
            throw error
        }
        try? await connection.close()
    }

    /// The id PostgresNIO logs for a LISTEN connection (the pool numbers its own from 0).
    private static let listenConnectionId = -1

    public func close() async {
        await pool.close()
        watchdogTask.cancel()
    }

    static func map(_ error: PSQLError) -> StorageError {
        let state = error.serverInfo?[.sqlState]
        let message = error.serverInfo?[.message] ?? String(reflecting: error)
        switch state {
        case PostgresError.Code.uniqueViolation.raw:
            return StorageError(.uniqueViolation, message, constraint: error.serverInfo?[.constraintName])
        case PostgresError.Code.foreignKeyViolation.raw:
            return StorageError(.foreignKeyViolation, message, constraint: error.serverInfo?[.constraintName])
        case "42P01", "42703", "42704":
            return StorageError(.schemaBehind, "the database schema is behind this version of tower (\(message)); run `tower migrate`")
        case "22021", "22P05":
            // Invalid byte sequence / untranslatable character (NUL in text or `\u0000` in jsonb).
            return StorageError(.invalidValue, "\(StorageError.nulMessage) (\(message))")
        case "28P01", "28000":
            return StorageError(.authentication, message)
        case "3D000":
            return StorageError(.missingDatabase, message)
        case "57P01", "57P02", "57P03", "08000", "08001", "08003", "08004", "08006":
            // The server shut down, restarted or dropped the connection: try again later.
            return StorageError(.unreachable, "lost the connection to PostgreSQL (\(state ?? ""): \(message))")
        case nil:
            return StorageError(.unreachable, "lost the connection to PostgreSQL (\(error.code))")
        default:
            return StorageError(.query, "PostgreSQL error \(state ?? ""): \(message)")
        }
    }

    static func mapConnectError(_ error: any Error, settings: PostgresSettings) -> StorageError {
        if let psql = error as? PSQLError, let state = psql.serverInfo?[.sqlState] {
            let message = psql.serverInfo?[.message] ?? ""
            switch state {
            case "28P01", "28000":
                return StorageError(
                    .authentication,
                    "PostgreSQL refused the credentials of '\(settings.username)' (\(message)); check the user and password in DATABASE_URL")
            case "3D000":
                return StorageError(
                    .missingDatabase,
                    "the database '\(settings.database)' does not exist on \(settings.host):\(settings.port); create it (createdb \(settings.database)) or fix DATABASE_URL")
            default:
                return StorageError(.unreachable, "PostgreSQL at \(settings.description) refused the connection: \(message)")
            }
        }
        let reason = (error as? PSQLError)?.underlying.map { String(describing: $0) } ?? String(describing: error)
        return StorageError(
            .unreachable,
            "cannot reach PostgreSQL at \(settings.host):\(settings.port) (\(reason)); is the server running and is DATABASE_URL right?")
    }
}

/// Where a write transaction on PostgreSQL is: `BEGIN` is sent with the first statement, not
/// before it, so that a transaction made of one statement sends only that statement.
///
/// An enqueue into a known repository reads nothing and writes everything in one statement
/// (`WriteBatch`): `BEGIN`, that statement and `COMMIT` were three round trips where one does the
/// same, since a single statement is atomic on its own (its data-modifying `WITH` clauses and
/// their foreign keys included). `BEGIN` takes no snapshot in PostgreSQL (the first statement
/// does), so sending it later changes nothing else.
final class PostgresTransaction: Sendable {
    enum Phase { case idle, begun, sentAlone }
    private let phase = Mutex(Phase.idle)

    var begun: Bool { phase.withLock { $0 == .begun } }

    /// Moves to `begun` before a statement; true when `BEGIN` must be sent first.
    func beginning() throws(StorageError) -> Bool {
        try phase.withLock { (phase: inout Phase) throws(StorageError) -> Bool in
            switch phase {
            case .idle:
                phase = .begun
                return true
            case .begun: return false
            case .sentAlone:
                throw StorageError(.query, "a statement after the transaction's last one (it was sent as the whole transaction)")
            }
        }
    }

    /// True when the last statement is the first one, and so goes alone.
    func sendingAlone() -> Bool {
        phase.withLock { phase in
            guard phase == .idle else { return false }
            phase = .sentAlone
            return true
        }
    }
}

struct PostgresSession: DatabaseSession {
    let connection: PostgresConnection
    let logger: Logger
    /// Seconds a statement may wait for its answer (see `PostgresSettings.queryTimeout`); nil for
    /// no deadline (`PostgresDriver.writeSchema`).
    let timeout: Double?
    let watchdog: QueryWatchdog
    let statements: StatementCatalog
    let combinedTexts: WriteBatch.Texts?
    /// Nil outside a transaction (`withSession`).
    let transaction: PostgresTransaction?
    var dialect: SQLDialect { .postgres }

    @discardableResult
    func query(_ sql: String, _ binds: [SQLValue]) async throws(StorageError) -> [SQLRow] {
        if try transaction?.beginning() == true { try await run("BEGIN", []) }
        return try await run(sql, binds)
    }

    func queryLast(_ sql: String, _ binds: [SQLValue]) async throws(StorageError) {
        if transaction?.sendingAlone() == true {
            try await run(sql, binds)
        } else {
            try await query(sql, binds)
        }
    }

    /// Runs `operation` until its answer, its deadline (`timeout`; a schema write has none) or
    /// its connection's close, whichever comes first. PostgresNIO 1.33 can leave a query waiting
    /// forever when the server terminates its connection at the wrong moment (seen with
    /// pg_terminate_backend during a claim), and closing the connection does not fail that query
    /// either. At the deadline the connection is closed and the caller gets an `unreachable` error
    /// at once; the stuck query is abandoned (its task stays suspended), which is the price of not
    /// hanging. A statement without a deadline is watched for its connection's close all the
    /// same: a migration sent on a connection the server had just ended (its
    /// `idle_in_transaction_session_timeout`) otherwise waited for ever
    /// (`OperationalTests.statementWithoutDeadlineOnEndedConnection`).
    func withDeadline<T: Sendable>(_ sql: String, _ operation: @escaping @Sendable () async throws -> T) async throws -> T {
        let timeout = self.timeout
        let connection = self.connection
        let watchdog = self.watchdog
        let answered = Mutex(false)
        let claim: @Sendable () -> Bool = { answered.withLock { done in defer { done = true }; return !done } }
        return try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            let entry = watchdog.register(after: timeout, connection: connection.id) { connectionClosed in
                guard claim() else { return }
                // An entry without a deadline ends only so.
                guard !connectionClosed, let timeout else {
                    // PostgresNIO 1.33 can leave a statement unanswered for good when its
                    // connection closes as it is sent (seen when the server stopped under a
                    // worker's completion: its slots waited out the 60 s deadline).
                    continuation.resume(
                        throwing: StorageError(
                            .unreachable, "lost the connection to PostgreSQL while waiting for an answer (\(sql.prefix(60))…)"))
                    return
                }
                continuation.resume(
                    throwing: StorageError(
                        .unreachable,
                        "PostgreSQL did not answer within \(timeout) s; the connection was closed (\(sql.prefix(60))…)"))
                connection.close().whenComplete { _ in }
            }
            // Closed before the entry was there for its close to end.
            if connection.isClosed { watchdog.connectionClosed(connection.id) }
            Task {
                let result: Result<T, any Error>
                do { result = .success(try await operation()) } catch { result = .failure(error) }
                watchdog.finish(entry)
                if claim() { continuation.resume(with: result) }
            }
        }
    }

    /// Sends one statement as it is.
    @discardableResult
    func run(_ sql: String, _ values: [SQLValue]) async throws(StorageError) -> [SQLRow] {
        let name = statements.name(for: sql, binds: values.count)
        let bindings = try Self.bindings(values, asText: name != nil)
        let connection = self.connection
        let logger = self.logger
        do {
            if let name {
                let statement = NamedStatement(bindings: bindings)
                do {
                    let rows = try await withDeadline(sql) {
                        try await NamedStatement.$current.withValue((name, sql)) {
                            try await Self.collect(connection.execute(statement, logger: logger))
                        }
                    }
                    statements.succeeded(sql)
                    return rows
                } catch {
                    statements.failed(sql, name: name)
                    throw error
                }
            }
            let query = PostgresQuery(unsafeSQL: sql, binds: bindings)
            return try await withDeadline(sql) { try await Self.collect(connection.query(query, logger: logger)) }
        } catch let error as PSQLError {
            throw PostgresDriver.map(error)
        } catch let error as StorageError {
            throw error
        } catch {
            throw StorageError(.query, "PostgreSQL query failed: \(String(reflecting: error))")
        }
    }

    static func collect<Rows: AsyncSequence>(_ rows: Rows) async throws -> [SQLRow] where Rows.Element == PostgresRow {
        var result: [SQLRow] = []
        var columns: SQLColumns?
        for try await row in rows {
            let names = columns ?? SQLColumns(row.map(\.columnName))
            columns = names
            var cells: [SQLValue] = []
            cells.reserveCapacity(row.count)
            for cell in row { cells.append(try value(cell)) }
            result.append(SQLRow(columns: names, cells: cells))
        }
        return result
    }

    /// A statement's values. Unnamed statements send numbers and booleans in binary with their
    /// type declared, and text, times and JSON as text without a type, so that the server infers
    /// it from the context (one statement fits `json` and `jsonb` columns, legacy enum columns and
    /// plain text). Prepared statements (`asText`) send every value as text with the same declared
    /// types (see `TextBind`). Text is refused when it holds NUL (`StorageError.refuseNUL`, as
    /// `SQLiteHandle.bindAll` does for SQLite), value by value, straight into the bindings (the whole array made storable
    /// first was a copy of it, a retain of every string, per statement); JSON and times are
    /// written into the message from their bytes, without a `String` made of each.
    static func bindings(_ values: [SQLValue], asText: Bool) throws(StorageError) -> PostgresBindings {
        var bindings = PostgresBindings(capacity: values.count)
        for value in values {
            switch value {
            case .null: bindings.appendNull()
            case .int(let i):
                if asText { bindings.append(TextBind(.string(String(i)), psqlType: .int8)) } else { bindings.append(i) }
            case .double(let d):
                if asText { bindings.append(TextBind(.string(text(d)), psqlType: .float8)) } else { bindings.append(d) }
            case .bool(let b):
                if asText { bindings.append(TextBind(.string(b ? "true" : "false"), psqlType: .bool)) } else { bindings.append(b) }
            case .text(let s):
                try StorageError.refuseNUL(s)
                bindings.append(TextBind(.string(s), psqlType: .null))
            case .timestamp(let t): bindings.append(TextBind(.timestamp(t), psqlType: .null))
            case .json(let j): bindings.append(TextBind(.bytes(try StorageError.storableText(j)), psqlType: .null))
            }
        }
        return bindings
    }

    /// A double as PostgreSQL reads it in text form.
    static func text(_ d: Double) -> String {
        d.isNaN ? "NaN" : d.isInfinite ? (d < 0 ? "-Infinity" : "Infinity") : String(d)
    }

    /// Microseconds between 1970-01-01 and 2000-01-01 (PostgreSQL's epoch).
    static let postgresEpochOffset: Int64 = 946_684_800_000_000

    static func value(_ cell: PostgresCell) throws -> SQLValue {
        guard var bytes = cell.bytes else { return .null }
        switch cell.dataType {
        case .int2, .int4, .int8: return .int(try cell.decode(Int.self))
        case .bool: return .bool(try cell.decode(Bool.self))
        case .float4, .float8: return .double(try cell.decode(Double.self))
        case .timestamptz, .timestamp:
            if cell.format == .binary, let micros = bytes.readInteger(as: Int64.self) {
                return .timestamp(Timestamp(microseconds: micros + postgresEpochOffset))
            }
            return .text(String(buffer: bytes))
        case .uuid: return .text(try cell.decode(UUID.self).uuidString.lowercased())
        case .jsonb:
            if cell.format == .binary { bytes.moveReaderIndex(forwardBy: 1) }  // version byte
            return .text(String(buffer: bytes))
        default:
            // text, varchar, json, the legacy enum types: their binary form is the text itself.
            return .text(String(buffer: bytes))
        }
    }
}

/// Deadlines of the statements in flight, checked by one loop per driver (cheaper than a timer
/// task per statement). An expired entry's action runs once, on the loop; an entry also ends
/// early, told so, when its connection closes (`connectionClosed`).
final class QueryWatchdog: Sendable {
    private struct Entry {
        /// Nil: the entry ends only when its connection closes.
        let deadline: ContinuousClock.Instant?
        let connection: Int?
        let expire: @Sendable (_ connectionClosed: Bool) -> Void
    }
    private let state = Mutex<(next: Int, entries: [Int: Entry])>((0, [:]))

    /// `seconds`: nil for no deadline. `connection`: the id of the connection the entry waits on,
    /// if any.
    func register(after seconds: Double?, connection: Int? = nil, _ expire: @escaping @Sendable (_ connectionClosed: Bool) -> Void) -> Int {
        let deadline = seconds.map { ContinuousClock.now.advanced(by: .seconds($0)) }
        return state.withLock { state in
            state.next += 1
            state.entries[state.next] = Entry(deadline: deadline, connection: connection, expire: expire)
            return state.next
        }
    }

    func finish(_ id: Int) { _ = state.withLock { $0.entries.removeValue(forKey: id) } }

    /// Ends every entry waiting on `connection` now: it closed (`PostgresPool` calls this).
    func connectionClosed(_ connection: Int) {
        let ended = state.withLock { state in
            let due = state.entries.filter { $0.value.connection == connection }
            for id in due.keys { state.entries.removeValue(forKey: id) }
            return Array(due.values)
        }
        for entry in ended { entry.expire(true) }
    }

    /// Until cancelled: every quarter second, runs the actions of the expired entries.
    func run() async {
        while !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(250))
            let now = ContinuousClock.now
            let expired = state.withLock { state in
                let due = state.entries.filter { $0.value.deadline.map { $0 <= now } ?? false }
                for id in due.keys { state.entries.removeValue(forKey: id) }
                return Array(due.values)
            }
            for entry in expired { entry.expire(false) }
        }
    }
}
