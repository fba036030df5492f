import CWOM
import LegacyTasks
import TowerJSON

/// Every statement that changes the status of a task, a Run or an Issue, in one place. Each
/// write is guarded by the state the engine expects (id, status, and for tasks the attempt and
/// the worker): a row changed elsewhere does not match, the statement returns no row, and the
/// engine writes nothing for it. Only the claim differs per dialect.
struct LifecycleSQL: Sendable {
    let session: any DatabaseSession

    // MARK: - Tasks

    /// Claims one queued task per id in `runIds` at most, oldest first: status `running`,
    /// `started_at` and `assigned_to` set as the legacy worker set them, `attempt` raised, a lease,
    /// and the id of the Run each will execute under (`current_run_id`), `runIds` given out in the
    /// order the tasks were picked (oldest first; the engine reads each task's id back, so no
    /// more than the pairing depends on that order).
    ///
    /// The Run's id is written by the claim itself, as the ceiling's claim does: a second
    /// `UPDATE` of the same rows in the same transaction wrote every claimed task a second time,
    /// a new row version (a third of the table's dead rows for vacuum to clear) and, when its
    /// page had no room left for it, a new entry in each of the table's twelve indexes.
    ///
    /// PostgreSQL: the SELECT sits in a CTE so that it is evaluated once (Oban's "optimization
    /// fence": as a plain subquery the planner may re-run the LIMIT and update more rows than
    /// asked), and `SKIP LOCKED` lets concurrent claimers take different rows; the rows are
    /// numbered in a CTE of their own (PostgreSQL allows no window function beside `FOR UPDATE`).
    /// SQLite has one writer (`BEGIN IMMEDIATE`), so a plain subquery is safe there. Either way
    /// the numbering runs over the rows picked, never over the whole queue, and sorts nothing.
    ///
    /// On PostgreSQL the limit is written into the text (an integer the engine computed, never
    /// input): one text per batch size, each prepared, and each planned once and for all after its
    /// first few runs. As a bind, `LIMIT $n` made PostgreSQL plan the claim at every call, since
    /// the custom plan, knowing the limit, always looked cheaper than the generic one (which
    /// assumes a tenth of the table and joins it by a hash). SQLite keeps the bind: one compiled
    /// statement for every batch size.
    ///
    /// `only` claims that one task (an agent picks its task by id); `run_after` does not hold it back.
    func claimTasks(worker: String, runIds: [String], now: Timestamp, leaseUntil: Timestamp, only taskId: String? = nil)
        async throws(StorageError) -> [TaskRecord]
    {
        let postgres = session.dialect == .postgres
        var binds: [SQLValue] = [
            .timestamp(now), .text(worker), .timestamp(leaseUntil),
            postgres ? .text(SQL.arrayLiteral(runIds)) : .json(.array(runIds.map { .string($0) })),
        ]
        var which = "(run_after IS NULL OR run_after <= $1)"
        if let taskId {
            binds.append(.text(taskId))
            which = "id = $\(binds.count)"
        }
        var limit = String(runIds.count)
        if !postgres {
            binds.append(.int(runIds.count))
            limit = "$\(binds.count)"
        }
        // `started_at` is never before `queued_at`: on PostgreSQL the claim's snapshot is taken after
        // the worker read its clock, so a task queued in between can be claimed by this statement.
        let update = """
            UPDATE tasks SET status = 'running',
            started_at = CASE WHEN tasks.queued_at IS NOT NULL AND tasks.queued_at > $1 THEN tasks.queued_at ELSE $1 END,
            assigned_to = $2, attempt = attempt + 1, lease_expires_at = $3, cancel_requested_at = NULL,
            """
        let sql =
            postgres
            ? """
            WITH picked AS (
            SELECT id FROM tasks WHERE status = 'queued' AND \(which)
            ORDER BY queued_at NULLS FIRST, created_at, id LIMIT \(limit) FOR UPDATE SKIP LOCKED),
            numbered AS (SELECT id, row_number() OVER () AS n FROM picked)
            \(update) current_run_id = (CAST($4 AS text[]))[numbered.n]
            FROM numbered WHERE tasks.id = numbered.id RETURNING tasks.*
            """
            : """
            \(update) current_run_id = json_extract($4, '$[' || (picked.n - 1) || ']')
            FROM (SELECT id, row_number() OVER () AS n FROM (
            SELECT id FROM tasks WHERE status = 'queued' AND \(which)
            ORDER BY queued_at, created_at, id LIMIT \(limit))) AS picked
            WHERE tasks.id = picked.id RETURNING *
            """
        let rows = try await session.query(sql, binds)
        return try rows.map(TaskRepository.decode).sorted {
            ($0.queuedAt ?? $0.createdAt ?? now, $0.id) < ($1.queuedAt ?? $1.createdAt ?? now, $1.id)
        }
    }

