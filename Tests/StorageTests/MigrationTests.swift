import CWOM
import Foundation
import LegacyTasks
import Storage
import Testing
import TowerJSON
import TowerTestSupport

func fixtureSQL(_ dialect: Dialect) throws -> String {
    try String(contentsOf: testsFolder.appendingPathComponent("StorageTests/Fixtures/legacy-\(dialect.rawValue).sql"), encoding: .utf8)
}

/// One state for each migration the binary carries.
func every(_ state: MigrationStatus.State, _ database: Database) -> [MigrationStatus.State] {
    Array(repeating: state, count: Migrator.embedded(database.dialect).count)
}

func tableNames(_ database: Database) async throws -> Set<String> {
    let sql =
        database.dialect == .postgres
        ? "SELECT table_name AS name FROM information_schema.tables WHERE table_schema = current_schema()"
        : "SELECT name FROM sqlite_master WHERE type = 'table'"
    return Set(try await database.read { store in try await store.session.query(sql, []) }.map { try $0.string("name") })
}

func columnType(_ database: Database, _ table: String, _ column: String) async throws -> String? {
    let sql =
        database.dialect == .postgres
        ? "SELECT data_type AS type FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1 AND column_name = $2"
        : "SELECT type FROM pragma_table_info($1) WHERE name = $2"
    return try await database.read { store in
        try await store.session.query(sql, [.text(table), .text(column)]).first?.optionalString("type")
    }
}

/// PostgreSQL: every JSON column of the schema with its type and default.
func jsonColumns(_ database: Database) async throws -> [(table: String, column: String, type: String, defaultValue: String?)] {
    try await database.read { store in
        try await store.session.query(
            """
            SELECT table_name AS t, column_name AS c, data_type AS type, column_default AS d FROM information_schema.columns
            WHERE table_schema = current_schema() AND data_type IN ('json', 'jsonb') ORDER BY table_name, ordinal_position
            """, [])
    }.map { (try $0.string("t"), try $0.string("c"), try $0.string("type"), try $0.optionalString("d")) }
}

/// PostgreSQL: the file of each table of the schema; a table that is rewritten gets a new one.
func fileNodes(_ database: Database) async throws -> [String: Int] {
    let rows = try await database.read { store in
        try await store.session.query(
            """
            SELECT c.relname AS name, CAST(c.relfilenode AS bigint) AS node FROM pg_class c
            JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = current_schema() AND c.relkind = 'r'
            """, [])
    }
    return Dictionary(uniqueKeysWithValues: try rows.map { (try $0.string("name"), try $0.int("node")) })
}

let cwomTables: Set<String> = [
    "tasks", "cwom_repos", "cwom_issues", "cwom_context_packets", "cwom_constraint_snapshots", "cwom_doctrine_refs",
    "cwom_runs", "cwom_artifacts", "cwom_evidence_packs", "cwom_review_decisions", "cwom_issue_context_packets",
    "cwom_issue_doctrine_refs", "cwom_issue_constraint_snapshots", "cwom_run_context_packets",
    "cwom_run_doctrine_refs", "cwom_context_packet_doctrine_refs", "audit_log", "tower_workers", "tower_migrations",
]

/// The two CHECK constraints of the audit trail as 0008 leaves them on SQLite.
let auditChecksAsComparisons = [
    "CHECK (actor_kind = 'human' OR actor_kind = 'agent' OR actor_kind = 'system')",
    "CHECK (action = 'created' OR action = 'updated' OR action = 'status_changed' OR action = 'deleted' OR action = 'linked' OR action = 'unlinked')",
]

/// SQLite: the CHECK clauses of the audit trail's table as sqlite_master holds them.
func auditChecks(_ database: Database) async throws -> [String] {
    let sql = try await database.read { store in
        try await store.session.query("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'audit_log'", []).first?.string("sql")
    }
    return (sql ?? "").components(separatedBy: "CONSTRAINT ").dropFirst().compactMap { clause in
        clause.range(of: "CHECK (").map { String(clause[$0.lowerBound...]).trimmingCharacters(in: CharacterSet(charactersIn: ", \n\t)")) + ")" }
    }
}

