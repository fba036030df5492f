import CWOM
import Foundation
import Logging
import Storage
import Synchronization
import Testing
import TowerJSON

/// The two databases every storage, API and worker test runs against.
public enum Dialect: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case sqlite, postgres
    public var testDescription: String { rawValue }
}

public struct MissingPostgres: Error, CustomStringConvertible {
    public init() {}
    public var description: String {
        "TOWER_TEST_DATABASE_URL is not set: run the tests with scripts/test, which starts PostgreSQL"
    }
}

/// The PostgreSQL server that scripts/test started, with a generous `connect_timeout`: under
/// the whole suite's load opening a connection took more than the default 10 s in CI runs, while
/// a machine that serves is not loaded so. Measured (the connect timed inside
/// `PostgresSettings.connect`, one local run of the suite): the test process opened 759
/// connections, and one took a median of 2.4 s and up to 7.9 s (TCP 0.5 s, startup and SCRAM
/// authentication 1.3 s, medians), against 8–13 ms with the suite's other tests not running. The
/// process's two NIO event-loop threads complete every connection and carry every running test's
/// queries (and the work of the workers that tests run on them), so a connection waits its
/// turn behind them. Tests of the timeout itself set their own.
public func postgresURL() throws -> String {
    guard let url = ProcessInfo.processInfo.environment["TOWER_TEST_DATABASE_URL"], !url.isEmpty else {
        throw MissingPostgres()
    }
    return url + "?connect_timeout=120"
}

/// `postgresURL()` for another database of the same server.
func postgresURL(database: String) throws -> String {
    let url = try postgresURL()
    guard let scheme = url.range(of: "://"), let slash = url[scheme.upperBound...].firstIndex(of: "/") else {
        throw TestDatabaseError("TOWER_TEST_DATABASE_URL names no database (postgres://user:password@host:port/database): \(url)")
    }
    return url[...slash] + database + "?connect_timeout=120"
}

struct TestDatabaseError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// The `Tests/` folder and the repository root.
public let testsFolder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
public let repositoryRoot = testsFolder.deletingLastPathComponent()

/// A database of its own for one test: a fresh SQLite file or a fresh PostgreSQL schema, dropped
/// afterwards (also when the test fails).
public struct TestDatabase: Sendable {
    public let dialect: Dialect
    public let location: DatabaseLocation
    private let cleanup: @Sendable () async -> Void

    /// A database of its own, empty, or `migrated` (then copied from `MigratedTemplate`: a copy
    /// costs a fraction of running the migrations again, and every test opens it with the
    /// migrator all the same, which finds nothing to do).
    public static func make(_ dialect: Dialect, migrated: Bool = false) async throws -> TestDatabase {
        let name = "t_" + ULID.make().lowercased()
        switch dialect {
        case .sqlite:
            let folder = FileManager.default.temporaryDirectory.appendingPathComponent("tower-test-\(name)")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            let path = folder.appendingPathComponent("tower.db").path
            if migrated {
                do { try FileManager.default.copyItem(atPath: try await MigratedTemplate.sqlite.value, toPath: path) } catch {
                    try? FileManager.default.removeItem(at: folder)
                    throw error
                }
            }
            return TestDatabase(
                dialect: dialect, location: .sqlite(path: path),
                cleanup: { try? FileManager.default.removeItem(at: folder) })
        case .postgres:
            let base = try postgresURL()
            if migrated {
                let template = try await MigratedTemplate.postgres.value
                try await adminQuery(base, "CREATE DATABASE \(name) TEMPLATE \(template)")
                return TestDatabase(
                    dialect: dialect, location: .postgres(url: try postgresURL(database: name)),
                    cleanup: { _ = try? await adminQuery(base, "DROP DATABASE \(name) WITH (FORCE)") })
            }
            try await adminQuery(base, "CREATE SCHEMA \(name)")
            return TestDatabase(
                dialect: dialect, location: .postgres(url: base + "&search_path=\(name)"),
                cleanup: { _ = try? await adminQuery(base, "DROP SCHEMA \(name) CASCADE") })
        }
    }

    private init(dialect: Dialect, location: DatabaseLocation, cleanup: @escaping @Sendable () async -> Void) {
        self.dialect = dialect
        self.location = location
        self.cleanup = cleanup
    }