    /// Records the CWOM Issue given at claim time to tasks that had none (legacy rows): one
    /// statement for the whole claim, sent with the claim's last writes (the tasks were claimed by
    /// this transaction, so no guard is needed and nothing reads it back before).
    func adoptedIssueStatements(_ adopted: [(taskId: String, issueId: String)]) -> [(String, [SQLValue])] {
        guard !adopted.isEmpty else { return [] }
        var binds: [SQLValue] = []
        let ids = rowIds(adopted.map(\.taskId), binds: &binds)
        let issue = caseById(ids, adopted.map { .text($0.issueId) }, binds: &binds)
        return [("UPDATE tasks SET cwom_issue_id = \(issue) WHERE \(ids.condition)", binds)]
    }

    /// The expected status of a batch write's rows, compared as text so that no index on `status`
    /// can answer it: the rows are found by id (`oneOf`, the primary key) and their status only
    /// checked. Without statistics (a new table, a database's first minute, every benchmark)
    /// PostgreSQL's generic plan took `ix_cwom_issues_status` instead, walking every Issue of the
    /// expected status to filter eight ids out of them: 1.5 ms per claim with 3,000 Issues `ready`,
    /// 0.1 ms by id. (Writes of one row look it up by `id = $n`, which no planner misses.)
    static func statusIs(_ value: String) -> String { "CAST(status AS TEXT) = \(value)" }

    /// `id` (or another column) is one of `values` (`SQL.oneOf`).
    func oneOf(_ column: String, _ values: [String], binds: inout [SQLValue]) -> String {
        SQL.oneOf(column, values, binds: &binds, dialect: session.dialect)
    }

    /// The rows of a multi-row update, found by id: each id bound once, the condition that finds
    /// the rows (`oneOf`), and the numbers of the ids' binds, to which every `CASE id WHEN …` of
    /// the statement refers (`caseById`). A column's `CASE` binding the ids again made most of a
    /// completion's binds: the eight ids of a batch bound thirteen times over.
    struct RowIds {
        let condition: String
        /// The bind number of the first id; the others follow it in order.
        let first: Int
        let count: Int
    }

    func rowIds(_ ids: [String], binds: inout [SQLValue]) -> RowIds {
        let first = binds.count + 1
        if session.dialect == .postgres && (ids.isEmpty || ids.count > SQL.listedUpTo) {
            // The condition binds the list as one array (`SQL.oneOf`); the `CASE`s need each id.
            binds += ids.map { .text($0) }
        }
        return RowIds(condition: oneOf("id", ids, binds: &binds), first: first, count: ids.count)
    }

