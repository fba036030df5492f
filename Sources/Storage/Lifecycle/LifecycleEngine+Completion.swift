import CWOM
import LegacyTasks
import TowerJSON

/// How an attempt ended, as its executor (or the worker) saw it.
public enum AttemptOutcome: String, Sendable {
    case succeeded, failed
    case timedOut = "timed_out"
    case canceled
}

/// The review policy (reference §6.6): a succeeded Run waits for a person (`under_review`) unless
/// auto-approval is on and its evidence verdict is one of `verdicts`.
public struct ReviewPolicy: Sendable {
    public var autoApprove: Bool
    public var verdicts: [String]
    public init(autoApprove: Bool = false, verdicts: [String] = ["pass"]) {
        self.autoApprove = autoApprove
        self.verdicts = verdicts
    }

    /// The actor of automatic decisions.
    public static let reviewer = Actor(kind: .system, id: "auto-approve", display: "Automatic Review (Policy-Based)")
}

extension LifecycleEngine {
    /// The end of an attempt, as the worker (or agent) that ran it reports it.
    ///
    /// A value, its fields kept in one `Boxed`: a completion travels by value from the executor
    /// through the worker, the completer's batch and the engine, and as a plain struct of a dozen
    /// fields (the claim's task, Issue, packet, snapshot and Run among them) each of those copies
    /// retained and released every string and array inside it, about 2 % of a worker's CPU in a
    /// PostgreSQL drain (docs/benchmarks.md).
    public struct Completion: Sendable {
        private struct Fields: Sendable {
            var claim: Claim
            var holder: String
            var outcome: AttemptOutcome
            var message: String?
            var failureCategory: FailureCategory
            var result: JSONValue?
            var tracePath: String?
            var telemetry: Telemetry
            var cost: Cost
            var outputs: RunOutputs
            var artifacts: [Artifact]
            var evidence: EvidencePack?
            var retryable: Bool
        }

        private var boxed: Boxed<Fields>

        public var claim: Claim {
            get { boxed.fields.claim }
            set { boxed.change { $0.claim = newValue } }
        }
        /// The lease holder: the write is guarded on it, the attempt and `running`.
        public var holder: String {
            get { boxed.fields.holder }
            set { boxed.change { $0.holder = newValue } }
        }
        public var outcome: AttemptOutcome {
            get { boxed.fields.outcome }
            set { boxed.change { $0.outcome = newValue } }
        }
        public var message: String? {
            get { boxed.fields.message }
            set { boxed.change { $0.message = newValue } }
        }
        public var failureCategory: FailureCategory {
            get { boxed.fields.failureCategory }
            set { boxed.change { $0.failureCategory = newValue } }
        }
        /// `tasks.result` and `tasks.trace_path`.
        public var result: JSONValue? {
            get { boxed.fields.result }
            set { boxed.change { $0.result = newValue } }
        }
        public var tracePath: String? {
            get { boxed.fields.tracePath }
            set { boxed.change { $0.tracePath = newValue } }
        }
        public var telemetry: Telemetry {
            get { boxed.fields.telemetry }
            set { boxed.change { $0.telemetry = newValue } }
        }
        public var cost: Cost {
            get { boxed.fields.cost }
            set { boxed.change { $0.cost = newValue } }
        }
        public var outputs: RunOutputs {
            get { boxed.fields.outputs }
            set { boxed.change { $0.outputs = newValue } }
        }
        /// Every output of the Run, the trace folder included; recorded whatever the outcome.
        public var artifacts: [Artifact] {
            get { boxed.fields.artifacts }
            set { boxed.change { $0.artifacts = newValue } }
        }
        /// The prover's evidence pack (dropped when the attempt ends cancelled).
        public var evidence: EvidencePack? {
            get { boxed.fields.evidence }
            set { boxed.change { $0.evidence = newValue } }
        }
        /// The executor says the failure is transient (exit 75, `"retryable": true`): the task is
        /// queued again while it has attempts left (`RetryPolicy`).
        public var retryable: Bool {
            get { boxed.fields.retryable }
            set { boxed.change { $0.retryable = newValue } }
        }

