import API
import CWOM
import Foundation
import LegacyTasks
import Storage
import Testing
import TowerJSON
import TowerTestSupport
import Worker

@Suite("Backfill of legacy tasks")
struct BackfillTests {
    /// A task row as the legacy service writes it (legacy columns only, no CWOM).
    static func legacyInsert(_ dialect: Dialect, id: String, status: String, repo: String, started: Bool = false,
        completed: Bool = false, result: String? = nil, error: String? = nil, assignedTo: String? = nil,
        tracePath: String? = nil, metadata: String = "{}") -> (String, [SQLValue])
    {
        let now = Timestamp.now()
        return (
            """
            INSERT INTO tasks (id, version, requested_by_kind, requested_by_id, objective, operation, target_repo, target_ref,
            target_path, time_budget_seconds, allow_network, allow_secrets, inputs, metadata, status, created_at, queued_at,
            started_at, completed_at, assigned_to, result, error, trace_path, trace_id)
            VALUES ($1, '1.0', 'human', 'alice', $2, 'docs', $3, 'main', '', 900, $4, $4, $5, $6, $7, $8, $8, $9, $10, $11, $12, $13, $14, $15)
            """,
            [
                .text(id), .text("Objective for \(id)"), .text(repo), .bool(false), .json(["k": 1]), .json(try? JSONParser.parse(metadata)),
                .text(status), .timestamp(now.adding(seconds: -100)), .timestamp(started ? now.adding(seconds: -90) : nil),
                .timestamp(completed ? now.adding(seconds: -80) : nil), .text(assignedTo), .json(result.flatMap { try? JSONParser.parse($0) }),
                .text(error), .text(tracePath), .text("trace-\(id.prefix(8))"),
            ]
        )
    }