    /// `CASE id WHEN $a THEN $b … END` for a multi-row update with a value per row, `values` in
    /// the order of `ids`. On PostgreSQL the expression is cast to `type`: its untyped binds would
    /// otherwise make it text, which a `json` or enum column does not take.
    func caseById(_ ids: RowIds, _ values: [SQLValue], binds: inout [SQLValue], cast type: String? = nil) -> String {
        precondition(values.count == ids.count, "a CASE needs one value per id")
        let typed = type != nil && session.dialect == .postgres
        var text: [UInt8] = []
        text.reserveCapacity(24 + values.count * 20)
        if typed { text += "CAST(".utf8 }
        text += "CASE id".utf8
        for (index, value) in values.enumerated() {
            binds.append(value)
            text += " WHEN $".utf8
            SQL.appendDecimal(ids.first + index, to: &text)
            text += " THEN $".utf8
            SQL.appendDecimal(binds.count, to: &text)
        }
        text += " END".utf8
        if let type, typed {
            text += " AS ".utf8
            text += type.utf8
            text.append(UInt8(ascii: ")"))
        }
        return String(decoding: text, as: UTF8.self)
    }

    /// Extends the leases of the tasks in `taskIds` that `worker` still holds; returns those ids
    /// and the ones whose cancellation was requested.
    func extendLeases(worker: String, taskIds: [String], leaseUntil: Timestamp) async throws(StorageError) -> (
        held: [String], cancelRequested: [String]
    ) {
        guard !taskIds.isEmpty else { return ([], []) }
        var binds: [SQLValue] = [.timestamp(leaseUntil), .text(worker)]
        let ids = oneOf("id", taskIds, binds: &binds)
        let rows = try await session.query(
            """
            UPDATE tasks SET lease_expires_at = $1 WHERE assigned_to = $2 AND \(ids) AND \(Self.statusIs("'running'"))
            RETURNING id, cancel_requested_at
            """, binds)
        var held: [String] = []
        var cancel: [String] = []
        for row in rows {
            let id = try row.string("id")
            held.append(id)
            if !row.isNull("cancel_requested_at") { cancel.append(id) }
        }
        return (held, cancel)
    }

    /// Running tasks whose lease expired before `now`, locked on PostgreSQL (`SKIP LOCKED`) so
    /// that concurrent rescuers take different rows.
    func expiredTasks(now: Timestamp, limit: Int) async throws(StorageError) -> [TaskRecord] {
        let lock = session.dialect == .postgres ? " FOR UPDATE SKIP LOCKED" : ""
        return try await session.query(
            """
            SELECT * FROM tasks WHERE status = 'running' AND lease_expires_at IS NOT NULL AND lease_expires_at < $1
            ORDER BY lease_expires_at LIMIT $2\(lock)
            """, [.timestamp(now), .int(limit)]
        ).map(TaskRepository.decode)
    }

    /// The task, locked for the rest of the transaction on PostgreSQL (SQLite's writer lock is
    /// already held), so that the engine decides on the row as it is.
    func lockTask(_ id: String) async throws(StorageError) -> TaskRecord? {
        let lock = session.dialect == .postgres ? " FOR UPDATE" : ""
        return try await session.query("SELECT * FROM tasks WHERE id = $1\(lock)", [.text(id)]).first.map(TaskRepository.decode)
    }

    /// The Run, locked for the rest of the transaction on PostgreSQL: a change computed from it
    /// (outputs appended to) is not overwritten by a concurrent one computed from the same row.
    /// `FOR NO KEY UPDATE`, the lock an `UPDATE` of the row takes: new rows that reference the
    /// Run (its Artifacts' foreign keys) are not held up by it.
    func lockRun(_ id: String) async throws(StorageError) -> Run? {
        let lock = session.dialect == .postgres ? " FOR NO KEY UPDATE" : ""
        return try await session.query("SELECT * FROM cwom_runs WHERE id = $1\(lock)", [.text(id)]).first.map(RunRepository.decode)
    }

    /// Whether the Issue exists, and if so locked for the rest of the transaction on PostgreSQL:
    /// what is decided from its other rows (the versions of its ContextPackets) holds until the
    /// commit, as no concurrent transaction can decide on them meanwhile.
    /// `FOR NO KEY UPDATE`, as `lockRun`.
    func lockIssue(_ id: String) async throws(StorageError) -> Bool {
        let lock = session.dialect == .postgres ? " FOR NO KEY UPDATE" : ""
        return try await !session.query("SELECT id FROM cwom_issues WHERE id = $1\(lock)", [.text(id)]).isEmpty
    }