        public init(claim: Claim, holder: String, outcome: AttemptOutcome, message: String? = nil,
            failureCategory: FailureCategory = .runtime, result: JSONValue? = nil, tracePath: String? = nil,
            telemetry: Telemetry, cost: Cost = Cost(), outputs: RunOutputs = RunOutputs(), artifacts: [Artifact] = [],
            evidence: EvidencePack? = nil, retryable: Bool = false)
        {
            boxed = Boxed(
                Fields(
                    claim: claim, holder: holder, outcome: outcome, message: message, failureCategory: failureCategory,
                    result: result, tracePath: tracePath, telemetry: telemetry, cost: cost, outputs: outputs,
                    artifacts: artifacts, evidence: evidence, retryable: retryable))
        }
    }

    public enum CompletionResult: Sendable, Equatable {
        /// Written: the task ended with this status.
        case finished(TaskStatus)
        /// The task is no longer this attempt's (rescued, or changed elsewhere): nothing was written.
        case fenced
    }

    /// Records the end of an attempt in one transaction: the task (`running → completed | failed |
    /// cancelled`, or `queued` again after a retryable failure with attempts left), its Run, its
    /// Artifacts, the evidence pack, the review policy's decision and the Issue. A task whose cancellation was requested ends `cancelled` whatever the executor said:
    /// a cancelled Run is never completed.
    public func complete(_ completion: Completion, policy: ReviewPolicy = ReviewPolicy()) async throws -> CompletionResult {
        try await complete([completion], policy: policy)[0]
    }

    /// Completes several attempts in one transaction, each still guarded on its own row: one
    /// that was rescued or changed meanwhile is `.fenced` (and writes nothing) while the others
    /// commit. A completion is acknowledged only after the commit.
    public func complete(_ completions: [Completion], policy: ReviewPolicy = ReviewPolicy()) async throws
        -> [CompletionResult]
    {
        guard let first = completions.first else { return [] }
        return try await transaction("complete", by: first.claim.run.executor.actor) { tx in
            try await tx.complete(completions, policy: policy)
        }
    }

    /// How long the completer waits before each new try of a batch the database could not take:
    /// 15.8 s in all, within the default lease of 30 s (River's completer retries likewise).
    public static let completionRetryDelays: [Duration] = [
        .milliseconds(100), .milliseconds(200), .milliseconds(500), .seconds(1), .seconds(2), .seconds(4), .seconds(8),
    ]

    /// A group-commit completer for one worker: completions submitted while a batch is being
    /// written leave together in the next transaction (at most `maxBatch`), and one that finds
    /// the completer idle waits up to `linger` for the completions of its claim's other tasks
    /// (`Batcher`). When a batch fails as a whole (a value no database stores, say), its
    /// completions are written one by one, so that one bad completion fails alone; not when the
    /// database could not be reached, which each would wait for in turn.
    ///
    /// A batch the database could not take (a restart, a dropped connection) is tried again
    /// after each of `retryDelays`, then fails: without it, every attempt whose completion met
    /// a PostgreSQL restart was lost, its task run again once its lease ran out (eight to twenty
    /// a restart, in a drain by two workers). Trying again is safe when the first try did commit
    /// and only its answer was lost: the completions are guarded on the attempts' state, so the
    /// second finds them ended and writes nothing (`.fenced`; the worker then logs the result as
    /// discarded, though it was recorded). The worker's heartbeat keeps the attempts' leases
    /// meanwhile, once the database answers again. `onRetry` hears each new try (a test signal).
    /// A worker told to stop while the database is down waits for the tries too, up to their sum.
    public func completer(
        policy: ReviewPolicy, maxBatch: Int = 64, linger: Duration = .zero,
        retryDelays: [Duration] = LifecycleEngine.completionRetryDelays,
        onRetry: @escaping @Sendable (StorageError) -> Void = { _ in }
    ) -> Batcher<Completion, CompletionResult> {
        Batcher(maxBatch: maxBatch, executor: database.driver.writeExecutor, linger: linger) { batch in
            var delays = retryDelays[...]
            while true {
                do {
                    return try await complete(batch, policy: policy).map { .success($0) }
                } catch let error as StorageError where error.kind == .unreachable {
                    guard let delay = delays.popFirst() else { return batch.map { _ in .failure(error) } }
                    onRetry(error)
                    do { try await Timers.sleep(for: delay) } catch { return batch.map { _ in .failure(error) } }
                    continue
                } catch {
                    return await completeOneByOne(batch, policy: policy, failed: error)
                }
            }
        }
    }

