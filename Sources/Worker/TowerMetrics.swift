import LegacyTasks
import Metrics

/// Every metric the product records, in one place: the emit sites call these, and `declare()`
/// creates each series at zero when the process starts, so that `rate()`, `increase()` and
/// absence alerts work before the first event (a healthy system has no rescues: its rescue
/// counter must still exist at 0). docs/operations.md lists them; a test checks that the list
/// and a fresh process's `/metrics` agree.
public enum TowerMetrics {
    /// The statuses an attempt ends with, as `tower_task_completions_total{status}` counts them:
    /// the task's status, or `retried` when a transient failure queued it again.
    public static let completionStatuses = ["completed", "failed", "cancelled", "retried"]
    /// What `tower prune` and the maintenance loop remove.
    public static let pruneKinds = ["trace_folders", "tasks", "workers"]

    public static func claims(_ operation: TaskOperation) -> Counter {
        Counter(label: "tower_task_claims_total", dimensions: [("operation", operation.rawValue)])
    }

    public static func completions(_ operation: TaskOperation, status: String) -> Counter {
        Counter(label: "tower_task_completions_total", dimensions: [("operation", operation.rawValue), ("status", status)])
    }

    public static func retries(_ operation: TaskOperation) -> Counter {
        Counter(label: "tower_task_retries_total", dimensions: [("operation", operation.rawValue)])
    }

    /// The series a worker records at every claim and completion, their handles made once, when
    /// the worker starts (after the backend is bootstrapped). Making a handle looks it up in the
    /// backend's registry (a lock, the labels checked and hashed): three a task were about 14 K
    /// instructions of a PostgreSQL worker's 2.09 M (`scripts/worker-instructions`).
    struct TaskSeries: Sendable {
        private let operations = TaskOperation.allCases
        private let claimCounters: [Counter]
        private let retryCounters: [Counter]
        private let durations: [Metrics.Timer]
        /// By operation, then by `completionStatuses`.
        private let completionCounters: [[Counter]]

        init() {
            claimCounters = operations.map(TowerMetrics.claims)
            retryCounters = operations.map(TowerMetrics.retries)
            durations = operations.map(TowerMetrics.runDuration)
            completionCounters = operations.map { operation in
                TowerMetrics.completionStatuses.map { TowerMetrics.completions(operation, status: $0) }
            }
        }

        func claims(_ operation: TaskOperation) -> Counter {
            operations.firstIndex(of: operation).map { claimCounters[$0] } ?? TowerMetrics.claims(operation)
        }

        func retries(_ operation: TaskOperation) -> Counter {
            operations.firstIndex(of: operation).map { retryCounters[$0] } ?? TowerMetrics.retries(operation)
        }

        func runDuration(_ operation: TaskOperation) -> Metrics.Timer {
            operations.firstIndex(of: operation).map { durations[$0] } ?? TowerMetrics.runDuration(operation)
        }

        func completions(_ operation: TaskOperation, status: String) -> Counter {
            guard let row = operations.firstIndex(of: operation), let column = TowerMetrics.completionStatuses.firstIndex(of: status)
            else { return TowerMetrics.completions(operation, status: status) }
            return completionCounters[row][column]
        }
    }

    public static let rescues = Counter(label: "tower_task_rescues_total")
    /// A worker's background operations (`BridgeWorker.Operation`) whose try failed: the
    /// database unreachable, most often. Its logs say so once a minute; this counts every try.
    public static func failures(_ operation: String) -> Counter {
        Counter(label: "tower_worker_failures_total", dimensions: [("operation", operation)])
    }
    public static let cancellations = Counter(label: "tower_task_cancellations_total")

    public static func runDuration(_ operation: TaskOperation) -> Metrics.Timer {
        Metrics.Timer(label: "tower_run_duration_seconds", dimensions: [("operation", operation.rawValue)])
    }

    public static let enqueueToStart = Metrics.Timer(label: "tower_enqueue_to_start_seconds")

    public static func pruned(_ kind: String) -> Counter { Counter(label: "tower_pruned_total", dimensions: [("kind", kind)]) }
    public static let prunedBytes = Counter(label: "tower_pruned_bytes_total")
    public static let pruneRuns = Counter(label: "tower_prune_runs_total")

    /// Read from the database at each scrape (`MetricsRoute`).
    public static func tasks(_ status: TaskStatus) -> Gauge { Gauge(label: "tower_tasks", dimensions: [("status", status.rawValue)]) }
    public static let queueDepth = Gauge(label: "tower_queue_depth")
    public static let oldestQueuedAge = Gauge(label: "tower_queue_oldest_age_seconds")

    /// Creates every series at zero (call once, after the metrics backend is bootstrapped).
    public static func declare() {
        for operation in TaskOperation.allCases {
            claims(operation).increment(by: 0)
            retries(operation).increment(by: 0)
            for status in completionStatuses { completions(operation, status: status).increment(by: 0) }
            _ = runDuration(operation)
        }
        rescues.increment(by: 0)
        for operation in BridgeWorker.Operation.allCases { failures(operation.rawValue).increment(by: 0) }
        cancellations.increment(by: 0)
        _ = enqueueToStart
        for kind in pruneKinds { pruned(kind).increment(by: 0) }
        prunedBytes.increment(by: 0)
        pruneRuns.increment(by: 0)
        for status in TaskStatus.allCases { tasks(status).record(0) }
        queueDepth.record(0)
        oldestQueuedAge.record(0)
    }
}
