import Synchronization
import Bridge
import CWOM
import LegacyTasks
import TowerJSON

/// The one home of every status change of a task, its Run and its Issue (DESIGN.md §7).
///
/// Routes, worker loops and commands are thin callers of its operations: `enqueue`, `claim`,
/// `heartbeat`, `complete`, `fail`, `requeue`, `rescue`, `cancel`, `retry`, `review`, the
/// direct status sets of the legacy and CWOM `PATCH` routes, the creation of CWOM objects and the
/// backfill's batches (`adoptLegacyTasks`). Each operation is one transaction;
/// every status write in it is checked against the entity's `StateMachine` (`Lifecycle.task`,
/// `.run`, `.issue`), guarded by the state the engine expects (`LifecycleSQL`), and audited by
/// one row per real transition, derived here from before and after. Events are emitted after
/// the commit. The clock is a parameter so that tests set time instead of sleeping.
public struct LifecycleEngine: Sendable {
    public let database: Database
    public let clock: any LifecycleClock
    public let events: LifecycleEvents
    /// How many attempts a new task gets, and when a retryable failure is tried again.
    public let retry: RetryPolicy
    /// Repos met at intake, by the repository a task names (see `KnownRepos`).
    let knownRepos = KnownRepos()
    /// The texts of the intake's multi-row inserts, made once per table and batch size.
    public let insertTexts = InsertTexts()

    public init(database: Database, clock: any LifecycleClock = SystemClock(), events: LifecycleEvents = LifecycleEvents(),
        retry: RetryPolicy = RetryPolicy())
    {
        self.database = database
        self.clock = clock
        self.events = events
        self.retry = retry
    }

    /// The operation whose transaction the current task runs (for statement counts).
    @TaskLocal public static var operation: String?

    /// Runs `body` as one write transaction with a `LifecycleTransaction`, appends the audit rows
    /// it earned, and emits its events once committed.
    func transaction<T: Sendable>(_ operation: String, by actor: Actor,
        _ body: @Sendable (inout LifecycleTransaction) async throws -> T) async throws -> T
    {
        let clock = self.clock
        let retry = self.retry
        let texts = insertTexts
        let (result, events) = try await Self.$operation.withValue(operation) { try await database.write { store in
            // The clock is read once the transaction holds the writer (SQLite) or its connection
            // (PostgreSQL, where `BEGIN` goes with the first statement: it takes no snapshot, so
            // sending it earlier would order nothing), so that timestamps follow the order in
            // which transactions see each other.
            var tx = LifecycleTransaction(store: store, actor: actor, now: clock.now(), retry: retry, texts: texts)
            let result = try await body(&tx)
            // The new rows, the audit rows among them, and the writes left for the end: one
            // statement on PostgreSQL, and the whole transaction when the body read nothing (an
            // enqueue into a known repository).
            tx.rows.add("audit_log", tx.audit.map(AuditLog.columns))
            try await store.session.writeAll(tx.rows, texts: texts, then: tx.writes, last: true)
            return (result, tx.events)
        } }
        self.events.emit(events)
        return result
    }

    // MARK: - Enqueue

    /// One enqueue as the engine takes it.
    public struct EnqueueRequest: Sendable {
        public var request: TaskRequest
        public var id: String
        public var traceId: String
        public var createCWOM: Bool
        /// Who enqueues (an API key); nil means the requester the request names.
        public var actor: Actor?
        public init(_ request: TaskRequest, id: String, traceId: String, createCWOM: Bool, actor: Actor? = nil) {
            self.request = request
            self.id = id
            self.traceId = traceId
            self.createCWOM = createCWOM
            self.actor = actor
        }

        /// The actor of the task's creation row.
        var creator: Actor { actor ?? LifecycleEngine.requester(request) }
    }

