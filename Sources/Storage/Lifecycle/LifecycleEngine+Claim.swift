import Bridge
import CWOM
import LegacyTasks
import TowerJSON

extension LifecycleEngine {
    /// Who claims and how its Runs are described.
    public struct Claimant: Sendable {
        /// The worker (or agent) id: `tasks.assigned_to`, the lease holder.
        public var id: String
        /// The audit actor and the Run's executor actor.
        public var actor: Actor
        /// The Run's mode (`system` for a worker, `agent` for an agent over MCP).
        public var mode: RunMode
        /// How long a claim holds without a heartbeat.
        public var leaseSeconds: Double
        /// The executor (name, version) that runs an operation, recorded in the Run.
        public var executor: @Sendable (TaskOperation) -> (name: String, version: String)
        /// The Run's `artifact_root_uri` (its trace folder), from its id.
        public var artifactRoot: @Sendable (String) -> String

        public init(id: String, actor: Actor, mode: RunMode = .system, leaseSeconds: Double,
            executor: @escaping @Sendable (TaskOperation) -> (name: String, version: String),
            artifactRoot: @escaping @Sendable (String) -> String)
        {
            self.id = id
            self.actor = actor
            self.mode = mode
            self.leaseSeconds = leaseSeconds
            self.executor = executor
            self.artifactRoot = artifactRoot
        }
    }

    /// A task claimed and pinned: its Issue, the context it runs under and its new Run.
    public struct Claim: Sendable {
        public var task: TaskRecord
        public var issue: Issue
        public var packet: ContextPacket
        public var snapshot: ConstraintSnapshot
        public var run: Run
    }

    /// Claims up to `limit` queued tasks, oldest first (`queued → running`), and in the same
    /// transaction gives each its CWOM objects when missing and a new Run pinned to the Issue's
    /// newest ContextPacket and its ConstraintSnapshot; the Issue goes to `running`.
    public func claim(_ claimant: Claimant, limit: Int) async throws -> [Claim] {
        guard limit > 0 else { return [] }
        return try await transaction("claim", by: claimant.actor) { tx in
            let tasks = try await tx.sql.claimTasks(
                worker: claimant.id, limit: limit, now: tx.now, leaseUntil: tx.now.adding(seconds: claimant.leaseSeconds))
            var claims: [Claim] = []
            for task in tasks {
                try tx.moved(
                    Lifecycle.task, task.id, [.queued, .running], note: "Claimed by \(claimant.id) (attempt \(task.attempt))",
                    traceId: task.traceId)
                claims.append(try await tx.pin(task, for: claimant))
                tx.events.append(LifecycleEvent(.claimed, taskId: task.id, runId: claims.last?.run.id, status: "running"))
            }
            return claims
        }
    }

    /// One heartbeat of a worker: extends the leases of the tasks in `taskIds` that it still holds
    /// and reports which of them were asked to stop. A task it runs that is missing from `held`
    /// was rescued (its lease had expired): the worker abandons it.
    public func heartbeat(_ claimant: Claimant, taskIds: [String], presence: WorkerPresence? = nil) async throws -> (
        held: [String], cancelRequested: [String]
    ) {
        let clock = self.clock
        return try await Self.$operation.withValue("heartbeat") { try await database.write { store in
            let now = clock.now()
            if let presence {
                try await store.queue.upsertWorker(
                    id: claimant.id, host: presence.host, pid: presence.pid, concurrency: presence.concurrency, now: now)
            }
            return try await LifecycleSQL(session: store.session).extendLeases(
                worker: claimant.id, taskIds: taskIds, leaseUntil: now.adding(seconds: claimant.leaseSeconds))
        } }
    }
}

/// A worker process as `tower_workers` records it.
public struct WorkerPresence: Sendable {
    public var host: String
    public var pid: Int
    public var concurrency: Int
    public init(host: String, pid: Int, concurrency: Int) {
        self.host = host
        self.pid = pid
        self.concurrency = concurrency
    }
}