    /// Several tasks, locked for the rest of the transaction on PostgreSQL.
    func lockTasks(_ ids: [String]) async throws(StorageError) -> [String: TaskRecord] {
        guard !ids.isEmpty else { return [:] }
        let lock = session.dialect == .postgres ? " FOR UPDATE" : ""
        var tasks: [String: TaskRecord] = [:]
        var binds: [SQLValue] = []
        let list = oneOf("id", ids, binds: &binds)
        for row in try await session.query("SELECT * FROM tasks WHERE \(list)\(lock)", binds) {
            let task = try TaskRepository.decode(row)
            tasks[task.id] = task
        }
        return tasks
    }

    /// One attempt's end as `finishAttempts` writes it: the task row, its Run and where its
    /// Issue goes.
    struct AttemptEnd {
        var task: TaskRecord
        var attempt: Int
        var worker: String
        var run: Run
        var issueId: String
        var issueStatus: Status
    }

    /// The writes that end several attempts: the tasks, each guarded on its attempt still
    /// running for the same worker (and, `unlessCancelRequested`, on no cancellation asked for
    /// it); then, of the tasks written, their Runs and their Issues (each to its own status),
    /// guarded on `running`. Returns the ids written of each.
    ///
    /// PostgreSQL: one statement, three data-modifying CTEs. The Runs' and the Issues' updates
    /// take only rows whose task the first update returned, which makes PostgreSQL run that one
    /// first; all three see the same snapshot and touch different tables. SQLite: the same three
    /// updates one after another (its statements cost no round trip).
    func finishAttempts(_ ends: [AttemptEnd], unlessCancelRequested: Bool, at time: Timestamp) async throws(StorageError)
        -> (tasks: Set<String>, runs: Set<String>, issues: Set<String>)
    {
        guard !ends.isEmpty else { return ([], [], []) }
        var binds: [SQLValue] = []
        let tasks = finishTasks(ends, unlessCancelRequested: unlessCancelRequested, binds: &binds)
        guard session.dialect == .postgres else {
            let finished = try await ids(session.query(tasks, binds))
            let written = ends.filter { finished.contains($0.task.id) }
            guard !written.isEmpty else { return (finished, [], []) }
            binds = []
            let runs = try await ids(session.query(writeRuns(written.map(\.run), expected: .running, at: time, binds: &binds), binds))
            binds = []
            let issues = try await ids(session.query(writeIssueEnds(written, at: time, binds: &binds), binds))
            return (finished, runs, issues)
        }
        let runs = writeRuns(ends.map(\.run), expected: .running, at: time, binds: &binds, alsoWhere: "id IN (SELECT current_run_id FROM t)")
        let issues = writeIssueEnds(ends, at: time, binds: &binds, alsoWhere: "id IN (SELECT cwom_issue_id FROM t)")
        var written: (tasks: Set<String>, runs: Set<String>, issues: Set<String>) = ([], [], [])
        for row in try await session.query(
            """
            WITH t AS (\(tasks)), r AS (\(runs)), i AS (\(issues))
            SELECT 'task' AS part, id FROM t UNION ALL SELECT 'run', id FROM r UNION ALL SELECT 'issue', id FROM i
            """, binds)
        {
            let id = try row.string("id")
            switch try row.string("part") {
            case "task": written.tasks.insert(id)
            case "run": written.runs.insert(id)
            default: written.issues.insert(id)
            }
        }
        return written
    }

    /// The ids a statement's `RETURNING id` gave.
    private func ids(_ rows: [SQLRow]) throws(StorageError) -> Set<String> {
        Set(try rows.map { row throws(StorageError) in try row.string("id") })
    }

