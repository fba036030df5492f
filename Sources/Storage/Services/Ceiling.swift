import Bridge
import CWOM
import Foundation
import LegacyTasks
import TowerJSON

/// What the database can do with the rows Control Tower writes per task, without Control Tower:
/// the rows of an enqueue (the engine's own, `LifecycleEngine.prepare`), a claim and a completion
/// (built by the same Bridge and row mappers), written by plain multi-row SQL in batches (one
/// transaction per batch and phase). `tower bench --ceiling` prints our figures as a share of these. It runs only in the benchmark's throwaway
/// database and on rows of its own: the one place outside the lifecycle engine that writes a
/// status, on purpose, because it measures what the engine costs.
public struct Ceiling: Sendable {
    public struct Figures: Sendable {
        /// Enqueues per second (task, CWOM objects, links, audit rows).
        public var intake: Double
        /// Tasks per second claimed (task, Run, Run link, Issue, audit) and completed (task, Run,
        /// two Artifacts, evidence pack, Issue, audit).
        public var work: Double
    }

    let database: Database

    public init(database: Database) { self.database = database }

    /// `clients` writers work through the batches at once (PostgreSQL takes several writers; the
    /// reference `pgbench` runs 4 clients), each batch in its own transaction.
    public func measure(tasks count: Int, batch: Int = 32, clients: Int = 1) async throws -> Figures {
        let now = Timestamp.now()
        let actor = Actor(kind: .system, id: "ceiling")
        // The intake's rows are the engine's own: a task, its CWOM objects and links and every
        // audit row, as `LifecycleEngine.prepare` builds them for `POST /tasks/enqueue`. One
        // enqueue through the engine first makes the ceiling's repository known to it, so that
        // each prepared enqueue holds all of its rows (a Repo is created only once).
        let engine = LifecycleEngine(database: database)
        let slug = "ceiling/repo-\(ULID.make().lowercased())"
        let request = { (n: Int) in
            TaskRequest(requestedBy: Requester(kind: .system, id: "ceiling"), objective: "Ceiling task \(n)", operation: .ops, target: TaskTarget(repo: slug))
        }
        let enqueue = { (n: Int) in LifecycleEngine.EnqueueRequest(request(n), id: TaskRecord.newId(), traceId: TaskRecord.newTraceId(), createCWOM: true) }
        _ = try await engine.enqueue([enqueue(-1)])
        var prepared: [(task: TaskRecord, cwom: TaskCWOM, rows: InsertRows)] = []
        for n in 0..<count {
            guard let built = try engine.prepare(enqueue(n)).built, let cwom = built.objects else {
                throw StorageError(.query, "the ceiling's enqueue was not built whole: its repository \(slug) is not known to the engine")
            }
            prepared.append((built.task, cwom, built.rows))
        }
        let chunks = stride(from: 0, to: prepared.count, by: batch).map { Array(prepared[$0..<min(prepared.count, $0 + batch)]) }

        let intakeStart = Date()
        try await Self.inParallel(chunks, clients: clients) { chunk in
            var rows = InsertRows()
            for item in chunk { rows.add(item.rows) }
            let gathered = rows
            // Each table's multi-row insert as a statement of its own, as the driver binds one.
            try await database.write { store in try await store.session.insertEach(gathered, texts: nil) }
        }
        let intakeSeconds = Date().timeIntervalSince(intakeStart)

        let work = chunks.map { chunk in chunk.map { (task: $0.task, cwom: $0.cwom) } }
        let workStart = Date()
        try await Self.inParallel(work, clients: clients) { chunk in
            let ids = chunk.map(\.task.id)
            let issueIds = chunk.map(\.cwom.issue.id)
            let runs = chunk.map { task, cwom in
                Run(
                    header: ObjectHeader(traceId: task.traceId), forIssue: cwom.issue.ref, repo: cwom.issue.repo, status: .running, mode: .system,
                    executor: Executor(actor: actor, runtime: "stub", toolchain: ["stub@0.1.0"]),
                    inputs: RunInputs(contextPackets: [cwom.contextPacket.ref], constraintSnapshot: cwom.constraintSnapshot.ref),
                    telemetry: Telemetry(startedAt: now), artifactRootUri: "file:///tmp/ceiling/", meta: ["task_id": .string(task.id)], createdAt: now)
            }
            // The claim: tasks, Runs and their links, Issues, audit.
            try await database.write { store in
                var binds: [SQLValue] = [.timestamp(now), .text("ceiling-worker"), .timestamp(now.adding(seconds: 30))]
                var cases: [String] = []
                for (task, run) in zip(ids, runs) {
                    cases.append("WHEN $\(binds.count + 1) THEN $\(binds.count + 2)")
                    binds += [.text(task), .text(run.id)]
                }
                let idList = SQL.placeholders(count: ids.count, after: binds.count)
                binds += ids.map { .text($0) }
                try await store.session.query(
                    """
                    UPDATE tasks SET status = 'running', started_at = $1, assigned_to = $2, attempt = attempt + 1,
                    lease_expires_at = $3, current_run_id = CASE id \(cases.joined(separator: " ")) END WHERE id IN (\(idList))
                    """, binds)
                try await Self.run(store, [
                    SQL.insertMany("cwom_runs", runs.map(RunRepository.columns)),
                    SQL.insertMany("cwom_run_context_packets", runs.map { ["run_id": .text($0.id), "context_packet_id": .text($0.inputs.contextPackets[0].id), "created_at": .timestamp(now)] }),
                    [Self.setStatus("cwom_issues", "running", issueIds, now)],
                    SQL.insertMany("audit_log", chunk.flatMap { task, cwom in
                        [("Task", task.id), ("Issue", cwom.issue.id)].map { AuditLog.columns(AuditEntry(ts: now, actor: actor, action: .statusChanged, entityKind: $0.0, entityId: $0.1, before: ["status": "queued"], after: ["status": "running"], traceId: task.traceId)) }
                    } + runs.map { AuditLog.columns(AuditEntry(ts: now, actor: actor, action: .created, entityKind: "Run", entityId: $0.id, snapshot: $0, traceId: $0.header.traceId)) }),
                ])
            }
            // The completion: tasks, Runs, two Artifacts each, evidence packs, Issues, audit.
            try await database.write { store in
                let artifacts = zip(chunk, runs).flatMap { item, run in
                    [ArtifactType.doc, .trace].map {
                        Artifact(
                            header: ObjectHeader(traceId: item.task.traceId), producedBy: run.ref, forIssue: item.cwom.issue.ref, type: $0,
                            title: $0.rawValue, uri: "file:///tmp/ceiling/\(run.id)/", digest: "sha256:" + String(repeating: "0", count: 64),
                            mediaType: "text/markdown", sizeBytes: 1000, createdAt: now)
                    }
                }
                let packs = zip(chunk, runs).map { item, run in
                    EvidencePack(forRun: run.ref, forIssue: item.cwom.issue.ref, verdict: .pass, verdictReason: "ok", evaluatedBy: actor)
                }
                let result: JSONValue = ["outputs": ["report": "artifacts/output.md"]]
                try await store.session.query(
                    "UPDATE tasks SET status = 'completed', completed_at = $1, result = $2, trace_path = $3, lease_expires_at = NULL WHERE id IN (\(SQL.placeholders(count: ids.count, after: 3)))",
                    [.timestamp(now), .json(result), .text("file:///tmp/ceiling")] + ids.map { .text($0) })
                let telemetry = Telemetry(startedAt: now, endedAt: now, durationS: 0.01)
                try await store.session.query(
                    "UPDATE cwom_runs SET status = 'under_review', telemetry = $1, outputs = $2, updated_at = $3 WHERE id IN (\(SQL.placeholders(count: runs.count, after: 3)))",
                    [.json(telemetry.json), .json(RunOutputs(artifacts: artifacts.prefix(2).map(\.ref)).json), .timestamp(now)] + runs.map { .text($0.id) })
                try await Self.run(store, [
                    SQL.insertMany("cwom_artifacts", artifacts.map(ArtifactRepository.columns)),
                    SQL.insertMany("cwom_evidence_packs", packs.map(EvidencePackRepository.columns)),
                    [Self.setStatus("cwom_issues", "under_review", issueIds, now)],
                    SQL.insertMany("audit_log",
                        chunk.flatMap { task, cwom in
                            [("Task", task.id), ("Issue", cwom.issue.id)].map { AuditLog.columns(AuditEntry(ts: now, actor: actor, action: .statusChanged, entityKind: $0.0, entityId: $0.1, before: ["status": "running"], after: ["status": "done"], traceId: task.traceId)) }
                        } + runs.map { AuditLog.columns(AuditEntry(ts: now, actor: actor, action: .statusChanged, entityKind: "Run", entityId: $0.id, before: ["status": "running"], after: ["status": "under_review"], traceId: $0.header.traceId)) }
                        + artifacts.map { AuditLog.columns(AuditEntry(ts: now, actor: actor, action: .created, entityKind: "Artifact", entityId: $0.id, snapshot: $0, traceId: $0.header.traceId)) }
                        + packs.map { AuditLog.columns(AuditEntry(ts: now, actor: actor, action: .created, entityKind: "EvidencePack", entityId: $0.id, snapshot: $0, traceId: $0.header.traceId)) }),
                ])
            }
        }
        let workSeconds = Date().timeIntervalSince(workStart)
        return Figures(intake: Double(count) / intakeSeconds, work: Double(count) / workSeconds)
    }

    /// Runs `body` on every chunk, `clients` chunks at a time.
    static func inParallel<Chunk: Sendable>(
        _ chunks: [Chunk], clients: Int, _ body: @escaping @Sendable (Chunk) async throws -> Void
    ) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for client in 0..<max(1, clients) {
                group.addTask {
                    for index in stride(from: client, to: chunks.count, by: max(1, clients)) { try await body(chunks[index]) }
                }
            }
            try await group.waitForAll()
        }
    }

    static func setStatus(_ table: String, _ status: String, _ ids: [String], _ now: Timestamp) -> (String, [SQLValue]) {
        ("UPDATE \(table) SET status = $1, updated_at = $2 WHERE id IN (\(SQL.placeholders(count: ids.count, after: 2)))",
            [.text(status), .timestamp(now)] + ids.map { .text($0) })
    }

    static func run(_ store: Store, _ groups: [[(String, [SQLValue])]]) async throws {
        for group in groups { for (sql, binds) in group { try await store.session.query(sql, binds) } }
    }
}