    /// An enqueue built before its transaction, by the task that asks for it: the task, its CWOM
    /// objects and every row they and their audit entries take, JSON already serialized. On
    /// SQLite this is work that the one writer thread no longer does while every other write
    /// waits (a fifth of its time under `wrk`, docs/benchmarks.md). Its timestamps are the time
    /// it was built, the request's arrival, as the legacy service stamped a task in its handler
    /// (a claim's `started_at` is never before `queued_at` all the same, see
    /// `LifecycleSQL.claimTasks`). Built without the database: an idempotency key is looked up,
    /// and a Repo the engine has not met yet is found or created, in the transaction.
    ///
    /// A class, immutable: it is handed from the request to the intake batcher and into the
    /// transaction, and each hand-off of a struct this size copied it (a retain of each of its
    /// dozens of strings and arrays, a release of each at its end: 1.4 % of `tower api` on SQLite,
    /// `perf`); a reference is one retain.
    public final class PreparedEnqueue: Sendable {
        public let item: EnqueueRequest
        let now: Timestamp
        /// nil when the task's Repo was not known yet: built in the transaction, once found.
        let built: BuiltEnqueue?

        init(item: EnqueueRequest, now: Timestamp, built: BuiltEnqueue?) {
            self.item = item
            self.now = now
            self.built = built
        }
    }

    /// A new task as stored, with its CWOM objects and the rows of both and of their audit.
    struct BuiltEnqueue: Sendable {
        /// The task and its objects, as the enqueue's outcome hands them on.
        let created: EnqueueOutcome.Created
        let rows: InsertRows
        var task: TaskRecord { created.task }
        var objects: TaskCWOM? { created.objects }
    }

    /// Builds an enqueue (see `PreparedEnqueue`). Throws when a value can be stored by neither
    /// database (text holding NUL).
    public func prepare(_ item: EnqueueRequest) throws -> PreparedEnqueue {
        let now = clock.now()
        let task = newTask(item, now: now)
        let repo = item.createCWOM ? knownRepos[task.target.repo] : nil
        if item.createCWOM && repo == nil { return PreparedEnqueue(item: item, now: now, built: nil) }
        return PreparedEnqueue(item: item, now: now, built: try build(item, task: task, repo: repo, repoCreated: false, now: now))
    }

    func newTask(_ item: EnqueueRequest, now: Timestamp) -> TaskRecord {
        var task = TaskRecord(request: item.request, id: item.id, traceId: item.traceId, now: now)
        task.maxAttempts = retry.maxAttempts(for: task.operation)
        return task
    }

    /// The rows of one enqueue: its CWOM objects when it has a `repo` (created by this enqueue
    /// when `repoCreated`), the task, and their audit entries in the legacy order (the task as
    /// created, pending; its move to the queue; then the CWOM objects).
    func build(_ item: EnqueueRequest, task: TaskRecord, repo: Repo?, repoCreated: Bool, now: Timestamp) throws -> BuiltEnqueue {
        var task = task
        var objects: TaskCWOM?
        var rows = InsertRows()
        var cwomEntries: [AuditEntry] = []
        if let repo {
            let (cwom, entries) = Store.buildCWOM(
                for: task, repo: repo, repoCreated: repoCreated, acceptanceCriteria: item.request.acceptanceCriteria,
                evidenceRequirements: item.request.evidenceRequirements, traceId: item.traceId, now: now)
            task.cwomIssueId = cwom.issue.id
            var batch = CWOMBatch()
            batch.add(cwom)
            rows = batch.rows
            objects = cwom
            cwomEntries = entries
        }
        var pending = task
        pending.status = .pending
        pending.queuedAt = nil
        var audit: [AuditEntry] = []
        audit.reserveCapacity(2 + cwomEntries.count)
        audit.append(
            AuditEntry(
                ts: now, actor: item.creator, action: .created, entityKind: "Task", entityId: task.id,
                snapshot: pending, note: "Task created via /tasks/enqueue", traceId: item.traceId))
        audit += try LifecycleTransaction.moves(
            Lifecycle.task, task.id, [.pending, .queued], at: now, by: Actor(kind: .system, id: "task-enqueue"), traceId: item.traceId)
        audit += cwomEntries
        // Ids in the legacy order: the entries were made with ids in the order they were made
        // (ULIDs increase), the CWOM objects' first; those same ids, sorted, go to the entries in
        // the array's order. (Issued again, they were seven more ULIDs an enqueue.)
        let ids = audit.map(\.id).sorted()
        for index in audit.indices { audit[index].id = ids[index] }
        rows.add("tasks", [TaskRepository.columns(task)])
        rows.add("audit_log", audit.map(AuditLog.columns))
        try rows.makeBindReady(for: database.dialect)
        return BuiltEnqueue(created: EnqueueOutcome.Created(task: task, objects: objects), rows: rows)
    }

