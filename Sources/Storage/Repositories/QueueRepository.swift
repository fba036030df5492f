import CWOM
import LegacyTasks
import TowerJSON

/// The queue operations of the worker on the `tasks` table: claim, heartbeat, rescue, fenced
/// completion and cancellation. The claim is the one statement that differs per dialect.
public struct QueueRepository: Sendable {
    let session: any DatabaseSession

    /// The PostgreSQL NOTIFY channel that enqueue wakes workers on.
    public static let channel = "tower_tasks"

    /// Claims up to `limit` queued tasks, oldest first, for `worker`: status `running`,
    /// `started_at` and `assigned_to` set as the legacy worker set them, `attempt` raised and a
    /// lease until `leaseUntil`. One statement; PostgreSQL skips rows other workers hold.
    public func claim(worker: String, limit: Int, now: Timestamp, leaseUntil: Timestamp) async throws(StorageError)
        -> [TaskRecord]
    {
        let pick =
            session.dialect == .postgres
            ? """
            SELECT id FROM tasks WHERE status = 'queued' AND (run_after IS NULL OR run_after <= $1)
            ORDER BY queued_at NULLS FIRST, created_at, id LIMIT $2 FOR UPDATE SKIP LOCKED
            """
            : """
            SELECT id FROM tasks WHERE status = 'queued' AND (run_after IS NULL OR run_after <= $1)
            ORDER BY queued_at, created_at, id LIMIT $2
            """
        // `started_at` is never before `queued_at`: on PostgreSQL the claim's snapshot is taken after
        // the worker read its clock, so a task queued in between can be claimed by this statement.
        let update = """
            UPDATE tasks SET status = 'running',
            started_at = CASE WHEN queued_at IS NOT NULL AND queued_at > $1 THEN queued_at ELSE $1 END,
            assigned_to = $3, attempt = attempt + 1, lease_expires_at = $4, cancel_requested_at = NULL
            """
        let sql =
            session.dialect == .postgres
            ? "WITH picked AS (\(pick)) \(update) WHERE id IN (SELECT id FROM picked) RETURNING *"
            : "\(update) WHERE id IN (\(pick)) RETURNING *"
        let rows = try await session.query(sql, [.timestamp(now), .int(limit), .text(worker), .timestamp(leaseUntil)])
        return try rows.map(TaskRepository.decode).sorted {
            ($0.queuedAt ?? $0.createdAt ?? now, $0.id) < ($1.queuedAt ?? $1.createdAt ?? now, $1.id)
        }
    }

    /// Extends the leases of the tasks in `taskIds` that `worker` still holds, and returns
    /// those ids and the ones whose cancellation was requested. Only tasks the worker is actually
    /// running are extended: a claim whose result the worker never saw (a lost commit answer, a
    /// completion that failed when the connection dropped) keeps no lease and is rescued.
    public func heartbeat(worker: String, taskIds: [String], leaseUntil: Timestamp) async throws(StorageError) -> (
        running: [String], cancelRequested: [String]
    ) {
        guard !taskIds.isEmpty else { return ([], []) }
        let rows = try await session.query(
            """
            UPDATE tasks SET lease_expires_at = $1 WHERE assigned_to = $2 AND status = 'running'
            AND id IN (\(SQL.placeholders(count: taskIds.count, after: 2)))
            RETURNING id, cancel_requested_at
            """, [.timestamp(leaseUntil), .text(worker)] + taskIds.map { .text($0) })
        var running: [String] = []
        var cancel: [String] = []
        for row in rows {
            let id = try row.string("id")
            running.append(id)
            if !row.isNull("cancel_requested_at") { cancel.append(id) }
        }
        return (running, cancel)
    }

    /// Running tasks whose lease expired before `now` (their worker is gone), locked for the
    /// rescuer on PostgreSQL so that concurrent rescuers take different rows.
    public func expired(now: Timestamp, limit: Int = 100) async throws(StorageError) -> [TaskRecord] {
        let lock = session.dialect == .postgres ? " FOR UPDATE SKIP LOCKED" : ""
        return try await session.query(
            """
            SELECT * FROM tasks WHERE status = 'running' AND lease_expires_at IS NOT NULL AND lease_expires_at < $1
            ORDER BY lease_expires_at LIMIT $2\(lock)
            """, [.timestamp(now), .int(limit)]
        ).map(TaskRepository.decode)
    }

