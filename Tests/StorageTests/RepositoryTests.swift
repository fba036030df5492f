import CWOM
import Foundation
import LegacyTasks
import Storage
import Testing
import TowerJSON
import TowerTestSupport

/// Timestamps survive storage to the microsecond on PostgreSQL and SQLite alike, so whole
/// objects compare equal after a round trip.
@Suite("Repositories")
struct RepositoryTests {
    @Test("every CWOM object round-trips, with its join-table relations", arguments: Dialect.allCases)
    func causalityChain(_ dialect: Dialect) async throws {
        try await withDatabase(dialect) { database, _ in
            let g = try await CWOMGraph.build(in: database)
            try await database.read { (store: Store) async throws -> Void in
                #expect(try await store.repos.get(g.repo.id) == g.repo)
                #expect(try await store.repos.get(slug: g.repo.slug) == g.repo)
                #expect(try await store.constraintSnapshots.get(g.snapshot.id) == g.snapshot)
                #expect(try await store.doctrineRefs.get(g.doctrine.id) == g.doctrine)
                #expect(try await store.issues.get(g.issue.id) == g.issue)
                #expect(try await store.contextPackets.get(g.packet.id) == g.packet)
                #expect(try await store.runs.get(g.run.id) == g.run)
                #expect(try await store.artifacts.get(g.artifact.id) == g.artifact)
                #expect(try await store.evidencePacks.get(g.evidence.id) == g.evidence)
                #expect(try await store.reviews.get(g.review.id) == g.review)
                #expect(try await store.issues.get("missing") == nil)
                // Relations.
                #expect(try await store.contextPackets.list(forIssue: g.issue.id) == [g.packet])
                #expect(try await store.constraintSnapshots.list(forIssue: g.issue.id) == [g.snapshot])
                #expect(try await store.artifacts.list(forRun: g.run.id) == [g.artifact])
                #expect(try await store.artifacts.list(forIssue: g.issue.id, type: "doc") == [g.artifact])
                #expect(try await store.artifacts.list(forIssue: g.issue.id, type: "trace") == [])
                #expect(try await store.evidencePacks.list(runId: g.run.id) == [g.evidence])
                #expect(try await store.reviews.list(evidencePackId: g.evidence.id) == [g.review])
                let pinned = try await store.session.query(
                    "SELECT context_packet_id FROM cwom_run_context_packets WHERE run_id = $1", [.text(g.run.id)])
                #expect(try pinned.map { try $0.string("context_packet_id") } == [g.packet.id])
                let column = try await store.session.query(
                    "SELECT constraint_snapshot_id FROM cwom_runs WHERE id = $1", [.text(g.run.id)])
                #expect(try column.first?.string("constraint_snapshot_id") == g.snapshot.id)
            }
        }
    }

    @Test("a Run's pins are rows of their own, one per pinned object, from every path that writes Runs", arguments: Dialect.allCases)
    func runPins(_ dialect: Dialect) async throws {
        try await withDatabase(dialect) { database, _ in
            let g = try await CWOMGraph.build(in: database)
            // A Run that names its packet and doctrine ref twice (nothing in a packet's list of
            // refs, which a claim's Run pins, forbids one named twice): each is pinned once, and
            // the write still commits.
            var twice = g.run
            twice.header = ObjectHeader(traceId: "trace-2")
            twice.inputs.contextPackets = [g.packet.ref, g.packet.ref]
            twice.inputs.doctrineRefs = [g.doctrine.ref, g.doctrine.ref]
            var another = twice
            another.header = ObjectHeader(traceId: "trace-3")
            try await database.write { [twice] store in try await store.runs.insert(twice) }
            // A backfill's Runs go through a CWOMBatch: pinned the same way, doctrine refs included.
            var batch = CWOMBatch()
            batch.runs = [another]
            try await database.write { [batch] store in try await store.write(batch) }
            let runs = [g.run, twice, another]
            try await database.read { (store: Store) async throws -> Void in
                for run in runs {
                    let packets = try await store.session.query(
                        "SELECT context_packet_id FROM cwom_run_context_packets WHERE run_id = $1", [.text(run.id)])
                    #expect(try packets.map { try $0.string("context_packet_id") } == [g.packet.id], "run \(run.header.traceId ?? "")")
                    let refs = try await store.session.query(
                        "SELECT doctrine_ref_id FROM cwom_run_doctrine_refs WHERE run_id = $1", [.text(run.id)])
                    #expect(try refs.map { try $0.string("doctrine_ref_id") } == [g.doctrine.id], "run \(run.header.traceId ?? "")")
                    #expect(try await store.runs.get(run.id)?.inputs.doctrineRefs.count == run.inputs.doctrineRefs.count)
                }
            }
        }
    }