/// SQLite: the opcodes of an audit row's insert as the connection compiles it now. `tag` makes
/// the text one the connection has not compiled before: a kept `EXPLAIN` is never compiled
/// again, since it opens no transaction that would find the schema changed.
func auditInsertOpcodes(_ store: Store, tag: String = UUID().uuidString) async throws -> Set<String> {
    let rows = try await store.session.query(
        "EXPLAIN /* \(tag) */ INSERT INTO audit_log (id, actor_kind, actor_id, action, entity_kind, entity_id) VALUES ($1, $2, $3, $4, $5, $6)",
        [.text("a"), .text("system"), .text("t"), .text("created"), .text("Task"), .text("e")])
    return Set(try rows.map { try $0.string("opcode") })
}

/// SQLite: one audit row, by the same statement text each time (a statement the connection keeps).
func insertAuditRow(_ database: Database) async throws {
    try await database.write { store in
        try await store.session.query(
            "INSERT INTO audit_log (id, actor_kind, actor_id, action, entity_kind, entity_id) VALUES ($1, 'system', 'tester', 'created', 'Task', 'x')",
            [.text(ULID.make())])
    }
}

@Suite("Migrations")
struct MigrationTests {
    @Test("a fresh database gets the legacy layout plus the worker columns; a second run does nothing",
        arguments: Dialect.allCases)
    func fresh(_ dialect: Dialect) async throws {
        try await withDatabase(dialect, migrate: false) { database, _ in
            let applied = try await database.migrator().migrate()
            #expect(applied.map(\.state) == every(.applied, database))
            #expect(try await tableNames(database).isSuperset(of: cwomTables))
            #expect(try await database.migrator().migrate().isEmpty)
            #expect(try await database.migrator().status().map(\.state) == every(.applied, database))
            #expect(try await columnType(database, "cwom_runs", "trace_pruned_at") != nil, "retention's column")
            if dialect == .postgres {
                let json = try await jsonColumns(database)
                #expect(json.count == 50 && json.allSatisfy { $0.type == "json" }, "every JSON column is json, as in the legacy layout (0007)")
                #expect(json.first { $0.table == "tasks" && $0.column == "inputs" }?.defaultValue == "'{}'::json")
                #expect(json.first { $0.table == "cwom_issues" && $0.column == "runs" }?.defaultValue == "'[]'::json")
            }
            #expect(try await columnType(database, "tasks", "lease_expires_at") != nil)
        }
    }