    /// The tasks' update of `finishAttempts`, returning the ids written with their Run and Issue.
    private func finishTasks(_ ends: [AttemptEnd], unlessCancelRequested: Bool, binds: inout [SQLValue]) -> String {
        let ids = rowIds(ends.map(\.task.id), binds: &binds)
        let status = caseById(ids, ends.map { .text($0.task.status.rawValue) }, binds: &binds, cast: "task_status")
        let result = caseById(ids, ends.map { .json($0.task.result) }, binds: &binds, cast: "json")
        let error = caseById(ids, ends.map { .text($0.task.error) }, binds: &binds)
        let tracePath = caseById(ids, ends.map { .text($0.task.tracePath) }, binds: &binds)
        let attempt = caseById(ids, ends.map { .int($0.attempt) }, binds: &binds)
        let worker = caseById(ids, ends.map { .text($0.worker) }, binds: &binds)
        // An attempt queued again for a retry has no completion time and a time to wait for.
        let completedAt = caseById(ids, ends.map { .timestamp($0.task.completedAt) }, binds: &binds, cast: "timestamptz")
        let runAfter = caseById(ids, ends.map { .timestamp($0.task.runAfter) }, binds: &binds, cast: "timestamptz")
        return """
            UPDATE tasks SET status = \(status), completed_at = \(completedAt), result = \(result), error = \(error),
            trace_path = \(tracePath), lease_expires_at = NULL, run_after = \(runAfter)
            WHERE \(ids.condition) AND \(Self.statusIs("'running'")) AND attempt = \(attempt) AND assigned_to = \(worker)
            \(unlessCancelRequested ? "AND cancel_requested_at IS NULL " : "")RETURNING id, current_run_id, cwom_issue_id
            """
    }

    /// The Issues' update of `finishAttempts`: each from `running` to the status its attempt's end gives it.
    private func writeIssueEnds(_ ends: [AttemptEnd], at time: Timestamp, binds: inout [SQLValue], alsoWhere extra: String? = nil)
        -> String
    {
        binds.append(.timestamp(time))
        let updatedAt = "$\(binds.count)"
        let ids = rowIds(ends.map(\.issueId), binds: &binds)
        let status = caseById(ids, ends.map { .text($0.issueStatus.rawValue) }, binds: &binds, cast: "cwom_status")
        return """
            UPDATE cwom_issues SET status = \(status), updated_at = \(updatedAt)
            WHERE \(ids.condition) AND \(Self.statusIs("'running'"))\(extra.map { " AND \($0)" } ?? "") RETURNING id
            """
    }

    /// Back to the queue without counting the attempt (shutdown), guarded like `finishAttempts`.
    func requeueTask(_ id: String, attempt: Int, worker: String) async throws(StorageError) -> Bool {
        let rows = try await session.query(
            """
            UPDATE tasks SET status = 'queued', attempt = $1, lease_expires_at = NULL, run_after = NULL
            WHERE id = $2 AND attempt = $3 AND status = 'running' AND assigned_to = $4 RETURNING id
            """, [.int(max(0, attempt - 1)), .text(id), .int(attempt), .text(worker)])
        return !rows.isEmpty
    }

    /// A rescuer's write: guarded on the attempt and on the lease still being expired, whoever held it.
    func rescueTask(_ task: TaskRecord, attempt: Int, expiredBefore now: Timestamp) async throws(StorageError) -> Bool {
        let rows = try await session.query(
            """
            UPDATE tasks SET status = $1, completed_at = $2, error = $3, lease_expires_at = NULL, run_after = $4
            WHERE id = $5 AND attempt = $6 AND status = 'running' AND lease_expires_at < $7 RETURNING id
            """,
            [
                .text(task.status.rawValue), .timestamp(task.completedAt), .text(task.error), .timestamp(task.runAfter),
                .text(task.id), .int(attempt), .timestamp(now),
            ])
        return !rows.isEmpty
    }

    /// A queued or pending task cancelled at once, guarded on the status it had.
    func cancelWaitingTask(_ id: String, from status: TaskStatus, now: Timestamp) async throws(StorageError) -> Bool {
        let rows = try await session.query(
            "UPDATE tasks SET status = 'cancelled', completed_at = $1 WHERE id = $2 AND status = $3 RETURNING id",
            [.timestamp(now), .text(id), .text(status.rawValue)])
        return !rows.isEmpty
    }