    @Test("context packet versions: the issue lists all of them, newest last", arguments: Dialect.allCases)
    func versions(_ dialect: Dialect) async throws {
        try await withDatabase(dialect) { database, _ in
            let g = try await CWOMGraph.build(in: database)
            let second = g.packet.nextVersion("2.0", summary: "Refined")
            try await database.write { store in
                try await store.contextPackets.insert(second)
                try await store.issues.link(g.issue.id, to: second.ref)
            }
            try await database.read { (store: Store) async throws -> Void in
                #expect(try await store.contextPackets.list(forIssue: g.issue.id).map(\.version) == ["1.0", "2.0"])
                #expect(try await store.contextPackets.latest(forIssue: g.issue.id) == second)
                #expect(try await store.issues.get(g.issue.id)?.contextPackets.map(\.id) == [g.packet.id, second.id])
                // What a claim reads: the Issue with its newest packet and the snapshot that packet pins.
                let claimed = try await store.issues.getWithContexts(ids: [g.issue.id, "no-such-issue"])
                #expect(claimed.map(\.issue.id) == [g.issue.id] && claimed.first?.packet == second)
                let pinned = try #require(second.constraintSnapshot, "the graph's packet pins a snapshot")
                #expect(claimed.first?.snapshot?.id == pinned.id)
            }
        }
    }

