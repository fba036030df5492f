import Metrics
import Prometheus
import Worker

/// The process's metrics: swift-metrics backed by a Prometheus registry, bootstrapped once.
enum Telemetry {
    static let registry = PrometheusCollectorRegistry()

    static func bootstrap() {
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        TowerMetrics.declare()
    }

    /// The Prometheus text exposition of every metric.
    @Sendable static func emit() -> String { registry.emitToString() }
}
