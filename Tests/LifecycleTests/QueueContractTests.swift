import Bridge
import CWOM
import Foundation
import LegacyTasks
import Storage
import Testing
import TowerJSON
import TowerTestSupport

/// The queue's contract, run on every driver (River's `riverdrivertest` is the model). Time is set
/// on the engine's clock, never waited for.
@Suite("Queue contract")
struct QueueContractTests {
    @Test("claims take the oldest queued tasks first, never more than the limit", arguments: Dialect.allCases)
    func claimOrderAndLimit(_ dialect: Dialect) async throws {
        try await withEngine(dialect) { bench in
            var ids: [String] = []
            for n in 0..<5 {
                ids.append(try await bench.enqueue("Task number \(n)").id)
                bench.clock.advance(seconds: 1)
            }
            let first = try await bench.engine.claim(bench.claimant("worker-a"), limit: 3)
            #expect(first.map(\.task.id) == Array(ids.prefix(3)))
            #expect(first.allSatisfy { $0.task.status == .running && $0.task.attempt == 1 && $0.task.assignedTo == "worker-a" })
            let rest = try await bench.engine.claim(bench.claimant("worker-a"), limit: 10)
            #expect(rest.map(\.task.id) == Array(ids.suffix(2)))
            #expect(try await bench.engine.claim(bench.claimant("worker-a"), limit: 10).isEmpty)
        }
    }

    @Test("a claim pins the Issue's newest context in a new running Run and moves the Issue", arguments: Dialect.allCases)
    func claimPins(_ dialect: Dialect) async throws {
        try await withEngine(dialect) { bench in
            let legacy = try await bench.enqueue("A task the legacy service stored without CWOM", createCWOM: false)
            let claim = try await bench.claimOne()
            #expect(claim.task.id == legacy.id)
            let stored = try await bench.task(legacy.id)
            #expect(stored.cwomIssueId == claim.issue.id, "adapted at claim")
            #expect(stored.currentRunId == claim.run.id)
            let run = try await bench.run(claim.run.id)
            #expect(run.status == .running)
            #expect(run.inputs.contextPackets == [claim.packet.ref])
            #expect(run.inputs.constraintSnapshot == claim.snapshot.ref)
            let issue = try await bench.issue(claim.issue.id)
            #expect(issue.status == .running)
            #expect(issue.runs.map(\.id) == [claim.run.id])
        }
    }

    /// An engine whose statements are counted (and can be recorded) on its way to `database`.
    static func countedBench(_ database: Database) -> (Bench, CountingDriver) {
        let counting = CountingDriver(database.driver)
        let counted = Database(driver: counting, location: database.location)
        let clock = ManualClock(Timestamp(microseconds: 1_800_000_000_000_000))
        return (Bench(database: counted, clock: clock, engine: LifecycleEngine(database: counted, clock: clock)), counting)
    }

    @Test("a claim of one task and a claim of sixteen send the same number of statements", arguments: Dialect.allCases)
    func claimCost(_ dialect: Dialect) async throws {
        try await withDatabase(dialect) { database, _ in
            let (bench, counting) = Self.countedBench(database)
            for n in 0..<17 { try await bench.enqueue("Task number \(n)") }
            _ = counting.take()
            #expect(try await bench.engine.claim(bench.claimant("worker-a"), limit: 1).count == 1)
            let one = counting.take()
            #expect(try await bench.engine.claim(bench.claimant("worker-a"), limit: 16).count == 16)
            let sixteen = counting.take()
            #expect(one.transactions == 1 && sixteen.transactions == 1)
            #expect(sixteen.statements == one.statements, "one: \(one.statements), sixteen: \(sixteen.statements)")
        }
    }

    @Test("a claim writes each task it takes once: the Run's id comes with the new status", arguments: Dialect.allCases)
    func claimWritesTasksOnce(_ dialect: Dialect) async throws {
        try await withDatabase(dialect) { database, _ in
            let (bench, counting) = Self.countedBench(database)
            for n in 0..<5 { try await bench.enqueue("Task number \(n)") }
            counting.record()
            let claims = try await bench.engine.claim(bench.claimant("worker-a"), limit: 4)
            let updates = counting.takeRecorded().map { $0.sql.components(separatedBy: "UPDATE tasks ").count - 1 }
            #expect(updates.reduce(0, +) == 1, "statements that update tasks: \(updates)")
            #expect(claims.count == 4 && Set(claims.map(\.run.id)).count == 4)
            for claim in claims {
                #expect(claim.task.currentRunId == claim.run.id)
                let stored = try await database.read { store in try await store.tasks.get(claim.task.id) }
                #expect(stored?.currentRunId == claim.run.id && stored?.status == .running)
                let run = try await database.read { store in try await store.runs.get(claim.run.id) }
                #expect(run?.meta["task_id"] == .string(claim.task.id))
            }
        }
    }