    @Test("a legacy database with mixed tasks is migrated by one run; a second run does nothing", arguments: Dialect.allCases)
    func mixed(_ dialect: Dialect) async throws {
        try await withWorkerEnvironment(dialect, legacyLayout: true) { env in
            func id() -> String { UUID().uuidString.lowercased() }
            let ids = (queued: id(), running: id(), done: id(), failed: id(), cancelled: id(), gone: id(), pending: id())
            // The legacy worker names a folder it makes without a Run after the task.
            let traceFolder = env.traceRoot.appendingPathComponent(ids.done)
            try FileManager.default.createDirectory(at: traceFolder.appendingPathComponent("artifacts"), withIntermediateDirectories: true)
            try "# out".write(to: traceFolder.appendingPathComponent("artifacts/output.md"), atomically: true, encoding: .utf8)
            try "{}".write(to: traceFolder.appendingPathComponent("manifest.json"), atomically: true, encoding: .utf8)
            let rows = [
                Self.legacyInsert(dialect, id: ids.queued, status: "queued", repo: "TestOrg/App.git"),
                Self.legacyInsert(dialect, id: ids.running, status: "running", repo: "testorg/app", started: true, assignedTo: "worker-1a2b3c4d"),
                Self.legacyInsert(
                    dialect, id: ids.done, status: "completed", repo: "testorg/app", started: true, completed: true,
                    result: #"{"message":"Stub execution completed successfully"}"#, assignedTo: "worker-1a2b3c4d",
                    tracePath: traceFolder.absoluteURL.absoluteString, metadata: #"{"evidence_requirements":["output doc"]}"#),
                Self.legacyInsert(
                    dialect, id: ids.failed, status: "failed", repo: "testorg/other", started: true, completed: true, result: "{}",
                    error: String(repeating: "very long error ", count: 600), assignedTo: "?? weird worker ??"),
                Self.legacyInsert(dialect, id: ids.cancelled, status: "cancelled", repo: "testorg/other", completed: true),
                Self.legacyInsert(
                    dialect, id: ids.gone, status: "completed", repo: "testorg/other", started: true, completed: true,
                    tracePath: "file:///nonexistent/trace/folder"),
                Self.legacyInsert(dialect, id: ids.pending, status: "pending", repo: "TESTORG/APP"),
            ]
            try await env.database.write { store in for (sql, binds) in rows { try await store.session.query(sql, binds) } }
            // One task already has CWOM objects from intake and must stay as it is.
            let modern = try await env.enqueue()

            /// The audit rows the backfill wrote, oldest first.
            func backfillTrail() async throws -> [AuditEntry] {
                try await env.database.read { try await $0.audit.list(page: Page(limit: 1000)) }.filter { $0.actor.actorId == "backfill" }.reversed()
            }

            // The folders a batch reads before its transaction: those of its finished tasks.
            let paths = try await env.database.read { try await $0.backfill.tracePaths(after: "", limit: 100) }
            #expect(Set(paths.map(\.path)) == [traceFolder.absoluteURL.absoluteString, "file:///nonexistent/trace/folder"])
            #expect(paths.first { $0.path == traceFolder.absoluteURL.absoluteString }?.taskId == ids.done)

            let dry = try await Backfill(database: env.database, batchSize: 3, dryRun: true).run()
            #expect(dry.migrated == 7)
            #expect(dry.created["Repo"] == 2, "testorg/app and testorg/other would be created; testorg/docs exists")
            #expect(try await Backfill(database: env.database).remaining() == 7, "a dry run writes nothing")
            #expect(try await backfillTrail().isEmpty, "nor any audit row")

            let report = try await Backfill(database: env.database, batchSize: 3).run()
            #expect(report.migrated == 7)
            #expect(report.failures.isEmpty)
            #expect(report.byStatus == ["queued": 1, "running": 1, "completed": 2, "failed": 1, "cancelled": 1, "pending": 1])
            #expect(report.byRepo == ["testorg/app": 4, "testorg/other": 3])
            #expect(report.created["Run"] == 4)
            let again = try await Backfill(database: env.database).run()
            #expect(again.migrated == 0, "idempotent")

            // The trail says what the backfill created, by `system:backfill`: each new Repo, each
            // Issue and each Run once; the statuses are those the legacy tasks reached, not moves.
            let trail = try await backfillTrail()
            #expect(trail.allSatisfy { $0.action == .created })
            #expect(trail.filter { $0.entityKind == "Repo" }.compactMap { $0.after?["slug"]?.stringValue }.sorted() == ["testorg/app", "testorg/other"])
            #expect(trail.filter { $0.entityKind == "Issue" }.count == 7)
            #expect(trail.filter { $0.entityKind == "Run" }.count == 4)
            #expect(Set(trail.map(\.entityKind)) == ["Repo", "Issue", "Run"])

            let (tasks, repos) = try await env.database.read { store in
                (try await store.tasks.list(page: Page(limit: 100)), try await store.repos.list())
            }
            #expect(tasks.allSatisfy { $0.cwomIssueId != nil })
            #expect(Set(repos.map(\.slug)) == ["testorg/app", "testorg/other", "testorg/docs"], "one Repo per normalised slug")
            #expect(tasks.first { $0.id == ids.queued }?.target.repo == "TestOrg/App.git", "the task row is not rewritten")
            #expect(tasks.first { $0.id == modern.id }?.cwomIssueId == modern.cwomIssueId)

            // The finished history is visible through the API.
            let api = TowerAPI(database: env.database, configuration: APIConfiguration(), logger: quietLogger("tower.api"))
            let doneIssue = try #require(tasks.first { $0.id == ids.done }?.cwomIssueId)
            let issueRow = try #require(trail.first { $0.entityId == doneIssue })
            #expect(issueRow.note == "Backfilled from task \(ids.done)")
            #expect(issueRow.traceId == "trace-\(ids.done.prefix(8))")
            #expect(issueRow.after == ["task_id": .string(ids.done), "status": "done", "repo_id": .string(repos.first { $0.slug == "testorg/app" }?.id ?? "")])
            let expanded = try JSONParser.parse(
                bytes: await api.respond(APIRequest(method: "GET", path: "/cwom/issues/\(doneIssue)", query: "expand=all", headers: [], body: [])).body)
            #expect(expanded["status"] == "done")
            let run = try #require(expanded["expanded"]?["runs"]?.arrayValue?.first)
            #expect(run["status"] == "done")
            #expect(trail.first { $0.entityId == run["id"]?.stringValue }?.after == ["task_id": .string(ids.done), "status": "done"])
            #expect(run["executor"]?["actor"]?["actor_id"] == "worker-1a2b3c4d")
            #expect(run["telemetry"]?["duration_s"]?.doubleValue.map { abs($0 - 10) < 0.01 } == true)
            let artifacts = run["artifacts"]?.arrayValue ?? []
            #expect(artifacts.contains { $0["type"] == "trace" && ($0["digest"]?.stringValue?.hasPrefix("sha256:") ?? false) })
            #expect(artifacts.contains { $0["title"] == "output.md" && $0["type"] == "doc" })
            let listing = try JSONParser.parse(
                bytes: await api.respond(APIRequest(method: "GET", path: "/cwom/runs/\(run["id"]?.stringValue ?? "")/trace", query: nil, headers: [], body: [])).body)
            #expect(listing["files"]?.arrayValue?.compactMap { $0["path"]?.stringValue } == ["artifacts/output.md", "manifest.json"], "its folder, named after the task, is served: \(listing)")

            let failedRun = try await env.database.read { store in
                try await store.runs.list(.init(issueId: tasks.first { $0.id == ids.failed }?.cwomIssueId)).first
            }
            #expect(failedRun?.status == .failed)
            #expect(failedRun?.failure?.message.count == 4000, "long errors are cut to the CWOM bound")
            #expect(failedRun?.executor.actor.actorId == "?? weird worker ??")
            let goneRun = try await env.database.read { store in
                try await store.runs.list(.init(issueId: tasks.first { $0.id == ids.gone }?.cwomIssueId)).first
            }
            let goneArtifacts = try await env.database.read { store in try await store.artifacts.list(forRun: goneRun?.id ?? "") }
            #expect(goneArtifacts.map(\.type) == [.trace])
            #expect(goneArtifacts.first?.digest == nil, "no digest for an unreadable folder")
            let queuedIssue = try await env.database.read { store in try await store.issues.get(tasks.first { $0.id == ids.queued }?.cwomIssueId ?? "") }
            #expect(queuedIssue?.status == .planned)
            #expect(queuedIssue?.runs == [])
            // Migrated queued tasks run normally afterwards.
            let worker = env.start(env.configuration())
            let finished = try await env.finished(ids.queued)
            try await worker.stop()
            #expect(finished.status == .completed)
            #expect(finished.cwomIssueId == queuedIssue?.id, "the worker used the backfilled issue")
        }
    }

    @Test("a finished task's Run is built from its trace folder as read before the batch's transaction")
    func traceFolderReadBeforeTheTransaction() throws {
        let taskId = UUID().uuidString.lowercased()
        let traces = FileManager.default.temporaryDirectory.appendingPathComponent("backfill-\(UUID().uuidString)")
        let folder = traces.appendingPathComponent(taskId)
        defer { try? FileManager.default.removeItem(at: traces) }
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("artifacts"), withIntermediateDirectories: true)
        try "# out".write(to: folder.appendingPathComponent("artifacts/output.md"), atomically: true, encoding: .utf8)
        let tracePath = folder.absoluteURL.absoluteString
        let task = TaskRecord(
            id: taskId, requestedBy: Requester(kind: .human, id: "alice"), objective: "Legacy work",
            operation: .docs, target: TaskTarget(repo: "testorg/app"), status: .completed, createdAt: .now(), startedAt: .now(),
            completedAt: .now(), tracePath: tracePath)
        let repo = Repo(name: "app", slug: "testorg/app", source: Source(system: "jct"))

        let read = Backfill.traceFolder(tracePath, taskId: taskId)
        #expect(read.files?.map(\.path) == ["artifacts/output.md"])
        // A trace_path any write key may have set to another folder is recorded, never read.
        for planted in [traces.absoluteURL.absoluteString, "file:///", "file:///proc/"] {
            let refused = Backfill.traceFolder(planted, taskId: taskId)
            #expect(refused.root != nil && refused.files == nil, "\(planted)")
        }
        try FileManager.default.removeItem(at: folder)

        // The folder is gone: the Run still records what was read before, without the disk.
        let prepared = Backfill.adoption(for: task, repo: repo, now: .now(), folders: [tracePath: read])
        #expect(prepared.artifacts.map(\.title) == ["output.md", "Trace folder"])
        #expect(prepared.artifacts.last?.digest?.hasPrefix("sha256:") == true)
        #expect(prepared.run?.outputs.artifacts == prepared.artifacts.map(\.ref))
        // A folder not read before (a task that finished meanwhile) is read then.
        let unforeseen = Backfill.adoption(for: task, repo: repo, now: .now())
        #expect(unforeseen.artifacts.map(\.title) == ["Trace folder"])
        #expect(unforeseen.artifacts.first?.digest == nil, "the folder is gone now")
    }