    /// A batch that failed as a whole, written a completion at a time.
    private func completeOneByOne(_ batch: [Completion], policy: ReviewPolicy, failed error: any Error) async
        -> [Result<CompletionResult, any Error>]
    {
        guard batch.count > 1 else { return [.failure(error)] }
        var results: [Result<CompletionResult, any Error>] = []
        for completion in batch {
            do { results.append(.success(try await complete(completion, policy: policy))) } catch { results.append(.failure(error)) }
        }
        return results
    }

    /// A worker-side error (an unwritable trace folder, say): the attempt fails, with its task,
    /// Run and Issue, and the message says it was the worker's fault.
    public func fail(_ claim: Claim, holder: String, message: String) async throws -> CompletionResult {
        var telemetry = claim.run.telemetry
        let now = clock.now()
        telemetry.endedAt = now
        if let started = telemetry.startedAt { telemetry.durationS = max(0, now.seconds(since: started)) }
        let completion = Completion(
            claim: claim, holder: holder, outcome: .failed, message: "Worker error: \(message)", failureCategory: .runtime,
            tracePath: claim.task.tracePath, telemetry: telemetry, cost: claim.run.cost, outputs: claim.run.outputs)
        return try await complete(completion)
    }

    /// Gives a running attempt back without counting it (the worker shuts down): the task is
    /// `queued` again, its Run `canceled`, its Issue `ready`.
    public func requeue(_ claim: Claim, holder: String, note: String) async throws -> CompletionResult {
        try await transaction("requeue", by: claim.run.executor.actor) { tx in
            let task = claim.task
            guard try await tx.sql.requeueTask(task.id, attempt: task.attempt, worker: holder) else {
                tx.events.append(LifecycleEvent(.fenced, taskId: task.id, runId: claim.run.id))
                return .fenced
            }
            try tx.moved(Lifecycle.task, task.id, [.running, .queued], note: "\(note); requeued without counting the attempt", traceId: task.traceId)
            var run = claim.run
            run.status = .canceled
            run.telemetry.endedAt = tx.now
            if let started = run.telemetry.startedAt { run.telemetry.durationS = max(0, tx.now.seconds(since: started)) }
            run.updatedAt = tx.now
            try await tx.writeRun(run, from: .running, note: note, traceId: task.traceId)
            try await tx.moveIssue(claim.issue.id, from: .running, to: .ready, note: note, traceId: task.traceId)
            try await tx.store.queue.notify()
            tx.events.append(LifecycleEvent(.requeued, taskId: task.id, runId: run.id, status: "queued"))
            return .finished(.queued)
        }
    }

