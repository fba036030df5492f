import CWOM
import Dispatch
import Foundation
import Storage
import Synchronization
import Testing
import TowerJSON

@Suite("SQLite driver")
struct SQLiteDriverTests {
    /// A driver on a file of its own, closed and removed afterwards.
    func withDriver(checkpointPages: Int = 1_000, walLimitPages: Int = 16_000, _ body: (SQLiteDriver) async throws -> Void) async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("tower-sqlite-\(UUID().uuidString)")
        let driver = try await SQLiteDriver.open(
            path: folder.appendingPathComponent("t.db").path, readers: 2, checkpointPages: checkpointPages, walLimitPages: walLimitPages)
        do {
            _ = try await driver.withSession { try await $0.query("CREATE TABLE t (id INTEGER PRIMARY KEY, k TEXT UNIQUE, v TEXT)", []) }
            try await body(driver)
        } catch {
            await driver.close()
            try? FileManager.default.removeItem(at: folder)
            throw error
        }
        await driver.close()
        try? FileManager.default.removeItem(at: folder)
    }

    @Test("a transaction's statements run inline on its connection's thread, also after the body waited elsewhere")
    func statementsRunInline() async throws {
        try await withDriver { driver in
            let before = driver.statementHops
            try await driver.write { session in
                for n in 0..<10 { try await session.query("INSERT INTO t (k, v) VALUES ($1, $2)", .text("k\(n)"), .text("v")) }
                // Resumed from a thread of another pool: the body comes back to the connection's thread.
                await withCheckedContinuation { continuation in DispatchQueue.global().async { continuation.resume() } }
                for n in 10..<20 { try await session.query("INSERT INTO t (k, v) VALUES ($1, $2)", .text("k\(n)"), .text("v")) }
            }
            let count = try await driver.read { session in
                try await session.query("SELECT COUNT(*) AS n FROM t", []).first?.optionalInt("n")
            }
            #expect(count == 20)
            #expect(driver.statementHops == before, "BEGIN, 20 inserts, COMMIT and a read: none sent to the thread one by one")
        }
    }

    @Test("a kept statement with a bound LIMIT is compiled once, whatever limit each run binds")
    func boundLimitCompiledOnce() async throws {
        try await withDriver { driver in
            try await driver.write { session in
                for n in 0..<10 { try await session.query("INSERT INTO t (k, v) VALUES ($1, $2)", .text("k\(n)"), .text("LIMIT $1")) }
            }
            let before = driver.statementCompilations
            for limit in [3, 3, 1, 5, 0] {
                let rows = try await driver.write { session in
                    try await session.query("SELECT k, v FROM t WHERE v = 'LIMIT $1' ORDER BY k LIMIT $1 OFFSET $2", .int(limit), .int(2))
                }
                #expect(rows.map { try? $0.string("k") } == (0..<10).dropFirst(2).prefix(limit).map { "k\($0)" })
            }
            #expect(driver.statementCompilations == before + 1, "compiled \(driver.statementCompilations - before) times")
        }
    }

    @Test("one statement per text: a second one is refused, a trailing semicolon or comment is not")
    func oneStatementPerText() async throws {
        try await withDriver { driver in
            try await driver.write { session in
                do {
                    try await session.query("INSERT INTO t (k) VALUES ('a'); INSERT INTO t (k) VALUES ('b')", [])
                    Issue.record("two statements in one text were accepted")
                } catch let error as StorageError {
                    #expect(error.kind == .query)
                    #expect(error.message.contains("one statement per query"), "\(error.message)")
                }
                try await session.query("INSERT INTO t (k) VALUES ('c');  -- the last one\n", [])
            }
            let keys = try await driver.read { try await $0.query("SELECT k FROM t ORDER BY k", []).map { try $0.string("k") } }
            #expect(keys == ["c"], "nothing of the refused text ran")
        }
    }

    @Test("a unique violation names its column, a foreign key violation says so, and the transaction rolls back")
    func constraintErrors() async throws {
        try await withDriver { driver in
            _ = try await driver.write { try await $0.query("INSERT INTO t (k) VALUES ('same')", []) }
            do {
                try await driver.write { session in
                    try await session.query("INSERT INTO t (k) VALUES ('other')", [])
                    try await session.query("INSERT INTO t (k) VALUES ('same')", [])
                }
                Issue.record("a duplicate key was accepted")
            } catch let error as StorageError {
                #expect(error.kind == .uniqueViolation)
                #expect(error.constraint == "t.k")
            }
            let keys = try await driver.read { try await $0.query("SELECT k FROM t ORDER BY k", []).map { try $0.string("k") } }
            #expect(keys == ["same"], "the transaction's first insert was rolled back")
            do {
                try await driver.write { session in
                    try await session.query("CREATE TABLE child (id INTEGER PRIMARY KEY, parent INTEGER REFERENCES t(id))", [])
                    try await session.query("INSERT INTO child (parent) VALUES (4711)", [])
                }
                Issue.record("a missing parent was accepted")
            } catch let error as StorageError {
                #expect(error.kind == .foreignKeyViolation, "\(error)")
            }
        }
    }

    @Test("a constraint failure rolls the whole transaction back at once: a body that goes on is refused, nothing of it is kept, the next transaction runs")
    func failedStatementEndsItsTransaction() async throws {
        try await withDriver { driver in
            _ = try await driver.write { try await $0.query("INSERT INTO t (k) VALUES ('same'), ('other')", []) }
            // A multi-row INSERT failing on its second row, then an UPDATE failing on its first.
            let failing = [
                "INSERT INTO t (k, v) VALUES ('second', 'x'), ('same', 'y')",
                "\n  UPDATE t SET k = 'same' WHERE k = 'other'",
            ]
            for statement in failing {
                let refused = Mutex<[String]>([])
                do {
                    try await driver.write { session in
                        try await session.query("INSERT INTO t (k) VALUES ('first')", [])
                        do {
                            try await session.query(statement, [])
                            Issue.record("a duplicate key was accepted: \(statement)")
                        } catch let error as StorageError {
                            #expect(error.kind == .uniqueViolation, "\(error)")
                        }
                        // A body that goes on after the failure (none of ours does).
                        for next in ["INSERT INTO t (k) VALUES ('after')", "UPDATE t SET v = 'changed'"] {
                            do { try await session.query(next, []) } catch let error as StorageError { refused.withLock { $0.append(error.message) } }
                        }
                    }
                    Issue.record("the transaction committed after its failed statement")
                } catch let error as StorageError {
                    #expect(error.message.contains("rolled this transaction back"), "COMMIT refused: \(error.message)")
                }
                let messages = refused.withLock { $0 }
                #expect(messages.count == 2 && messages.allSatisfy { $0.contains("UNIQUE constraint failed: t.k") }, "\(messages)")
                let rows = try await driver.read { try await $0.query("SELECT k, v FROM t ORDER BY k", []) }
                #expect(try rows.map { try $0.string("k") } == ["other", "same"], "nothing of the transaction is kept")
                #expect(try rows.allSatisfy { try $0.optionalString("v") == nil })
            }
            _ = try await driver.write { try await $0.query("INSERT INTO t (k) VALUES ('next')", []) }
            let keys = try await driver.read { try await $0.query("SELECT k FROM t ORDER BY k", []).map { try $0.string("k") } }
            #expect(keys == ["next", "other", "same"], "the connection's next transaction runs as usual")
        }
    }

    @Test("a kept statement follows a schema change: SELECT * after a new column returns it")
    func keptStatementsFollowTheSchema() async throws {
        try await withDriver { driver in
            _ = try await driver.write { try await $0.query("INSERT INTO t (k, v) VALUES ('a', 'x')", []) }
            let select = "SELECT * FROM t"
            let before = try await driver.write { try await $0.query(select, []) }
            #expect(before.first?.values.keys.sorted() == ["id", "k", "v"])
            _ = try await driver.write { try await $0.query("ALTER TABLE t ADD COLUMN w TEXT DEFAULT 'new'", []) }
            let after = try await driver.write { try await $0.query(select, []) }
            #expect(after.first?.values.keys.sorted() == ["id", "k", "v", "w"])
            #expect(try after.first?.optionalString("w") == "new")
        }
    }

    @Test("more distinct statements than a connection keeps still answer right, each value bound")
    func manyDistinctStatements() async throws {
        try await withDriver { driver in
            try await driver.write { session in
                for n in 0..<600 {
                    // 600 texts, each run twice: the oldest are finalized as new ones come.
                    let sql = "INSERT INTO t (k, v) VALUES ($1, $2) ON CONFLICT (k) DO UPDATE SET v = excluded.v || '/\(n)'"
                    try await session.query(sql, .text("k\(n % 7)"), .text("first \(n)"))
                    try await session.query(sql, .text("k\(n % 7)"), .text("again"))
                }
            }
            let rows = try await driver.read { try await $0.query("SELECT k, v FROM t ORDER BY k", []) }
            #expect(rows.count == 7)
            #expect(try rows.first?.optionalString("v") == "again/595", "the last text for k0 (n = 595) ran last")
        }
    }


    @Test("texts and timestamps bound in place read back as bound: empty, non-ASCII, beside NULLs and numbers, past a megabyte, statement after statement")
    func textsBoundInPlace() async throws {
        try await withDriver { driver in
            let big = String(repeating: "0123456789abcdé", count: 80_000)  // 1.28 MB: past what a connection keeps
            let stamp = Timestamp(microseconds: 1_796_000_000_123_456)
            let batches: [[SQLValue]] = [
                [.text(""), .text("a"), .null, .int(7), .text("Grüße, 世界 🎉"), .timestamp(stamp), .text("")],
                [.text(big), .text("after the big one"), .timestamp(stamp), .double(2.5), .bool(true), .text(big + "!")],
                [.text("short again"), .json(["k": "v"]), .text(String(repeating: "x", count: 5_000)), .null, .text("")],
            ]
            for binds in batches {
                let placeholders = binds.indices.map { "$\($0 + 1) AS c\($0)" }.joined(separator: ", ")
                let row = try #require(try await driver.write { try await $0.query("SELECT \(placeholders)", binds) }.first)
                for (index, value) in binds.enumerated() {
                    let column = "c\(index)"
                    switch value {
                    case .text(let text): #expect(try row.optionalString(column) == text, "\(column)")
                    case .timestamp(let t): #expect(try row.optionalString(column) == t.sqliteText, "\(column)")
                    case .json: #expect(try row.optionalString(column) == #"{"k":"v"}"#, "\(column)")
                    case .null: #expect(try row.optionalString(column) == nil, "\(column)")
                    case .int(let i): #expect(try row.int(column) == i, "\(column)")
                    case .double, .bool: #expect(try row.optionalString(column) != nil, "\(column)")
                    }
                }
            }
            // Rows written from such binds keep them once the buffer holds the next statement's.
            try await driver.write { session in
                try await session.query("INSERT INTO t (k, v) VALUES ($1, $2), ($3, $4)", [.text("e"), .text(""), .text("big"), .text(big)])
                try await session.query("INSERT INTO t (k, v) VALUES ($1, $2)", [.text("z"), .text("zz")])
            }
            let rows = try await driver.read { try await $0.query("SELECT k, v FROM t ORDER BY k", []) }
            #expect(try rows.map { try $0.optionalString("k") } == ["big", "e", "z"])
            #expect(try rows.map { try $0.optionalString("v") } == [big, "", "zz"])
        }
    }
    @Test("commits that grow the WAL past its threshold are checkpointed by the checkpointer, not by the committing writer")
    func backgroundCheckpoints() async throws {
        try await withDriver(checkpointPages: 8) { driver in
            let before = await driver.checkpointsCompleted()
            let filler = String(repeating: "x", count: 3_000)
            for n in 0..<40 {
                _ = try await driver.write { try await $0.query("INSERT INTO t (k, v) VALUES ($1, $2)", .text("k\(n)"), .text(filler)) }
            }
            let after = await driver.checkpointsCompleted()
            #expect(after > before, "40 commits of a page or more each, a threshold of 8 pages")
            #expect(after - before < 40, "at most one checkpoint is queued at a time: \(after - before)")
            let count = try await driver.read { try await $0.query("SELECT COUNT(*) AS n FROM t", []).first?.optionalInt("n") }
            #expect(count == 40)
        }
    }

    @Test("when the checkpointer cannot keep up, the writer finishes a checkpoint at the WAL's limit and the WAL starts over")
    func walStartsOver() async throws {
        try await withDriver(checkpointPages: 8, walLimitPages: 32) { driver in
            let filler = String(repeating: "x", count: 3_000)
            try await driver.whileCheckpointerIsHeld {
                for n in 0..<300 {
                    _ = try await driver.write { try await $0.query("INSERT INTO t (id, v) VALUES ($1, $2)", .int(n), .text(filler)) }
                }
            }
            // 300 commits of a page or more each: without a restart the WAL would hold them all.
            let frame = 24 + 4_096
            let walBytes = try #require(try FileManager.default.attributesOfItem(atPath: driver.path + "-wal")[.size] as? Int)
            // No pass of the held checkpointer ends: the writer finishes `threshold` pages past
            // the limit (plus what the last commit added).
            #expect(walBytes <= 32 + (32 + 8 + 4) * frame, "the WAL stays near its limit of 32 pages: \(walBytes / frame) frames")
            #expect(driver.checkpointsFinishedByWriter > 0)
            let count = try await driver.read { try await $0.query("SELECT COUNT(*) AS n FROM t", []).first?.optionalInt("n") }
            #expect(count == 300, "nothing lost when the WAL started over")
        }
    }

    @Test("at the WAL's limit a free checkpointer is handed a pass, and the writer finishes the checkpoint in the first commit after that pass ends")
    func limitHandedOffFirst() async throws {
        try await withDriver(checkpointPages: 8, walLimitPages: 32) { driver in
            let frame = 24 + 4_096
            func walFrames() throws -> Int {
                let bytes = try #require(try FileManager.default.attributesOfItem(atPath: driver.path + "-wal")[.size] as? Int)
                return max(0, bytes - 32) / frame
            }
            // A reader's snapshot keeps every checkpoint from copying what came after it, so the
            // WAL cannot start over and grows through the limit.
            let (held, holding) = AsyncStream<Void>.makeStream()
            let (release, releasing) = AsyncStream<Void>.makeStream()
            async let reading: Int? = driver.read { session in
                let count = try await session.query("SELECT COUNT(*) AS n FROM t", []).first?.optionalInt("n")
                holding.yield()
                for await _ in release { break }
                return count
            }
            for await _ in held { break }
            let filler = String(repeating: "x", count: 3_000)
            var n = 0
            func commit() async throws {
                let id = n
                _ = try await driver.write { try await $0.query("INSERT INTO t (id, v) VALUES ($1, $2)", .int(id), .text(filler)) }
                n += 1
            }
            while try walFrames() < 32 {
                try await commit()
                // Every pass handed off so far has run: the checkpointer is free again.
                _ = await driver.checkpointsCompleted()
            }
            let reached = try walFrames()
            #expect(reached < 40, "a commit adds a few pages: \(reached) frames")
            #expect(driver.checkpointsFinishedByWriter == 0, "the commit that reached the limit handed a pass to the free checkpointer")
            try await commit()
            #expect(driver.checkpointsFinishedByWriter == 1, "the first commit after that pass ended finished a checkpoint")
            // The reader's snapshot kept it from copying everything: the writer tries again only
            // after another pass (handed off `threshold` pages after the last) or that much growth.
            while try walFrames() < reached + 6 { try await commit() }
            #expect(driver.checkpointsFinishedByWriter == 1, "no checkpoint in every commit while a reader holds the WAL")
            // The last of those commits handed the checkpointer its next pass (each commit adds
            // four pages: 42 reaches the hand-off mark of 34 + 8). Wait for it to end: a commit
            // that came while it still ran would find it busy and try again only at the next one.
            _ = await driver.checkpointsCompleted()
            while try walFrames() < reached + 8 + 4 {
                try await commit()
                _ = await driver.checkpointsCompleted()
            }
            #expect(driver.checkpointsFinishedByWriter == 2, "after the next pass, the writer tried once more")
            releasing.yield()
            releasing.finish()
            #expect(try await reading == 0)
            let count = try await driver.read { try await $0.query("SELECT COUNT(*) AS n FROM t", []).first?.optionalInt("n") }
            #expect(count == n)
        }
    }

    @Test("a driver that wrote and closes beside another process copies the WAL, so the other's next write starts it over; one that only read leaves it")
    func closeCheckpointsForTheOthers() async throws {
        // Thresholds no commit reaches: no driver's checkpointer runs before a close.
        try await withDriver(checkpointPages: 1_000_000, walLimitPages: 1_000_000) { server in
            func other() async throws -> SQLiteDriver {
                try await SQLiteDriver.open(path: server.path, readers: 1, checkpointPages: 1_000_000, walLimitPages: 1_000_000)
            }
            let filler = String(repeating: "x", count: 3_000)
            func insert(_ driver: SQLiteDriver, _ ids: Range<Int>) async throws {
                _ = try await driver.write { session in
                    for n in ids { try await session.query("INSERT INTO t (id, v) VALUES ($1, $2)", .int(n), .text(filler)) }
                }
            }
            try await insert(server, 0..<100)
            let grown = server.walPagesAfterLastCommit
            #expect(grown > 75, "the server's commit is in the WAL")

            // A `tower tasks` beside the server, say: it only reads, and copies nothing as it exits.
            let reader = try await other()
            let seen = try? await reader.read { try await $0.query("SELECT COUNT(*) AS n FROM t", []).first?.optionalInt("n") }
            await reader.close()
            #expect(seen == 100)
            try await insert(server, 100..<101)
            #expect(server.walPagesAfterLastCommit > grown, "the WAL went on growing: \(server.walPagesAfterLastCommit) pages")

            // A worker process: it writes, then stops. Not the last connection to the file, so
            // SQLite itself would leave the WAL as it is.
            let worker = try await other()
            do {
                try await insert(worker, 200..<300)
            } catch {
                await worker.close()
                throw error
            }
            await worker.close()
            try await insert(server, 1_000..<1_001)
            #expect(server.walPagesAfterLastCommit < 10, "the WAL started over at the server's write: \(server.walPagesAfterLastCommit) pages")
            let count = try await server.read { try await $0.query("SELECT COUNT(*) AS n FROM t", []).first?.optionalInt("n") }
            #expect(count == 202)
        }
    }

    @Test("WAL frames gathered per commit: every commit, many pieces long or one page, is in the file for another connection when it returns; a rolled-back spill leaves nothing")
    func gatheredWAL() async throws {
        struct RolledBack: Error {}
        try await withDriver { driver in
            let other = try await SQLiteDriver.open(path: driver.path, readers: 1)  // as another process would
            do {
                func count() async throws -> Int? {
                    try await other.read { try await $0.query("SELECT COUNT(*) AS n FROM t", []).first?.optionalInt("n") }
                }
                let filler = String(repeating: "x", count: 3_000)
                // About 300 frames, 1.2 MB: ten pieces of gathered bytes.
                _ = try await driver.write { session in
                    for n in 0..<400 { try await session.query("INSERT INTO t (id, v) VALUES ($1, $2)", .int(n), .text(filler)) }
                }
                #expect(try await count() == 400)
                // With a tiny page cache, a big transaction writes frames before its commit; it rolls back.
                _ = try await driver.withSession { try await $0.query("PRAGMA cache_size = 8", []) }
                await #expect(throws: RolledBack.self) {
                    _ = try await driver.write { session in
                        for n in 400..<800 { try await session.query("INSERT INTO t (id, v) VALUES ($1, $2)", .int(n), .text(filler)) }
                        throw RolledBack()
                    }
                }
                // One-page commits, each read back by the other connection at once.
                for n in 800..<820 {
                    _ = try await driver.write { try await $0.query("INSERT INTO t (id, v) VALUES ($1, 'small')", .int(n)) }
                    #expect(try await count() == 400 + n - 799)
                }
                let check = try await other.read { try await $0.query("PRAGMA integrity_check", []).first?.optionalString("integrity_check") }
                #expect(check == "ok")
            } catch {
                await other.close()
                throw error
            }
            await other.close()
        }
    }

    @Test("numbers another program stored where an integer or a timestamp belongs are read, or refused naming the column: never a trap")
    func foreignNumbers() async throws {
        try await withDriver { driver in
            let row = try #require(
                try await driver.read {
                    try await $0.query(
                        "SELECT 42.0 AS whole, 2.7 AS fraction, 1e300 AS huge, 1700000000 AS seconds, 9223372036854775807 AS far, 1e300 AS farther", []
                    ).first
                })
            #expect(try row.optionalInt("whole") == 42)
            #expect(try row.optionalInt("fraction") == 2, "its fraction dropped, as before")
            #expect(throws: StorageError.self) { try row.optionalInt("huge") }
            #expect(try row.optionalTimestamp("seconds") == Timestamp(iso8601: "2023-11-14T22:13:20Z"))
            #expect(throws: StorageError.self) { try row.optionalTimestamp("far") }
            #expect(throws: StorageError.self) { try row.optionalTimestamp("farther") }
        }
    }

    @Test("a database path SQLite cannot open gets one clear error naming it")
    func unopenable() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("tower-sqlite-\(UUID().uuidString).db")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        do {
            let driver = try await SQLiteDriver.open(path: folder.path, readers: 1)
            await driver.close()
            Issue.record("a folder opened as a database")
        } catch {
            #expect(error.kind == .unreachable)
            #expect(error.message == "cannot open the SQLite database \(folder.path): unable to open database file", "\(error.message)")
        }
    }

    @Test("a closed driver refuses transactions with a clear error")
    func closedDriver() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("tower-sqlite-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        let driver = try await SQLiteDriver.open(path: folder.appendingPathComponent("t.db").path, readers: 1)
        await driver.close()
        do {
            _ = try await driver.read { try await $0.query("SELECT 1 AS one", []) }
            Issue.record("a closed driver answered")
        } catch let error as StorageError {
            #expect(error.kind == .unreachable)
            #expect(error.message.contains("closed"))
        }
    }

    /// The mask the kernel keeps for the calling thread (`/proc/thread-self/status`), read
    /// without `CPUSet`.
    static func kernelCPUs() throws -> String {
        let status = try String(contentsOfFile: "/proc/thread-self/status", encoding: .utf8)
        let line = status.split(separator: "\n").first { $0.hasPrefix("Cpus_allowed_list:") } ?? ""
        return line.dropFirst("Cpus_allowed_list:".count).trimmingCharacters(in: .whitespaces)
    }

    @Test("placeWriter runs the writer's thread, where write transactions run, on the CPUs given; readers and the caller keep theirs")
    func writerPlaced() async throws {
        let allowed = try CPUSet.ofCurrentThread()
        #expect(try Self.kernelCPUs() == "\(allowed)")
        let target = CPUSet([try #require(allowed.cpus.last)])
        try await withDriver { driver in
            let placed = try await driver.placeWriter(on: target)
            let writing = try await driver.write { _ in try Self.kernelCPUs() }
            let reading = try await driver.read { _ in try Self.kernelCPUs() }
            let caller = try CPUSet.ofCurrentThread()
            #expect(placed == target)
            #expect(writing == "\(target)")
            #expect(reading == "\(allowed)")
            #expect(caller == allowed)
        }
    }

    @Test("a CPU set is written as Linux writes it, and one that names no CPU, or a CPU past the mask, is refused")
    func cpuSets() throws {
        #expect(CPUSet([6, 0, 1, 2, 3, 3]).description == "0-3,6")
        #expect(CPUSet([0, 2, 3]).description == "0,2-3")
        #expect(CPUSet([1]).description == "1")
        #expect(throws: StorageError.self) { try CPUSet([]).applyToCurrentThread() }
        #expect(throws: StorageError.self) { try CPUSet([CPUSet.largestCPU + 1]).applyToCurrentThread() }
        #expect(throws: StorageError.self) { try CPUSet([-1]).applyToCurrentThread() }
    }
}