extension LifecycleTransaction {
    /// Adapts a claimed task (CWOM objects when it has none, or a dangling issue), pins the
    /// newest ContextPacket and its ConstraintSnapshot, creates the Run and moves the Issue.
    mutating func pin(_ claimedTask: TaskRecord, for claimant: LifecycleEngine.Claimant) async throws -> LifecycleEngine.Claim {
        var task = claimedTask
        let trace = task.traceId
        let worker = claimant.actor
        var issue: Issue? = nil
        if let id = task.cwomIssueId { issue = try await store.issues.get(id) }
        if issue == nil {
            let (cwom, cwomEntries) = try await store.writeCWOM(
                for: task, acceptanceCriteria: Self.strings(task.metadata["acceptance_criteria"]),
                evidenceRequirements: Self.strings(task.metadata["evidence_requirements"]), traceId: trace, now: now)
            task.cwomIssueId = cwom.issue.id
            issue = cwom.issue
            audit += cwomEntries
        }
        guard var pinnedIssue = issue else { throw LifecycleError.rejected("task \(task.id): no issue") }
        var packet = try await store.contextPackets.latest(forIssue: pinnedIssue.id)
        var snapshot: ConstraintSnapshot? = nil
        if let ref = packet?.constraintSnapshot { snapshot = try await store.constraintSnapshots.get(ref.id) }
        if snapshot == nil { snapshot = try await store.constraintSnapshots.list(forIssue: pinnedIssue.id).last }
        if packet == nil || snapshot == nil {
            let repo = try await store.repos.get(pinnedIssue.repo.id)
            let built = TaskBridge.cwom(
                for: task, repo: repo ?? Repo(name: "unknown", slug: task.target.repo, source: Source(system: "jct")),
                actor: pinnedIssue.assignees.first ?? worker, acceptanceCriteria: pinnedIssue.acceptance.criteria,
                evidenceRequirements: [], now: now)
            if snapshot == nil {
                snapshot = built.constraintSnapshot
                try await store.constraintSnapshots.insert(built.constraintSnapshot)
                try await store.issues.link(pinnedIssue.id, to: built.constraintSnapshot.ref, at: now)
            }
            if packet == nil {
                let made = ContextPacket(
                    forIssue: pinnedIssue.ref, version: "1.0", summary: built.contextPacket.summary,
                    assumptions: built.contextPacket.assumptions, instructions: built.contextPacket.instructions,
                    constraintSnapshot: snapshot?.ref, meta: built.contextPacket.meta, createdAt: now)
                try await store.contextPackets.insert(made)
                try await store.issues.link(pinnedIssue.id, to: made.ref, at: now)
                packet = made
            }
        }
        guard let packet, let snapshot else { throw LifecycleError.rejected("task \(task.id): cannot pin a context") }
        let executor = claimant.executor(task.operation)
        let runId = ULID.make()
        let run = Run(
            header: ObjectHeader(id: runId, traceId: trace), forIssue: pinnedIssue.ref, repo: pinnedIssue.repo,
            status: .running, mode: claimant.mode,
            executor: Executor(actor: worker, runtime: executor.name, toolchain: ["\(executor.name)@\(executor.version)", "tower@0.1.0"]),
            inputs: RunInputs(contextPackets: [packet.ref], doctrineRefs: packet.doctrineRefs, constraintSnapshot: snapshot.ref),
            telemetry: Telemetry(startedAt: now), artifactRootUri: claimant.artifactRoot(runId),
            meta: ["task_id": .string(task.id), "attempt": .int(task.attempt)], createdAt: now)
        try await store.runs.insert(run)
        audit.append(
            AuditEntry(
                ts: now, actor: worker, action: .created, entityKind: "Run", entityId: run.id, after: run.json,
                note: "Run created for task \(task.id)", traceId: trace))
        let runs = pinnedIssue.runs + [run.ref]
        if try await moveIssue(pinnedIssue.id, from: pinnedIssue.status, to: .running, runs: runs, traceId: trace) {
            pinnedIssue.status = .running
        } else {
            // The Issue cannot follow (a legacy row under review, say): the Run is still listed.
            try await store.issues.appendRun(pinnedIssue.id, run.ref, at: now)
        }
        pinnedIssue.runs = runs
        try await sql.pinTask(task.id, issueId: task.cwomIssueId, runId: run.id)
        task.currentRunId = run.id
        return LifecycleEngine.Claim(task: task, issue: pinnedIssue, packet: packet, snapshot: snapshot, run: run)
    }

    static func strings(_ value: JSONValue?) -> [String] { (value?.arrayValue ?? []).compactMap(\.stringValue) }
}