    /// Takes back tasks whose lease expired (their worker or agent is gone): back to `queued` after
    /// the retry policy's delay (or `backoff(attempt)` seconds, for tests), or `failed` after the
    /// last attempt; the lost Run is `failed`
    /// (category `runtime`) and the Issue follows. Safe with many rescuers: rows are locked with
    /// `SKIP LOCKED` and every write is guarded on the attempt and the expired lease.
    public func rescue(by actor: Actor, limit: Int = 100, backoff: (@Sendable (Int) -> Double)? = nil) async throws
        -> [TaskRecord]
    {
        let retry = self.retry
        return try await transaction("rescue", by: actor) { tx in
            var rescued: [TaskRecord] = []
            let now = tx.now
            for expired in try await tx.sql.expiredTasks(now: now, limit: limit) {
                var task = expired
                let lostWorker = expired.assignedTo ?? "unknown"
                let lastAttempt = task.attempt >= task.maxAttempts
                if lastAttempt {
                    task.status = .failed
                    task.completedAt = now
                    task.error = "Worker \(lostWorker) was lost (lease expired); gave up after \(task.attempt) attempts"
                } else {
                    task.status = .queued
                    task.runAfter = now.adding(seconds: backoff?(task.attempt) ?? retry.delay(afterAttempt: task.attempt, operation: task.operation))
                }
                guard try await tx.sql.rescueTask(task, attempt: expired.attempt, expiredBefore: now) else { continue }
                try tx.moved(
                    Lifecycle.task, task.id, [.running, task.status],
                    note: lastAttempt ? "Rescued: attempts exhausted" : "Rescued: requeued for attempt \(task.attempt + 1)",
                    traceId: task.traceId)
                let message = "worker lost: \(lostWorker) stopped renewing its lease (expired \(expired.leaseExpiresAt?.iso8601 ?? "?"))"
                if let runId = expired.currentRunId, var run = try await tx.store.runs.get(runId), run.status == .running {
                    run.status = .failed
                    run.failure = Failure(category: .runtime, message: message)
                    run.telemetry.endedAt = now
                    if let started = run.telemetry.startedAt { run.telemetry.durationS = max(0, now.seconds(since: started)) }
                    run.updatedAt = now
                    try await tx.writeRun(run, from: .running, note: "Rescued: \(message)", traceId: task.traceId)
                }
                if let issueId = expired.cwomIssueId {
                    try await tx.moveIssue(issueId, from: .running, to: lastAttempt ? .failed : .ready, traceId: task.traceId)
                }
                tx.events.append(LifecycleEvent(.rescued, taskId: task.id, runId: expired.currentRunId, status: task.status.rawValue))
                rescued.append(task)
            }
            if !rescued.isEmpty { try await tx.store.queue.notify() }
            return rescued
        }
    }

    /// A review decision on a Run under review (by a person, or by the auto-approve policy inside
    /// `complete`): the Issue and the Run go `under_review → done` when approved, `→ failed` when
    /// rejected or sent back for changes. Audited with the reviewer. The evidence pack must
    /// belong to the Run and the Run to the Issue (`rejected` otherwise, in the legacy order).
    /// The Issue is locked before its status is read: of concurrent decisions on one Issue under
    /// review, one is recorded and the others find it decided.
    public func review(_ decision: ReviewDecision) async throws {
        try await transaction("review", by: decision.reviewer) { tx in
            let store = tx.store
            guard let pack = try await store.evidencePacks.get(decision.forEvidencePack.id) else {
                throw LifecycleError.rejected("EvidencePack '\(decision.forEvidencePack.id)' not found")
            }
            guard try await tx.sql.lockIssue(decision.forIssue.id), let issue = try await store.issues.get(decision.forIssue.id) else {
                throw LifecycleError.rejected("Issue '\(decision.forIssue.id)' not found")
            }
            guard issue.status == .underReview else {
                throw LifecycleError.rejected("Issue '\(issue.id)' is not under review (status: \(issue.status.rawValue))")
            }
            guard let run = try await store.runs.get(decision.forRun.id) else {
                throw LifecycleError.rejected("Run '\(decision.forRun.id)' not found")
            }
            guard pack.forRun.id == run.id, pack.forIssue.id == issue.id, run.forIssue.id == issue.id else {
                throw LifecycleError.rejected("EvidencePack '\(pack.id)' does not belong to Run '\(run.id)' of Issue '\(issue.id)'")
            }
            try await tx.record(decision, run: run, issueId: issue.id, issueStatus: issue.status)
        }
    }
}

extension LifecycleTransaction {
    /// Writes a Run (its status and fields) when it still has status `from`, and audits the move.
    /// A Run changed elsewhere is left as it is.
    @discardableResult
    mutating func writeRun(_ run: Run, from: Status, via path: [Status] = [], by who: Actor? = nil, note: String? = nil,
        traceId: String?) async throws -> Bool
    {
        let steps = [from] + (path.isEmpty ? [run.status] : path)
        for (a, b) in zip(steps, steps.dropFirst()) { try Lifecycle.run.check(run.id, from: a, to: b) }
        guard try await sql.writeRuns([run], expected: from, at: run.updatedAt).contains(run.id) else { return false }
        try moved(Lifecycle.run, run.id, steps, by: who, note: note, traceId: traceId)
        return true
    }

