import Bridge
import CWOM
import Foundation
import LegacyTasks
import Logging
import Metrics
import ServiceLifecycle
import Storage
import Synchronization
import TowerJSON

/// A task claimed and pinned by the engine, with the executor that runs it.
struct ClaimedTask: Sendable {
    var claim: LifecycleEngine.Claim
    var executor: any TaskExecutor

    var task: TaskRecord { claim.task }
    var issue: Issue { claim.issue }
    var packet: ContextPacket { claim.packet }
    var snapshot: ConstraintSnapshot { claim.snapshot }
    var run: Run { claim.run }
}

/// The bridge worker (DESIGN.md §4): claims queued tasks, adapts them to CWOM, runs each under a
/// Run pinned to its context, records artifacts, evidence and reviews, and keeps every claim
/// under a lease that its heartbeat extends. Any worker rescues tasks whose lease expired.
public final class BridgeWorker: Service, Sendable {
    public let database: Database
    /// Every status change the worker makes goes through the engine.
    public let engine: LifecycleEngine
    public let configuration: WorkerConfiguration
    let logger: Logger
    let state: WorkerState
    let wake = Signal()
    /// The claim and completion series, made once (`TowerMetrics.TaskSeries`).
    let series = TowerMetrics.TaskSeries()
    /// Completions leave in batches: one transaction for all that finished while the last was written.
    let completer: Batcher<LifecycleEngine.Completion, LifecycleEngine.CompletionResult>
    /// `configuration.traceRoot`, its path and URI worked out once.
    let traceRoot: TraceRoot
    /// `configuration.workspaceRoot`, likewise: a Run's workspace is `<root>/<run_id>`.
    let workspaceRoot: TraceRoot
    /// The tries of each background operation that keep failing (the database down): when to
    /// log them (`RepeatingFailure`). Behind a lock: claims run concurrently.
    let failing = Mutex<[Operation: RepeatingFailure]>([:])

    /// What a worker tries again and again: each failure is counted in
    /// `tower_worker_failures_total{operation}`.
    enum Operation: String, CaseIterable, Sendable {
        case claim, heartbeat, rescue, listen
    }

    public init(database: Database, configuration: WorkerConfiguration, logger: Logger = Logger(label: "tower.worker"),
        engine: LifecycleEngine? = nil)
    {
        self.database = database
        let engine = engine ?? LifecycleEngine(database: database, retry: configuration.retry)
        self.engine = engine
        self.completer = engine.completer(
            policy: ReviewPolicy(autoApprove: configuration.reviewAutoApprove, verdicts: configuration.autoApproveVerdicts),
            linger: configuration.completionLinger)
        self.configuration = configuration
        self.traceRoot = TraceRoot(configuration.traceRoot)
        self.workspaceRoot = TraceRoot(configuration.workspaceRoot)
        self.state = WorkerState(recordingBacklog: configuration.concurrency)
        var logger = logger
        logger[metadataKey: "worker_id"] = "\(configuration.workerId)"
        self.logger = logger
    }

    public var workerId: String { configuration.workerId }
    var actor: Actor { Actor(kind: .system, id: workerId, display: "Control Tower worker") }

    /// The worker as the engine sees it: lease holder, Run executor and trace folders.
    var claimant: LifecycleEngine.Claimant {
        let executors = configuration.executors
        let root = traceRoot
        return LifecycleEngine.Claimant(
            id: workerId, actor: actor, mode: .system, leaseSeconds: configuration.leaseSeconds,
            executor: { operation in
                let executor = executors.executor(for: operation)
                return (executor.name, executor.version)
            },
            artifactRoot: { runId in root.folderURI(runId) })
    }

    /// Wakes the claim loop (after an enqueue in the same process).
    public func wakeUp() async { await wake.fire() }

    /// Asks the worker to stop claiming, let running work finish within the grace period, then
    /// stop and requeue the rest. `run()` returns when that is done.
    public func shutdown() async {
        await state.beginShutdown()
        await wake.fire()
    }

