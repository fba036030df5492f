import CWOM
import Testing
import TowerTestSupport

@testable import Storage

/// A multi-row insert binds a value its rows share by construction once (`SQL.insertMany`).
@Suite("Values a statement's rows share, bound once")
struct SharedBindTests {
    static func row(_ id: String, actor: String, note: String) -> Columns {
        ["id": .text(id), "kind": .text("Run"), "actor_id": .text(actor), "note": .text(note)]
    }

    @Test("a column mayShare names takes the first row's bind in every row while all rows hold its value; others are bound row by row")
    func textAndBinds() {
        let statements = SQL.insertMany("t", [
            Self.row("a", actor: "w1", note: "same"), Self.row("b", actor: "w1", note: "same"), Self.row("c", actor: "w2", note: "same"),
        ])
        #expect(statements.count == 1)
        // `kind` is shared; `actor_id` may be but differs in the third row; `note` is never compared.
        #expect(statements[0].0 == "INSERT INTO t (id,kind,actor_id,note) VALUES ($1,$2,$3,$4),($5,$2,$6,$7),($8,$2,$9,$10)")
        #expect(statements[0].1 == [
            .text("a"), .text("Run"), .text("w1"), .text("same"), .text("b"), .text("w1"), .text("same"), .text("c"), .text("w2"),
            .text("same"),
        ])
        let equal = SQL.insertMany("t", [Self.row("a", actor: "w1", note: "x"), Self.row("b", actor: "w1", note: "y")])
        #expect(equal[0].0 == "INSERT INTO t (id,kind,actor_id,note) VALUES ($1,$2,$3,$4),($5,$2,$3,$6)")
        #expect(equal[0].1 == [.text("a"), .text("Run"), .text("w1"), .text("x"), .text("b"), .text("y")])
        let one = SQL.insertMany("t", [Self.row("a", actor: "w1", note: "x")])
        #expect(one[0].0 == "INSERT INTO t (id,kind,actor_id,note) VALUES ($1,$2,$3,$4)")
    }

    @Test("rows whose columns differ in number share nothing (and do not trap)")
    func unevenRows() {
        var short = Self.row("b", actor: "w1", note: "x")
        short.pairs.removeLast()
        let statements = SQL.insertMany("t", [Self.row("a", actor: "w1", note: "x"), short])
        #expect(statements[0].1.count == 7, "every value bound as it is")
    }

    @Test("the columns a table may share are kept by table and made again when its rows have other columns")
    func keptCandidates() {
        let texts = InsertTexts()
        let rows = [Self.row("a", actor: "w1", note: "x"), Self.row("b", actor: "w1", note: "y")]
        let first = SQL.insertMany("t", rows, texts: texts)
        #expect(first[0].0 == "INSERT INTO t (id,kind,actor_id,note) VALUES ($1,$2,$3,$4),($5,$2,$3,$6)")
        // The same table with `actor_id` renamed: nothing of the kept shape may carry over.
        let renamed: [Columns] = [["id": .text("a"), "kind": .text("Run"), "actor": .text("w1")], ["id": .text("b"), "kind": .text("Run"), "actor": .text("w1")]]
        let second = SQL.insertMany("t", renamed, texts: texts)
        #expect(second[0].0 == "INSERT INTO t (id,kind,actor) VALUES ($1,$2,$3),($4,$2,$5)")
        #expect(SQL.insertMany("t", rows, texts: texts)[0].0 == first[0].0)
    }

    @Test("rows gathered from many sources are written table by table in the order of foreign keys, each source's rows in the order they came")
    func gatheredRows() {
        func run(_ id: String) -> Columns { ["id": .text(id)] }
        var first = InsertRows()
        first.add("audit_log", [run("a1")])
        first.add("tasks", [run("t1")])
        first.add("cwom_issues", [run("i1")])
        var second = InsertRows()
        second.add("other_table", [run("o1")])
        second.add("audit_log", [run("a2"), run("a3")])
        second.add("cwom_constraint_snapshots", [run("s2")])
        var gathered = InsertRows()
        #expect(gathered.isEmpty)
        gathered.add(first)
        gathered.add(second)
        gathered.add("other_table", [run("o2")])
        #expect(!gathered.isEmpty)
        let tables = gathered.tables.map { table in "\(table.name): " + table.rows.map { row in row.pairs.map { "\($0.1)" }.joined() }.joined(separator: ",") }
        #expect(tables == [
            "cwom_constraint_snapshots: text(\"s2\")", "cwom_issues: text(\"i1\")", "tasks: text(\"t1\")",
            "audit_log: text(\"a1\"),text(\"a2\"),text(\"a3\")", "other_table: text(\"o1\"),text(\"o2\")",
        ])
    }

    @Test("kept texts are told apart by the columns shared: a batch whose rows differ gets its own text")
    func keptTextsBySharedColumns() {
        let texts = InsertTexts()
        let same = SQL.insertMany("t", [Self.row("a", actor: "w1", note: "x"), Self.row("b", actor: "w1", note: "y")], texts: texts)
        let differ = SQL.insertMany("t", [Self.row("a", actor: "w1", note: "x"), Self.row("b", actor: "w2", note: "y")], texts: texts)
        #expect(same[0].0 != differ[0].0)
        #expect(differ[0].0 == "INSERT INTO t (id,kind,actor_id,note) VALUES ($1,$2,$3,$4),($5,$2,$6,$7)")
        #expect(texts.made == 2)
    }

    @Test("audit rows written with shared and unshared values read back row by row as they were given", arguments: Dialect.allCases)
    func roundTrip(_ dialect: Dialect) async throws {
        try await withDatabase(dialect) { database, _ in
            let at = Timestamp(microseconds: 1_790_000_000_000_000)
            let entries: [(id: String, actor: String, kind: String, note: String?)] = [
                ("a1", "worker-a", "Task", "first"), ("a2", "worker-a", "Run", nil), ("a3", "worker-b", "Issue", "third"),
                ("a4", "worker-a", "Task", "fourth"),
            ]
            let rows: [Columns] = entries.map { entry in
                [
                    "id": .text(entry.id), "ts": .timestamp(at), "actor_kind": .text("system"), "actor_id": .text(entry.actor),
                    "action": .text("created"), "entity_kind": .text(entry.kind), "entity_id": .text("e-" + entry.id),
                    "note": .text(entry.note), "trace_id": .text("trace-shared"),
                ]
            }
            let statements = SQL.insertMany("audit_log", rows)
            #expect(statements[0].1.count < rows.count * 9, "some values are bound once")
            try await database.write { store in try await store.session.writeAll(statements) }
            let read = try await database.read { store in
                try await store.session.query(
                    "SELECT id, ts, actor_kind, actor_id, entity_kind, entity_id, note FROM audit_log WHERE trace_id = $1 ORDER BY id",
                    [.text("trace-shared")])
            }
            #expect(read.count == entries.count)
            for (row, entry) in zip(read, entries) {
                #expect(try row.string("id") == entry.id)
                #expect(try row.timestamp("ts") == at)
                #expect(try row.string("actor_kind") == "system")
                #expect(try row.string("actor_id") == entry.actor)
                #expect(try row.string("entity_kind") == entry.kind)
                #expect(try row.string("entity_id") == "e-" + entry.id)
                #expect(try row.optionalString("note") == entry.note)
            }
        }
    }

    @Test("a multi-row insert's binds in order, taken from its rows, are the array insertMany sends")
    func chunkBindsInOrder() {
        let rows = [Self.row("a", actor: "w1", note: "x"), Self.row("b", actor: "w1", note: "y"), Self.row("c", actor: "w1", note: "z")]
        let chunks = SQL.insertChunks("t", rows)
        #expect(chunks.count == 1)
        var bound: [SQLValue] = []
        chunks[0].forEachBind { bound.append($0) }
        #expect(bound == [.text("a"), .text("Run"), .text("w1"), .text("x"), .text("b"), .text("y"), .text("c"), .text("z")])
        #expect(SQL.insertMany("t", rows)[0].1 == bound)
    }

    @Test("gathered rows written through the session read back as given; SQLite binds them from the rows", arguments: Dialect.allCases)
    func gatheredRowsRoundTrip(_ dialect: Dialect) async throws {
        try await withDatabase(dialect) { database, _ in
            let at = Timestamp(microseconds: 1_790_000_000_000_000)
            func entry(_ id: String, actor: String, note: String?) -> Columns {
                [
                    "id": .text(id), "ts": .timestamp(at), "actor_kind": .text("system"), "actor_id": .text(actor),
                    "action": .text("created"), "entity_kind": .text("Task"), "entity_id": .text("e-" + id), "note": .text(note),
                    "trace_id": .text("trace-gathered"),
                ]
            }
            var rows = InsertRows()
            rows.add("audit_log", [entry("g1", actor: "worker-a", note: "one"), entry("g2", actor: "worker-a", note: nil)])
            var more = InsertRows()
            more.add("audit_log", [entry("g3", actor: "worker-b", note: "three")])
            rows.add(more)
            let gathered = rows
            try await database.write { store in
                #expect((store.session as? any ChunkWriting != nil) == (dialect == .sqlite))
                try await store.session.writeAll(gathered, texts: InsertTexts(), then: [
                    (
                        "INSERT INTO audit_log (id, actor_kind, actor_id, action, entity_kind, entity_id, note, trace_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                        [.text("g4"), .text("system"), .text("worker-c"), .text("created"), .text("Task"), .text("e-g4"), .text("after the rows"), .text("trace-gathered")]
                    )
                ], last: true)
            }
            let read = try await database.read { store in
                try await store.session.query(
                    "SELECT id, ts, actor_id, note FROM audit_log WHERE trace_id = $1 ORDER BY id", [.text("trace-gathered")])
            }
            #expect(try read.map { try $0.string("id") } == ["g1", "g2", "g3", "g4"])
            #expect(try read.map { try $0.string("actor_id") } == ["worker-a", "worker-a", "worker-b", "worker-c"])
            #expect(try read.map { try $0.optionalString("note") } == ["one", nil, "three", "after the rows"])
            #expect(try read.prefix(3).allSatisfy { try $0.timestamp("ts") == at })
        }
    }

    @Test("a text holding NUL in gathered rows is refused on either database, and nothing of the transaction is kept", arguments: Dialect.allCases)
    func gatheredRowsRefuseNUL(_ dialect: Dialect) async throws {
        try await withDatabase(dialect) { database, _ in
            var withNUL = InsertRows()
            withNUL.add("audit_log", [
                ["id": .text("n1"), "actor_kind": .text("system"), "actor_id": .text("a"), "action": .text("created"),
                 "entity_kind": .text("Task"), "entity_id": .text("e"), "trace_id": .text("trace-nul")],
                ["id": .text("n2"), "actor_kind": .text("system"), "actor_id": .text("a"), "action": .text("created"),
                 "entity_kind": .text("Task"), "entity_id": .text("bad\u{0}id"), "trace_id": .text("trace-nul")],
            ])
            let rows = withNUL
            await #expect(throws: StorageError.self) {
                try await database.write { store in try await store.session.writeAll(rows, texts: nil, then: [], last: true) }
            }
            let read = try await database.read { store in
                try await store.session.query("SELECT id FROM audit_log WHERE trace_id = $1", [.text("trace-nul")])
            }
            #expect(read.isEmpty)
        }
    }
}