    /// One attempt's end as the engine will write it. A class, and immutable: the batch's endings
    /// are filtered and walked a dozen times, and a struct holding the completion, the task row
    /// and the Run was copied field by field at each step (a retain or release for every string
    /// and array inside, 1.5 % of a worker's CPU in a PostgreSQL drain, docs/benchmarks.md).
    final class Ending {
        let completion: LifecycleEngine.Completion
        /// The outcome as written: `canceled` when the task's cancellation was requested.
        let outcome: AttemptOutcome
        let task: TaskRecord
        let run: Run
        let runPath: [Status]
        /// Where the Issue goes from `running`: where the Run ends, or `ready` for the next attempt.
        let issueStatus: Status
        let evidence: EvidencePack?
        let review: ReviewDecision?
        /// The note of the task's move.
        let note: String?

        init(completion: LifecycleEngine.Completion, outcome: AttemptOutcome, task: TaskRecord, run: Run, runPath: [Status],
            issueStatus: Status, evidence: EvidencePack?, review: ReviewDecision?, note: String?)
        {
            self.completion = completion
            self.outcome = outcome
            self.task = task
            self.run = run
            self.runPath = runPath
            self.issueStatus = issueStatus
            self.evidence = evidence
            self.review = review
            self.note = note
        }
    }