    /// A running task marked for cancellation (not a transition: its worker ends the attempt).
    func requestTaskCancel(_ id: String, attempt: Int, now: Timestamp) async throws(StorageError) -> Bool {
        let rows = try await session.query(
            """
            UPDATE tasks SET cancel_requested_at = COALESCE(cancel_requested_at, $1)
            WHERE id = $2 AND attempt = $3 AND status = 'running' RETURNING id
            """, [.timestamp(now), .text(id), .int(attempt)])
        return !rows.isEmpty
    }

    /// A finished task queued again for a new attempt, with a fresh allowance of attempts.
    /// `kept` holds the outcome columns to leave on the row (the legacy PATCH never clears
    /// anything); a retry passes none.
    func retryTask(_ id: String, from status: TaskStatus, now: Timestamp, maxAttempts: Int, kept: TaskRecord?)
        async throws(StorageError) -> Bool
    {
        let rows = try await session.query(
            """
            UPDATE tasks SET status = 'queued', queued_at = $1, completed_at = $2, result = $3, error = $4,
            run_after = NULL, lease_expires_at = NULL, cancel_requested_at = NULL, max_attempts = $5
            WHERE id = $6 AND status = $7 RETURNING id
            """,
            [
                .timestamp(now), .timestamp(kept?.completedAt), .json(kept?.result), .text(kept?.error), .int(maxAttempts),
                .text(id), .text(status.rawValue),
            ])
        return !rows.isEmpty
    }

    /// The legacy `PATCH /tasks/{id}/status` write: the status and the fields a client gave
    /// (nothing is ever cleared), guarded on the status the engine saw.
    func setTaskFields(_ task: TaskRecord, expected: TaskStatus) async throws(StorageError) -> Bool {
        let rows = try await session.query(
            """
            UPDATE tasks SET status = $1, queued_at = $2, started_at = $3, completed_at = $4, assigned_to = $5,
            result = $6, error = $7, trace_path = $8 WHERE id = $9 AND status = $10 RETURNING id
            """,
            [
                .text(task.status.rawValue), .timestamp(task.queuedAt), .timestamp(task.startedAt),
                .timestamp(task.completedAt), .text(task.assignedTo), .json(task.result), .text(task.error),
                .text(task.tracePath), .text(task.id), .text(expected.rawValue),
            ])
        return !rows.isEmpty
    }

    /// The running task that executes this Run, if any.
    func taskExecuting(runId: String, hint taskId: String?) async throws(StorageError) -> TaskRecord? {
        if let taskId, let task = try await TaskRepository(session: session).get(taskId), task.currentRunId == runId {
            return task.status == .running ? task : nil
        }
        return try await session.query(
            "SELECT * FROM tasks WHERE current_run_id = $1 AND status = 'running'", [.text(runId)]
        ).first.map(TaskRepository.decode)
    }

    /// The running task that works on this Issue, if any.
    func taskExecuting(issueId: String) async throws(StorageError) -> TaskRecord? {
        try await session.query(
            "SELECT * FROM tasks WHERE cwom_issue_id = $1 AND status = 'running' LIMIT 1", [.text(issueId)]
        ).first.map(TaskRepository.decode)
    }

    // MARK: - Runs

    /// Writes Runs (status and mutable fields: telemetry, cost, outputs, failure; never the pin) in
    /// one statement, each guarded on still having status `expected`; returns the ids written.
    func writeRuns(_ runs: [Run], expected: Status, at time: Timestamp) async throws(StorageError) -> Set<String> {
        guard !runs.isEmpty else { return [] }
        var binds: [SQLValue] = []
        return try await ids(session.query(writeRuns(runs, expected: expected, at: time, binds: &binds), binds))
    }

