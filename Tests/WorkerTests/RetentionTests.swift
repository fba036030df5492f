import CWOM
import Foundation
import LegacyTasks
import Logging
import Storage
import Testing
import TowerJSON
import TowerTestSupport
import Worker

/// Retention: old finished Runs lose their trace folders (their Artifacts stay, marked pruned),
/// task rows go only when asked, a Run under review is never touched, and a pass is batched,
/// audited and run by one process at a time.
@Suite("Retention")
struct RetentionTests {
    let actor = Actor(kind: .system, id: "retention-test")

    func retention(_ env: WorkerEnvironment) -> Retention {
        Retention(database: env.database, engine: env.engine, actor: actor, logger: quietLogger("retention"))
    }

    /// Three finished tasks run by the stub worker, auto-approved (their Runs `done`), and one left
    /// under review. Their ids, in that order.
    func finishedWork(_ env: WorkerEnvironment) async throws -> (done: [TaskRecord], underReview: TaskRecord) {
        var done: [TaskRecord] = []
        for n in 0..<3 { done.append(try await env.enqueue(objective: "Finished chore \(n)")) }
        let approving = env.start(env.configuration(autoApprove: true))
        for index in done.indices { done[index] = try await env.finished(done[index].id) }
        try await approving.stop()
        let waiting = try await env.enqueue(objective: "Waits for a person")
        let reviewing = env.start(env.configuration())
        let underReview = try await env.finished(waiting.id)
        try await reviewing.stop()
        return (done, underReview)
    }