    /// See `LifecycleEngine.complete(_:policy:)`: a fixed number of statements for the batch,
    /// every row guarded (the task on its attempt, worker and `running`; Runs and Issues on
    /// `running`).
    mutating func complete(_ completions: [LifecycleEngine.Completion], policy: ReviewPolicy) async throws
        -> [LifecycleEngine.CompletionResult]
    {
        // Most attempts end on the row as their claim left it, no cancellation asked meanwhile:
        // their ends are written at once, guarded on exactly that. The others (a cancellation
        // was asked, or the task is no longer theirs) are read, locked, and decided on the row as
        // it is now, in a second round.
        var endings = completions.map { ending($0, current: $0.claim.task, policy: policy) }
        try checkRunPaths(endings)
        var written = try await sql.finishAttempts(attemptEnds(endings), unlessCancelRequested: true, at: now)
        let missed = completions.filter { !written.tasks.contains($0.claim.task.id) }
        if !missed.isEmpty {
            let current = try await sql.lockTasks(missed.map(\.claim.task.id))
            var decided: [Ending] = []
            for completion in missed {
                let claim = completion.claim
                guard let task = current[claim.task.id], task.status == .running, task.attempt == claim.task.attempt,
                    task.assignedTo == completion.holder
                else { continue }
                decided.append(ending(completion, current: task, policy: policy))
            }
            try checkRunPaths(decided)
            let more = try await sql.finishAttempts(attemptEnds(decided), unlessCancelRequested: false, at: now)
            endings.removeAll { !written.tasks.contains($0.task.id) }
            endings += decided
            written = (written.tasks.union(more.tasks), written.runs.union(more.runs), written.issues.union(more.issues))
        }
        endings.removeAll { !written.tasks.contains($0.task.id) }
        for ending in endings {
            try moved(Lifecycle.task, ending.task.id, [.running, ending.task.status], note: ending.note, traceId: ending.task.traceId)
        }
        let runsWritten = written.runs
        for ending in endings where runsWritten.contains(ending.run.id) {
            let note = ending.outcome == .succeeded ? "Execution completed" : "Execution \(ending.outcome.rawValue): \(ending.task.error ?? "")"
            try moved(Lifecycle.run, ending.run.id, [.running] + ending.runPath, note: note, traceId: ending.task.traceId)
        }
        let artifacts = endings.flatMap(\.completion.artifacts)
        // New rows nothing below reads: sent with the audit rows at the end.
        later(rows: "cwom_artifacts", artifacts.map(ArtifactRepository.columns))
        for artifact in artifacts {
            audit.append(
                AuditEntry(ts: now, actor: actor, action: .created, entityKind: "Artifact", entityId: artifact.id, snapshot: artifact, traceId: artifact.header.traceId))
        }
        let packs = endings.compactMap(\.evidence)
        later(rows: "cwom_evidence_packs", packs.map(EvidencePackRepository.columns))
        for pack in packs {
            audit.append(
                AuditEntry(
                    ts: now, actor: actor, action: .created, entityKind: "EvidencePack", entityId: pack.id, snapshot: pack,
                    note: "Evidence pack created with verdict: \(pack.verdict.rawValue)", traceId: pack.header.traceId))
        }
        // Issues follow their Runs out of `running` (written above with the tasks).
        let issuesWritten = written.issues
        for ending in endings where issuesWritten.contains(ending.completion.claim.issue.id) {
            try moved(
                Lifecycle.issue, ending.completion.claim.issue.id, [.running, ending.issueStatus],
                note: ending.issueStatus == .underReview ? "Awaiting manual review" : nil, traceId: ending.task.traceId)
        }
        // The auto-approve policy's decisions, for Runs now under review.
        let approved = endings.filter { $0.review != nil && runsWritten.contains($0.run.id) }
        if !approved.isEmpty {
            later(rows: "cwom_review_decisions", approved.compactMap(\.review).map(ReviewDecisionRepository.columns))
            let runs = try await sql.setStatuses(.runs, approved.map(\.run.id), to: .done, expected: .underReview, at: now)
            let issueIds = approved.map(\.completion.claim.issue.id).filter { issuesWritten.contains($0) }
            let issues = try await sql.setStatuses(.issues, issueIds, to: .done, expected: .underReview, at: now)
            for ending in approved {
                guard let review = ending.review else { continue }
                let note = "Review decision: \(review.decision.rawValue)"
                audit.append(
                    AuditEntry(ts: now, actor: review.reviewer, action: .created, entityKind: "ReviewDecision", entityId: review.id, after: review.json, traceId: review.header.traceId))
                if issues.contains(ending.completion.claim.issue.id) {
                    try moved(Lifecycle.issue, ending.completion.claim.issue.id, [.underReview, .done], by: review.reviewer, note: note, traceId: review.header.traceId)
                }
                if runs.contains(ending.run.id) {
                    try moved(Lifecycle.run, ending.run.id, [.underReview, .done], by: review.reviewer, note: note, traceId: review.header.traceId)
                }
                events.append(LifecycleEvent(.reviewed, runId: ending.run.id, status: "done"))
            }
        }
        // Attempts queued again wake the workers (delivered on commit).
        if endings.contains(where: { $0.task.status == .queued }) { later(store.queue.notifyStatements) }
        let ended = Dictionary(uniqueKeysWithValues: endings.map { ($0.task.id, $0.task.status) })
        return completions.map { completion in
            let id = completion.claim.task.id
            guard let status = ended[id] else {
                events.append(LifecycleEvent(.fenced, taskId: id, runId: completion.claim.run.id))
                return .fenced
            }
            events.append(LifecycleEvent(.completed, taskId: id, runId: completion.claim.run.id, status: status.rawValue))
            return .finished(status)
        }
    }

    /// Every step of each ending's Run path is legal (checked before anything is written).
    func checkRunPaths(_ endings: [Ending]) throws {
        for ending in endings {
            for (from, to) in zip([Status.running] + ending.runPath, ending.runPath) {
                try Lifecycle.run.check(ending.run.id, from: from, to: to)
            }
        }
    }

    /// The endings as `LifecycleSQL.finishAttempts` writes them.
    func attemptEnds(_ endings: [Ending]) -> [LifecycleSQL.AttemptEnd] {
        endings.map {
            LifecycleSQL.AttemptEnd(
                task: $0.task, attempt: $0.completion.claim.task.attempt, worker: $0.completion.holder, run: $0.run,
                issueId: $0.completion.claim.issue.id, issueStatus: $0.issueStatus)
        }
    }