    /// The statement of `writeRuns`, its binds appended to `binds`; `extra` guards it further.
    private func writeRuns(_ runs: [Run], expected: Status, at time: Timestamp, binds: inout [SQLValue], alsoWhere extra: String? = nil)
        -> String
    {
        binds += [.timestamp(time), .text(expected.rawValue)]
        let (updatedAt, expectedStatus) = ("$\(binds.count - 1)", "$\(binds.count)")
        let ids = rowIds(runs.map(\.id), binds: &binds)
        let status = caseById(ids, runs.map { .text($0.status.rawValue) }, binds: &binds, cast: "cwom_status")
        let telemetry = caseById(ids, runs.map { .json($0.telemetry.json) }, binds: &binds, cast: "json")
        let cost = caseById(ids, runs.map { .json($0.cost.json) }, binds: &binds, cast: "json")
        let outputs = caseById(ids, runs.map { .json($0.outputs.json) }, binds: &binds, cast: "json")
        let failure = caseById(ids, runs.map { .json($0.failure?.json) }, binds: &binds, cast: "json")
        return """
            UPDATE cwom_runs SET status = \(status), telemetry = \(telemetry), cost = \(cost), outputs = \(outputs),
            failure = \(failure), updated_at = \(updatedAt)
            WHERE \(ids.condition) AND \(Self.statusIs(expectedStatus))\(extra.map { " AND \($0)" } ?? "") RETURNING id
            """
    }

    /// Sets one status on several rows of `cwom_runs` or `cwom_issues`, each guarded on still
    /// having status `expected`; returns the ids written.
    func setStatuses(_ table: StatusTable, _ ids: [String], to status: Status, expected: Status, at time: Timestamp)
        async throws(StorageError) -> Set<String>
    {
        guard !ids.isEmpty else { return [] }
        var binds: [SQLValue] = [.text(status.rawValue), .timestamp(time), .text(expected.rawValue)]
        let list = oneOf("id", ids, binds: &binds)
        let rows = try await session.query(
            "UPDATE \(table.rawValue) SET status = $1, updated_at = $2 WHERE \(list) AND \(Self.statusIs("$3")) RETURNING id", binds)
        return try self.ids(rows)
    }

    enum StatusTable: String {
        case runs = "cwom_runs"
        case issues = "cwom_issues"
    }

    // MARK: - Issues

    /// Moves several Issues from `expected` to `status`, each one's `runs` gaining the refs `added`
    /// (`runs` is its whole list as read in this transaction), in one statement guarded row by
    /// row; returns the ids it wrote. On PostgreSQL the refs are appended to the list as the row
    /// is when written, not as it was read: a Run created for the Issue over the API meanwhile
    /// (`LifecycleEngine.create`) stays listed. SQLite's one writer has serialized the read and
    /// the write, so the whole list is written as read.
    func writeIssueStatuses(_ moves: [(id: String, runs: [Ref], added: [Ref])], to status: Status, expected: Status, at time: Timestamp)
        async throws(StorageError) -> Set<String>
    {
        guard !moves.isEmpty else { return [] }
        var binds: [SQLValue] = [.text(status.rawValue), .timestamp(time), .text(expected.rawValue)]
        let ids = rowIds(moves.map(\.id), binds: &binds)
        let runs =
            session.dialect == .postgres
            ? "CAST(CAST(runs AS jsonb) || \(caseById(ids, moves.map { .json($0.added.json) }, binds: &binds, cast: "jsonb")) AS json)"
            : caseById(ids, moves.map { .json($0.runs.json) }, binds: &binds)
        let rows = try await session.query(
            "UPDATE cwom_issues SET status = $1, runs = \(runs), updated_at = $2 WHERE \(ids.condition) AND \(Self.statusIs("$3")) RETURNING id", binds)
        return try self.ids(rows)
    }

    func issueStatus(_ id: String) async throws(StorageError) -> Status? {
        guard let raw = try await session.query("SELECT status FROM cwom_issues WHERE id = $1", [.text(id)]).first else {
            return nil
        }
        return Status(rawValue: try raw.string("status")) ?? .planned
    }
}