    /// Writes the end of an attempt, fenced: only when the task is still `running` in the same
    /// attempt for the same worker. Returns false when it is not (rescued, cancelled, …), in which
    /// case nothing was written.
    public func finish(_ task: TaskRecord, worker: String) async throws(StorageError) -> Bool {
        let rows = try await session.query(
            """
            UPDATE tasks SET status = $1, completed_at = $2, result = $3, error = $4, trace_path = $5,
            lease_expires_at = NULL, run_after = $6, queued_at = $7, attempt = $8, current_run_id = $9,
            cancel_requested_at = $10
            WHERE id = $11 AND attempt = $12 AND status = 'running' AND assigned_to = $13 RETURNING id
            """,
            [
                .text(task.status.rawValue), .timestamp(task.completedAt), .json(task.result), .text(task.error),
                .text(task.tracePath), .timestamp(task.runAfter), .timestamp(task.queuedAt), .int(task.attempt),
                .text(task.currentRunId), .timestamp(task.cancelRequestedAt), .text(task.id), .int(task.attempt),
                .text(worker),
            ])
        return !rows.isEmpty
    }

    /// Like `finish`, but for a rescuer: fenced on the attempt and on the lease still being
    /// expired, whoever held it.
    public func rescue(_ task: TaskRecord, expiredBefore now: Timestamp, previousAttempt: Int) async throws(StorageError)
        -> Bool
    {
        let rows = try await session.query(
            """
            UPDATE tasks SET status = $1, completed_at = $2, error = $3, lease_expires_at = NULL, run_after = $4,
            queued_at = $5, attempt = $6
            WHERE id = $7 AND attempt = $8 AND status = 'running' AND lease_expires_at < $9 RETURNING id
            """,
            [
                .text(task.status.rawValue), .timestamp(task.completedAt), .text(task.error), .timestamp(task.runAfter),
                .timestamp(task.queuedAt), .int(task.attempt), .text(task.id), .int(previousAttempt), .timestamp(now),
            ])
        return !rows.isEmpty
    }

    /// Marks a running task for cancellation (its worker stops it), or cancels a queued one at
    /// once. Returns the task after the change, nil if there is none.
    public func requestCancel(_ id: String, now: Timestamp) async throws(StorageError) -> TaskRecord? {
        try await session.query(
            "UPDATE tasks SET status = 'cancelled', completed_at = $1 WHERE id = $2 AND status IN ('queued', 'pending')",
            [.timestamp(now), .text(id)])
        try await session.query(
            "UPDATE tasks SET cancel_requested_at = $1 WHERE id = $2 AND status = 'running' AND cancel_requested_at IS NULL",
            [.timestamp(now), .text(id)])
        return try await TaskRepository(session: session).get(id)
    }

    /// Wakes listening workers (PostgreSQL); a no-op on SQLite. A hint: polling is the truth.
    public func notify() async throws(StorageError) {
        guard session.dialect == .postgres else { return }
        try await session.query("SELECT pg_notify($1, '')", [.text(Self.channel)])
    }

    /// Records a worker process and its heartbeat.
    public func upsertWorker(id: String, host: String, pid: Int, concurrency: Int, now: Timestamp, stopped: Bool = false)
        async throws(StorageError)
    {
        try await session.query(
            """
            INSERT INTO tower_workers (id, host, pid, concurrency, started_at, heartbeat_at, stopped_at)
            VALUES ($1, $2, $3, $4, $5, $5, $6)
            ON CONFLICT (id) DO UPDATE SET heartbeat_at = $5, stopped_at = $6
            """,
            [.text(id), .text(host), .int(pid), .int(concurrency), .timestamp(now), .timestamp(stopped ? now : nil)])
    }
}

extension Store {
    public var queue: QueueRepository { QueueRepository(session: session) }
}
