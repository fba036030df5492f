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
    ///
    /// A value, its five objects kept in one `Boxed`: a claim is held by the worker's slot, its
    /// run recorder, its completion and the engine, and each copy of a plain struct retained and
    /// released every string and array of the task row, the Issue, the packet, the snapshot and
    /// the Run.
    public struct Claim: Sendable {
        private struct Fields: Sendable {
            var task: TaskRecord
            var issue: Issue
            var packet: ContextPacket
            var snapshot: ConstraintSnapshot
            var run: Run
        }

        private var boxed: Boxed<Fields>

        public var task: TaskRecord {
            get { boxed.fields.task }
            set { boxed.change { $0.task = newValue } }
        }
        public var issue: Issue {
            get { boxed.fields.issue }
            set { boxed.change { $0.issue = newValue } }
        }
        public var packet: ContextPacket {
            get { boxed.fields.packet }
            set { boxed.change { $0.packet = newValue } }
        }
        public var snapshot: ConstraintSnapshot {
            get { boxed.fields.snapshot }
            set { boxed.change { $0.snapshot = newValue } }
        }
        public var run: Run {
            get { boxed.fields.run }
            set { boxed.change { $0.run = newValue } }
        }

        public init(task: TaskRecord, issue: Issue, packet: ContextPacket, snapshot: ConstraintSnapshot, run: Run) {
            boxed = Boxed(Fields(task: task, issue: issue, packet: packet, snapshot: snapshot, run: run))
        }
    }

    /// Claims up to `limit` queued tasks, oldest first (`queued → running`), and in the same
    /// transaction gives each its CWOM objects when missing and a new Run pinned to the Issue's
    /// newest ContextPacket and its ConstraintSnapshot; the Issue goes to `running`.
    public func claim(_ claimant: Claimant, limit: Int) async throws -> [Claim] {
        guard limit > 0 else { return [] }
        return try await transaction("claim", by: claimant.actor) { tx in
            let tasks = try await tx.sql.claimTasks(
                worker: claimant.id, runIds: (0..<limit).map { _ in ULID.make() }, now: tx.now,
                leaseUntil: tx.now.adding(seconds: claimant.leaseSeconds))
            for task in tasks {
                try tx.moved(
                    Lifecycle.task, task.id, [.queued, .running], note: "Claimed by \(claimant.id) (attempt \(task.attempt))",
                    traceId: task.traceId)
            }
            let claims = try await tx.pin(tasks, for: claimant)
            tx.events += claims.map { LifecycleEvent(.claimed, taskId: $0.task.id, runId: $0.run.id, status: "running") }
            return claims
        }
    }

    /// Claims one queued task by its id for an agent (`jct_claim_task`), exactly as `claim` does
    /// for a worker: guarded on `queued`, a new Run of the claimant's mode pinned to the Issue's
    /// newest ContextPacket. The lease lasts the task's time budget (or `leaseSeconds` when
    /// longer) and every `heartbeat` renews it. Nil when the task is not queued (any more).
    public func claim(_ taskId: String, for claimant: Claimant) async throws -> Claim? {
        try await transaction("claim", by: claimant.actor) { tx in
            guard let queued = try await tx.store.tasks.get(taskId) else { throw LifecycleError.notFound(entity: "Task", id: taskId) }
            let lease = max(claimant.leaseSeconds, Double(queued.constraints.timeBudgetSeconds))
            let tasks = try await tx.sql.claimTasks(
                worker: claimant.id, runIds: [ULID.make()], now: tx.now, leaseUntil: tx.now.adding(seconds: lease), only: taskId)
            guard let task = tasks.first else { return nil }
            try tx.moved(
                Lifecycle.task, task.id, [.queued, .running], note: "Claimed by \(claimant.id) (attempt \(task.attempt))",
                traceId: task.traceId)
            let claims = try await tx.pin([task], for: claimant)
            tx.events += claims.map { LifecycleEvent(.claimed, taskId: $0.task.id, runId: $0.run.id, status: "running") }
            return claims.first
        }
    }

    /// The attempt `holder` runs on `taskId`, as its claim returned it, or nil when the task is
    /// not running under that holder (never claimed, finished, or rescued after its lease ran out).
    public func activeClaim(_ taskId: String, holder: String) async throws -> Claim? {
        try await database.read { store in
            guard let task = try await store.tasks.get(taskId), task.status == .running, task.assignedTo == holder,
                let runId = task.currentRunId, let run = try await store.runs.get(runId),
                let issue = try await store.issues.get(run.forIssue.id),
                let packetRef = run.inputs.contextPackets.first, let packet = try await store.contextPackets.get(packetRef.id),
                let snapshotRef = run.inputs.constraintSnapshot,
                let snapshot = try await store.constraintSnapshots.get(snapshotRef.id)
            else { return nil }
            return Claim(task: task, issue: issue, packet: packet, snapshot: snapshot, run: run)
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
    /// Adapts claimed tasks (CWOM objects for those that have none, or a dangling issue), pins
    /// each to its Issue's newest ContextPacket and its ConstraintSnapshot, creates their Runs
    /// (under the ids the claim gave them) and moves their Issues to `running`: a fixed number of
    /// statements for the whole claim (tasks without CWOM objects, or an Issue without a context,
    /// add their own).
    mutating func pin(_ claimed: [TaskRecord], for claimant: LifecycleEngine.Claimant) async throws -> [LifecycleEngine.Claim] {
        guard !claimed.isEmpty else { return [] }
        let worker = claimant.actor
        var issues: [String: Issue] = [:]
        var contexts: [String: (packet: ContextPacket?, snapshot: ConstraintSnapshot?)] = [:]
        for found in try await store.issues.getWithContexts(ids: claimed.compactMap(\.cwomIssueId)) {
            issues[found.issue.id] = found.issue
            contexts[found.issue.id] = (found.packet, found.snapshot)
        }
        var tasks: [TaskRecord] = []
        var adopted: [(taskId: String, issueId: String)] = []
        for var task in claimed {
            if task.cwomIssueId.flatMap({ issues[$0] }) == nil {
                // Adapt: a task with no (or a dangling) issue gets its CWOM objects now.
                let (cwom, cwomEntries) = try await store.writeCWOM(
                    for: task, acceptanceCriteria: Self.strings(task.metadata["acceptance_criteria"]),
                    evidenceRequirements: Self.strings(task.metadata["evidence_requirements"]), traceId: task.traceId, now: now)
                task.cwomIssueId = cwom.issue.id
                issues[cwom.issue.id] = cwom.issue
                let pinned = cwom.contextPacket.constraintSnapshot?.id == cwom.constraintSnapshot.id
                contexts[cwom.issue.id] = (cwom.contextPacket, pinned ? cwom.constraintSnapshot : nil)
                audit += cwomEntries
                adopted.append((task.id, cwom.issue.id))
            }
            tasks.append(task)
        }
        // Each claim's parts, made into a `Claim` once its Issue's final runs and status are known.
        var parts: [(task: TaskRecord, issue: Issue, packet: ContextPacket, snapshot: ConstraintSnapshot, run: Run)] = []
        var runsByIssue: [String: [Ref]] = [:]
        for task in tasks {
            guard let issueId = task.cwomIssueId, let issue = issues[issueId] else {
                throw LifecycleError.rejected("task \(task.id): no issue")
            }
            let (packet, snapshot) = try await context(
                for: task, issue: issue, packet: contexts[issueId]?.packet, snapshot: contexts[issueId]?.snapshot, worker: worker)
            guard let runId = task.currentRunId else { throw LifecycleError.rejected("task \(task.id): claimed without a Run id") }
            let executor = claimant.executor(task.operation)
            let run = Run(
                header: ObjectHeader(id: runId, traceId: task.traceId), forIssue: issue.ref, repo: issue.repo,
                status: .running, mode: claimant.mode,
                executor: Executor(actor: worker, runtime: executor.name, toolchain: ["\(executor.name)@\(executor.version)", "tower@0.1.0"]),
                inputs: RunInputs(contextPackets: [packet.ref], doctrineRefs: packet.doctrineRefs, constraintSnapshot: snapshot.ref),
                telemetry: Telemetry(startedAt: now), artifactRootUri: claimant.artifactRoot(runId),
                meta: ["task_id": .string(task.id), "attempt": .int(task.attempt)], createdAt: now)
            audit.append(
                AuditEntry(
                    ts: now, actor: worker, action: .created, entityKind: "Run", entityId: run.id, snapshot: run,
                    note: "Run created for task \(task.id)", traceId: task.traceId))
            runsByIssue[issueId, default: issue.runs].append(run.ref)
            parts.append((task, issue, packet, snapshot, run))
        }
        later(RunRepository.rows(parts.map(\.run)))
        // The Issues follow their tasks to `running`: one guarded statement per status they come from.
        var following: Set<String> = []
        let movable = runsByIssue.keys.compactMap { issues[$0] }.filter { Lifecycle.issue.allows($0.status, .running) }
        for (from, group) in Dictionary(grouping: movable, by: \.status) {
            let written = try await sql.writeIssueStatuses(
                group.map { ($0.id, runsByIssue[$0.id] ?? $0.runs, Array((runsByIssue[$0.id] ?? []).dropFirst($0.runs.count))) },
                to: .running, expected: from, at: now)
            for issue in group where written.contains(issue.id) {
                let trace = parts.first { $0.issue.id == issue.id }?.task.traceId
                try moved(Lifecycle.issue, issue.id, [from, .running], traceId: trace)
            }
            following.formUnion(written)
        }
        for (issueId, runs) in runsByIssue where !following.contains(issueId) {
            // The Issue cannot follow (a legacy row under review, say): its Runs are still listed.
            for run in runs where !(issues[issueId]?.runs.contains(run) ?? false) {
                try await store.issues.appendRun(issueId, run, at: now)
            }
        }
        let claims = parts.map { part in
            var issue = part.issue
            issue.runs = runsByIssue[issue.id] ?? issue.runs
            if following.contains(issue.id) { issue.status = .running }
            return LifecycleEngine.Claim(task: part.task, issue: issue, packet: part.packet, snapshot: part.snapshot, run: part.run)
        }
        later(sql.adoptedIssueStatements(adopted))
        return claims
    }

    /// The pinned context of a task: its Issue's newest ContextPacket and that packet's
    /// ConstraintSnapshot (else the Issue's newest snapshot); an Issue without them (a legacy row)
    /// is given them now.
    mutating func context(for task: TaskRecord, issue: Issue, packet found: ContextPacket?,
        snapshot pinned: ConstraintSnapshot?, worker: Actor) async throws -> (ContextPacket, ConstraintSnapshot)
    {
        var packet = found
        var snapshot = pinned
        if snapshot == nil { snapshot = try await store.constraintSnapshots.list(forIssue: issue.id).last }
        if packet == nil || snapshot == nil {
            let repo = try await store.repos.get(issue.repo.id)
            let built = TaskBridge.cwom(
                for: task, repo: repo ?? Repo(name: "unknown", slug: task.target.repo, source: Source(system: "jct")),
                actor: issue.assignees.first ?? worker, acceptanceCriteria: issue.acceptance.criteria,
                evidenceRequirements: [], now: now)
            if snapshot == nil {
                snapshot = built.constraintSnapshot
                try await store.constraintSnapshots.insert(built.constraintSnapshot)
                try await store.issues.link(issue.id, to: built.constraintSnapshot.ref, at: now)
            }
            if packet == nil {
                let made = ContextPacket(
                    forIssue: issue.ref, version: "1.0", summary: built.contextPacket.summary,
                    assumptions: built.contextPacket.assumptions, instructions: built.contextPacket.instructions,
                    constraintSnapshot: snapshot?.ref, meta: built.contextPacket.meta, createdAt: now)
                try await store.contextPackets.insert(made)
                try await store.issues.link(issue.id, to: made.ref, at: now)
                packet = made
            }
        }
        guard let packet, let snapshot else { throw LifecycleError.rejected("task \(task.id): cannot pin a context") }
        return (packet, snapshot)
    }

    static func strings(_ value: JSONValue?) -> [String] { (value?.arrayValue ?? []).compactMap(\.stringValue) }
}