    @Test("--status lists pending migrations before the first run", arguments: Dialect.allCases)
    func pendingStatus(_ dialect: Dialect) async throws {
        try await withDatabase(dialect, migrate: false) { database, _ in
            let status = try await database.migrator().status()
            #expect(status.map(\.state) == every(.pending, database))
            #expect(status.map(\.migration.name) == ["0001_legacy_layout.sql", "0002_worker_leases.sql", "0003_retention.sql", "0004_queue_index.sql", "0005_unread_indexes.sql", "0006_newest_first_lists.sql",
                "0007_json_columns.sql", "0008_audit_checks.sql", "0009_deferred_foreign_keys.sql", "0010_shared_indexes.sql",
                "0011_wider_indexes.sql",
            ])
        }
    }

    @Test("two processes migrating at once apply each migration exactly once", arguments: Dialect.allCases)
    func concurrent(_ dialect: Dialect) async throws {
        let test = try await TestDatabase.make(dialect)
        defer { Task { await test.drop() } }
        let first = try await test.open(migrate: false)
        let second = try await test.open(migrate: false)
        async let a = first.migrator().migrate()
        async let b = second.migrator().migrate()
        let (ra, rb) = try await (a, b)
        #expect(ra.count + rb.count == Migrator.embedded(first.dialect).count)
        let recorded = try await first.read { store in
            try await store.session.query("SELECT COUNT(*) AS n FROM tower_migrations", []).first?.int("n")
        }
        #expect(recorded == Migrator.embedded(first.dialect).count)
        await first.close()
        await second.close()
    }

    /// The lock a migration of this schema takes (`Migrator`).
    static let migrationLock = "SELECT pg_advisory_xact_lock(hashtextextended(current_schema(), 7368257318))"

    @Test("on PostgreSQL a migration waits for another process's migration past query_timeout, and then applies")
    func waitsPastQueryTimeoutOnPostgres() async throws {
        let test = try await TestDatabase.make(.postgres)
        defer { Task { await test.drop() } }
        guard case .postgres(let url) = test.location else { return }
        let holder = try await test.open(migrate: false)
        // A query_timeout that the test outlasts, long enough that a loaded machine does not leave
        // the migration's own transaction idle past it (the server's idle_in_transaction timeout,
        // which ended it once at 4 s in a CI run of the whole suite).
        let migrating = try await Database.open(.postgres(url: url + "&query_timeout=10"), poolSize: 2, requireCurrentSchema: false)
        try await holder.driver.withSession { session in
            // Another process's migration, holding the lock for as long as its statements run.
            try await session.query("BEGIN", [])
            try await session.query(Self.migrationLock, [])
            let pid = try #require(try await session.query("SELECT pg_backend_pid() AS pid", []).first?.int("pid"))
            let (ended, end) = AsyncStream<String>.makeStream()
            let migration = Task {
                do {
                    let applied = try await migrating.migrator(logger: quietLogger("tower.migrate")).migrate()
                    end.yield("applied \(applied.count) migrations")
                    return applied
                } catch {
                    end.yield("failed: \(error)")
                    throw error
                }
            }
            // Past its query_timeout the migration neither failed nor went ahead: it still waits.
            let early = try await withDeadline(seconds: 11) { await ended.first { _ in true } }
            #expect(early == nil, "the migration ended while another held the lock: \(early ?? "")")
            // ...on this session's lock (within a transaction the statistics views keep their first
            // snapshot unless cleared).
            try await session.query("SELECT pg_stat_clear_snapshot()", [])
            let blocked = try await session.query(
                "SELECT count(*) AS n FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))", [.int(pid)])
            #expect(try blocked.first?.int("n") == 1, "the migration waits for the lock")
            try await session.query("COMMIT", [])
            #expect(try await migration.value.count == Migrator.embedded(.postgres).count)
        }
        #expect(try await migrating.migrator().status().allSatisfy { $0.state == .applied })
        await migrating.close()
        await holder.close()
    }

    @Test("on SQLite a migration waits for another connection's write lock without the busy timeout; other writes keep it")
    func waitsPastBusyTimeoutOnSQLite() async throws {
        let test = try await TestDatabase.make(.sqlite)
        defer { Task { await test.drop() } }
        guard case .sqlite(let path) = test.location else { return }
        let holder = try await test.open(migrate: false)
        let migrating = try await SQLiteDriver.open(path: path, readers: 1, busyTimeoutMilliseconds: 200)
        @Sendable func busyTimeout(_ session: any DatabaseSession) async throws -> Int? {
            try await session.query("PRAGMA busy_timeout", []).first?.int("timeout")
        }
        // The limit that `BEGIN IMMEDIATE` of a schema write waited under (set before it), and the
        // one an ordinary write has again afterwards. (What SQLite does with the limit is SQLite's:
        // the test does not wait for time to pass to show it.)
        #expect(try await migrating.writeSchema { session in try await busyTimeout(session) } == Int(Int32.max))
        #expect(try await migrating.write { session in try await busyTimeout(session) } == 200)

        // Another connection holds the write lock: an ordinary write gives up; a migration started
        // meanwhile applies once the lock is released.
        let (released, release) = AsyncStream.makeStream(of: Void.self)
        let (lockTaken, locked) = AsyncStream.makeStream(of: Void.self)
        let holding = Task {
            try await holder.driver.write { _ in
                locked.yield()
                for await _ in released { break }
            }
        }
        for await _ in lockTaken { break }
        await #expect(throws: StorageError.self, "an ordinary write gives up after the busy timeout") {
            try await migrating.write { session in try await session.query("SELECT 1", []) }
        }
        let migration = Task { try await Migrator(driver: migrating, logger: quietLogger("tower.migrate")).migrate() }
        release.yield()
        try await holding.value
        #expect(try await migration.value.count == Migrator.embedded(.sqlite).count)
        await migrating.close()
        await holder.close()
    }

    @Test("an applied migration whose file changed stops the runner", arguments: Dialect.allCases)
    func checksumMismatch(_ dialect: Dialect) async throws {
        try await withDatabase(dialect) { database, _ in
            try await database.write { store in
                try await store.session.query("UPDATE tower_migrations SET checksum = 'abc' WHERE version = 3", [])
            }
            await #expect(throws: StorageError.self) { try await database.migrator().migrate() }
            do { try await database.migrator().migrate() } catch let error as StorageError {
                #expect(error.kind == .migration)
                #expect(error.message.contains("0003_retention.sql was changed after it was applied"))
            }
            #expect(try await database.migrator().status().first { $0.migration.name == "0003_retention.sql" }?.state == .modified)
        }
    }

    @Test("a database that is behind is refused with an instruction to run tower migrate", arguments: Dialect.allCases)
    func schemaBehind(_ dialect: Dialect) async throws {
        let test = try await TestDatabase.make(dialect)
        do {
            _ = try await Database.open(test.location, requireCurrentSchema: true)
            Issue.record("opening an unmigrated database should fail")
        } catch let error as StorageError {
            #expect(error.kind == .schemaBehind)
            #expect(error.message.contains("run `tower migrate`"))
        }
        await test.drop()
    }

    @Test("the binary carries exactly the files in migrations/")
    func embeddedMatchesFiles() throws {
        for dialect in Dialect.allCases {
            let folder = repositoryRoot.appendingPathComponent("migrations/\(dialect.rawValue)")
            let files = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasSuffix(".sql") }
                .sorted()
            let embedded = Migrator.embedded(dialect == .postgres ? .postgres : .sqlite)
            #expect(embedded.map(\.name) == files, "run scripts/embed-migrations")
            for migration in embedded {
                let text = try String(contentsOf: folder.appendingPathComponent(migration.name), encoding: .utf8)
                #expect(
                    migration.sql + "\n" == text,
                    "\(migration.name) differs from the embedded copy: run scripts/embed-migrations")
            }
        }
    }

    @Test("on a PostgreSQL database an earlier Control Tower created, 0007 turns its jsonb columns into json and every value reads back the same")
    func jsonColumnsFromJSONB() async throws {
        try await withDatabase(.postgres) { database, test in
            let graph = try await CWOMGraph.build(in: database)
            try await test.runScript(AdoptionTests.legacyTaskInsert(.postgres, id: "33333333-2222-4333-8444-555555555555"), on: database)
            let entry = AuditEntry(
                actor: Actor(kind: .system, id: "t"), action: .created, entityKind: "Issue", entityId: graph.issue.id, after: graph.issue.json)
            try await database.write { store in try await store.audit.append(entry) }
            @Sendable func everything() async throws -> [JSONValue?] {
                try await database.read { store in
                    [
                        try await store.repos.get(graph.repo.id)?.json, try await store.issues.get(graph.issue.id)?.json,
                        try await store.contextPackets.get(graph.packet.id)?.json,
                        try await store.constraintSnapshots.get(graph.snapshot.id)?.json,
                        try await store.doctrineRefs.get(graph.doctrine.id)?.json, try await store.runs.get(graph.run.id)?.json,
                        try await store.artifacts.get(graph.artifact.id)?.json, try await store.evidencePacks.get(graph.evidence.id)?.json,
                        try await store.reviews.get(graph.review.id)?.json,
                        try await store.tasks.get("33333333-2222-4333-8444-555555555555").map { .object(["inputs": .object($0.inputs)]) },
                        try await store.audit.list(.init(entityKind: "Issue", entityId: graph.issue.id)).first?.after,
                    ]
                }
            }
            let written = try await everything()
            #expect(!written.contains { $0 == nil })

            // The database as 0001-0006 left it: the same columns as jsonb, 0007 not recorded.
            let columns = try await jsonColumns(database)
            try await database.write { store in
                for c in columns {
                    let retyped = "ALTER TABLE \(c.table) ALTER COLUMN \"\(c.column)\" DROP DEFAULT, ALTER COLUMN \"\(c.column)\" TYPE jsonb USING \"\(c.column)\"::jsonb"
                    try await store.session.query(retyped, [])
                    if let value = c.defaultValue {
                        let restored = value.replacingOccurrences(of: "::json", with: "::jsonb")
                        try await store.session.query("ALTER TABLE \(c.table) ALTER COLUMN \"\(c.column)\" SET DEFAULT \(restored)", [])
                    }
                }
                try await store.session.query("DELETE FROM tower_migrations WHERE version = 7", [])
            }
            #expect(try await jsonColumns(database).allSatisfy { $0.type == "jsonb" })
            #expect(try await everything() == written)
            let files = try await fileNodes(database)

            let applied = try await database.migrator().migrate()
            #expect(applied.map(\.migration.name) == ["0007_json_columns.sql"])
            let after = try await jsonColumns(database)
            #expect(after.map { [$0.table, $0.column] } == columns.map { [$0.table, $0.column] })
            #expect(after.allSatisfy { $0.type == "json" })
            #expect(after.map(\.defaultValue) == columns.map(\.defaultValue), "the legacy layout's defaults")
            #expect(try await everything() == written)
            let rewritten = try await fileNodes(database).filter { files[$0.key] != $0.value }.keys
            #expect(Set(rewritten) == Set(columns.map(\.table)), "each table with JSON columns is rewritten, once")

            // From now on a snapshot is kept as the very text written (jsonb kept its own form).
            let later = AuditEntry(
                actor: Actor(kind: .system, id: "t"), action: .updated, entityKind: "Run", entityId: graph.run.id, after: graph.run.json)
            try await database.write { store in try await store.audit.append(later) }
            let stored = try await database.read { store in
                try await store.session.query(#"SELECT CAST("after" AS text) AS text FROM audit_log WHERE id = $1"#, [.text(later.id)]).first?.string("text")
            }
            #expect(stored == graph.run.json.serialized())
        }
    }
    @Test("on SQLite 0008 writes the audit checks as comparisons: the same values pass, and an audit row is checked without a temporary B-tree")
    func auditChecksOnSQLite() async throws {
        try await withDatabase(.sqlite) { database, _ in
            #expect(try await auditChecks(database) == auditChecksAsComparisons)
            #expect(try await database.read { store in try await auditInsertOpcodes(store) }.contains("OpenEphemeral") == false)
            let integrity = try await database.read { store in try await store.session.query("PRAGMA integrity_check", []).first?.string("integrity_check") }
            #expect(integrity == "ok")

            func insert(_ id: String, actorKind: String, action: String) async throws {
                try await database.write { store in
                    try await store.session.query(
                        "INSERT INTO audit_log (id, actor_kind, actor_id, action, entity_kind, entity_id) VALUES ($1, $2, 'tester', $3, 'Task', 'x')",
                        [.text(id), .text(actorKind), .text(action)])
                }
            }
            for (n, actorKind) in ["human", "agent", "system"].enumerated() {
                for (m, action) in ["created", "updated", "status_changed", "deleted", "linked", "unlinked"].enumerated() {
                    try await insert("ok-\(n)-\(m)", actorKind: actorKind, action: action)
                }
            }
            for (id, actorKind, action) in [("bad-1", "robot", "created"), ("bad-2", "system", "archived"), ("bad-3", "Human", "created"), ("bad-4", "system", "")] {
                await #expect(throws: StorageError.self, "\(actorKind)/\(action) is refused") { try await insert(id, actorKind: actorKind, action: action) }
            }
        }
    }

    @Test("on SQLite a connection that compiled the legacy audit checks before 0008 uses the new ones after it")
    func auditChecksReachOpenConnections() async throws {
        let test = try await TestDatabase.make(.sqlite)
        defer { Task { await test.drop() } }
        let running = try await test.open()
        // The database as 0007 left it: the legacy checks, 0008 not recorded.
        try await running.write { store in
            try await store.session.query("PRAGMA writable_schema = ON", [])
            try await store.session.query(
                "UPDATE sqlite_master SET sql = replace(replace(sql, $1, $2), $3, $4) WHERE type = 'table' AND name = 'audit_log'",
                [.text(auditChecksAsComparisons[0]), .text("CHECK (actor_kind IN ('human', 'agent', 'system'))"),
                 .text(auditChecksAsComparisons[1]), .text("CHECK (action IN ('created', 'updated', 'status_changed', 'deleted', 'linked', 'unlinked'))")])
            try await store.session.query("PRAGMA writable_schema = RESET", [])
            try await store.session.query("CREATE TABLE schema_moved (x INTEGER)", [])
            try await store.session.query("DROP TABLE schema_moved", [])
            try await store.session.query("DELETE FROM tower_migrations WHERE version = 8", [])
        }
        try await insertAuditRow(running)
        #expect(try await running.write { store in try await auditInsertOpcodes(store) }.contains("OpenEphemeral"), "the legacy checks, compiled")

        // Another process applies 0008 while `running` keeps its connections and statements.
        let migrating = try await test.open(migrate: false)
        #expect(try await migrating.migrator().migrate().map(\.migration.name) == ["0008_audit_checks.sql"])
        await migrating.close()

        // Its next write finds the schema's version moved (SQLite then compiles its kept
        // statements again), and from then on it compiles the comparisons.
        try await insertAuditRow(running)
        #expect(try await running.write { store in try await auditInsertOpcodes(store) }.contains("OpenEphemeral") == false)
        #expect(try await running.read { store in try await auditInsertOpcodes(store) }.contains("OpenEphemeral") == false)
        await running.close()
    }
}

