import Foundation
import Storage
import Testing
import TowerTestSupport

@Suite("Writes combined into one PostgreSQL statement")
struct WriteBatchTests {
    @Test("inserts become WITH clauses of one statement, their binds renumbered, quoted text untouched")
    func combinesInserts() {
        let combined = WriteBatch.combined([
            ("INSERT INTO a (x, y) VALUES ($1, $2)", [.int(1), .text("one")]),
            ("INSERT INTO b (z) VALUES ($1) ON CONFLICT DO NOTHING", [.int(2)]),
            ("UPDATE c SET s = 'costs $1' WHERE id = $1", [.text("c1")]),
        ])
        #expect(combined.count == 1)
        #expect(
            combined.first?.0
                == "WITH w1 AS (INSERT INTO a (x, y) VALUES ($1, $2)), w2 AS (INSERT INTO b (z) VALUES ($3) ON CONFLICT DO NOTHING) UPDATE c SET s = 'costs $1' WHERE id = $4"
        )
        #expect(combined.first?.1 == [.int(1), .text("one"), .int(2), .text("c1")])
    }

    @Test("a driver's kept texts give the very statements made afresh, one text per set of parts and bind counts")
    func keptTexts() {
        let texts = WriteBatch.Texts(capacity: 3)
        func batch(_ values: [Int]) -> [(String, [SQLValue])] {
            [("INSERT INTO a (x) VALUES (\(values.indices.map { "($\($0 + 1))" }.joined(separator: ",")))", values.map { .int($0) }),
             ("UPDATE c SET n = $1", [.int(9)])]
        }
        for values in [[1, 2], [3, 4], [5], [6, 7, 8], [1, 2]] {
            #expect(WriteBatch.combined(batch(values), texts: texts).map(\.0) == WriteBatch.combined(batch(values)).map(\.0))
            #expect(WriteBatch.combined(batch(values), texts: texts).map(\.1) == WriteBatch.combined(batch(values)).map(\.1))
        }
        #expect(texts.count == 3, "three shapes kept: two rows, one row, three rows")
        _ = WriteBatch.combined(batch([1, 2, 3, 4]), texts: texts)
        #expect(texts.count == 1, "full: it started over")
        // The same texts with another bind count number the next part from another offset.
        let extra: [(String, [SQLValue])] = [("INSERT INTO a (x) VALUES ($1)", [.int(1), .int(2)]), ("UPDATE c SET n = $1", [.int(9)])]
        let fewer: [(String, [SQLValue])] = [("INSERT INTO a (x) VALUES ($1)", [.int(1)]), ("UPDATE c SET n = $1", [.int(9)])]
        #expect(WriteBatch.combined(extra, texts: texts)[0].0.hasSuffix("UPDATE c SET n = $3"))
        #expect(WriteBatch.combined(fewer, texts: texts)[0].0.hasSuffix("UPDATE c SET n = $2"))
    }

    @Test("a statement's kind is its first word, in any case, after any white space; a text that starts otherwise has none")
    func leadingKeyword() {
        #expect(WriteBatch.leadingKeyword("INSERT INTO a (x) VALUES ($1)") == "INSERT")
        #expect(WriteBatch.leadingKeyword("\n\t  update t SET n = 1") == "UPDATE")
        #expect(WriteBatch.leadingKeyword("Delete FROM t") == "DELETE")
        #expect(WriteBatch.leadingKeyword("WITH x AS (SELECT 1) UPDATE t SET n = $1") == "WITH")
        #expect(WriteBatch.leadingKeyword("SELECT(1)") == "SELECT")
        #expect(WriteBatch.leadingKeyword("SELECT") == "SELECT")
        #expect(WriteBatch.leadingKeyword("") == "")
        #expect(WriteBatch.leadingKeyword("(SELECT 1)") == "")
        #expect(WriteBatch.leadingKeyword("-- a comment\nINSERT INTO a") == "")
        #expect(WriteBatch.leadingKeyword("ÉINSERT INTO a") == "", "a word that starts with a letter SQL has no keyword in")
        #expect(WriteBatch.leadingKeyword("INSERTÉ INTO a") == "INSERT", "ends at the first byte that is no ASCII letter")
    }

    @Test("a SELECT is the main statement; a second SELECT or a statement with its own WITH stays alone, in order")
    func keepsWhatCannotBeCombined() {
        let notify: (String, [SQLValue]) = ("SELECT pg_notify($1, '')", [.text("q")])
        let own: (String, [SQLValue]) = ("WITH x AS (SELECT 1) UPDATE t SET n = $1", [.int(3)])
        let combined = WriteBatch.combined([
            ("INSERT INTO a (x) VALUES ($1)", [.int(1)]), notify, ("INSERT INTO b (x) VALUES ($1)", [.int(2)]), own,
            notify, notify,
        ])
        #expect(combined.map(\.0) == [
            "WITH w1 AS (INSERT INTO a (x) VALUES ($1)), w2 AS (INSERT INTO b (x) VALUES ($2)) SELECT pg_notify($3, '')",
            own.0, notify.0, notify.0,
        ])
        #expect(combined[0].1 == [.int(1), .int(2), .text("q")])
    }

    @Test("a batch is cut before PostgreSQL's bind limit, and $10 is renumbered as one placeholder")
    func cutsAtTheBindLimit() {
        let wide = (1...20_000).map { _ in SQLValue.int(0) }
        let statement: (String, [SQLValue]) = ("INSERT INTO a VALUES ($1, $10, $20000)", wide)
        let combined = WriteBatch.combined([statement, statement, statement, statement])
        #expect(combined.map(\.1.count) == [60_000, 20_000])
        #expect(combined[0].0.hasSuffix("INSERT INTO a VALUES ($40001, $40010, $60000)"))
    }

    @Test("PostgreSQL: a child before its parent in one combined statement is fine; a missing parent still fails it")
    func foreignKeysAtTheEndOfTheStatement() async throws {
        try await withPostgresDriver { driver in
            try await driver.withSession { session in
                try await session.query("CREATE TABLE parents (id text PRIMARY KEY)")
                try await session.query("CREATE TABLE children (id text PRIMARY KEY, parent text NOT NULL REFERENCES parents (id))")
            }
            try await driver.write { session in
                try await session.writeAll([
                    ("INSERT INTO children (id, parent) VALUES ($1, $2)", [.text("c1"), .text("p1")]),
                    ("INSERT INTO parents (id) VALUES ($1)", [.text("p1")]),
                ])
            }
            await #expect(throws: StorageError.self) {
                try await driver.write { session in
                    try await session.writeAll([
                        ("INSERT INTO parents (id) VALUES ($1)", [.text("p2")]),
                        ("INSERT INTO children (id, parent) VALUES ($1, $2)", [.text("c2"), .text("nobody")]),
                    ])
                }
            }
            let rows = try await driver.read { session in
                try await session.query("SELECT (SELECT count(*) FROM parents) AS p, (SELECT count(*) FROM children) AS c")
            }
            #expect(try rows[0].int("p") == 1, "the failed statement wrote nothing")
            #expect(try rows[0].int("c") == 1)
        }
    }
}
