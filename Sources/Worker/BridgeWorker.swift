import Bridge
import CWOM
import Foundation
import LegacyTasks
import Logging
import Metrics
import ServiceLifecycle
import Storage
import TowerJSON

/// A task claimed and pinned in one transaction, ready to execute.
struct ClaimedTask: Sendable {
    var task: TaskRecord
    var issue: Issue
    var packet: ContextPacket
    var snapshot: ConstraintSnapshot
    var run: Run
    var executor: any TaskExecutor
}

/// The bridge worker (DESIGN.md §4): claims queued tasks, adapts them to CWOM, runs each under a
/// Run pinned to its context, records artifacts, evidence and reviews, and keeps every claim
/// under a lease that its heartbeat extends. Any worker rescues tasks whose lease expired.
public final class BridgeWorker: Service, Sendable {
    public let database: Database
    public let configuration: WorkerConfiguration
    let logger: Logger
    let state = WorkerState()
    let wake = Signal()

    public init(database: Database, configuration: WorkerConfiguration, logger: Logger = Logger(label: "tower.worker")) {
        self.database = database
        self.configuration = configuration
        var logger = logger
        logger[metadataKey: "worker_id"] = "\(configuration.workerId)"
        self.logger = logger
    }

    public var workerId: String { configuration.workerId }
    var actor: Actor { Actor(kind: .system, id: workerId, display: "Control Tower worker") }

    /// Wakes the claim loop (after an enqueue in the same process).
    public func wakeUp() async { await wake.fire() }

    /// Asks the worker to stop claiming, let running work finish within the grace period, then
    /// stop and requeue the rest. `run()` returns when that is done.
    public func shutdown() async {
        await state.beginShutdown()
        await wake.fire()
    }

    public func run() async throws {
        try FileManager.default.createDirectory(at: configuration.traceRoot, withIntermediateDirectories: true)
        try await recordWorker(stopped: false)
        logger.info(
            "worker started",
            metadata: [
                "concurrency": "\(configuration.concurrency)", "trace_root": "\(configuration.traceRoot.path)",
                "poll_interval": "\(configuration.pollInterval)",
            ])
        // A graceful shutdown (SIGTERM) and a cancellation (another service of the process failed,
        // e.g. the HTTP server could not bind) both stop claiming and drain.
        await withTaskCancellationHandler {
            await withGracefulShutdownHandler {
                await withDiscardingTaskGroup { group in
                    group.addTask { await self.heartbeatLoop() }
                    group.addTask { await self.rescueLoop() }
                    if let postgres = database.driver as? PostgresDriver {
                        group.addTask { await self.listenLoop(postgres) }
                    }
                    await claimLoop(&group)
                    await drain()
                    group.cancelAll()
                }
            } onGracefulShutdown: {
                Task { await self.shutdown() }
            }
        } onCancel: {
            Task { await self.shutdown() }
        }
        try? await recordWorker(stopped: true)
        logger.info("worker stopped")
    }

    // MARK: - Claiming

    /// Keeps every slot busy: whenever slots are free (and the heartbeat is healthy) a claim for
    /// all of them starts, without waiting for claims already in flight, so claim round trips
    /// overlap with each other and with running work.
    func claimLoop(_ group: inout DiscardingTaskGroup) async {
        while await !state.shuttingDown, !Task.isCancelled {
            let free = configuration.concurrency - (await state.busySlots)
            if free > 0, await state.healthy, await !state.queueLooksEmpty {
                await state.reserve(free)
                group.addTask { await self.claimAndRun(limit: free) }
                continue
            }
            await wake.wait(seconds: configuration.pollInterval)
            await state.setQueueLooksEmpty(false)
        }
        while await state.reserved > 0 { try? await Task.sleep(for: .milliseconds(10)) }
    }

    /// One claim of up to `limit` tasks, then their executions, each in its own child task.
    func claimAndRun(limit: Int) async {
        var claimed: [ClaimedTask] = []
        do {
            claimed = try await claim(limit: limit)
        } catch {
            logger.error("claim failed", metadata: ["error": "\(error)"])
        }
        for item in claimed {
            await state.add(item.task.id)
            Counter(label: "tower_task_claims_total", dimensions: [("operation", item.task.operation.rawValue)]).increment()
            if let queued = item.task.queuedAt, let started = item.task.startedAt {
                Metrics.Timer(label: "tower_enqueue_to_start_seconds").recordNanoseconds(
                    max(0, (started.microseconds - queued.microseconds) * 1000))
            }
        }
        // Fewer tasks than slots: the loop waits for a wake-up (enqueue, NOTIFY, a finished
        // task) or the poll interval before claiming again.
        if claimed.count < limit { await state.setQueueLooksEmpty(true) }
        await state.release(limit)
        await withDiscardingTaskGroup { group in
            for item in claimed { group.addTask { await self.process(item) } }
        }
    }