    @Test("a claim reads the queue through an index in its own order: its cost does not grow with the backlog",
        arguments: Dialect.allCases)
    func claimUsesTheQueueIndex(_ dialect: Dialect) async throws {
        try await withDatabase(dialect) { database, _ in
            let (bench, counting) = Self.countedBench(database)
            for n in 0..<40 { try await bench.enqueue("Task number \(n)") }
            counting.record()
            #expect(try await bench.engine.claim(bench.claimant("worker-a"), limit: 4).count == 4)
            let claims = counting.takeRecorded().filter { $0.sql.contains("status = 'queued'") }
            try #require(claims.count == 1, "the claim's statement: \(claims.map(\.sql))")
            let (sql, binds) = claims[0]
            let plan: [String] = try await database.write { store in
                if dialect == .postgres {
                    // With sequential scans and sorts priced out, a plan that still sorts (or scans
                    // the table) has no index that gives the claim its rows in order.
                    _ = try await store.session.query("SET LOCAL enable_seqscan = off", [])
                    _ = try await store.session.query("SET LOCAL enable_sort = off", [])
                    return try await store.session.query("EXPLAIN \(sql)", binds).map { try $0.string("QUERY PLAN") }
                }
                return try await store.session.query("EXPLAIN QUERY PLAN \(sql)", binds).map { try $0.string("detail") }
            }
            #expect(plan.contains { $0.contains("ix_tasks_queue") }, "\(plan.joined(separator: "\n"))")
            #expect(!plan.contains { $0.contains("Sort") || $0.contains("Seq Scan on tasks") || $0.contains("TEMP B-TREE") },
                "\(plan.joined(separator: "\n"))")
        }
    }

    /// A docs task for `repo`, as the engine's intake takes it.
    static func enqueueRequest(objective: String = "Update the docs", repo: String = "testorg/docs", key: String? = nil,
        traceId: String = "trace") -> LifecycleEngine.EnqueueRequest
    {
        LifecycleEngine.EnqueueRequest(
            TaskRequest(
                idempotencyKey: key, requestedBy: Requester(kind: .human, id: "alice"), objective: objective,
                operation: .docs, target: TaskTarget(repo: repo)),
            id: UUID().uuidString.lowercased(), traceId: traceId, createCWOM: true)
    }

    @Test("an engine looks up (or creates) a repository's Repo once and remembers it once committed; a new engine looks it up again",
        arguments: Dialect.allCases)
    func intakeRemembersRepos(_ dialect: Dialect) async throws {
        try await withDatabase(dialect) { database, _ in
            let counting = CountingDriver(database.driver)
            let counted = Database(driver: counting, location: database.location)
            func statements(_ engine: LifecycleEngine, _ repo: String) async throws -> Int {
                _ = counting.take()
                _ = try await engine.enqueue([Self.enqueueRequest(repo: repo)])
                return counting.take().statements
            }
            let engine = LifecycleEngine(database: counted)
            let creating = try await statements(engine, "testorg/docs")  // looks up, creates
            let remembered = try await statements(engine, "testorg/docs")
            let other = try await statements(engine, "testorg/other")  // another repository: looked up
            let fresh = try await statements(LifecycleEngine(database: counted), "testorg/docs")  // exists, looked up
            #expect(remembered < fresh, "remembered: \(remembered), a new engine: \(fresh)")
            #expect(fresh < creating, "a new engine finds the Repo without creating it")
            #expect(other == creating)
            let repos = try await database.read { store in try await store.repos.list() }
            #expect(repos.count == 2)
        }
    }

    @Test("sixteen enqueues in one batch send the statements of one; keys taken before or within the batch conflict",
        arguments: Dialect.allCases)
    func intakeBatch(_ dialect: Dialect) async throws {
        try await withDatabase(dialect) { database, _ in
            let counting = CountingDriver(database.driver)
            let counted = Database(driver: counting, location: database.location)
            let engine = LifecycleEngine(database: counted)
            func request(_ n: Int, key: String? = nil) -> LifecycleEngine.EnqueueRequest {
                Self.enqueueRequest(objective: "Task number \(n)", key: key, traceId: "trace-\(n)")
            }
            _ = try await engine.enqueue([request(0, key: "first")])  // the Repo exists from here on
            _ = counting.take()
            _ = try await engine.enqueue([request(1, key: "one")])
            let one = counting.take()
            let outcomes = try await engine.enqueue((2..<16).map { request($0) } + [request(16, key: "first"), request(17, key: "k"), request(18, key: "k")])
            let many = counting.take()
            #expect(one.transactions == 1 && many.transactions == 1)
            #expect(many.statements == one.statements, "one: \(one.statements), seventeen: \(many.statements)")
            var created: [TaskRecord] = []
            var conflicts: [TaskRecord] = []
            for outcome in outcomes {
                switch outcome {
                case .created(let stored):
                    let (task, cwom) = (stored.task, stored.objects)
                    created.append(task)
                    #expect(cwom != nil && task.cwomIssueId == cwom?.issue.id)
                case .conflict(let task): conflicts.append(task)
                }
            }
            #expect(created.count == 15)
            #expect(conflicts.map(\.idempotencyKey) == ["first", "k"])
            #expect(conflicts.last?.id == created.last?.id, "the second 'k' conflicts with the first one of the batch")
            let stored = try await counted.read { try await $0.tasks.list(page: Page(limit: 100)) }
            #expect(stored.count == 17, "the first, the one, and fifteen")
            let issues = try await counted.read { try await $0.issues.list(page: Page(limit: 100)) }
            #expect(issues.count == 17)
        }
    }

    @Test("an intake batch's insert texts are written once per table and batch size; a kept text writes every row of its batch",
        arguments: Dialect.allCases)
    func intakeKeepsInsertTexts(_ dialect: Dialect) async throws {
        try await withDatabase(dialect) { database, _ in
            let engine = LifecycleEngine(database: database)
            func request(_ n: Int) -> LifecycleEngine.EnqueueRequest { Self.enqueueRequest(objective: "Task number \(n)", traceId: "trace-\(n)") }
            _ = try await engine.enqueue([request(0)])  // creates the Repo too: one audit row more
            _ = try await engine.enqueue([request(1)])  // the Repo known from here on
            let ones = engine.insertTexts.made
            _ = try await engine.enqueue([request(2)])
            #expect(engine.insertTexts.made == ones, "a batch of one again: every text kept")
            _ = try await engine.enqueue([request(3), request(4)])
            let twos = engine.insertTexts.made - ones
            #expect(twos > 5, "a batch of two: a text of its own for the task, its CWOM objects, their links and audit rows (\(twos))")
            _ = try await engine.enqueue([request(5), request(6)])
            #expect(engine.insertTexts.made == ones + twos, "a batch of two again: every text kept")
            let tasks = try await database.read { try await $0.tasks.list(page: Page(limit: 100)) }
            #expect(Set(tasks.map(\.objective)) == Set((0...6).map { "Task number \($0)" }))
            let audit = try await database.read { store in
                try await store.session.query("SELECT COUNT(*) AS n FROM audit_log WHERE trace_id = $1", [.text("trace-6")]).first?.int("n")
            }
            let first = try await database.read { store in
                try await store.session.query("SELECT COUNT(*) AS n FROM audit_log WHERE trace_id = $1", [.text("trace-1")]).first?.int("n")
            }
            #expect(audit == first && (audit ?? 0) > 0, "the last task of a kept text has every audit row the first one has")
        }
    }

    @Test("the kept texts of a table are told apart by their columns, and dropped past their capacity")
    func insertTextsByColumns() {
        let texts = InsertTexts(capacity: 2)
        var made = 0
        func text(_ table: String, _ names: [String], rows: Int) -> String {
            texts.text(table, names: names, rows: rows, suffix: "") {
                made += 1
                return "\(table) \(names) \(rows)"
            }
        }
        #expect(text("t", ["a", "b"], rows: 1) == "t [\"a\", \"b\"] 1")
        #expect(text("t", ["a", "b"], rows: 1) == "t [\"a\", \"b\"] 1" && made == 1)
        #expect(text("t", ["a", "c"], rows: 1) == "t [\"a\", \"c\"] 1" && made == 2, "other columns: another text")
        #expect(text("t", ["a", "b"], rows: 2) == "t [\"a\", \"b\"] 2" && made == 3)
        #expect(text("u", ["a", "b"], rows: 1) == "u [\"a\", \"b\"] 1" && made == 4, "past the capacity: the kept ones dropped")
        #expect(text("t", ["a", "b"], rows: 2) == "t [\"a\", \"b\"] 2" && made == 5)
        #expect(texts.made == made)
    }

    @Test("a batch mixing a task without CWOM objects, one into a known repository and one into a new one writes every row, parents first",
        arguments: Dialect.allCases)
    func intakeMixedBatch(_ dialect: Dialect) async throws {
        try await withDatabase(dialect) { database, _ in
            let engine = LifecycleEngine(database: database)
            _ = try await engine.enqueue([Self.enqueueRequest(repo: "testorg/docs")])  // the engine knows this Repo from here on
            var plain = Self.enqueueRequest(objective: "No CWOM objects", traceId: "trace-plain")
            plain.createCWOM = false
            // Built before the transaction: the first has only its task and audit rows, the
            // second everything, the third waits for its Repo, found in the transaction.
            let prepared = try [plain, Self.enqueueRequest(objective: "Known repository"), Self.enqueueRequest(repo: "testorg/new")].map(engine.prepare)
            let outcomes = try await engine.enqueue(prepared)
            var issues: [String?] = []
            var tasks: [TaskRecord] = []
            for outcome in outcomes {
                guard case .created(let created) = outcome else {
                    Issue.record("not created: \(outcome)")
                    continue
                }
                let (task, objects) = (created.task, created.objects)
                #expect(task.cwomIssueId == objects?.issue.id)
                issues.append(task.cwomIssueId)
                tasks.append(task)
            }
            #expect(issues.count == 3 && issues[0] == nil && issues[1] != nil && issues[2] != nil)
            let stored = try await database.read { try await $0.tasks.list(page: Page(limit: 10)) }
            #expect(stored.count == 4)
            let repos = try await database.read { store in try await store.repos.list() }
            #expect(Set(repos.map(\.name)).count == 2)
            let plainId = try #require(tasks.first?.id)
            let audit = try await database.read { store in try await store.audit.list(AuditLog.Filter(entityId: plainId)) }
            #expect(audit.map(\.action) == [.statusChanged, .created], "the plain task's creation and its move to the queue, newest first")
        }
    }

    @Test("a batch of sixteen completions sends the statements of one", arguments: Dialect.allCases)
    func completionCost(_ dialect: Dialect) async throws {
        try await withDatabase(dialect) { database, _ in
            let (bench, counting) = Self.countedBench(database)
            for n in 0..<17 { try await bench.enqueue("Task number \(n)") }
            let claims = try await bench.engine.claim(bench.claimant("worker-a"), limit: 17)
            _ = counting.take()
            #expect(try await bench.engine.complete([bench.completion(claims[0], .succeeded, evidence: true)]) == [.finished(.completed)])
            let one = counting.take()
            let results = try await bench.engine.complete(claims.dropFirst().map { bench.completion($0, .succeeded, evidence: true) })
            #expect(results.allSatisfy { $0 == .finished(.completed) })
            let sixteen = counting.take()
            #expect(one.transactions == 1 && sixteen.transactions == 1)
            #expect(sixteen.statements == one.statements, "one: \(one.statements), sixteen: \(sixteen.statements)")
        }
    }

    @Test("on SQLite, an enqueue, a claim and a completion run every statement on their connection's thread without a hop each")
    func sqliteStatementsRunInline() async throws {
        try await withEngine(.sqlite) { bench in
            let driver = try #require(bench.database.driver as? SQLiteDriver)
            let before = driver.statementHops
            try await bench.enqueue()
            let claim = try await bench.claimOne()
            #expect(try await bench.engine.complete([bench.completion(claim, .succeeded, evidence: true)]) == [.finished(.completed)])
            #expect(try await bench.task(claim.task.id).status == .completed)
            #expect(driver.statementHops == before, "hops: \(driver.statementHops - before)")
        }
    }

    @Test("on SQLite, a round of enqueue, claim and completion like the ones before it compiles no statement: each is kept and run again")
    func sqliteStatementsAreKept() async throws {
        try await withEngine(.sqlite) { bench in
            let driver = try #require(bench.database.driver as? SQLiteDriver)
            func round() async throws {
                try await bench.enqueue()
                let claim = try await bench.claimOne()
                #expect(try await bench.engine.complete([bench.completion(claim, .succeeded, evidence: true)]) == [.finished(.completed)])
            }
            // The first rounds prepare what they need (the first enqueue also creates the Repo).
            try await round()
            try await round()
            let before = driver.statementCompilations
            try await round()
            #expect(driver.statementCompilations == before, "compiled again: \(driver.statementCompilations - before)")
        }
    }

    @Test("on PostgreSQL, an enqueue into a repository the engine knows is one statement, without BEGIN and COMMIT")
    func postgresIntakeIsOneStatement() async throws {
        try await withEngine(.postgres) { bench in
            let driver = try #require(bench.database.driver as? PostgresDriver)
            _ = try await bench.engine.enqueue([Self.enqueueRequest(objective: "The first task of its repository: its Repo is looked up")])
            let auditBefore = try await bench.auditCount()
            let before = driver.transactionsCommitted
            let outcomes = try await bench.engine.enqueue([Self.enqueueRequest(objective: "The second: the Repo is known")])
            #expect(driver.transactionsCommitted == before, "sent as one statement")
            guard case .created(let created) = try #require(outcomes.first) else {
                Issue.record("not created: \(outcomes)")
                return
            }
            let (task, objects) = (created.task, created.objects)
            let stored = try await bench.task(task.id)
            #expect(stored.status == .queued)
            #expect(try await bench.issue(stored.cwomIssueId).id == objects?.issue.id)
            #expect(try await bench.auditCount() > auditBefore, "its audit rows came with it")
        }
    }

    @Test("on PostgreSQL, the statement of an intake batch of four is kept prepared from its third use")
    func postgresIntakeBatchIsPrepared() async throws {
        try await withDatabase(.postgres) { _, test in
            // One connection, so that the server's list of prepared statements is the engine's.
            let database = try await Database.open(test.location, poolSize: 1, requireCurrentSchema: false)
            let (bench, counting) = Self.countedBench(database)
            try await bench.enqueue("The first task of its repository: its Repo is looked up")
            var statement = ""
            for round in 0..<3 {
                counting.record()
                let outcomes = try await bench.engine.enqueue((0..<4).map { Self.enqueueRequest(objective: "Batch \(round), task \($0)") })
                #expect(outcomes.count == 4)
                let sent = counting.takeRecorded()
                #expect(sent.count == 1, "one statement")
                #expect(statement.isEmpty || sent.first?.sql == statement, "the same text every time")
                statement = sent.first?.sql ?? ""
            }
            let text = statement
            let prepared = try await database.driver.withSession { session in
                try await session.query("SELECT count(*) AS n FROM pg_prepared_statements WHERE statement = $1", [.text(text)])
                    .first?.int("n")
            }
            #expect(prepared == 1)
            await database.close()
        }
    }

    @Test("on PostgreSQL a claim of a given size is planned once: after its first runs the server keeps the generic plans of its statement and its read")
    func postgresClaimKeepsItsPlan() async throws {
        try await withDatabase(.postgres) { _, test in
            // One connection, so that the server's list of prepared statements is the engine's.
            let database = try await Database.open(test.location, poolSize: 1, requireCurrentSchema: false)
            let (bench, counting) = Self.countedBench(database)
            // A backlog the planner knows of: with `LIMIT $n` it then priced a generic plan for a
            // tenth of the queue, above the custom one for two rows, and planned every claim anew;
            // a read by `id = ANY($n)` was planned at every call whatever the backlog.
            _ = try await bench.engine.enqueue((0..<1000).map { Self.enqueueRequest(objective: "Task number \($0)") })
            // The layout's tables of this test's schema only: a bare ANALYZE would lock every
            // table of the database, other tests' too.
            _ = try await database.write { store in try await store.statistics.refreshAfterBulkLoad() }
            for _ in 0..<11 { #expect(try await bench.engine.claim(bench.claimant("worker-a"), limit: 2).count == 2) }
            counting.record()
            #expect(try await bench.engine.claim(bench.claimant("worker-a"), limit: 2).count == 2)
            let statements = counting.takeRecorded().map(\.sql).filter { $0.hasPrefix("SELECT") || $0.contains("status = 'queued'") }
            #expect(statements.count == 2, "the claim and its read of Issues with their packets: \(statements)")
            let replanned = try await database.driver.withSession { session in
                var replanned: [String] = []
                for sql in statements {
                    let plans = try await session.query(
                        "SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE statement = $1", [.text(sql)]
                    ).first.map { (generic: try $0.int("generic_plans"), custom: try $0.int("custom_plans")) }
                    if (plans?.generic ?? 0) == 0 { replanned.append("\(plans.map { "\($0.custom) custom plans" } ?? "unprepared"): \(sql.prefix(70))") }
                }
                return replanned
            }
            #expect(replanned.isEmpty, "planned at every call: \(replanned)")
            await database.close()
        }
    }

    @Test("on PostgreSQL, a worker's completion of eight tasks, Artifacts and evidence included, is kept prepared from its third use")
    func postgresCompletionBatchIsPrepared() async throws {
        try await withDatabase(.postgres) { _, test in
            // One connection, so that the server's list of prepared statements is the engine's.
            let database = try await Database.open(test.location, poolSize: 1, requireCurrentSchema: false)
            let (bench, counting) = Self.countedBench(database)
            var sent: [(sql: String, binds: [SQLValue])] = []
            for round in 0..<3 {
                for n in 0..<8 { try await bench.enqueue("Round \(round), task \(n)") }
                let claims = try await bench.engine.claim(bench.claimant("worker-a"), limit: 8)
                #expect(claims.count == 8)
                let completions = claims.map { claim in
                    var completion = bench.completion(claim, .succeeded, evidence: true)
                    // What a worker records: the output and the trace folder.
                    completion.artifacts = [ArtifactType.doc, .trace].map {
                        Artifact(
                            header: ObjectHeader(traceId: claim.task.traceId), producedBy: claim.run.ref, forIssue: claim.issue.ref,
                            type: $0, title: $0.rawValue, uri: "file:///tmp/runs/\(claim.run.id)/", digest: "sha256:" + String(repeating: "0", count: 64),
                            mediaType: "text/markdown", sizeBytes: 1000, createdAt: bench.clock.now())
                    }
                    return completion
                }
                counting.record()
                #expect(try await bench.engine.complete(completions).allSatisfy { $0 == .finished(.completed) })
                sent = counting.takeRecorded()
            }
            let largest = try #require(sent.max { $0.binds.count < $1.binds.count })
            #expect(largest.binds.count > 700, "the combined write of eight completions: \(largest.binds.count) values")
            let statements = sent.map(\.sql)
            let unprepared = try await database.driver.withSession { session in
                var unprepared: [String] = []
                for sql in statements {
                    let n = try await session.query("SELECT count(*) AS n FROM pg_prepared_statements WHERE statement = $1", [.text(sql)]).first?.int("n")
                    if n != 1 { unprepared.append(String(sql.prefix(80))) }
                }
                return unprepared
            }
            #expect(unprepared.isEmpty, "sent unnamed on the third round: \(unprepared)")
            await database.close()
        }
    }

    @Test("a task waits for its run_after: a rescued task is claimable only after its backoff", arguments: Dialect.allCases)
    func runAfter(_ dialect: Dialect) async throws {
        try await withEngine(dialect) { bench in
            let task = try await bench.enqueue()
            _ = try await bench.claimOne()
            bench.clock.advance(seconds: Bench.lease + 1)
            let rescued = try await bench.engine.rescue(by: Actor(kind: .system, id: "rescuer")) { _ in 60 }
            #expect(rescued.map(\.id) == [task.id])
            #expect(try await bench.task(task.id).status == .queued)
            #expect(try await bench.engine.claim(bench.claimant("worker-b"), limit: 5).isEmpty, "not before run_after")
            bench.clock.advance(seconds: 61)
            let again = try await bench.engine.claim(bench.claimant("worker-b"), limit: 5)
            #expect(again.map(\.task.id) == [task.id])
            #expect(again.first?.task.attempt == 2)
        }
    }

    @Test("two concurrent claimers never take the same task", arguments: Dialect.allCases)
    func concurrentClaimers(_ dialect: Dialect) async throws {
        try await withEngine(dialect) { bench in
            var ids: Set<String> = []
            for n in 0..<40 { ids.insert(try await bench.enqueue("Task number \(n)").id) }
            let taken = try await withThrowingTaskGroup(of: [String].self) { group in
                for worker in ["worker-a", "worker-b"] {
                    group.addTask {
                        var mine: [String] = []
                        while true {
                            let claims = try await bench.engine.claim(bench.claimant(worker), limit: 3)
                            if claims.isEmpty { return mine }
                            mine += claims.map(\.task.id)
                        }
                    }
                }
                return try await group.reduce(into: [[String]]()) { $0.append($1) }
            }
            let all = taken.flatMap { $0 }
            #expect(all.count == 40)
            #expect(Set(all) == ids, "every task claimed exactly once")
        }
    }

    @Test("the heartbeat extends only the leases still held and reports cancel requests", arguments: Dialect.allCases)
    func heartbeat(_ dialect: Dialect) async throws {
        try await withEngine(dialect) { bench in
            let claims = try await bench.claimAll(["first", "second"])
            let (one, two) = (claims[0].task.id, claims[1].task.id)
            _ = try await bench.engine.cancel(one, by: Actor(kind: .human, id: "carol"))
            bench.clock.advance(seconds: 10)
            let beat = try await bench.engine.heartbeat(bench.claimant("worker-a"), taskIds: [one, two, "not-mine"])
            #expect(Set(beat.held) == [one, two])
            #expect(beat.cancelRequested == [one])
            #expect(try await bench.task(two).leaseExpiresAt == bench.clock.now().adding(seconds: Bench.lease))
            let stranger = try await bench.engine.heartbeat(bench.claimant("worker-b"), taskIds: [one, two])
            #expect(stranger.held.isEmpty, "another worker's heartbeat extends nothing")
            // The lease runs out, a rescuer takes the task back: the old holder's heartbeat no longer holds it.
            bench.clock.advance(seconds: Bench.lease + 1)
            _ = try await bench.engine.rescue(by: Actor(kind: .system, id: "rescuer")) { _ in 0 }
            #expect(try await bench.engine.heartbeat(bench.claimant("worker-a"), taskIds: [one, two]).held.isEmpty)
        }
    }

    @Test("a stale completion after a rescue writes nothing", arguments: Dialect.allCases)
    func staleCompletion(_ dialect: Dialect) async throws {
        try await withEngine(dialect) { bench in
            let task = try await bench.enqueue()
            let lost = try await bench.claimOne("worker-a")
            bench.clock.advance(seconds: Bench.lease + 1)
            _ = try await bench.engine.rescue(by: Actor(kind: .system, id: "worker-b")) { _ in 0 }
            let lostRun = try await bench.run(lost.run.id)
            #expect(lostRun.status == .failed)
            #expect(lostRun.failure?.category == .runtime)
            let second = try await bench.claimOne("worker-b")
            #expect(second.task.attempt == 2)
            let before = try await bench.auditCount()
            let events = bench.engine.events.subscribe()
            let result = try await bench.engine.complete(bench.completion(lost, .succeeded))
            #expect(result == .fenced)
            #expect(await events.next { $0.taskId == task.id }?.kind == .fenced)
            #expect(try await bench.auditCount() == before, "not one audit row")
            let now = try await bench.task(task.id)
            #expect(now.status == .running && now.attempt == 2 && now.assignedTo == "worker-b")
            #expect(try await bench.run(lost.run.id).status == .failed, "the lost Run stays failed")
            #expect(try await bench.engine.complete(bench.completion(second, .succeeded, holder: "worker-b")) == .finished(.completed))
        }
    }

    @Test("a batch of completions in which one task was rescued meanwhile: the others commit, that one writes nothing",
        arguments: Dialect.allCases)
    func batchWithRescuedRow(_ dialect: Dialect) async throws {
        try await withEngine(dialect) { bench in
            let claims = try await bench.claimAll((0..<3).map { "Task number \($0)" })
            bench.clock.advance(seconds: Bench.lease - 5)
            // The worker still runs the first two; the third's lease runs out and a rescuer takes it.
            _ = try await bench.engine.heartbeat(bench.claimant("worker-a"), taskIds: [claims[0].task.id, claims[1].task.id])
            bench.clock.advance(seconds: 10)
            let rescued = try await bench.engine.rescue(by: Actor(kind: .system, id: "rescuer")) { _ in 0 }
            #expect(rescued.map(\.id) == [claims[2].task.id])
            let before = try await bench.audit("Task", claims[2].task.id).count
            let results = try await bench.engine.complete(claims.map { bench.completion($0, .succeeded) })
            #expect(results == [.finished(.completed), .finished(.completed), .fenced])
            #expect(try await bench.task(claims[0].task.id).status == .completed)
            #expect(try await bench.task(claims[1].task.id).status == .completed)
            #expect(try await bench.task(claims[2].task.id).status == .queued, "the rescued one is left to its next attempt")
            #expect(try await bench.audit("Task", claims[2].task.id).count == before)
            #expect(try await bench.run(claims[2].run.id).status == .failed, "its lost Run stays as the rescuer left it")
        }
    }

    @Test("a completion whose Run and Issue another process changed meanwhile ends the task and leaves them as they are",
        arguments: Dialect.allCases)
    func runAndIssueChangedElsewhere(_ dialect: Dialect) async throws {
        try await withEngine(dialect) { bench in
            let claims = try await bench.claimAll(
                ["Its Run is cancelled behind the engine's back", "Its Issue is blocked behind the engine's back"])
            // Another process (the legacy service, an operator's SQL) writes the rows directly.
            try await bench.database.write { store in
                try await store.session.query("UPDATE cwom_runs SET status = 'canceled' WHERE id = $1", [.text(claims[0].run.id)])
                try await store.session.query("UPDATE cwom_issues SET status = 'blocked' WHERE id = $1", [.text(claims[1].issue.id)])
            }
            let results = try await bench.engine.complete(claims.map { bench.completion($0, .succeeded, evidence: true) })
            #expect(results == [.finished(.completed), .finished(.completed)], "both attempts were still the worker's")
            #expect(try await bench.run(claims[0].run.id).status == .canceled, "a Run changed elsewhere is left as it is")
            #expect(try await bench.audit("Run", claims[0].run.id).allSatisfy { $0.after?["status"] != "under_review" })
            #expect(try await bench.issue(claims[0].task.cwomIssueId).status == .underReview, "its Issue follows the task")
            #expect(try await bench.run(claims[1].run.id).status == .underReview)
            #expect(try await bench.issue(claims[1].issue.id).status == .blocked, "an Issue changed elsewhere is left as it is")
            #expect(try await bench.audit("Issue", claims[1].issue.id).allSatisfy { $0.after?["status"] != "under_review" })
        }
    }

    @Test("a Run created for an Issue while its task is claimed: the Issue lists both Runs", arguments: Dialect.allCases)
    func runCreatedDuringClaim(_ dialect: Dialect) async throws {
        try await withEngine(dialect) { bench in
            for round in 0..<25 {
                let task = try await bench.enqueue("Round \(round)")
                let issue = try await bench.issue(task.cwomIssueId)
                let other = Run(
                    forIssue: issue.ref, repo: issue.repo, mode: .agent,
                    executor: Executor(actor: Actor(kind: .agent, id: "bot"), runtime: "cli"))
                async let claimed = bench.engine.claim(bench.claimant("worker-a"), limit: 1)
                async let created: Void = bench.engine.create(other, by: Actor(kind: .system, id: "api"))
                let claim = try await claimed
                try await created
                let runId = try #require(claim.first?.run.id)
                let listed = Set(try await bench.issue(issue.id).runs.map(\.id))
                #expect(listed == [runId, other.id], "round \(round)")
                if listed != [runId, other.id] { return }
            }
        }
    }

    @Test("a Run its worker executes takes no change from others but a cancel: what it reports is what it did", arguments: Dialect.allCases)
    func executingRunBelongsToItsWorker(_ dialect: Dialect) async throws {
        try await withEngine(dialect) { bench in
            let claim = try await bench.claimAll(["Executed by worker-a"])[0]
            let operator_ = Actor(kind: .human, id: "bob")
            for change in [
                RunUpdate(outputs: RunOutputs(decisionLog: ["appended while it ran"])), RunUpdate(status: .running, cost: Cost(usd: 9)),
                RunUpdate(status: .failed),
            ] {
                await #expect(throws: LifecycleError.ownedByWorker(entity: "Run", id: claim.run.id, taskId: claim.task.id, worker: "worker-a")) {
                    _ = try await bench.engine.updateRun(claim.run.id, change, by: operator_, traceId: nil)
                }
            }
            let results = try await bench.engine.complete([bench.completion(claim, .succeeded)])
            #expect(results == [.finished(.completed)])
            let run = try await bench.run(claim.run.id)
            #expect(run.cost.usd != 9)
            #expect(!run.outputs.decisionLog.contains("appended while it ran"))
            #expect(try await bench.audit("Run", claim.run.id).allSatisfy { $0.actor.actorId != "bob" }, "nothing of bob's was written")
        }
    }

    @Test("the completer batches concurrent completions and answers each after its commit", arguments: Dialect.allCases)
    func completer(_ dialect: Dialect) async throws {
        try await withEngine(dialect) { bench in
            for n in 0..<12 { try await bench.enqueue("Task number \(n)") }
            let claims = try await bench.engine.claim(bench.claimant("worker-a"), limit: 12)
            let completer = bench.engine.completer(policy: ReviewPolicy(), maxBatch: 5)
            let results = try await withThrowingTaskGroup(of: LifecycleEngine.CompletionResult.self) { group in
                for claim in claims { group.addTask { try await completer.submit(bench.completion(claim, .succeeded)) } }
                return try await group.reduce(into: [LifecycleEngine.CompletionResult]()) { $0.append($1) }
            }
            #expect(results.count == 12)
            #expect(results.allSatisfy { $0 == .finished(.completed) })
            for claim in claims { #expect(try await bench.task(claim.task.id).status == .completed) }
        }
    }

    @Test("a claim and a completion of more tasks than an id list holds write each row its own values", arguments: Dialect.allCases)
    func batchLongerThanAnIdList(_ dialect: Dialect) async throws {
        try await withEngine(dialect) { bench in
            // Past `SQL.listedUpTo` ids, PostgreSQL finds the rows by one array while each row's
            // values still refer to its own id.
            let claims = try await bench.claimAll((0..<40).map { "Task number \($0)" })
            let outcomes = claims.indices.map { $0 % 3 == 0 ? AttemptOutcome.failed : .succeeded }
            let results = try await bench.engine.complete(zip(claims, outcomes).map { bench.completion($0, $1) })
            #expect(results == outcomes.map { $0 == .failed ? .finished(.failed) : .finished(.completed) })
            for (claim, outcome) in zip(claims, outcomes) {
                let task = try await bench.task(claim.task.id)
                #expect(task.status == (outcome == .failed ? .failed : .completed))
                #expect(task.error == (outcome == .failed ? "it went wrong" : nil))
                #expect(task.result?["ok"] == .bool(outcome == .succeeded))
                #expect(try await bench.run(claim.run.id).status == (outcome == .failed ? .failed : .done))
                let issue = try await bench.issue(claim.issue.id)
                #expect(issue.status == (outcome == .failed ? .failed : .done))
                #expect(issue.runs.map(\.id) == [claim.run.id])
            }
        }
    }

    @Test("a cancelled Run is never completed, even when its executor finished", arguments: Dialect.allCases)
    func cancelledNeverCompleted(_ dialect: Dialect) async throws {
        try await withEngine(dialect) { bench in
            let task = try await bench.enqueue()
            let claim = try await bench.claimOne()
            let events = bench.engine.events.subscribe()
            guard case .requested = try await bench.engine.cancel(task.id, by: Actor(kind: .human, id: "carol")) else {
                Testing.Issue.record("a running task's cancel is a request")
                return
            }
            #expect(await events.next { $0.taskId == task.id }?.kind == .cancelRequested)
            #expect(try await bench.task(task.id).status == .running, "the worker ends the attempt")
            let result = try await bench.engine.complete(bench.completion(claim, .succeeded, evidence: true))
            #expect(result == .finished(.cancelled))
            #expect(try await bench.task(task.id).status == .cancelled)
            #expect(try await bench.run(claim.run.id).status == .canceled)
            #expect(try await bench.issue(claim.issue.id).status == .canceled)
            let packs = try await bench.database.read { try await $0.evidencePacks.list(forRuns: [claim.run.id]) }
            #expect(packs.isEmpty, "no evidence, no review for a cancelled Run")
            let runAudit = try await bench.audit("Run", claim.run.id).filter { $0.action == .statusChanged }
            #expect(runAudit.map { $0.after?["status"]?.stringValue } == ["canceled"])
        }
    }

    @Test("a batch of completions in which one task's cancellation was asked: that one ends cancelled, the other completed",
        arguments: Dialect.allCases)
    func batchWithCancelRequested(_ dialect: Dialect) async throws {
        try await withEngine(dialect) { bench in
            let claims = try await bench.claimAll(["Runs to its end", "Its cancellation is asked while it runs"])
            guard case .requested = try await bench.engine.cancel(claims[1].task.id, by: Actor(kind: .human, id: "carol")) else {
                Testing.Issue.record("a running task's cancel is a request")
                return
            }
            let results = try await bench.engine.complete(claims.map { bench.completion($0, .succeeded, evidence: true) })
            #expect(results == [.finished(.completed), .finished(.cancelled)])
            #expect(try await bench.run(claims[0].run.id).status == .underReview)
            #expect(try await bench.run(claims[1].run.id).status == .canceled)
            #expect(try await bench.issue(claims[1].issue.id).status == .canceled)
            for claim in claims {
                let moves = try await bench.audit("Task", claim.task.id).filter { $0.action == .statusChanged }
                #expect(moves.map { $0.after?["status"]?.stringValue }.last == (claim.task.id == claims[0].task.id ? "completed" : "cancelled"))
                #expect(moves.filter { $0.before?["status"] == "running" }.count == 1, "one end per attempt")
            }
        }
    }

    @Test("a retry makes a new attempt with a new Run; the old Run is untouched", arguments: Dialect.allCases)
    func retry(_ dialect: Dialect) async throws {
        try await withEngine(dialect) { bench in
            let task = try await bench.enqueue()
            let first = try await bench.claimOne()
            #expect(try await bench.engine.complete(bench.completion(first, .failed)) == .finished(.failed))
            let failedRun = try await bench.run(first.run.id)
            bench.clock.advance(seconds: 5)
            let retried = try await bench.engine.retry(task.id, by: Actor(kind: .human, id: "carol"))
            #expect(retried.status == .queued)
            #expect(retried.error == nil && retried.completedAt == nil, "the old outcome is cleared")
            #expect(retried.queuedAt == bench.clock.now())
            #expect(try await bench.issue(first.issue.id).status == .ready)
            let second = try await bench.claimOne()
            #expect(second.task.id == task.id)
            #expect(second.task.attempt == 2)
            #expect(second.run.id != first.run.id)
            #expect(try await bench.run(first.run.id) == failedRun, "the old Run is untouched")
            #expect(try await bench.issue(first.issue.id).runs.map(\.id) == [first.run.id, second.run.id])
            // Only finished tasks are retried.
            await #expect(throws: LifecycleError.invalidTransition(entity: "Task", id: task.id, current: "running", requested: "queued")) {
                _ = try await bench.engine.retry(task.id, by: Actor(kind: .human, id: "carol"))
            }
        }
    }

    @Test("shutdown requeues without counting the attempt; the Run is canceled and the Issue ready", arguments: Dialect.allCases)
    func requeue(_ dialect: Dialect) async throws {
        try await withEngine(dialect) { bench in
            let task = try await bench.enqueue()
            let claim = try await bench.claimOne()
            #expect(try await bench.engine.requeue(claim, holder: "worker-a", note: "Worker shut down") == .finished(.queued))
            let after = try await bench.task(task.id)
            #expect(after.status == .queued && after.attempt == 0)
            #expect(try await bench.run(claim.run.id).status == .canceled)
            #expect(try await bench.issue(claim.issue.id).status == .ready)
            for (kind, id) in [("Task", task.id), ("Run", claim.run.id), ("Issue", claim.issue.id)] {
                #expect(try await bench.audit(kind, id).last?.action == .statusChanged, "\(kind) audited")
            }
        }
    }

    @Test("a worker error fails the attempt: task, Run and Issue, each audited", arguments: Dialect.allCases)
    func workerError(_ dialect: Dialect) async throws {
        try await withEngine(dialect) { bench in
            let task = try await bench.enqueue()
            let claim = try await bench.claimOne()
            #expect(try await bench.engine.fail(claim, holder: "worker-a", message: "trace folder unwritable") == .finished(.failed))
            let failed = try await bench.task(task.id)
            #expect(failed.status == .failed)
            #expect(failed.error == "Worker error: trace folder unwritable")
            let run = try await bench.run(claim.run.id)
            #expect(run.status == .failed)
            #expect(run.failure?.message == "Worker error: trace folder unwritable")
            #expect(try await bench.issue(claim.issue.id).status == .failed)
            for (kind, id, status) in [("Task", task.id, "failed"), ("Run", claim.run.id, "failed"), ("Issue", claim.issue.id, "failed")] {
                #expect(try await bench.audit(kind, id).last?.after?["status"]?.stringValue == status, "\(kind) audited")
            }
            #expect(try await bench.engine.fail(claim, holder: "worker-a", message: "again") == .fenced, "once only")
        }
    }

    @Test("the last rescue fails the task, its Run and its Issue", arguments: Dialect.allCases)
    func rescueExhausted(_ dialect: Dialect) async throws {
        try await withEngine(dialect) { bench in
            let task = try await bench.enqueue()
            var claim = try await bench.claimOne()
            for _ in 1..<TaskRecord.defaultMaxAttempts {
                bench.clock.advance(seconds: Bench.lease + 1)
                _ = try await bench.engine.rescue(by: Actor(kind: .system, id: "rescuer")) { _ in 0 }
                claim = try await bench.claimOne()
            }
            bench.clock.advance(seconds: Bench.lease + 1)
            let last = try await bench.engine.rescue(by: Actor(kind: .system, id: "rescuer")) { _ in 0 }
            #expect(last.map(\.status) == [.failed])
            #expect(try await bench.task(task.id).status == .failed)
            #expect(try await bench.run(claim.run.id).status == .failed)
            #expect(try await bench.issue(claim.issue.id).status == .failed)
        }
    }

    @Test("auto-approval moves Run and Issue through under_review to done, audited by the policy", arguments: Dialect.allCases)
    func autoApprove(_ dialect: Dialect) async throws {
        try await withEngine(dialect) { bench in
            try await bench.enqueue()
            let claim = try await bench.claimOne()
            let result = try await bench.engine.complete(
                bench.completion(claim, .succeeded, evidence: true), policy: ReviewPolicy(autoApprove: true))
            #expect(result == .finished(.completed))
            #expect(try await bench.run(claim.run.id).status == .done)
            let steps = try await bench.audit("Run", claim.run.id).filter { $0.action == .statusChanged }
            #expect(steps.map { "\($0.actor.actorId): \($0.before?["status"]?.stringValue ?? "") → \($0.after?["status"]?.stringValue ?? "")" } == [
                "worker-a: running → under_review", "auto-approve: under_review → done",
            ])
            let issueSteps = try await bench.audit("Issue", claim.issue.id).filter { $0.action == .statusChanged }
            #expect(issueSteps.compactMap { $0.after?["status"]?.stringValue } == ["running", "under_review", "done"])
        }
    }

    @Test("events follow the commits: enqueued, claimed, completed", arguments: Dialect.allCases)
    func events(_ dialect: Dialect) async throws {
        try await withEngine(dialect) { bench in
            let events = bench.engine.events.subscribe()
            let task = try await bench.enqueue()
            let claim = try await bench.claimOne()
            _ = try await bench.engine.complete(bench.completion(claim, .succeeded))
            var seen: [LifecycleEvent] = []
            for await event in events {
                seen.append(event)
                if seen.count == 3 { break }
            }
            #expect(seen == [
                LifecycleEvent(.enqueued, taskId: task.id, status: "queued"),
                LifecycleEvent(.claimed, taskId: task.id, runId: claim.run.id, status: "running"),
                LifecycleEvent(.completed, taskId: task.id, runId: claim.run.id, status: "completed"),
            ])
        }
    }
}