    /// Stores a new task (`pending → queued`) and, when `createCWOM`, its Repo, ConstraintSnapshot,
    /// Issue and ContextPacket, all in one transaction. A duplicate idempotency key, also one that
    /// a concurrent request took first, is a `.conflict` with the task that won.
    public func enqueue(_ request: TaskRequest, id: String, traceId: String, createCWOM: Bool, actor: Actor? = nil) async throws
        -> EnqueueOutcome
    {
        try await enqueue(prepare(EnqueueRequest(request, id: id, traceId: traceId, createCWOM: createCWOM, actor: actor)))
    }

    /// One prepared enqueue in its own transaction; a key a concurrent transaction took first is a
    /// `.conflict` with the task that won.
    func enqueue(_ prepared: PreparedEnqueue) async throws -> EnqueueOutcome {
        do {
            return try await enqueue([prepared])[0]
        } catch let error as StorageError where error.kind == .uniqueViolation {
            if let key = prepared.item.request.idempotencyKey,
                let existing = try await database.read({ store in try await store.tasks.get(idempotencyKey: key) })
            {
                return .conflict(existing)
            }
            throw error
        }
    }

    /// Stores several new tasks in one transaction (see `enqueue(_ prepared:)`).
    public func enqueue(_ requests: [EnqueueRequest]) async throws -> [EnqueueOutcome] {
        try await enqueue(requests.map(prepare))
    }

    /// Stores several prepared enqueues in one transaction with a fixed number of statements
    /// (plus one or two per distinct new Repo). A key already taken, or taken earlier in the
    /// batch, is a `.conflict`; a key a concurrent transaction takes first fails the whole batch
    /// with a unique violation (the intake batcher then writes its requests one by one).
    public func enqueue(_ prepared: [PreparedEnqueue]) async throws -> [EnqueueOutcome] {
        guard let first = prepared.first else { return [] }
        let (outcomes, repos) = try await transaction("enqueue", by: first.item.creator) { tx in
            let store = tx.store
            var taken = try await store.tasks.get(idempotencyKeys: prepared.compactMap(\.item.request.idempotencyKey))
            var repos: [String: Repo] = [:]
            var outcomes: [EnqueueOutcome] = []
            var rows = InsertRows()
            for enqueue in prepared {
                let item = enqueue.item
                if let key = item.request.idempotencyKey, let existing = taken[key] {
                    outcomes.append(.conflict(existing))
                    continue
                }
                let built: BuiltEnqueue
                if let prebuilt = enqueue.built {
                    built = prebuilt
                } else {
                    // Its Repo was not known when it was built: one Repo per repository in the
                    // batch, created (and audited) by the first task that needs it.
                    let task = newTask(item, now: enqueue.now)
                    var repo: Repo
                    var created = false
                    if let known = repos[task.target.repo] ?? knownRepos[task.target.repo] {
                        repo = known
                    } else {
                        (repo, created) = try await store.repo(for: task, traceId: item.traceId, now: enqueue.now)
                        // A Repo this transaction creates is remembered only once it is committed.
                        if !created { knownRepos[task.target.repo] = repo }
                        repos[task.target.repo] = repo
                    }
                    built = try build(item, task: task, repo: repo, repoCreated: created, now: enqueue.now)
                }
                if let key = item.request.idempotencyKey { taken[key] = built.task }
                rows.add(built.rows)
                outcomes.append(.created(built.created))
                tx.events.append(LifecycleEvent(.enqueued, taskId: built.task.id, status: "queued"))
            }
            tx.later(rows)
            if !rows.isEmpty { tx.later(store.queue.notifyStatements) }  // delivered on commit: one wake-up hint per transaction
            return (outcomes, repos)
        }
        for (name, repo) in repos { knownRepos[name] = repo }
        return outcomes
    }