    /// Claims up to `limit` tasks and, in the same transaction, gives each its CWOM objects when
    /// missing and a new Run pinned to the issue's newest context packet and its constraint
    /// snapshot; task, issue and run transitions are audited with the task's trace id.
    func claim(limit: Int) async throws -> [ClaimedTask] {
        let configuration = self.configuration
        let worker = self.actor
        return try await database.write { store in
            // The clock is read once the transaction holds the queue (on SQLite: the writer), so that
            // `started_at` is close to the claim; the claim statement keeps it from preceding `queued_at`.
            let now = Timestamp.now()
            let tasks = try await store.queue.claim(
                worker: configuration.workerId, limit: limit, now: now, leaseUntil: now.adding(seconds: configuration.leaseSeconds))
            var claimed: [ClaimedTask] = []
            for task in tasks {
                claimed.append(try await Self.pin(task, in: store, worker: worker, configuration: configuration, now: now))
            }
            return claimed
        }
    }

    static func pin(_ claimedTask: TaskRecord, in store: Store, worker: Actor, configuration: WorkerConfiguration,
        now: Timestamp) async throws -> ClaimedTask
    {
        var task = claimedTask
        let trace = task.traceId
        var entries: [AuditEntry] = [
            AuditEntry(
                ts: now, actor: worker, action: .statusChanged, entityKind: "Task", entityId: task.id,
                before: ["status": "queued"], after: ["status": "running"],
                note: "Claimed by \(worker.actorId) (attempt \(task.attempt))", traceId: trace)
        ]
        // Adapt: a task with no (or a dangling) issue gets its CWOM objects now.
        var issue: Issue? = nil
        if let id = task.cwomIssueId { issue = try await store.issues.get(id) }
        if issue == nil {
            let (cwom, cwomEntries) = try await store.writeCWOM(
                for: task, acceptanceCriteria: strings(task.metadata["acceptance_criteria"]),
                evidenceRequirements: strings(task.metadata["evidence_requirements"]), traceId: trace, now: now)
            task.cwomIssueId = cwom.issue.id
            issue = cwom.issue
            entries += cwomEntries
        }
        guard var pinnedIssue = issue else { throw WorkerError("task \(task.id): no issue") }
        // Pin: the newest context packet version and its constraint snapshot.
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
        guard let packet, let snapshot else { throw WorkerError("task \(task.id): cannot pin a context") }
        let executor = configuration.executors.executor(for: task.operation)
        let runId = ULID.make()
        let root = configuration.traceRoot.appendingPathComponent(runId, isDirectory: true).absoluteURL.absoluteString
        let run = Run(
            header: ObjectHeader(id: runId, traceId: trace), forIssue: pinnedIssue.ref, repo: pinnedIssue.repo,
            status: .running, mode: .system,
            executor: Executor(actor: worker, runtime: executor.name, toolchain: ["\(executor.name)@\(executor.version)", "tower@0.1.0"]),
            inputs: RunInputs(contextPackets: [packet.ref], doctrineRefs: packet.doctrineRefs, constraintSnapshot: snapshot.ref),
            telemetry: Telemetry(startedAt: now), artifactRootUri: root.hasSuffix("/") ? root : root + "/",
            meta: ["task_id": .string(task.id), "attempt": .int(task.attempt)], createdAt: now)
        try await store.runs.insert(run)
        let oldIssueStatus = pinnedIssue.status
        pinnedIssue.runs.append(run.ref)
        pinnedIssue.status = .running
        try await store.issues.update(pinnedIssue.id, runs: pinnedIssue.runs, status: .running, at: now)
        task.currentRunId = run.id
        try await store.session.query(
            "UPDATE tasks SET cwom_issue_id = $1, current_run_id = $2 WHERE id = $3",
            [.text(task.cwomIssueId), .text(run.id), .text(task.id)])
        entries.append(
            AuditEntry(
                ts: now, actor: worker, action: .created, entityKind: "Run", entityId: run.id, after: run.json,
                note: "Run created for task \(task.id)", traceId: trace))
        entries.append(
            AuditEntry(
                ts: now, actor: worker, action: .statusChanged, entityKind: "Issue", entityId: pinnedIssue.id,
                before: ["status": oldIssueStatus.json], after: ["status": "running"],
                note: "Status changed: \(oldIssueStatus.rawValue) -> running", traceId: trace))
        try await store.audit.append(entries)
        return ClaimedTask(task: task, issue: pinnedIssue, packet: packet, snapshot: snapshot, run: run, executor: executor)
    }

    static func strings(_ value: JSONValue?) -> [String] { (value?.arrayValue ?? []).compactMap(\.stringValue) }

    // MARK: - Heartbeat, rescue, wake-ups

    func heartbeatLoop() async {
        while !Task.isCancelled {
            do {
                // Only executions claimed (and committed) before this heartbeat can be judged lost.
                let known = await state.runningIds
                let now = Timestamp.now()
                let (running, cancel) = try await database.write { store in
                    try await store.queue.upsertWorker(
                        id: self.workerId, host: ProcessInfo.processInfo.hostName,
                        pid: Int(ProcessInfo.processInfo.processIdentifier), concurrency: self.configuration.concurrency, now: now)
                    return try await store.queue.heartbeat(
                        worker: self.workerId, taskIds: known, leaseUntil: now.adding(seconds: self.configuration.leaseSeconds))
                }
                await state.setHealthy(true)
                for id in cancel { await state.stop(id, .cancelRequested) }
                // A task this worker runs that the database no longer gives it was rescued.
                let held = Set(running)
                for id in known where !held.contains(id) { await state.stop(id, .leaseLost) }
            } catch {
                await state.setHealthy(false)
                logger.error("heartbeat failed: not claiming until it succeeds", metadata: ["error": "\(error)"])
            }
            try? await Task.sleep(for: .seconds(configuration.heartbeatSeconds))
        }
    }