/// SQLite: how many foreign key clauses the tables hold, and how many of them are deferred.
func foreignKeyClauses(_ database: Database) async throws -> (all: Int, deferred: Int) {
    let texts = try await database.read { store in
        try await store.session.query("SELECT sql FROM sqlite_master WHERE type = 'table' AND sql LIKE '%REFERENCES%'", []).map { try $0.string("sql") }
    }
    func count(_ text: String, _ part: String) -> Int { text.components(separatedBy: part).count - 1 }
    return (texts.map { count($0, "REFERENCES ") }.reduce(0, +), texts.map { count($0, "DEFERRABLE INITIALLY DEFERRED") }.reduce(0, +))
}

extension MigrationTests {
    @Test("on SQLite 0009 checks the foreign keys at commit: a parent written later in the transaction passes, a missing one fails the whole transaction, a multi-row insert counts its references for the commit")
    func deferredForeignKeys() async throws {
        try await withDatabase(.sqlite) { database, _ in
            let clauses = try await foreignKeyClauses(database)
            #expect(clauses.all == 26 && clauses.deferred == clauses.all, "\(clauses)")
            let tasks = try await database.read { store in
                try await store.session.query("SELECT sql FROM sqlite_master WHERE name = 'tasks'", []).first?.string("sql")
            }
            #expect(tasks?.contains("REFERENCES cwom_issues (id) ON DELETE SET NULL DEFERRABLE INITIALLY DEFERRED") == true)
            #expect(try await database.read { store in try await store.session.query("PRAGMA integrity_check", []).first?.string("integrity_check") } == "ok")

            // The references of a multi-row insert are counted for the commit (FkCounter's P1 is
            // 1, the deferred counter): SQLite keeps no statement journal for them.
            let program = try await database.read { store in
                try await store.session.query(
                    "EXPLAIN INSERT INTO cwom_issue_context_packets (issue_id, context_packet_id, created_at) VALUES ($1, $2, $3), ($4, $5, $6)",
                    [.text("i1"), .text("p1"), .text("t"), .text("i2"), .text("p2"), .text("t")])
            }
            let counters = try program.filter { try $0.string("opcode") == "FkCounter" }.map { try $0.optionalInt("p1") }
            #expect(!counters.isEmpty && counters.allSatisfy { $0 == 1 }, "\(counters)")

            // A child written before its parent, in one transaction, commits.
            let owner = Actor(kind: .human, id: "alice")
            let repo = Repo(name: "later", slug: "myorg/later-" + ULID.make().lowercased(), source: Source(system: "jct"))
            let issue = Issue(repo: repo.ref, title: "Parent later", type: .bug, assignees: [owner])
            try await database.write { store in
                try await store.issues.insert(issue)
                _ = try await store.repos.getOrCreate(repo)
            }
            #expect(try await database.read { store in try await store.issues.get(issue.id) }?.repo == repo.ref)

            // A missing parent fails the transaction when it commits, with nothing of it kept.
            let orphan = Issue(repo: Ref(kind: .repo, id: "missing"), title: "Orphan", type: .bug)
            let kept = Issue(repo: repo.ref, title: "Kept only with its transaction", type: .bug)
            do {
                try await database.write { store in
                    try await store.issues.insert(kept)
                    try await store.issues.insert(orphan)
                }
                Issue.record("an Issue of a missing Repo was accepted")
            } catch let error as StorageError {
                #expect(error.kind == .foreignKeyViolation, "\(error)")
            }
            #expect(try await database.read { store in try await store.issues.get(kept.id) } == nil)
            #expect(try await database.read { store in try await store.issues.get(orphan.id) } == nil)
        }
    }
}