    /// A group-commit intake: concurrent enqueues share one transaction (see `Batcher`). A batch
    /// that fails as a whole (a key taken by a concurrent transaction) is written one by one;
    /// one that could not reach the database fails as a whole, since each of its enqueues would
    /// only wait for the database again in turn.
    /// Callers `prepare` their enqueue before they submit it, while the batch before theirs is
    /// being written.
    public func intake(maxBatch: Int = 64) -> Batcher<PreparedEnqueue, EnqueueOutcome> {
        Batcher(maxBatch: maxBatch, executor: database.driver.writeExecutor) { batch in
            do {
                return try await enqueue(batch).map { .success($0) }
            } catch let error as StorageError where error.kind == .unreachable {
                return batch.map { _ in .failure(error) }
            } catch {
                var results: [Result<EnqueueOutcome, any Error>] = []
                for prepared in batch {
                    do { results.append(.success(try await enqueue(prepared))) } catch { results.append(.failure(error)) }
                }
                return results
            }
        }
    }

    static func requester(_ request: TaskRequest) -> Actor {
        Actor(
            kind: ActorKind(rawValue: request.requestedBy.kind.rawValue) ?? .system, id: request.requestedBy.id,
            display: request.requestedBy.label)
    }

    // MARK: - Cancel

    public enum CancelOutcome: Sendable {
        /// The task was waiting (queued or pending) and is cancelled now.
        case cancelled(TaskRecord)
        /// The task is running: its worker stops the executor at its next heartbeat, and the
        /// attempt ends `cancelled` with its Run `canceled`.
        case requested(TaskRecord)

        public var task: TaskRecord {
            switch self {
            case .cancelled(let task), .requested(let task): return task
            }
        }
    }

    /// Cancels a task from any entry point (HTTP, command line, a Run or Issue set to `canceled`).
    /// A finished task is an `invalidTransition`.
    public func cancel(_ taskId: String, by actor: Actor, note: String = "Cancelled on request") async throws
        -> CancelOutcome
    {
        try await transaction("cancel", by: actor) { tx in try await tx.cancel(taskId, note: note) }
    }

    // MARK: - Retry

    /// Queues a finished task (completed, failed or cancelled) again: a new attempt, which the next
    /// claim gives a new Run (the old Runs stay as they are). Its Issue is reopened (`ready`); an
    /// Issue still under review must be reviewed first (`invalidTransition` on the Issue).
    /// Whether `retry` takes a task in `status` whose Issue is in `issueStatus` (nil: no Issue):
    /// what a console shows a retry button for.
    public static func allowsRetry(_ status: TaskStatus, issueStatus: Status?) -> Bool {
        Lifecycle.task.allows(status, .queued, via: "retry") && (issueStatus.map(issueTakesRetry) ?? true)
    }

    /// An Issue takes a retry when it can be reopened (`→ ready`) or is open already.
    static func issueTakesRetry(_ status: Status) -> Bool {
        Lifecycle.issue.allows(status, .ready) || status == .ready || status == .planned
    }

    public func retry(_ taskId: String, by actor: Actor) async throws -> TaskRecord {
        try await transaction("retry", by: actor) { tx in
            guard let task = try await tx.sql.lockTask(taskId) else { throw LifecycleError.notFound(entity: "Task", id: taskId) }
            return try await tx.retry(task)
        }
    }

    // MARK: - Direct status sets (PATCH)