    @Test("lists filter and page; repo slugs are unique and get-or-create returns the first", arguments: Dialect.allCases)
    func listsAndRepos(_ dialect: Dialect) async throws {
        try await withDatabase(dialect) { database, _ in
            let a = try await CWOMGraph.build(in: database, slug: "org/a")
            _ = try await CWOMGraph.build(in: database, slug: "org/b")
            try await database.read { (store: Store) async throws -> Void in
                #expect(try await store.issues.list().count == 2)
                #expect(try await store.issues.list(.init(repoId: a.repo.id)).map(\.id) == [a.issue.id])
                #expect(try await store.issues.list(.init(status: "bogus")) == [])
                #expect(try await store.issues.list(page: Page(limit: 1, offset: 1)).count == 1)
                #expect(try await store.runs.list(.init(issueId: a.issue.id)).map(\.id) == [a.run.id])
                #expect(try await store.repos.list(visibility: "private").count == 2)
            }
            let again = Repo(name: "other", slug: "org/a", source: Source(system: "jct"))
            let (repo, created) = try await database.write { store in try await store.repos.getOrCreate(again) }
            #expect(!created)
            #expect(repo.id == a.repo.id)
            await #expect(throws: StorageError.self) {
                try await database.write { store in try await store.repos.insert(again) }
            }
        }
    }

    @Test("a transaction across repositories is all or nothing", arguments: Dialect.allCases)
    func atomicity(_ dialect: Dialect) async throws {
        try await withDatabase(dialect) { database, _ in
            let repo = Repo(name: "x", slug: "org/x", source: Source(system: "jct"))
            let issue = Issue(repo: repo.ref, title: "t", type: .bug)
            struct Boom: Error {}
            await #expect(throws: Boom.self) {
                try await database.write { store in
                    try await store.repos.insert(repo)
                    try await store.issues.insert(issue)
                    try await store.audit.append(
                        AuditEntry(actor: Actor(kind: .system, id: "t"), action: .created, entityKind: "Issue", entityId: issue.id, after: issue.json))
                    throw Boom()
                }
            }
            let left = try await database.read { store in
                (try await store.repos.get(repo.id), try await store.issues.get(issue.id), try await store.audit.list())
            }
            #expect(left.0 == nil)
            #expect(left.1 == nil)
            #expect(left.2.isEmpty)
        }
    }

    @Test("a reference to a missing object is refused by the foreign keys", arguments: Dialect.allCases)
    func foreignKeys(_ dialect: Dialect) async throws {
        try await withDatabase(dialect) { database, _ in
            let issue = Issue(repo: Ref(kind: .repo, id: "nope"), title: "t", type: .bug)
            do {
                try await database.write { store in try await store.issues.insert(issue) }
                Issue.record("expected a foreign key violation")
            } catch let error as StorageError {
                #expect(error.kind == .foreignKeyViolation)
            }
        }
    }

    @Test("a filter on a task's operation, an Issue's status or priority, or a snapshot's owner finds its rows whatever the other columns of their index hold (migrations 0010, 0011)",
        arguments: Dialect.allCases)
    func filtersBehindAWiderIndex(_ dialect: Dialect) async throws {
        try await withDatabase(dialect) { database, _ in
            let now = Timestamp.now()
            // A docs task in every status, and one analysis task.
            let tasks = TaskStatus.allCases.map { status in
                TaskRecord(
                    id: UUID().uuidString.lowercased(), requestedBy: Requester(kind: .agent, id: "bot"), objective: "Write the docs",
                    operation: .docs, target: TaskTarget(repo: "myorg/docs"), status: status, createdAt: now)
            } + [
                TaskRecord(
                    id: UUID().uuidString.lowercased(), requestedBy: Requester(kind: .agent, id: "bot"), objective: "Read the logs",
                    operation: .analysis, target: TaskTarget(repo: "myorg/logs"), status: .queued, createdAt: now)
            ]
            // A person's task of every status, code changes and ops by turns.
            let people = zip(TaskStatus.allCases, [TaskOperation](repeating: .codeChange, count: 3) + [.ops, .ops, .ops]).map { status, operation in
                TaskRecord(
                    id: UUID().uuidString.lowercased(), requestedBy: Requester(kind: .human, id: "dana"), objective: "Do the thing",
                    operation: operation, target: TaskTarget(repo: "myorg/app"), status: status, createdAt: now)
            }
            // A blocked Issue of every type, and one of each type in progress.
            let graph = try await CWOMGraph.build(in: database)
            let repo = graph.repo.ref
            let blocked = IssueType.allCases.map { CWOM.Issue(repo: repo, title: "Blocked \($0.rawValue)", type: $0, status: .blocked) }
            let moving = IssueType.allCases.map {
                CWOM.Issue(repo: repo, title: "Moving \($0.rawValue)", type: $0, priority: .p1, status: .running)
            }
            // Carol's snapshots, one of every scope.
            let carol = Actor(kind: .agent, id: "carol")
            let snapshots = ConstraintScope.allCases.map { ConstraintSnapshot(scope: $0, owner: carol) }
            try await database.write { store in
                try await store.tasks.insert(tasks + people)
                for issue in blocked + moving { try await store.issues.insert(issue) }
                for snapshot in snapshots { try await store.constraintSnapshots.insert(snapshot) }
            }
            let (humans, systemDocs, queuedAgents) = try await database.read { store in
                (
                    try await store.tasks.list(.init(requesterKind: "human")), try await store.tasks.list(.init(operation: "docs", requesterKind: "system")),
                    try await store.tasks.list(.init(status: "queued", requesterKind: "agent"))
                )
            }
            #expect(Set(humans.map(\.id)) == Set(people.map(\.id)), "a person's task of every status and both operations")
            #expect(systemDocs.isEmpty)
            #expect(queuedAgents.count == 2, "the queued docs and analysis tasks the bot asked for")
            let (docs, analysis, blockedFound, blockedBugs) = try await database.read { store in
                (
                    try await store.tasks.list(.init(operation: "docs")), try await store.tasks.list(.init(operation: "analysis")),
                    try await store.issues.list(.init(status: "blocked")), try await store.issues.list(.init(status: "blocked", type: "bug"))
                )
            }
            #expect(Set(docs.map(\.status)) == Set(TaskStatus.allCases), "a docs task of every status")
            #expect(docs.count == TaskStatus.allCases.count && analysis.count == 1)
            #expect(Set(blockedFound.map(\.id)) == Set(blocked.map(\.id)), "a blocked Issue of every type, and no other")
            #expect(blockedBugs.map(\.type) == [.bug])
            let (urgent, urgentRunning, urgentBlocked, urgentOps) = try await database.read { store in
                (
                    try await store.issues.list(.init(priority: "P1")), try await store.issues.list(.init(status: "running", priority: "P1")),
                    try await store.issues.list(.init(status: "blocked", priority: "P1")),
                    try await store.issues.list(.init(type: "ops", priority: "P1"))
                )
            }
            #expect(Set(urgent.map(\.id)) == Set(moving.map(\.id)), "a P1 Issue of every type")
            #expect(Set(urgentRunning.map(\.id)) == Set(moving.map(\.id)) && urgentBlocked.isEmpty)
            #expect(urgentOps.map(\.type) == [.ops])
            let (carols, carolsOrg) = try await database.read { store in
                (try await store.constraintSnapshots.list(ownerId: "carol"), try await store.constraintSnapshots.list(scope: "org", ownerId: "carol"))
            }
            #expect(Set(carols.map(\.id)) == Set(snapshots.map(\.id)), "Carol's snapshot of every scope, and no other owner's")
            #expect(carolsOrg.map(\.scope) == [.org])
        }
    }

    @Test("tasks: insert, read, filter, and a duplicate idempotency key", arguments: Dialect.allCases)
    func tasks(_ dialect: Dialect) async throws {
        try await withDatabase(dialect) { database, _ in
            let now = Timestamp.now()
            var task = TaskRecord(
                id: UUID().uuidString.lowercased(), idempotencyKey: "key-1",
                requestedBy: Requester(kind: .agent, id: "bot", label: "Bot"), objective: "Analyse the logs",
                operation: .analysis, target: TaskTarget(repo: "myorg/logs", ref: "dev", path: "src"),
                constraints: TaskConstraints(timeBudgetSeconds: 60), inputs: ["n": 1, "list": [1, "two"]],
                metadata: ["m": true], status: .queued, createdAt: now, queuedAt: now, traceId: "trace-9")
            try await database.write { [task] store in try await store.tasks.insert(task) }
            let stored = try await database.read { [task] store in try await store.tasks.get(task.id) }
            #expect(stored == task)
            let byKey = try await database.read { store in try await store.tasks.get(idempotencyKey: "key-1") }
            #expect(byKey?.id == task.id)

            // A finished task keeps every column too.
            task.id = "00000000-0000-4000-8000-000000000009"
            task.idempotencyKey = nil
            task.status = .failed
            task.completedAt = now.adding(seconds: 2)
            task.error = "boom"
            task.result = ["message": "x"]
            task.attempt = 2
            try await database.write { [task] store in try await store.tasks.insert(task) }
            let finished = try await database.read { [task] store in try await store.tasks.get(task.id) }
            #expect(finished == task)
            let (failed, docs, counts) = try await database.read { store in
                (
                    try await store.tasks.list(.init(status: "failed")),
                    try await store.tasks.list(.init(operation: "docs")), try await store.tasks.countByStatus()
                )
            }
            #expect(failed.count == 1)
            #expect(docs.isEmpty)
            #expect(counts == ["queued": 1, "failed": 1])

            var duplicate = task
            duplicate.id = UUID().uuidString.lowercased()
            duplicate.idempotencyKey = "key-1"
            do {
                try await database.write { [duplicate] store in try await store.tasks.insert(duplicate) }
                Issue.record("a duplicate idempotency key must fail")
            } catch let error as StorageError {
                #expect(error.kind == .uniqueViolation)
            }
        }
    }

    /// Batch reads and writes find rows by a list of ids (`SQL.oneOf`: on PostgreSQL an `IN` list
    /// up to 32 values, one `text[]` bind beyond). Idempotency keys come from clients, so they are
    /// the list whose values can be anything: the array's own syntax must not leak into them.
    @Test("a list of keys finds exactly its rows, whatever characters the keys hold", arguments: Dialect.allCases)
    func keyLists(_ dialect: Dialect) async throws {
        try await withDatabase(dialect) { database, _ in
            let keys = [
                "plain", "with \"quotes\"", "back\\slash", "{braces,comma}", "NULL", " spaced ", "", "'single'", "é ü 漢字 🚀",
                "trailing\\", "\\\"", "a,b", "}", "{",
            ]
            let now = Timestamp.now()
            var tasks: [TaskRecord] = []
            for (n, key) in keys.enumerated() {
                tasks.append(
                    TaskRecord(
                        id: UUID().uuidString.lowercased(), idempotencyKey: key, requestedBy: Requester(kind: .system, id: "keys"),
                        objective: "Task \(n)", operation: .ops, target: TaskTarget(repo: "myorg/keys"), status: .queued,
                        createdAt: now, queuedAt: now))
            }
            try await database.write { [tasks] store in try await store.tasks.insert(tasks) }
            let found = try await database.read { store in
                // Over 32 keys: the array on PostgreSQL.
                try await store.tasks.get(
                    idempotencyKeys: keys + ["missing", "plain ", "with \\\"quotes\\\""] + (0..<30).map { "absent \($0)" })
            }
            #expect(found.count == keys.count)
            for task in tasks { #expect(found[task.idempotencyKey ?? "?"]?.id == task.id) }
            // Up to 32: a list of binds on PostgreSQL.
            let listed = try await database.read { store in try await store.tasks.get(idempotencyKeys: keys + ["missing"]) }
            #expect(listed.count == keys.count)
            let some = try await database.read { store in try await store.tasks.get(idempotencyKeys: ["NULL", "{", "nothing"]) }
            #expect(Set(some.keys) == ["NULL", "{"])
        }
    }

    @Test("a result's rows read by column name: a repeated name is its last column, a prefix picks a joined object's columns", arguments: Dialect.allCases)
    func resultRows(_ dialect: Dialect) async throws {
        try await withDatabase(dialect) { database, _ in
            let rows = try await database.read { store in
                try await store.session.query(
                    """
                    SELECT 'first' AS name, 'second' AS name, 'packet' AS p_name, NULL AS p_note, n AS p_n
                    FROM (SELECT 1 AS n UNION ALL SELECT 2 AS n) AS numbers ORDER BY n
                    """, [])
            }
            #expect(rows.count == 2)
            for (index, row) in rows.enumerated() {
                #expect(try row.string("name") == "second")
                let packet = row.prefixed("p_")
                #expect(try packet.string("name") == "packet")
                #expect(try packet.int("n") == index + 1)
                #expect(packet.isNull("note"))
                #expect(packet.isNull("absent"))
                #expect(!packet.isNull("name"))
                #expect(throws: StorageError.self) { try packet.string("p_name") }
                #expect(Set(packet.values.keys) == ["name", "note", "n"])
            }
        }
    }

    @Test("the audit log keeps every action and lists newest first, by entity or by trace", arguments: Dialect.allCases)
    func audit(_ dialect: Dialect) async throws {
        try await withDatabase(dialect) { database, _ in
            let actor = Actor(kind: .system, id: "cwom-service")
            let start = Timestamp.now()
            func entry(_ second: Double, _ action: AuditAction, _ kind: String, _ id: String, note: String? = nil, traceId: String? = nil)
                -> AuditEntry
            {
                AuditEntry(
                    ts: start.adding(seconds: second), actor: actor, action: action, entityKind: kind, entityId: id,
                    before: action == .statusChanged ? ["status": "planned"] : nil, after: ["n": .int(Int(second))], note: note,
                    traceId: traceId)
            }
            let first = entry(0, .created, "Issue", "i1", traceId: "tr")
            let more = [
                entry(1, .linked, "Issue", "i1", note: "Linked to ContextPacket:cp1"),
                entry(2, .statusChanged, "Issue", "i1", note: "Status changed: planned -> running", traceId: "tr"),
                entry(3, .updated, "Run", "r1"),
            ]
            try await database.write { store in
                try await store.audit.append(first)
                try await store.audit.append(more)
            }
            let entries = try await database.read { store in
                try await store.audit.list(.init(entityKind: "Issue", entityId: "i1"))
            }
            #expect(entries.map(\.action) == [.statusChanged, .linked, .created])
            #expect(entries.first?.note == "Status changed: planned -> running")
            #expect(entries.first?.before == ["status": "planned"])
            #expect(entries.first?.actor.actorId == "cwom-service")
            #expect(entries[1].after == ["n": 1])
            let traced = try await database.read { store in try await store.audit.list(.init(traceId: "tr")) }
            #expect(traced.map(\.action) == [.statusChanged, .created])
            let runs = try await database.read { store in try await store.audit.list(.init(entityKind: "Run")) }
            #expect(runs.map(\.entityId) == ["r1"])
        }
    }

    @Test("rows the legacy worker wrote (off-schema JSON) read without loss", arguments: Dialect.allCases)
    func legacyRunShapes(_ dialect: Dialect) async throws {
        try await withDatabase(dialect) { database, _ in
            let g = try await CWOMGraph.build(in: database)
            try await database.write { store in
                try await store.session.query(
                    "UPDATE cwom_runs SET executor = $1, failure = $2, inputs = $3, telemetry = $4, status = 'failed' WHERE id = $5",
                    [
                        .json(["type": "stub", "version": "0.1.0", "worker_id": "worker-ab12cd34"]),
                        .json(["code": "WORKER_ERROR", "message": "boom"]),
                        .json(["task_id": "t1", "operation": "docs"]),
                        .json(["executor": "stub", "simulated_work_seconds": 1.0]), .text(g.run.id),
                    ])
            }
            let run = try #require(try await database.read { store in try await store.runs.get(g.run.id) })
            #expect(run.executor.actor.actorId == "worker-ab12cd34")
            #expect(run.executor.runtime == "stub")
            #expect(run.failure == Failure(category: .unknown, message: "boom"))
            #expect(run.inputs.constraintSnapshot?.id == g.snapshot.id)
            #expect(run.meta["legacy_fields"]?["inputs"] == ["task_id": "t1", "operation": "docs"])
            #expect(run.meta["legacy_fields"]?["telemetry"]?["executor"] == "stub")
            try run.validate()
        }
    }
}