    func folder(_ env: WorkerEnvironment, _ task: TaskRecord) throws -> URL {
        env.traceRoot.appendingPathComponent(try #require(task.currentRunId))
    }

    @Test("a pass deletes old finished trace folders in batches, marks and keeps their Artifacts, audits each; a second finds nothing",
        arguments: Dialect.allCases)
    func prune(_ dialect: Dialect) async throws {
        try await withWorkerEnvironment(dialect) { env in
            let (done, underReview) = try await finishedWork(env)
            // A Run whose uri someone set over the CWOM API to a folder that is not its own.
            let victim = env.traceRoot.deletingLastPathComponent().appendingPathComponent("precious", isDirectory: true)
            try FileManager.default.createDirectory(at: victim, withIntermediateDirectories: true)
            let hijacked = try #require(done[2].currentRunId)
            try await env.database.write { store in
                try await store.session.query(
                    "UPDATE cwom_runs SET artifact_root_uri = $1 WHERE id = $2", [.text(victim.absoluteURL.absoluteString), .text(hijacked)])
            }

            // A backfilled legacy Run: its folder is named after its task, as the legacy worker named it.
            let legacyFolder = env.traceRoot.appendingPathComponent(done[1].id)
            try FileManager.default.moveItem(at: try folder(env, done[1]), to: legacyFolder)
            try await env.database.write { store in
                try await store.session.query(
                    "UPDATE cwom_runs SET artifact_root_uri = $1, meta = $2 WHERE id = $3",
                    [.text(legacyFolder.absoluteURL.absoluteString), .json(["task_id": .string(done[1].id), "backfilled": true]), .text(try #require(done[1].currentRunId))])
            }

            let young = try await retention(env).prune(Retention.Options(olderThan: 30 * 86_400))
            #expect(young.traceFolders == 0 && young.bytes == 0 && !young.locked, "nothing is 30 days old")
            let dry = try await retention(env).prune(Retention.Options(olderThan: 0, dryRun: true))
            #expect(dry.traceFolders == 2 && dry.bytes > 0, "\(dry)")
            #expect(FileManager.default.fileExists(atPath: try folder(env, done[0]).path), "a dry run changes nothing")

            let report = try await retention(env).prune(Retention.Options(olderThan: 0, batchSize: 2))
            #expect(report.traceFolders == 3 && report.batches == 2, "three Runs in batches of two: \(report)")
            #expect(report.bytes == dry.bytes && report.artifacts > 0)
            for task in done.prefix(2) { #expect(!FileManager.default.fileExists(atPath: try folder(env, task).path)) }
            #expect(FileManager.default.fileExists(atPath: victim.path), "a uri that is not the Run's own folder is never deleted")
            #expect(!FileManager.default.fileExists(atPath: legacyFolder.path), "a backfilled Run's folder, named after its task, goes too")
            #expect(FileManager.default.fileExists(atPath: try folder(env, underReview).path), "a Run under review keeps its trace")

            let run = try #require(done[0].currentRunId)
            let artifacts = try await env.database.read { try await $0.artifacts.list(forRun: run) }
            #expect(!artifacts.isEmpty && artifacts.allSatisfy { $0.meta["pruned_at"] != nil }, "kept, marked pruned")
            #expect(artifacts.first?.meta["pruned_reason"] == "retention: older than 0d")
            #expect(try await env.database.read { try await $0.retention.tracePrunedAt(run) } != nil)
            let audit = try await env.database.read { try await $0.audit.list(.init(entityKind: "Run", entityId: run)) }
            #expect(audit.contains { $0.note == "Trace folder pruned (retention: older than 0d)" && $0.actor.actorId == "retention-test" })
            #expect(try await env.database.read { try await $0.tasks.get(done[0].id) } != nil, "task rows stay unless asked")

            #expect(try await retention(env).prune(Retention.Options(olderThan: 0)).traceFolders == 0, "a second pass finds nothing")
        }
    }

    @Test("with deleteTasks the rows of old finished tasks go, not their CWOM records, never one whose Issue waits for review",
        arguments: Dialect.allCases)
    func deleteTasks(_ dialect: Dialect) async throws {
        try await withWorkerEnvironment(dialect) { env in
            let (done, underReview) = try await finishedWork(env)
            let report = try await retention(env).prune(Retention.Options(olderThan: 0, deleteTasks: true))
            #expect(report.tasks == 3, "\(report)")
            for task in done {
                #expect(try await env.database.read { try await $0.tasks.get(task.id) } == nil)
                #expect(try await env.database.read { try await $0.issues.get(task.cwomIssueId ?? "") }?.status == .done, "the record stays")
                let audit = try await env.database.read { try await $0.audit.list(.init(entityKind: "Task", entityId: task.id)) }
                #expect(audit.contains { $0.action == .deleted }, "audited")
            }
            #expect(try await env.database.read { try await $0.tasks.get(underReview.id) } != nil)
        }
    }

    @Test("the worker registry loses the rows of workers without a heartbeat for the period and a day, never a recent one's",
        arguments: Dialect.allCases)
    func workerRows(_ dialect: Dialect) async throws {
        try await withWorkerEnvironment(dialect) { env in
            let now = env.engine.clock.now()
            func register(_ id: String, _ daysAgo: Double) async throws {
                try await env.database.write { store in
                    try await store.queue.upsertWorker(id: id, host: "h", pid: 1, concurrency: 1, now: now.adding(seconds: -daysAgo * 86_400))
                }
            }
            try await register("gone-40-days", 40)
            try await register("gone-2-days", 2)
            try await register("beating", 0)
            func registered() async throws -> Set<String> {
                Set(try await env.database.read { try await $0.queue.workers(since: now.adding(seconds: -100 * 86_400)) }.map(\.id))
            }

            #expect(try await retention(env).prune(Retention.Options(olderThan: 30 * 86_400, dryRun: true)).workers == 1)
            #expect(try await registered().count == 3, "a dry run deletes nothing")
            #expect(try await retention(env).prune(Retention.Options(olderThan: 30 * 86_400)).workers == 1)
            #expect(try await registered() == ["gone-2-days", "beating"])
            // A period of 0 still keeps a worker that beat within the day.
            #expect(try await retention(env).prune(Retention.Options(olderThan: 0)).workers == 1)
            #expect(try await registered() == ["beating"])
        }
    }

    @Test("on PostgreSQL one process prunes at a time: a pass that meets the maintenance lock stops and says so")
    func oneAtATime() async throws {
        try await withWorkerEnvironment(.postgres) { env in
            _ = try await finishedWork(env)
            let retention = retention(env)
            let blocked = try await env.database.write { store in
                #expect(try await store.retention.tryLock(), "this transaction holds the lock")
                return try await retention.prune(Retention.Options(olderThan: 0))
            }
            #expect(blocked.locked && blocked.traceFolders == 0)
            #expect(try await retention.prune(Retention.Options(olderThan: 0)).traceFolders == 3, "once released, a pass runs")
        }
    }

    @Test("ages read as 30d, 12h, 90m, 5s")
    func ages() {
        #expect(Retention.Options.age("30d") == 30 * 86_400 && Retention.Options.age("12h") == 43_200)
        #expect(Retention.Options.age("90m") == 5400 && Retention.Options.age("0d") == 0 && Retention.Options.age("5s") == 5)
        for bad in ["30", "d", "-1d", "3w", ""] { #expect(Retention.Options.age(bad) == nil, "\(bad)") }
    }

    @Test("a worker with a retention period prunes on its own: a finished Run's trace folder goes after the period")
    func workerLoop() async throws {
        try await withWorkerEnvironment(.sqlite) { env in
            let events = env.engine.events.subscribe()
            var configuration = env.configuration(autoApprove: true)
            configuration.retention = Retention.Options(olderThan: 0)
            configuration.retentionFirstPass = .zero
            configuration.retentionInterval = .milliseconds(100)
            let running = env.start(configuration)
            let task = try await env.finished(try await env.enqueue(objective: "Prune me later").id)
            let runId = try #require(task.currentRunId)
            let pruned = try await withDeadline(seconds: 30) { () async -> LifecycleEvent? in
                for await event in events where event.kind == .pruned && event.runId == runId { return event }
                return nil
            }
            try await running.stop()
            #expect(pruned != nil)
            #expect(!FileManager.default.fileExists(atPath: env.traceRoot.appendingPathComponent(runId).path))
        }
    }
}
