import CWOM
import Foundation
import LegacyTasks
import Storage
import Testing
import TowerJSON
import TowerTestSupport

@Suite("Operational behaviour")
struct OperationalTests {
    @Test("SQLite: 8 writers × 500 inserts next to a reader, no lock errors")
    func sqliteWriters() async throws {
        try await withDatabase(.sqlite) { database, _ in
            try await withThrowingTaskGroup(of: Void.self) { group in
                for writer in 0..<8 {
                    group.addTask {
                        for n in 0..<500 {
                            let now = Timestamp.now()
                            let task = TaskRecord(
                                id: "w\(writer)-\(n)", requestedBy: Requester(kind: .system, id: "w\(writer)"),
                                objective: "objective \(n)", operation: .ops, target: TaskTarget(repo: "org/r"),
                                status: .queued, createdAt: now, queuedAt: now)
                            try await database.write { store in try await store.tasks.insert(task) }
                        }
                    }
                }
                group.addTask {
                    for _ in 0..<200 { _ = try await database.read { store in try await store.tasks.countByStatus() } }
                }
                try await group.waitForAll()
            }
            let counts = try await database.read { store in try await store.tasks.countByStatus() }
            #expect(counts == ["queued": 4000])
        }
    }

    @Test("SQLite runs in WAL mode with foreign keys on and a busy timeout")
    func sqlitePragmas() async throws {
        try await withDatabase(.sqlite) { database, _ in
            let (mode, keys, timeout) = try await database.read { store in
                (
                    try await store.session.query("PRAGMA journal_mode", []).first?.string("journal_mode"),
                    try await store.session.query("PRAGMA foreign_keys", []).first?.int("foreign_keys"),
                    try await store.session.query("PRAGMA busy_timeout", []).first?.int("timeout")
                )
            }
            #expect(mode == "wal")
            #expect(keys == 1)
            #expect((timeout ?? 0) > 0)
        }
    }

    @Test("PostgreSQL: a wrong password, a missing database and an unreachable server each get a clear error")
    func postgresErrors() async throws {
        let base = try postgresURL()
        guard var components = URLComponents(string: base) else { throw MissingPostgres() }
        components.password = "definitely-wrong"
        await expectStorageError(.authentication, containing: "check the user and password", url: components.string ?? "")
        components = URLComponents(string: base) ?? components
        components.path = "/no_such_database"
        await expectStorageError(.missingDatabase, containing: "does not exist", url: components.string ?? "")
        components = URLComponents(string: base) ?? components
        components.port = 1
        await expectStorageError(.unreachable, containing: "is the server running", url: components.string ?? "")
    }

    func expectStorageError(_ kind: StorageError.Kind, containing text: String, url: String) async {
        do {
            let database = try await Database.open(.postgres(url: url), requireCurrentSchema: false)
            await database.close()
            Issue.record("expected \(kind) for \(url)")
        } catch let error as StorageError {
            #expect(error.kind == kind)
            #expect(error.message.contains(text), "\(error.message)")
            #expect(!error.message.contains("definitely-wrong"), "passwords never appear in messages")
        } catch {
            Issue.record("unexpected error \(error)")
        }
    }

    @Test("DATABASE_URL forms: postgres, SQLAlchemy sqlite, plain paths, and nonsense")
    func locations() throws {
        #expect(try DatabaseLocation(url: nil) == .sqlite(path: ".tower/tower.db"))
        #expect(try DatabaseLocation(url: "sqlite:///./jct.db") == .sqlite(path: "./jct.db"))
        #expect(try DatabaseLocation(url: "sqlite:////var/lib/jct.db") == .sqlite(path: "/var/lib/jct.db"))
        #expect(try DatabaseLocation(url: "data/x.db") == .sqlite(path: "data/x.db"))
        #expect(try DatabaseLocation(url: "postgresql://u:p@h/db") == .postgres(url: "postgresql://u:p@h/db"))
        #expect(throws: StorageError.self) { try DatabaseLocation(url: "mysql://x") }
        #expect(throws: StorageError.self) { try DatabaseLocation(url: "sqlite:///:memory:") }
        #expect(throws: StorageError.self) { try PostgresSettings(url: "postgres://u@h") }
        let settings = try PostgresSettings(url: "postgres://u:p%40ss@db.example:6543/app?pool_size=7&search_path=s1")
        #expect(settings.password == "p@ss")
        #expect(settings.port == 6543)
        #expect(settings.maximumConnections == 7)
        #expect(settings.searchPath == "s1")
        #expect(PostgresSettings.redacted("postgres://u:secret@h/db") == "postgres://u:***@h/db")
    }
}