    /// One statement on a connection of its own to the PostgreSQL database `url`.
    @discardableResult
    static func adminQuery(_ url: String, _ sql: String, _ binds: [SQLValue] = []) async throws -> [SQLRow] {
        let driver = try await DatabaseLocation.postgres(url: url).open(poolSize: 1)
        let rows: [SQLRow]
        do { rows = try await driver.withSession { session in try await session.query(sql, binds) } } catch {
            await driver.close()
            throw error
        }
        await driver.close()
        return rows
    }

    /// Opens the database, migrated unless `migrate` is false.
    public func open(migrate: Bool = true) async throws -> Database {
        let database = try await Database.open(location, poolSize: 4, requireCurrentSchema: false)
        if migrate { try await database.migrator(logger: quietLogger("tower.migrate")).migrate() }
        return database
    }

    /// Runs a SQL script (one statement at a time) outside any Control Tower logic.
    public func runScript(_ sql: String, on database: Database) async throws {
        try await database.driver.withSession { session in
            for statement in Migration.statements(in: sql) { try await session.query(statement, []) }
        }
    }

    public func drop() async { await cleanup() }
}

/// Runs `body` with a migrated database of its own, and drops it afterwards.
public func withDatabase(_ dialect: Dialect, migrate: Bool = true,
    _ body: (Database, TestDatabase) async throws -> Void) async throws
{
    let test = try await TestDatabase.make(dialect, migrated: migrate)
    let database: Database
    do { database = try await test.open(migrate: migrate) } catch {
        await test.drop()
        throw error
    }
    do { try await body(database, test) } catch {
        await database.close()
        await test.drop()
        throw error
    }
    await database.close()
    await test.drop()
}

/// Runs `body` with a bare driver of one connection on a PostgreSQL schema of its own (no
/// migrations; `parameters` are added to the URL, `&prepare_threshold=0` say), then closes the
/// driver and drops the schema.
public func withPostgresDriver(parameters: String = "", _ body: (any DatabaseDriver) async throws -> Void) async throws {
    let test = try await TestDatabase.make(.postgres)
    guard case .postgres(let url) = test.location else { return }
    let driver: any DatabaseDriver
    do { driver = try await DatabaseLocation.postgres(url: url + parameters).open(poolSize: 1) } catch {
        await test.drop()
        throw error
    }
    do { try await body(driver) } catch {
        await driver.close()
        await test.drop()
        throw error
    }
    await driver.close()
    await test.drop()
}

/// A logger that keeps test output to warnings and errors.
public func quietLogger(_ label: String) -> Logger {
    var logger = Logger(label: label)
    logger.logLevel = .warning
    return logger
}

/// Runs `body` and gives up after `seconds`, answering nil: a bound on a wait that waits on
/// events, never a way of waiting. `body` is cancelled at the deadline, and a body that does not
/// end when cancelled (a statement that never gets its answer) is left behind: the caller has
/// its nil all the same, so that a test fails instead of hanging the suite.
public func withDeadline<T: Sendable>(seconds: Double, _ body: @escaping @Sendable () async throws -> T?) async throws -> T? {
    let work = Task { try await body() }
    return try await withTaskCancellationHandler {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T?, any Error>) in
            let outcome = FirstOutcome(continuation)
            let deadline = Task {
                try? await Task.sleep(for: .seconds(seconds))
                guard !Task.isCancelled else { return }
                work.cancel()
                outcome.resume(with: .success(nil))
            }
            Task {
                let result: Result<T?, any Error>
                do { result = .success(try await work.value) } catch { result = .failure(error) }
                deadline.cancel()
                outcome.resume(with: result)
            }
        }
    } onCancel: {
        work.cancel()
    }
}

/// A continuation resumed by the first of several racers.
private final class FirstOutcome<T: Sendable>: Sendable {
    private let continuation: Mutex<CheckedContinuation<T, any Error>?>
    init(_ continuation: CheckedContinuation<T, any Error>) { self.continuation = Mutex(continuation) }
    func resume(with result: Result<T, any Error>) {
        continuation.withLock { continuation in
            continuation?.resume(with: result)
            continuation = nil
        }
    }
}