    /// Fields of the legacy `PATCH /tasks/{id}/status`: truthy values overwrite, nothing is cleared.
    public struct TaskFields: Sendable {
        public var assignedTo: String?
        public var result: JSONObject?
        public var error: String?
        public var tracePath: String?
        public init(assignedTo: String? = nil, result: JSONObject? = nil, error: String? = nil, tracePath: String? = nil) {
            self.assignedTo = assignedTo
            self.result = result
            self.error = error
            self.tracePath = tracePath
        }
    }

    /// The legacy `PATCH /tasks/{id}/status` (a legacy worker moving its own tasks, or an operator).
    /// `cancelled` goes through `cancel`, `queued` on a finished task through `retry`; a task that a
    /// Control Tower worker holds under a lease can only be cancelled; every other change must be
    /// a transition of `Lifecycle.task`.
    public func setTaskStatus(_ taskId: String, to status: TaskStatus, fields: TaskFields, by actor: Actor) async throws
        -> TaskRecord
    {
        try await transaction("set status", by: actor) { tx in
            guard var task = try await tx.sql.lockTask(taskId) else { throw LifecycleError.notFound(entity: "Task", id: taskId) }
            let old = task.status
            if status == .cancelled && old != .cancelled {
                return try await tx.cancel(taskId, note: "Cancelled with PATCH /tasks/{id}/status").task
            }
            if old == .running, task.leaseExpiresAt != nil, status != .running {
                throw LifecycleError.ownedByWorker(entity: "Task", id: taskId, taskId: taskId, worker: task.assignedTo)
            }
            if old != status { try Lifecycle.task.check(taskId, from: old, to: status, via: status == .queued && old.isFinished ? "retry" : "set status") }
            if status == .queued && old.isFinished {
                return try await tx.retry(task, keepOutcome: true, note: nil)
            }
            let now = tx.now
            task.status = status
            switch status {
            case .queued: task.queuedAt = task.queuedAt ?? now
            case .running: task.startedAt = task.startedAt ?? now
            case .completed, .failed, .cancelled: task.completedAt = task.completedAt ?? now
            case .pending: break
            }
            if let value = fields.assignedTo, !value.isEmpty { task.assignedTo = value }
            if let value = fields.result, !value.isEmpty { task.result = .object(value) }
            if let value = fields.error, !value.isEmpty { task.error = value }
            if let value = fields.tracePath, !value.isEmpty { task.tracePath = value }
            guard try await tx.sql.setTaskFields(task, expected: old) else {
                throw LifecycleError.invalidTransition(entity: "Task", id: taskId, current: old.rawValue, requested: status.rawValue)
            }
            if old != status {
                try tx.moved(Lifecycle.task, taskId, [old, status], traceId: task.traceId)
                tx.events.append(LifecycleEvent(.statusSet, taskId: taskId, status: status.rawValue))
            }
            return task
        }
    }

    /// The answer to a status set on a Run or an Issue.
    public enum StatusSetOutcome<Object: Sendable>: Sendable {
        case updated(Object)
        /// The object was set to `canceled` while a worker executes its task: the task was asked to
        /// stop (through `cancel`); the object becomes `canceled` when the worker has stopped.
        case cancelRequested(Object, TaskRecord)
    }