    func rescueLoop() async {
        while !Task.isCancelled {
            do {
                let rescued = try await rescueExpired()
                if rescued > 0 { await wake.fire() }
            } catch {
                logger.error("rescue failed", metadata: ["error": "\(error)"])
            }
            try? await Task.sleep(for: .seconds(configuration.rescueSeconds))
        }
    }

    /// Requeues (or, after the last attempt, fails) tasks whose lease expired; their lost Run is
    /// marked failed. Safe with many rescuers: rows are locked and every change is fenced.
    public func rescueExpired() async throws -> Int {
        let now = Timestamp.now()
        let configuration = self.configuration
        let worker = self.actor
        return try await database.write { store in
            var count = 0
            for expired in try await store.queue.expired(now: now) {
                var task = expired
                let lostWorker = expired.assignedTo ?? "unknown"
                let lastAttempt = task.attempt >= task.maxAttempts
                if lastAttempt {
                    task.status = .failed
                    task.completedAt = now
                    task.error = "Worker \(lostWorker) was lost (lease expired); gave up after \(task.attempt) attempts"
                } else {
                    task.status = .queued
                    task.runAfter = now.adding(seconds: configuration.backoff(afterAttempt: task.attempt))
                }
                guard try await store.queue.rescue(task, expiredBefore: now, previousAttempt: expired.attempt) else { continue }
                count += 1
                Counter(label: "tower_task_rescues_total").increment()
                let message = "worker lost: \(lostWorker) stopped renewing its lease (expired \(expired.leaseExpiresAt?.iso8601 ?? "?"))"
                if let runId = expired.currentRunId, var run = try await store.runs.get(runId),
                    RunLifecycle.canTransition(from: run.status, to: .failed)
                {
                    let old = run.status
                    run.status = .failed
                    run.failure = Failure(category: .runtime, message: message)
                    run.telemetry.endedAt = now
                    if let started = run.telemetry.startedAt { run.telemetry.durationS = max(0, now.seconds(since: started)) }
                    run.updatedAt = now
                    try await store.runs.update(run)
                    try await store.audit.statusChanged(
                        "Run", run.id, from: old.rawValue, to: "failed", by: worker, note: "Rescued: \(message)", traceId: task.traceId)
                }
                if let issueId = expired.cwomIssueId {
                    let target: Status = lastAttempt ? .failed : .ready
                    if let old = try await store.issues.setStatus(issueId, target, at: now), old != target {
                        try await store.audit.statusChanged(
                            "Issue", issueId, from: old.rawValue, to: target.rawValue, by: worker, traceId: task.traceId)
                    }
                }
                try await store.audit.statusChanged(
                    "Task", task.id, from: "running", to: task.status.rawValue, by: worker,
                    note: lastAttempt ? "Rescued: attempts exhausted" : "Rescued: requeued for attempt \(task.attempt + 1)",
                    traceId: task.traceId)
                self.logger.warning(
                    "rescued a task",
                    metadata: Self.metadata(task, runId: expired.currentRunId).merging(
                        ["lost_worker": "\(lostWorker)", "status": "\(task.status.rawValue)"]) { $1 })
            }
            if count > 0 { try await store.queue.notify() }
            return count
        }
    }

    func listenLoop(_ postgres: PostgresDriver) async {
        while !Task.isCancelled {
            do {
                try await postgres.listen(channel: QueueRepository.channel) { await self.wake.fire() }
            } catch {
                if Task.isCancelled { return }
                // PSQLError's description is deliberately generic; its reflection says what happened.
                logger.warning("LISTEN failed; polling meanwhile", metadata: ["error": "\(String(reflecting: error))"])
            }
            try? await Task.sleep(for: .seconds(1))
        }
    }

    /// After shutdown begins: waits up to the grace period for running work, then stops the rest.
    func drain() async {
        let deadline = Date().addingTimeInterval(configuration.gracePeriodSeconds)
        while await state.runningCount > 0 && Date() < deadline {
            try? await Task.sleep(for: .milliseconds(50))
        }
        for id in await state.runningIds { await state.stop(id, .shutdown) }
        while await state.runningCount > 0 { try? await Task.sleep(for: .milliseconds(20)) }
    }

    func recordWorker(stopped: Bool) async throws {
        try await database.write { store in
            try await store.queue.upsertWorker(
                id: self.workerId, host: ProcessInfo.processInfo.hostName, pid: Int(ProcessInfo.processInfo.processIdentifier),
                concurrency: self.configuration.concurrency, now: .now(), stopped: stopped)
        }
    }
}