    @Test("safe next to a running worker: every task ends with exactly one issue", arguments: Dialect.allCases)
    func concurrentWithWorker(_ dialect: Dialect) async throws {
        try await withWorkerEnvironment(dialect) { env in
            var ids: [String] = []
            for n in 0..<60 { ids.append(try await env.enqueue(objective: "Legacy task \(n)", createCWOM: false).id) }
            let worker = env.start(env.configuration(concurrency: 4))
            // Batches that lose a race with the worker are rolled back and retried by the backfill itself.
            async let first = Backfill(database: env.database, batchSize: 7).run()
            async let second = Backfill(database: env.database, batchSize: 5).run()
            let migrated = try await first.migrated + second.migrated
            #expect(migrated <= 60)
            for id in ids { _ = try await env.finished(id) }
            try await worker.stop()
            let issues = try await env.database.read { store in try await store.issues.list(page: Page(limit: 1000)) }
            #expect(issues.count == 60, "one issue per task, never two")
            #expect(try await Backfill(database: env.database).remaining() == 0)
        }
    }

    @Test("a backfill is a bulk load: PostgreSQL gets statistics for the tables it filled, not for those it left empty", arguments: Dialect.allCases)
    func statisticsAfterTheLoad(_ dialect: Dialect) async throws {
        try await withWorkerEnvironment(dialect) { env in
            for n in 0..<60 { _ = try await env.enqueue(objective: "Legacy task \(n)", createCWOM: false) }
            if dialect == .postgres {
                // Another application's table in the same schema. Autovacuum is kept off these
                // tables, so that only the backfill can have analyzed them.
                try await env.database.write { store in
                    try await store.session.query("CREATE TABLE reports_of_another_app (n int) WITH (autovacuum_enabled = false)", [])
                    try await store.session.query("INSERT INTO reports_of_another_app SELECT generate_series(1, 60)", [])
                    for table in ["tasks", "cwom_issues", "cwom_context_packets", "cwom_constraint_snapshots", "cwom_runs", "cwom_artifacts"] {
                        try await store.session.query("ALTER TABLE \(table) SET (autovacuum_enabled = false)", [])
                    }
                }
            }
            let report = try await Backfill(database: env.database, batchSize: 25).run()
            #expect(report.migrated == 60)
            guard dialect == .postgres else {
                #expect(report.analyzed.isEmpty, "SQLite plans without statistics")
                return
            }
            // 60 Issues, ContextPackets and ConstraintSnapshots; queued tasks get no Run.
            #expect(Set(["tasks", "cwom_issues", "cwom_context_packets", "cwom_constraint_snapshots"]).isSubset(of: report.analyzed), "\(report.analyzed)")
            #expect(!report.analyzed.contains("cwom_runs") && !report.analyzed.contains("cwom_artifacts"), "\(report.analyzed)")
            func rows(_ table: String) async throws -> Int? {
                try await env.database.read { store in
                    try await store.session.query(
                        "SELECT CAST(reltuples AS bigint) AS n FROM pg_class WHERE relname = $1 AND relnamespace = CAST(current_schema() AS regnamespace)",
                        [.text(table)])
                }.first?.int("n")
            }
            #expect(try await rows("cwom_issues") == 60, "the planner knows the Issues' table's size")
            #expect(try await rows("reports_of_another_app") == -1, "a table that is not ours is left alone")
        }
    }
}
