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

    @Test("SQLite runs in WAL mode with foreign keys on, a busy timeout and temporary data in memory, on readers and the writer")
    func sqlitePragmas() async throws {
        @Sendable func pragmas(_ store: Store) async throws -> [String: Int] {
            var values: [String: Int] = [:]
            for (pragma, column) in [("foreign_keys", "foreign_keys"), ("busy_timeout", "timeout"), ("temp_store", "temp_store")] {
                values[pragma] = try await store.session.query("PRAGMA \(pragma)", []).first?.int(column)
            }
            return values
        }
        try await withDatabase(.sqlite) { database, _ in
            let mode = try await database.read { store in try await store.session.query("PRAGMA journal_mode", []).first?.string("journal_mode") }
            #expect(mode == "wal")
            for values in [try await database.read(pragmas), try await database.write(pragmas)] {
                #expect(values["foreign_keys"] == 1)
                #expect((values["busy_timeout"] ?? 0) > 0)
                // 2 = MEMORY: statement journals (a multi-row insert's undo) are not written to a file.
                #expect(values["temp_store"] == 2)
            }
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
        for misspelt in ["sqlite:x.db", "sqlite:/x.db", "sqlite://x.db", "sqlite:///"] {
            #expect(throws: StorageError.self, "\(misspelt) is no file name") { try DatabaseLocation(url: misspelt) }
        }
        #expect(throws: StorageError.self) { try PostgresSettings(url: "postgres://u@h") }
        let settings = try PostgresSettings(url: "postgres://u:p%40ss@db.example:6543/app?pool_size=7&search_path=s1")
        #expect(settings.password == "p@ss")
        #expect(settings.port == 6543)
        #expect(settings.maximumConnections == 7)
        #expect(settings.searchPath == "s1")
        #expect(PostgresSettings.redacted("postgres://u:secret@h/db") == "postgres://u:***@h/db")
        // A URL Foundation cannot read is the one an error quotes: its password goes all the same.
        #expect(PostgresSettings.redacted("postgres://u:secret@h:notaport/db") == "postgres://u:***@h:notaport/db")
        #expect(PostgresSettings.redacted("postgres://u:se cr@t@h:1/db") == "postgres://u:***@h:1/db")
        #expect(PostgresSettings.redacted("postgres://h:5432/db") == "postgres://h:5432/db", "no user, nothing to hide")
        #expect(settings.prepareThreshold == 3)
        #expect(try PostgresSettings(url: "postgres://u@h/db?prepare_threshold=0").prepareThreshold == 0)
        #expect(throws: StorageError.self) { try PostgresSettings(url: "postgres://u@h/db?prepare_threshold=-1") }
        // The deadlines: seconds above 0, at most a day (`1e300` trapped where it became milliseconds).
        let deadlines = try PostgresSettings(url: "postgres://u@h/db?query_timeout=2.5&acquire_timeout=3&connect_timeout=0.5")
        #expect(deadlines.queryTimeout == 2.5 && deadlines.acquireTimeout == 3 && deadlines.connectTimeout == 0.5)
        #expect(settings.queryTimeout == 60 && settings.acquireTimeout == 10 && settings.connectTimeout == 10, "the defaults")
        for name in ["query_timeout", "acquire_timeout", "connect_timeout"] {
            for bad in ["0", "-1", "1e300", "86401", "soon"] {
                #expect(throws: StorageError(.configuration, "DATABASE_URL: \(name) must be a number of seconds above 0, at most 86400")) {
                    try PostgresSettings(url: "postgres://u@h/db?\(name)=\(bad)")
                }
            }
        }
    }

    /// The statements prepared on the session's connection, by text.
    func prepared(_ session: any DatabaseSession, _ sql: String) async throws -> Int {
        try await session.query("SELECT count(*) AS n FROM pg_prepared_statements WHERE statement = $1", .text(sql))[0].int("n")
    }

    @Test("PostgreSQL keeps a statement prepared from its third use, whatever its first values were")
    func preparedStatements() async throws {
        try await withPostgresDriver { driver in
            try await driver.withSession { session in
                try await session.query("CREATE TABLE counters (id text PRIMARY KEY, n int4, flag bool, ratio float8)")
                try await session.query("INSERT INTO counters (id) VALUES ('a')")
                // The first two uses carry a NULL where later ones carry an integer: the server typed
                // the parameter int4 from the column, which a binary int8 would not fit.
                let update = "UPDATE counters SET n = $1, flag = $2, ratio = $3 WHERE id = $4 RETURNING n, flag, ratio"
                for (round, value) in [SQLValue.null, .null, .int(7), .int(8), .null, .int(9)].enumerated() {
                    let row = try await session.query(update, value, .bool(round % 2 == 0), .double(Double(round) / 4), .text("a"))[0]
                    #expect(row.isNull("n") == (value == .null))
                    if case .int(let n) = value { #expect(try row.int("n") == n) }
                    #expect(try row.bool("flag") == (round % 2 == 0))
                    #expect(row.values["ratio"] == .double(Double(round) / 4))
                    let count = try await prepared(session, update)
                    #expect(count == (round >= 2 ? 1 : 0), "prepared from the third use, round \(round)")
                }
                // A statement of many values (more than a worker's completion of 8 tasks, 1,072)
                // stays unnamed: its plan would hold memory per connection.
                let wide = "SELECT " + (1...1_300).map { "$\($0)::int8" }.joined(separator: " + ") + " AS n"
                for _ in 0..<4 {
                    let n = try await session.query(wide, (1...1_300).map { _ in SQLValue.int(1) })[0].int("n")
                    #expect(n == 1_300)
                }
                let wideCount = try await prepared(session, wide)
                #expect(wideCount == 0)
            }
        }
    }

    @Test("PostgreSQL: a transaction of one last statement goes without BEGIN and COMMIT and stays atomic; one that reads first begins")
    func loneLastStatement() async throws {
        try await withPostgresDriver { driver in
            let postgres = try #require(driver as? PostgresDriver)
            try await driver.withSession { session in
                try await session.query("CREATE TABLE nodes (id int8 PRIMARY KEY, parent int8 REFERENCES nodes (id))")
            }
            let count: @Sendable () async throws -> Int = {
                try await driver.read { try await $0.query("SELECT count(*) AS n FROM nodes")[0].int("n") }
            }
            let before = postgres.transactionsCommitted
            // Two rows in one statement, the child first: checked at the statement's end, as in a transaction.
            try await driver.write { session in
                try await session.writeAll(
                    [("INSERT INTO nodes (id, parent) VALUES (2, 1)", []), ("INSERT INTO nodes (id, parent) VALUES (1, NULL)", [])],
                    last: true)
            }
            #expect(postgres.transactionsCommitted == before, "sent alone")
            #expect(try await count() == 2)
            // A lone statement that fails leaves nothing, parts that would succeed included.
            do {
                try await driver.write { session in
                    try await session.writeAll(
                        [("INSERT INTO nodes (id, parent) VALUES (3, NULL)", []), ("INSERT INTO nodes (id, parent) VALUES (4, 99)", [])],
                        last: true)
                }
                Issue.record("a missing parent was accepted")
            } catch let error as StorageError {
                #expect(error.kind == .foreignKeyViolation)
            }
            #expect(try await count() == 2)
            // Nothing may follow the last statement: it has committed already.
            do {
                try await driver.write { session in
                    try await session.queryLast("INSERT INTO nodes (id, parent) VALUES (5, NULL)", [])
                    try await session.query("INSERT INTO nodes (id, parent) VALUES (6, NULL)")
                }
                Issue.record("a statement after the last one was sent")
            } catch let error as StorageError {
                #expect(error.message.contains("after the transaction's last"), "\(error.message)")
            }
            // A body that reads first is a transaction as before: BEGIN, the read, the last write, COMMIT.
            let begun = postgres.transactionsCommitted
            try await driver.write { session in
                let n = try await session.query("SELECT count(*) AS n FROM nodes")[0].int("n")
                try await session.queryLast("INSERT INTO nodes (id, parent) VALUES ($1, NULL)", [.int(100 + n)])
            }
            #expect(postgres.transactionsCommitted == begun + 1)
            #expect(try await count() == 4)
        }
    }

    @Test("PostgreSQL: a statement first prepared in a failed transaction works in the next one")
    func preparedAfterAFailedTransaction() async throws {
        try await withPostgresDriver { driver in
            let select = "SELECT $1::int8 + 1 AS n"
            try await driver.withSession { session in
                for _ in 0..<2 {
                    let n = try await session.query(select, .int(1))[0].int("n")
                    #expect(n == 2)
                }
            }
            // The third use (the one that prepares) comes after the transaction failed: the server
            // refuses it, and PostgresNIO would remember that refusal for the name's lifetime.
            await #expect(throws: StorageError.self) {
                try await driver.write { session in
                    _ = try? await session.query("SELECT 1/0")
                    try await session.query(select, .int(1))
                }
            }
            try await driver.withSession { session in
                let n = try await session.query(select, .int(41))[0].int("n")
                let count = try await prepared(session, select)
                #expect(n == 42)
                #expect(count == 1)
            }
        }
    }

    @Test("PostgreSQL with prepare_threshold=0 prepares nothing")
    func preparedStatementsOff() async throws {
        try await withPostgresDriver(parameters: "&prepare_threshold=0") { driver in
            try await driver.withSession { session in
                let select = "SELECT $1::int8 AS n"
                for i in 0..<5 {
                    let n = try await session.query(select, .int(i))[0].int("n")
                    #expect(n == i)
                }
                let count = try await prepared(session, select)
                #expect(count == 0)
            }
        }
    }

    /// A migration's statements have no deadline (`writeSchema`), so nothing but the connection's
    /// end can stop one waiting: PostgresNIO 1.33 can leave a statement sent as its connection
    /// closes unanswered for good, and a migration whose transaction the server ended (its
    /// `idle_in_transaction_session_timeout`, on a loaded machine) then waited for ever (a CI run
    /// of the whole suite hung so). Each round ends the transaction's backend, waits until it has
    /// exited, and sends the next statement on the connection that is gone.
    @Test("PostgreSQL: a statement without a deadline (a migration's) on a connection the server ended fails at once instead of waiting for ever")
    func statementWithoutDeadlineOnEndedConnection() async throws {
        try await withPostgresDriver { driver in
            try await withPostgresDriver { admin in
                for round in 1...20 {
                    let outcome = try await withDeadline(seconds: 60) { () -> String in
                        do {
                            try await driver.writeSchema { session in
                                let pid = try #require(try await session.query("SELECT pg_backend_pid() AS pid", []).first?.int("pid"))
                                // pg_terminate_backend with a timeout returns once the backend has exited.
                                let ended = try await admin.withSession { other in
                                    try await other.query("SELECT pg_terminate_backend(CAST($1 AS integer), 30000) AS ended", [.int(pid)]).first?.bool("ended")
                                }
                                #expect(ended == true)
                                try await session.query("SELECT 1 AS one", [])
                            }
                            return "committed on a connection whose backend had exited"
                        } catch let error as StorageError {
                            return error.kind == .unreachable ? "unreachable" : "failed otherwise: \(error)"
                        }
                    }
                    try #require(outcome == "unreachable", "round \(round): \(outcome ?? "the statement was still waiting after 60 s")")
                }
            }
        }
    }

    @Test("PostgreSQL ends a transaction left idle longer than the query timeout (the server's half of the deadline)")
    func idleTransactionsEnd() async throws {
        // Not a tight timeout: a loaded machine (the full suite) can take seconds to answer.
        try await withPostgresDriver(parameters: "&query_timeout=37.5") { driver in
            let setting = try await driver.withSession { session in
                try await session.query("SHOW idle_in_transaction_session_timeout", [])[0].string("idle_in_transaction_session_timeout")
            }
            #expect(setting == "37500ms")
        }
    }
}