@Suite("Adopting a legacy database in place")
struct AdoptionTests {
    /// An insert exactly as the legacy service makes it: legacy columns only.
    static func legacyTaskInsert(_ dialect: Dialect, id: String) -> String {
        let no = dialect == .postgres ? "false" : "0"
        return """
            INSERT INTO tasks (id, version, idempotency_key, requested_by_kind, requested_by_id, requested_by_label,
            objective, operation, target_repo, target_ref, target_path, time_budget_seconds, allow_network,
            allow_secrets, inputs, metadata, status, created_at, queued_at, trace_id)
            VALUES ('\(id)', '1.0', NULL, 'human', 'alice', NULL, 'Update the docs', 'docs', 'myorg/site', 'main', '',
            900, \(no), \(no), '{"x": 1}', '{}', 'queued', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP,
            '0b6c5d8e-1111-4222-8333-444455556666')
            """
    }

    @Test("legacy tables are recognised, kept as they are, and only additive changes are applied",
        arguments: Dialect.allCases)
    func adopt(_ dialect: Dialect) async throws {
        try await withDatabase(dialect, migrate: false) { database, test in
            try await test.runScript(try fixtureSQL(dialect), on: database)
            let before = try await tableNames(database)
            try await test.runScript(Self.legacyTaskInsert(dialect, id: "11111111-2222-4333-8444-555555555555"), on: database)
            let filesBefore = dialect == .postgres ? try await fileNodes(database) : [:]

            let outcome = try await database.migrator().migrate()
            let adopted = [.adopted] + every(.applied, database).dropFirst()
            #expect(outcome.map(\.state) == adopted)
            #expect(try await database.migrator().status().map(\.state) == adopted)
            let after = try await tableNames(database)
            #expect(after.isSuperset(of: before), "nothing is dropped")
            #expect(after.subtracting(before) == ["tower_migrations", "tower_workers"])
            if dialect == .sqlite {
                #expect(try await auditChecks(database) == auditChecksAsComparisons, "0008 rewrote the legacy text of the audit checks")
                let clauses = try await foreignKeyClauses(database)
                #expect(clauses.all == 26 && clauses.deferred == 26, "0009 deferred the legacy text of each foreign key: \(clauses)")
            }
            if dialect == .postgres {
                #expect(try await columnType(database, "tasks", "inputs") == "json", "legacy json columns keep their type")
                let rewritten = try await fileNodes(database).filter { table, file in filesBefore[table].map { $0 != file } ?? false }
                #expect(rewritten.isEmpty, "no legacy table was rewritten (0007: its JSON columns are json already)")
                #expect(try await columnType(database, "tasks", "status") == "USER-DEFINED")
            }

            // A task the legacy service wrote before adoption reads back.
            let old = try await database.read { store in
                try await store.tasks.get("11111111-2222-4333-8444-555555555555")
            }
            #expect(old?.objective == "Update the docs")
            #expect(old?.inputs == ["x": 1])
            #expect(old?.attempt == 0)
            #expect(old?.maxAttempts == 3)

            // Legacy-shaped inserts still work after the migration, and tower reads them.
            try await test.runScript(Self.legacyTaskInsert(dialect, id: "22222222-2222-4333-8444-555555555555"), on: database)
            let new = try await database.read { store in try await store.tasks.get("22222222-2222-4333-8444-555555555555") }
            #expect(new?.status == .queued)
            #expect(new?.operation == .docs)
            #expect(new?.traceId == "0b6c5d8e-1111-4222-8333-444455556666")

            // And tower writes into the legacy tables too, JSON columns included.
            let issue = try await CWOMGraph.build(in: database)
            let read = try await database.read { store in try await store.issues.get(issue.issue.id) }
            #expect(read?.contextPackets == [Ref(kind: .contextPacket, id: issue.packet.id)])
        }
    }

    @Test("a legacy database at an older revision is refused with what to do", arguments: Dialect.allCases)
    func olderRevision(_ dialect: Dialect) async throws {
        try await withDatabase(dialect, migrate: false) { database, test in
            try await test.runScript(try fixtureSQL(dialect), on: database)
            try await test.runScript("UPDATE alembic_version SET version_num = 'i0d1e2f3a4b5'", on: database)
            do {
                try await database.migrator().migrate()
                Issue.record("an old legacy revision must be refused")
            } catch let error as StorageError {
                #expect(error.message.contains("alembic revision i0d1e2f3a4b5"))
                #expect(error.message.contains("alembic upgrade head"))
            }
        }
    }
}
