import LegacyTasks
import Metrics
import Storage
import TowerJSON
import Worker
import CWOM

/// `GET /metrics`: Prometheus text format. Task counts by status, the queue's depth and the age
/// of its oldest task are read from the database at each scrape; the other series are recorded
/// where things happen (`TowerMetrics`).
struct MetricsRoute: Sendable {
    let database: Database
    let emit: @Sendable () -> String

    func register(on router: inout Router) {
        router.add(
            "GET", "/metrics", summary: "Prometheus metrics", tag: "Meta", access: .metrics,
            answers: Answer([200], contentType: "text/plain", "The Prometheus text format.")
        ) { _ in
            let now = Timestamp.now()
            if let (counts, oldest) = try? await database.read({ store in
                (try await store.tasks.countByStatus(), try await store.queue.oldestQueued())
            }) {
                for status in TaskStatus.allCases { TowerMetrics.tasks(status).record(counts[status.rawValue] ?? 0) }
                TowerMetrics.queueDepth.record(counts[TaskStatus.queued.rawValue] ?? 0)
                TowerMetrics.oldestQueuedAge.record(oldest.map { max(0, now.seconds(since: $0)) } ?? 0)
            }
            Gauge(label: "tower_db_pool_connections_in_use").record(database.driver.sessionsInUse)
            if let postgres = database.driver as? PostgresDriver {
                Gauge(label: "tower_db_pool_connections_max").record(postgres.settings.maximumConnections)
            }
            return APIResponse(
                status: 200, headers: [("content-type", "text/plain; version=0.0.4; charset=utf-8")], body: Array(emit().utf8))
        }
    }
}