    /// `PATCH /cwom/runs/{id}`: a legal transition of `Lifecycle.run`, telemetry and cost replaced,
    /// outputs appended to (their Artifacts must exist; the Run is locked, so concurrent updates
    /// each append), the CWOM invariants checked on the result (`CWOMValidationError`).
    /// A Run that a worker is executing can only be cancelled, through its task: any other change
    /// is `ownedByWorker` (its completion writes the Run whole).
    public func updateRun(_ runId: String, _ changes: RunUpdate, by actor: Actor, traceId: String?) async throws
        -> StatusSetOutcome<Run>
    {
        try await transaction("set status", by: actor) { tx in
            if let outputs = changes.outputs { try await tx.requireExisting(outputs.artifacts) }
            guard let current = try await tx.store.runs.get(runId) else { throw LifecycleError.notFound(entity: "Run", id: runId) }
            // A Run its worker (or agent) executes is written by its completion, which would
            // overwrite any other change: only a cancel is taken.
            if let task = try await tx.sql.taskExecuting(runId: runId, hint: current.meta["task_id"]?.stringValue) {
                guard changes.status == .canceled else {
                    throw LifecycleError.ownedByWorker(entity: "Run", id: runId, taskId: task.id, worker: task.assignedTo)
                }
                let outcome = try await tx.cancel(task.id, note: "Run \(runId) set to canceled")
                return .cancelRequested(current, outcome.task)
            }
            // Locked only now: a cancel locks the task, and a completion locks the task before its
            // Run, so the Run first would risk a deadlock with the worker finishing it.
            guard let old = try await tx.sql.lockRun(runId) else { throw LifecycleError.notFound(entity: "Run", id: runId) }
            var run = old
            if let status = changes.status, status != old.status {
                try Lifecycle.run.check(runId, from: old.status, to: status)
                run.status = status
            }
            if let telemetry = changes.telemetry { run.telemetry = telemetry }
            if let cost = changes.cost { run.cost = cost }
            if let failure = changes.failure { run.failure = failure }
            if let outputs = changes.outputs {
                for ref in outputs.artifacts where !run.outputs.artifacts.contains(where: { $0.id == ref.id }) {
                    run.outputs.artifacts.append(ref)
                }
                run.outputs.decisionLog += outputs.decisionLog
                if let summary = outputs.resultSummary { run.outputs.resultSummary = summary }
            }
            run.updatedAt = tx.now
            try run.validate()
            guard try await tx.sql.writeRuns([run], expected: old.status, at: run.updatedAt).contains(runId) else {
                throw LifecycleError.invalidTransition(entity: "Run", id: runId, current: "changed meanwhile", requested: run.status.rawValue)
            }
            if old.status != run.status {
                try tx.moved(Lifecycle.run, runId, [old.status, run.status], traceId: traceId)
                tx.events.append(LifecycleEvent(.statusSet, runId: runId, status: run.status.rawValue))
            } else {
                tx.audit.append(
                    AuditEntry(
                        ts: tx.now, actor: actor, action: .updated, entityKind: "Run", entityId: runId, before: old.json,
                        after: run.json, traceId: traceId))
            }
            return .updated(run)
        }
    }

    /// `PATCH /cwom/issues/{id}/status`: a legal transition of `Lifecycle.issue`. An Issue whose task
    /// a worker is executing can only be cancelled, through its task.
    public func setIssueStatus(_ issueId: String, to status: Status, by actor: Actor, traceId: String?) async throws
        -> StatusSetOutcome<Issue>
    {
        try await transaction("set status", by: actor) { tx in
            guard let issue = try await tx.store.issues.get(issueId) else { throw LifecycleError.notFound(entity: "Issue", id: issueId) }
            if status != issue.status, let task = try await tx.sql.taskExecuting(issueId: issueId) {
                guard status == .canceled else {
                    throw LifecycleError.ownedByWorker(entity: "Issue", id: issueId, taskId: task.id, worker: task.assignedTo)
                }
                let outcome = try await tx.cancel(task.id, note: "Issue \(issueId) set to canceled")
                return .cancelRequested(issue, outcome.task)
            }
            var updated = issue
            if status != issue.status {
                try Lifecycle.issue.check(issueId, from: issue.status, to: status)
                guard try await tx.moveIssue(issueId, from: issue.status, to: status, traceId: traceId) else {
                    throw LifecycleError.invalidTransition(
                        entity: "Issue", id: issueId, current: "changed meanwhile", requested: status.rawValue)
                }
                updated.status = status
                updated.updatedAt = tx.now
                tx.events.append(LifecycleEvent(.statusSet, status: status.rawValue))
            }
            return .updated(updated)
        }
    }
}

