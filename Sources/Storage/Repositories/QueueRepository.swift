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
