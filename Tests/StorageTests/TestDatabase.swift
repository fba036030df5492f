import CWOM
import Foundation
import Storage
import TowerJSON

/// The two databases every storage test runs against.
enum Dialect: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case sqlite, postgres
    var testDescription: String { rawValue }
}

import Testing

struct MissingPostgres: Error, CustomStringConvertible {
    var description: String {
        "TOWER_TEST_DATABASE_URL is not set: run the tests with scripts/test, which starts PostgreSQL"
    }
}

/// The PostgreSQL server that scripts/test started.
func postgresURL() throws -> String {
    guard let url = ProcessInfo.processInfo.environment["TOWER_TEST_DATABASE_URL"], !url.isEmpty else {
        throw MissingPostgres()
    }
    return url
}

let testsRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
let repositoryRoot = testsRoot.deletingLastPathComponent().deletingLastPathComponent()

/// A database of its own for one test: a fresh SQLite file or a fresh PostgreSQL schema, dropped
/// afterwards (also when the test fails).
struct TestDatabase: Sendable {
    let dialect: Dialect
    let location: DatabaseLocation
    private let cleanup: @Sendable () async -> Void

    static func make(_ dialect: Dialect) async throws -> TestDatabase {
        let name = "t_" + ULID.make().lowercased()
        switch dialect {
        case .sqlite:
            let folder = FileManager.default.temporaryDirectory.appendingPathComponent("tower-test-\(name)")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            return TestDatabase(
                dialect: dialect, location: .sqlite(path: folder.appendingPathComponent("tower.db").path),
                cleanup: { try? FileManager.default.removeItem(at: folder) })
        case .postgres:
            let base = try postgresURL()
            try await adminQuery(base, "CREATE SCHEMA \(name)")
            return TestDatabase(
                dialect: dialect, location: .postgres(url: base + "?search_path=\(name)"),
                cleanup: { try? await adminQuery(base, "DROP SCHEMA \(name) CASCADE") })
        }
    }

    private init(dialect: Dialect, location: DatabaseLocation, cleanup: @escaping @Sendable () async -> Void) {
        self.dialect = dialect
        self.location = location
        self.cleanup = cleanup
    }

    static func adminQuery(_ url: String, _ sql: String) async throws {
        let driver = try await DatabaseLocation.postgres(url: url).open(poolSize: 1)
        do { try await driver.withSession { session in try await session.query(sql, []) } } catch {
            await driver.close()
            throw error
        }
        await driver.close()
    }

    /// Opens the database, migrated unless `migrate` is false.
    func open(migrate: Bool = true) async throws -> Database {
        let database = try await Database.open(location, poolSize: 4, requireCurrentSchema: false)
        if migrate { try await database.migrator().migrate() }
        return database
    }

    /// Runs a SQL script (one statement at a time) outside any Control Tower logic.
    func runScript(_ sql: String, on database: Database) async throws {
        try await database.driver.withSession { session in
            for statement in Migration.statements(in: sql) { try await session.query(statement, []) }
        }
    }

    func drop() async { await cleanup() }
}

/// Runs `body` with a migrated database of its own, and drops it afterwards.
func withDatabase(_ dialect: Dialect, migrate: Bool = true,
    _ body: (Database, TestDatabase) async throws -> Void) async throws
{
    let test = try await TestDatabase.make(dialect)
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