/// One engine transaction: the store, the actor and time of the operation, the audit rows its
/// transitions earned and the events to emit after the commit.
struct LifecycleTransaction {
    let store: Store
    let actor: Actor
    let now: Timestamp
    let retry: RetryPolicy
    /// The engine's kept texts of multi-row inserts (`InsertTexts`): a claim's and a
    /// completion's inserts have one text per batch size, written once.
    let texts: InsertTexts
    var audit: [AuditEntry] = []
    var events: [LifecycleEvent] = []
    /// Writes whose results nothing in the transaction reads (new rows, a wake-up), sent at its
    /// end together with the audit rows: on PostgreSQL one statement for all of them
    /// (`WriteBatch`). Nothing read later in the transaction may depend on them.
    var writes: [(String, [SQLValue])] = []

    mutating func later(_ statements: [(String, [SQLValue])]) { writes += statements }

    /// New rows, written before `writes` (one multi-row `INSERT` per table, bound from the rows
    /// where the driver can: `DatabaseSession.writeAll(_:texts:then:last:)`).
    var rows = InsertRows()

    mutating func later(_ rows: InsertRows) { self.rows.add(rows) }

    /// New rows of `table` (see `rows`).
    mutating func later(rows table: String, _ columns: [Columns]) { rows.add(table, columns) }

    var sql: LifecycleSQL { LifecycleSQL(session: store.session) }

    /// Records the audit rows of a move along `path` (one row per step) that was just written,
    /// after checking every step against `machine`.
    mutating func moved<S>(_ machine: StateMachine<S>, _ id: String, _ path: [S], by who: Actor? = nil, note: String? = nil,
        traceId: String?) throws(LifecycleError)
    {
        audit += try Self.moves(machine, id, path, at: now, by: who ?? actor, note: note, traceId: traceId)
    }

    /// The audit rows of a move along `path`, one per step, each step checked against `machine`
    /// (`moved`, and an enqueue built before its transaction).
    static func moves<S>(_ machine: StateMachine<S>, _ id: String, _ path: [S], at now: Timestamp, by actor: Actor,
        note: String? = nil, traceId: String?) throws(LifecycleError) -> [AuditEntry]
    {
        var entries: [AuditEntry] = []
        for (from, to) in zip(path, path.dropFirst()) {
            try machine.check(id, from: from, to: to)
            entries.append(
                AuditEntry(
                    ts: now, actor: actor, action: .statusChanged, entityKind: machine.entity, entityId: id,
                    before: ["status": .string(from.rawValue)], after: ["status": .string(to.rawValue)],
                    note: note ?? "Status changed: \(from.rawValue) -> \(to.rawValue)", traceId: traceId))
        }
        return entries
    }

    /// Moves an Issue along `path` from `from` when every step is legal and the Issue still has that
    /// status; returns false (and writes nothing) otherwise. Issues follow their task: a move they
    /// cannot make leaves them as they are rather than failing the task's operation.
    @discardableResult
    mutating func moveIssue(_ id: String, from: Status, to path: Status..., by who: Actor? = nil, note: String? = nil,
        traceId: String?) async throws -> Bool
    {
        let steps = [from] + path
        guard let target = path.last, target != from,
            zip(steps, steps.dropFirst()).allSatisfy({ Lifecycle.issue.allows($0, $1) })
        else { return false }
        guard try await sql.setStatuses(.issues, [id], to: target, expected: from, at: now).contains(id) else { return false }
        try moved(Lifecycle.issue, id, steps, by: who, note: note, traceId: traceId)
        return true
    }

