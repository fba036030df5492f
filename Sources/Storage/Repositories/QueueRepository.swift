import CWOM
import LegacyTasks
import TowerJSON

/// The queue's wake-up hint and the worker registry. Every status change of a task is the
/// lifecycle engine's (`Lifecycle/`).
public struct QueueRepository: Sendable {
    let session: any DatabaseSession

    /// The PostgreSQL NOTIFY channel that enqueue wakes workers on.
    public static let channel = "tower_tasks"

    /// Wakes listening workers (PostgreSQL); a no-op on SQLite. A hint: polling is the truth.
    public func notify() async throws(StorageError) {
        try await session.writeAll(notifyStatements)
    }

    /// The wake-up as a statement to send later (none on SQLite).
    var notifyStatements: [(String, [SQLValue])] {
        session.dialect == .postgres ? [("SELECT pg_notify($1, '')", [.text(Self.channel)])] : []
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

extension QueueRepository {
    /// A worker process as its heartbeat last recorded it.
    public struct WorkerRow: Sendable {
        public var id: String
        public var host: String
        public var pid: Int
        public var concurrency: Int
        public var startedAt: Timestamp
        public var heartbeatAt: Timestamp
        public var stoppedAt: Timestamp?
    }

    /// Workers that beat since `since`, or stopped since then; newest heartbeat first.
    public func workers(since: Timestamp) async throws(StorageError) -> [WorkerRow] {
        try await session.query(
            "SELECT * FROM tower_workers WHERE heartbeat_at >= $1 ORDER BY heartbeat_at DESC, id LIMIT 200", [.timestamp(since)]
        ).map { row throws(StorageError) in
            WorkerRow(
                id: try row.string("id"), host: try row.string("host"), pid: try row.int("pid"), concurrency: try row.int("concurrency"),
                startedAt: try row.timestamp("started_at"), heartbeatAt: try row.timestamp("heartbeat_at"),
                stoppedAt: try row.optionalTimestamp("stopped_at"))
        }
    }

    /// The oldest `queued_at` of the queue (how long the longest-waiting task has waited).
    public func oldestQueued() async throws(StorageError) -> Timestamp? {
        try await session.query("SELECT MIN(queued_at) AS oldest FROM tasks WHERE status = 'queued'", []).first?.optionalTimestamp("oldest")
    }

    /// Attempts finished since `since`, by the status they ended with.
    public func finished(since: Timestamp) async throws(StorageError) -> [String: Int] {
        var counts: [String: Int] = [:]
        for row in try await session.query(
            "SELECT status, COUNT(*) AS n FROM tasks WHERE completed_at >= $1 GROUP BY status", [.timestamp(since)])
        {
            counts[try row.string("status")] = try row.int("n")
        }
        return counts
    }
}

extension Store {
    public var queue: QueueRepository { QueueRepository(session: session) }
}