    public func run() async throws {
        try TraceStore.makeFolder(atPath: configuration.traceRoot.path)
        // The start record is a courtesy (every heartbeat records the worker too): a database
        // that is briefly unreachable at this moment (a restart, dropped connections) must not
        // stop the worker before it ran. It used to: `run` threw before claiming anything (the
        // dropped-connections crash test's worker, started under load just before the first
        // drop, left its 40 tasks queued).
        do {
            try await recordWorker(stopped: false)
        } catch {
            logger.warning("cannot record the worker's start; its first heartbeat will", metadata: ["error": "\(error)"])
        }
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
                    group.addTask { await self.eventLoop() }
                    if let retention = configuration.retention {
                        // It removes trace folders: blocking work.
                        group.addTask(executorPreference: BlockingExecutor.shared) {
                            await Retention(database: self.database, engine: self.engine, actor: self.actor, logger: self.logger).loop(
                                retention, interval: self.configuration.retentionInterval, initialDelay: self.configuration.retentionFirstPass)
                        }
                    }
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
    ///
    /// Slots free up one at a time as executions end (`WorkerState.ended`): claiming
    /// for the first free slot alone turns a backlog into claims of one or two tasks, each paying
    /// the claim's dozen statements. So while there is a backlog (the last claim filled every
    /// slot it asked for) a partly busy worker gathers free slots before it claims: until half of
    /// them are free or `claimGather` has passed, as River's fetch cooldown does. An idle worker,
    /// or one whose last claim emptied the queue, claims at once: a task enqueued on a quiet queue
    /// starts without that wait.
    func claimLoop(_ group: inout DiscardingTaskGroup) async {
        var gatherUntil: ContinuousClock.Instant?
        while await !state.shuttingDown, !Task.isCancelled {
            let free = configuration.concurrency - (await state.busySlots)
            if free > 0, await state.healthy, await !state.queueLooksEmpty {
                if configuration.claimGather > .zero, free < (configuration.concurrency + 1) / 2, await state.lastClaimFilled {
                    let deadline = gatherUntil ?? ContinuousClock.now.advanced(by: configuration.claimGather)
                    gatherUntil = deadline
                    let left = ContinuousClock.now.duration(to: deadline)
                    if left > .zero {
                        // A freed slot fires the wake-up: count again.
                        await wake.wait(for: left)
                        continue
                    }
                }
                gatherUntil = nil
                await state.reserve(free)
                group.addTask { await self.claimAndRun(limit: free) }
                continue
            }
            gatherUntil = nil
            await wake.wait(seconds: configuration.pollInterval)
            await state.setQueueLooksEmpty(false)
        }
        await state.claimsSettled()
    }

    /// One claim of up to `limit` tasks, then their executions, each in its own child task.
    func claimAndRun(limit: Int) async {
        var claimed: [ClaimedTask] = []
        let wakeups = await wake.fired
        do {
            claimed = try await claim(limit: limit)
            worked(.claim)
        } catch where Task.isCancelled {
            // The worker is stopping. A claim that committed before it was cut short leaves its
            // tasks leased to this worker, unknown to it: they are rescued when the lease ends.
            logger.notice(
                "claim cut short by the worker's stop; a task it may have claimed is rescued when its lease ends",
                metadata: ["error": "\(error)", "lease_seconds": "\(configuration.leaseSeconds)"])
        } catch {
            failed(.claim, "\(error)", "claim failed")
        }
        for item in claimed {
            await state.add(item.task.id)
            series.claims(item.task.operation).increment()
            if let queued = item.task.queuedAt, let started = item.task.startedAt {
                TowerMetrics.enqueueToStart.recordNanoseconds(max(0, (started.microseconds - queued.microseconds) * 1000))
            }
        }
        // Fewer tasks than slots: the loop waits for a wake-up (enqueue, NOTIFY, a finished
        // task) or the poll interval before claiming again. Unless a wake-up came while this
        // claim ran: its task may have committed after the claim's snapshot, and the loop took
        // that wake-up while every slot was reserved for this claim, so it waits again. The claim
        // then wakes it once its slots are free, instead of marking the queue empty (seen: one
        // idle enqueue-to-start in fifty waited the 1 s poll interval on PostgreSQL).
        let firedSince = await wake.fired != wakeups
        let missed = claimed.count < limit && firedSince
        if claimed.count < limit, !missed { await state.setQueueLooksEmpty(true) }
        await state.setLastClaimFilled(claimed.count == limit)
        await state.release(limit)
        if missed { await wake.fire() }
        await withDiscardingTaskGroup { group in
            for item in claimed { group.addTask(executorPreference: item.executor.runsOn) { await self.process(item) } }
        }
    }

    /// Claims and pins up to `limit` tasks through the engine.
    func claim(limit: Int) async throws -> [ClaimedTask] {
        let executors = configuration.executors
        return try await engine.claim(claimant, limit: limit).map {
            ClaimedTask(claim: $0, executor: executors.executor(for: $0.task.operation))
        }
    }

    // MARK: - Heartbeat, rescue, wake-ups

    func heartbeatLoop() async {
        while !Task.isCancelled {
            do {
                // Only executions claimed (and committed) before this heartbeat can be judged lost.
                let known = await state.runningIds
                let (running, cancel) = try await engine.heartbeat(claimant, taskIds: known, presence: presence)
                await state.setHealthy(true)
                worked(.heartbeat)
                for id in cancel { await state.stop(id, .cancelRequested) }
                // A task this worker runs that the database no longer gives it was rescued.
                let held = Set(running)
                for id in known where !held.contains(id) { await state.stop(id, .leaseLost) }
            } catch where Task.isCancelled {
                break  // the worker is stopping: a heartbeat cut short is no failure
            } catch {
                await state.setHealthy(false)
                failed(.heartbeat, "\(error)", "heartbeat failed: not claiming until it succeeds")
            }
            try? await Timers.sleep(for: .seconds(configuration.heartbeatSeconds))
        }
    }

    var presence: WorkerPresence {
        WorkerPresence(
            host: ProcessInfo.processInfo.hostName, pid: Int(ProcessInfo.processInfo.processIdentifier),
            concurrency: configuration.concurrency)
    }

    func rescueLoop() async {
        while !Task.isCancelled {
            do {
                let rescued = try await rescueExpired()
                worked(.rescue)
                if rescued > 0 { await wake.fire() }
            } catch where Task.isCancelled {
                break  // the worker is stopping: a rescue cut short is no failure
            } catch {
                failed(.rescue, "\(error)", "rescue failed")
            }
            try? await Timers.sleep(for: .seconds(configuration.rescueSeconds))
        }
    }

    /// Requeues (or, after the last attempt, fails) tasks whose lease expired, through the engine.
    public func rescueExpired() async throws -> Int {
        let rescued = try await engine.rescue(by: actor)
        for task in rescued {
            TowerMetrics.rescues.increment()
            logger.warning(
                "rescued a task",
                metadata: Self.metadata(task, runId: task.currentRunId).merging(
                    ["lost_worker": "\(task.assignedTo ?? "unknown")", "status": "\(task.status.rawValue)"]) { $1 })
        }
        return rescued.count
    }

    /// The engine's events in this process (`tower serve` shares one engine between API and
    /// worker): an enqueue or a retry wakes the claim loop at once, and a cancel request stops
    /// the execution without waiting for the next heartbeat. Other processes learn of them
    /// through NOTIFY and the heartbeat.
    func eventLoop() async {
        for await event in engine.events.subscribe() {
            switch event.kind {
            case .enqueued, .retried, .requeued, .rescued: await wake.fire()
            case .cancelRequested: if let id = event.taskId { await state.stop(id, .cancelRequested) }
            default: continue
            }
        }
    }

    func listenLoop(_ postgres: PostgresDriver) async {
        while !Task.isCancelled {
            do {
                try await postgres.listen(channel: QueueRepository.channel, listening: { self.worked(.listen) }) {
                    await self.wake.fire()
                }
            } catch {
                if Task.isCancelled { return }
                // PSQLError's description is deliberately generic; its reflection says what happened.
                failed(.listen, String(reflecting: error), level: .warning, "LISTEN failed; polling meanwhile")
            }
            try? await Timers.sleep(for: .seconds(1))
        }
    }

    /// A try of `operation` failed: counted, and logged when the failure starts (as `message`),
    /// then once a minute while it lasts; the tries in between at `debug` (`RepeatingFailure`).
    func failed(_ operation: Operation, _ error: String, level: Logger.Level = .error, _ message: Logger.Message) {
        TowerMetrics.failures(operation.rawValue).increment()
        switch failing.withLock({ $0[operation, default: RepeatingFailure()].failed() }) {
        case .started:
            logger.log(level: level, message, metadata: ["error": "\(error)"])
        case .repeated(let failures):
            logger.debug("\(operation.rawValue) failed again", metadata: ["error": "\(error)", "failures": "\(failures)"])
        case .ongoing(let failures, let seconds):
            logger.log(
                level: level, "\(operation.rawValue) still failing",
                metadata: ["error": "\(error)", "failures": "\(failures)", "for_seconds": "\(Int(seconds))"])
        case .ended:
            break
        }
    }

    /// A try of `operation` worked: logged when it had been failing.
    func worked(_ operation: Operation) {
        guard case .ended(let failures, let seconds)? = failing.withLock({ $0[operation]?.succeeded() }) else { return }
        logger.notice(
            "\(operation.rawValue) works again",
            metadata: ["failures": "\(failures)", "after_seconds": "\(Timers.secondsText((seconds * 10).rounded() / 10))"])
    }

    /// After shutdown begins: waits up to the grace period for running work, then stops the rest.
    func drain() async {
        // Every attempt that ends fires `wake` once it has left the running set, and the claim
        // loop no longer waits on it: the drain wakes as each one ends, not on a poll.
        let deadline = ContinuousClock.now + .seconds(configuration.gracePeriodSeconds)
        while await state.runningCount > 0, ContinuousClock.now < deadline {
            await wake.wait(for: deadline - .now)
        }
        for id in await state.runningIds { await state.stop(id, .shutdown) }
        while await state.runningCount > 0 { await wake.wait(for: .seconds(1)) }
    }

    func recordWorker(stopped: Bool) async throws {
        try await database.write { store in
            try await store.queue.upsertWorker(
                id: self.workerId, host: ProcessInfo.processInfo.hostName, pid: Int(ProcessInfo.processInfo.processIdentifier),
                concurrency: self.configuration.concurrency, now: .now(), stopped: stopped)
        }
    }
}
