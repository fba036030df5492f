import LegacyTasks
import Metrics
import Storage
import TowerJSON

/// `GET /metrics`: Prometheus text format. Task counts by status are read from the database at
/// each scrape; the other series are recorded where things happen (worker, HTTP).
struct MetricsRoute: Sendable {
    let database: Database
    let emit: @Sendable () -> String

    func register(on router: inout Router) {
        router.add("GET", "/metrics", summary: "Prometheus metrics", tag: "Meta", access: .metrics) { _ in
            if let counts = try? await database.read({ try await $0.tasks.countByStatus() }) {
                for status in TaskStatus.allCases {
                    Gauge(label: "tower_tasks", dimensions: [("status", status.rawValue)]).record(counts[status.rawValue] ?? 0)
                }
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
