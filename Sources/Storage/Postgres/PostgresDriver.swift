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
        var pool = maximumConnections
        for item in components.queryItems ?? [] {
            switch item.name {
            case "search_path", "schema": searchPath = item.value
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
    }

    /// The URL with its password replaced by `***`, for messages and logs.
    public static func redacted(_ url: String) -> String {
        guard var components = URLComponents(string: url), components.password != nil else { return url }
        components.password = "***"
        return components.string ?? url
    }

    var description: String { "\(username)@\(host):\(port)/\(database)" }

    func clientConfiguration() -> PostgresClient.Configuration {
        var configuration = PostgresClient.Configuration(
            host: host, port: port, username: username, password: password, database: database, tls: .disable)
        configuration.options.maximumConnections = maximumConnections
        configuration.options.connectTimeout = .seconds(10)
        if let searchPath { configuration.options.additionalStartupParameters = [("search_path", searchPath)] }
        return configuration
    }

    func connectionConfiguration() -> PostgresConnection.Configuration {
        var configuration = PostgresConnection.Configuration(
            host: host, port: port, username: username, password: password, database: database, tls: .disable)
        if let searchPath { configuration.options.additionalStartupParameters = [("search_path", searchPath)] }
        return configuration
    }
}

/// The production driver: a pooled PostgresNIO client.
public final class PostgresDriver: DatabaseDriver {
    public let dialect = SQLDialect.postgres
    public let settings: PostgresSettings
    let client: PostgresClient
    private let runTask: Task<Void, Never>
    let logger: Logger
    private let inUse = Atomic<Int>(0)

    public var sessionsInUse: Int { inUse.load(ordering: .relaxed) }

    /// Connects once to check the server, the credentials and the database (turning each failure
    /// into an actionable error), then starts the pool.
    public static func open(_ settings: PostgresSettings, logger: Logger = Logger(label: "tower.postgres"))
        async throws(StorageError) -> PostgresDriver
    {
        do {
            let connection = try await PostgresConnection.connect(
                configuration: settings.connectionConfiguration(), id: 0, logger: logger)
            try? await connection.close()
        } catch {
            throw mapConnectError(error, settings: settings)
        }
        return PostgresDriver(settings: settings, logger: logger)
    }

    private init(settings: PostgresSettings, logger: Logger) {
        self.settings = settings
        self.logger = logger
        let client = PostgresClient(configuration: settings.clientConfiguration(), backgroundLogger: logger)
        self.client = client
        // Started immediately so that the pool is running before the first lease.
        self.runTask = Task.immediate { await client.run() }
    }

    public func write<T: Sendable>(_ body: @Sendable (any DatabaseSession) async throws -> T) async throws -> T {
        do {
            return try await client.withTransaction(logger: logger) { connection in
                inUse.add(1, ordering: .relaxed)
                defer { inUse.subtract(1, ordering: .relaxed) }
                return try await body(PostgresSession(connection: connection, logger: logger))
            }
        } catch let error as PostgresTransactionError {
            throw Self.unwrap(error)
        } catch let error as PSQLError {
            throw Self.map(error)
        }
    }

    public func read<T: Sendable>(_ body: @Sendable (any DatabaseSession) async throws -> T) async throws -> T {
        try await write(body)
    }

    public func withSession<T: Sendable>(_ body: @Sendable (any DatabaseSession) async throws -> T) async throws -> T {
        do {
            return try await client.withConnection { connection in
                inUse.add(1, ordering: .relaxed)
                defer { inUse.subtract(1, ordering: .relaxed) }
                return try await body(PostgresSession(connection: connection, logger: logger))
            }
        } catch let error as PSQLError {
            throw Self.map(error)
        }
    }

    /// Calls `handler` for every notification on `channel` until the calling task is cancelled.
    /// Holds one pooled connection while it listens.
    public func listen(channel: String, _ handler: @escaping @Sendable () async -> Void) async throws {
        try await client.withConnection { connection in
            try await connection.listen(on: channel) { notifications in
                for try await _ in notifications { await handler() }
            }
        }
    }

    public func close() async {
        runTask.cancel()
        await runTask.value
    }

    static func unwrap(_ error: PostgresTransactionError) -> any Error {
        for inner in [error.closureError, error.beginError, error.commitError] {
            if let storage = inner as? StorageError { return storage }
            if let psql = inner as? PSQLError { return map(psql) }
            if let inner { return inner }
        }
        return StorageError(.query, "PostgreSQL transaction failed")
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

/// A text value sent without a declared type: the server infers it from its context, so one
/// statement fits `json` and `jsonb` columns, legacy enum columns and plain text.
struct UntypedText: PostgresDynamicTypeEncodable {
    let value: String
    var psqlType: PostgresDataType { .null }
    var psqlFormat: PostgresFormat { .text }
    func encode<JSONEncoder: PostgresJSONEncoder>(into byteBuffer: inout ByteBuffer,
        context: PostgresEncodingContext<JSONEncoder>)
    {
        byteBuffer.writeString(value)
    }
}

struct PostgresSession: DatabaseSession {
    let connection: PostgresConnection
    let logger: Logger
    var dialect: SQLDialect { .postgres }

    @discardableResult
    func query(_ sql: String, _ binds: [SQLValue]) async throws(StorageError) -> [SQLRow] {
        try StorageError.checkBinds(binds)
        var bindings = PostgresBindings(capacity: binds.count)
        for value in binds {
            switch value {
            case .null: bindings.appendNull()
            case .int(let i): bindings.append(i)
            case .double(let d): bindings.append(d)
            case .bool(let b): bindings.append(b)
            case .text(let s): bindings.append(UntypedText(value: s))
            case .timestamp(let t): bindings.append(UntypedText(value: t.sqliteText + "+00"))
            case .json(let j): bindings.append(UntypedText(value: j.serialized()))
            }
        }
        do {
            let rows = try await connection.query(PostgresQuery(unsafeSQL: sql, binds: bindings), logger: logger)
            var result: [SQLRow] = []
            for try await row in rows {
                var values: [String: SQLValue] = [:]
                for cell in row { values[cell.columnName] = try Self.value(cell) }
                result.append(SQLRow(values: values))
            }
            return result
        } catch let error as PSQLError {
            throw PostgresDriver.map(error)
        } catch let error as StorageError {
            throw error
        } catch {
            throw StorageError(.query, "PostgreSQL query failed: \(String(reflecting: error))")
        }
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