    /// See `LifecycleEngine.cancel`.
    mutating func cancel(_ taskId: String, note: String) async throws -> LifecycleEngine.CancelOutcome {
        guard let task = try await sql.lockTask(taskId) else { throw LifecycleError.notFound(entity: "Task", id: taskId) }
        switch task.status {
        case .queued, .pending:
            guard try await sql.cancelWaitingTask(taskId, from: task.status, now: now) else {
                throw LifecycleError.invalidTransition(entity: "Task", id: taskId, current: "changed meanwhile", requested: "cancelled")
            }
            try moved(Lifecycle.task, taskId, [task.status, .cancelled], note: note, traceId: task.traceId)
            if let issueId = task.cwomIssueId, let status = try await sql.issueStatus(issueId) {
                try await moveIssue(issueId, from: status, to: .canceled, note: note, traceId: task.traceId)
            }
            events.append(LifecycleEvent(.cancelled, taskId: taskId, status: "cancelled"))
        case .running:
            guard try await sql.requestTaskCancel(taskId, attempt: task.attempt, now: now) else {
                throw LifecycleError.invalidTransition(entity: "Task", id: taskId, current: "changed meanwhile", requested: "cancelled")
            }
            if task.cancelRequestedAt == nil {
                audit.append(
                    AuditEntry(
                        ts: now, actor: actor, action: .updated, entityKind: "Task", entityId: taskId,
                        before: ["cancel_requested_at": .null], after: ["cancel_requested_at": now.json],
                        note: "\(note): the worker stops the attempt", traceId: task.traceId))
            }
            events.append(LifecycleEvent(.cancelRequested, taskId: taskId, runId: task.currentRunId, status: "running"))
        case .completed, .failed, .cancelled:
            throw LifecycleError.invalidTransition(entity: "Task", id: taskId, current: task.status.rawValue, requested: "cancelled")
        }
        guard let after = try await store.tasks.get(taskId) else { throw LifecycleError.notFound(entity: "Task", id: taskId) }
        return task.status == .running ? .requested(after) : .cancelled(after)
    }

    /// See `LifecycleEngine.retry`; also the legacy `PATCH … status=queued` of a finished task,
    /// which keeps the outcome columns (`keepOutcome`: the legacy service never cleared them).
    mutating func retry(_ task: TaskRecord, keepOutcome: Bool = false, note: String? = "Retried") async throws -> TaskRecord {
        try Lifecycle.task.check(task.id, from: task.status, to: .queued, via: "retry")
        var issueMove: (id: String, from: Status)?
        if let issueId = task.cwomIssueId, let status = try await sql.issueStatus(issueId) {
            if Lifecycle.issue.allows(status, .ready) {
                issueMove = (issueId, status)
            } else if !LifecycleEngine.issueTakesRetry(status) {
                throw LifecycleError.invalidTransition(entity: "Issue", id: issueId, current: status.rawValue, requested: "ready")
            }
        }
        // A fresh allowance of attempts (the retry policy's) on top of those already spent.
        let maxAttempts = task.attempt + retry.maxAttempts(for: task.operation)
        guard try await sql.retryTask(task.id, from: task.status, now: now, maxAttempts: maxAttempts, kept: keepOutcome ? task : nil)
        else {
            throw LifecycleError.invalidTransition(entity: "Task", id: task.id, current: "changed meanwhile", requested: "queued")
        }
        try moved(
            Lifecycle.task, task.id, [task.status, .queued], note: note.map { "\($0): attempt \(task.attempt + 1) queued" },
            traceId: task.traceId)
        if let issueMove {
            try await moveIssue(issueMove.id, from: issueMove.from, to: .ready, note: "Reopened for a retry", traceId: task.traceId)
        }
        try await store.queue.notify()
        events.append(LifecycleEvent(.retried, taskId: task.id, status: "queued"))
        guard let retried = try await store.tasks.get(task.id) else { throw LifecycleError.notFound(entity: "Task", id: task.id) }
        return retried
    }
}

/// The Repos intake has met, by the repository a task names, so that an enqueue does not look
/// up the same Repo on every transaction (a round trip each on PostgreSQL). Tower never changes
/// or deletes a Repo once created, so a remembered one stays right; at most `capacity` are kept
/// (the whole set is dropped when full, and found again one lookup each).
final class KnownRepos: Sendable {
    private let repos = Mutex<[String: Repo]>([:])
    let capacity = 10_000

    subscript(repository: String) -> Repo? {
        get { repos.withLock { $0[repository] } }
        set {
            repos.withLock { repos in
                if repos.count >= capacity { repos.removeAll() }
                repos[repository] = newValue
            }
        }
    }
}