    /// How an attempt ends: the task row, the Run and its path, the evidence and the review
    /// policy's decision. A task whose cancellation was requested ends `cancelled` whatever its
    /// executor said.
    func ending(_ completion: LifecycleEngine.Completion, current: TaskRecord, policy: ReviewPolicy) -> Ending {
        let claim = completion.claim
        var outcome = completion.outcome
        var message = completion.message
        var category = completion.failureCategory
        if current.cancelRequestedAt != nil && outcome != .canceled {
            outcome = .canceled
            message = "cancelled on request"
            category = .runtime
        }
        var run = claim.run
        run.telemetry = completion.telemetry
        run.cost = completion.cost
        run.outputs = completion.outputs
        // The Artifacts stored before (an agent's reports) and the ones this completion stores.
        run.outputs.artifacts = completion.outputs.artifacts + completion.artifacts.map(\.ref)
        run.updatedAt = now
        var evidence = completion.evidence
        var review: ReviewDecision?
        var taskStatus: TaskStatus
        var runPath: [Status]
        var note: String?
        var runAfter: Timestamp?
        switch outcome {
        case .succeeded:
            taskStatus = .completed
            runPath = [.done]
            if let pack = evidence {
                runPath = [.underReview]
                if policy.autoApprove && policy.verdicts.contains(pack.verdict.rawValue) {
                    review = ReviewDecision(
                        header: ObjectHeader(traceId: claim.task.traceId), forEvidencePack: pack.ref, forRun: run.ref,
                        forIssue: claim.issue.ref, reviewer: ReviewPolicy.reviewer, decision: .approved,
                        decisionReason: "Auto-approved: verdict=\(pack.verdict.rawValue)", tags: ["auto-approved", "v0"])
                }
            }
        case .canceled:
            taskStatus = .cancelled
            runPath = [.canceled]
            evidence = nil
        case .failed, .timedOut:
            taskStatus = .failed
            runPath = [.failed]
            run.failure = Failure(category: category, message: String((message ?? "execution failed").prefix(4000)))
            let retryable = completion.retryable || (outcome == .timedOut && retry.retryTimeouts)
            if retryable && current.attempt < current.maxAttempts {
                // Every attempt is a new Run: this one fails, the task waits for the next.
                let delay = retry.delay(afterAttempt: current.attempt, operation: current.operation)
                taskStatus = .queued
                runAfter = now.adding(seconds: delay)
                note = "Attempt \(current.attempt) of \(current.maxAttempts) failed (retryable): next attempt in \(Int(delay.rounded())) s"
            } else if retryable {
                note = "Attempt \(current.attempt) of \(current.maxAttempts) failed (retryable): no attempts left"
            }
        }
        run.status = runPath.last ?? .failed
        var task = current
        task.status = taskStatus
        task.completedAt = taskStatus == .queued ? nil : now
        task.runAfter = runAfter
        task.result = completion.result
        task.error = outcome == .succeeded ? nil : message
        task.tracePath = completion.tracePath ?? current.tracePath
        return Ending(
            completion: completion, outcome: outcome, task: task, run: run, runPath: runPath,
            issueStatus: taskStatus == .queued ? .ready : run.status, evidence: evidence, review: review, note: note)
    }

    /// Stores a review decision and moves the Issue and the Run out of `under_review`.
    mutating func record(_ decision: ReviewDecision, run: Run, issueId: String, issueStatus: Status) async throws {
        let reviewer = decision.reviewer
        let trace = decision.header.traceId
        try await store.reviews.insert(decision)
        audit.append(
            AuditEntry(ts: now, actor: reviewer, action: .created, entityKind: "ReviewDecision", entityId: decision.id, after: decision.json, traceId: trace))
        let target: Status = decision.decision == .approved ? .done : .failed
        let note = "Review decision: \(decision.decision.rawValue)"
        try await moveIssue(issueId, from: issueStatus, to: target, by: reviewer, note: note, traceId: trace)
        guard Lifecycle.run.allows(run.status, target) else { return }
        var reviewed = run
        reviewed.status = target
        if target == .failed && reviewed.failure == nil {
            let reason = decision.decisionReason.isEmpty ? decision.decision.rawValue : decision.decisionReason
            reviewed.failure = Failure(category: .policy, message: String("Review decision \(decision.decision.rawValue): \(reason)".prefix(4000)))
        }
        reviewed.updatedAt = now
        try await writeRun(reviewed, from: run.status, by: reviewer, note: note, traceId: trace)
        events.append(LifecycleEvent(.reviewed, runId: run.id, status: target.rawValue))
    }
}
