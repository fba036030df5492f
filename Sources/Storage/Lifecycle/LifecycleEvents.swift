import Synchronization

/// What the engine did, after its transaction committed. Workers wake on them, tests await them
/// instead of polling, and the console will stream them.
public struct LifecycleEvent: Sendable, Hashable, CustomStringConvertible {
    public enum Kind: String, Sendable, Hashable {
        case enqueued, claimed, completed, requeued, rescued, cancelled, retried, reviewed
        /// A running task was asked to stop; its worker stops it at its next heartbeat.
        case cancelRequested = "cancel_requested"
        /// A completion found its task no longer held by that attempt: nothing was written.
        case fenced
        /// A status set directly (`PATCH`) on a task, Run or Issue.
        case statusSet = "status_set"
        /// Retention deleted a Run's trace folder (`runId`) or a task row (`taskId`).
        case pruned
    }

    public var kind: Kind
    public var taskId: String?
    public var runId: String?
    /// The status the task (or, for reviews and status sets, the entity) ended in.
    public var status: String?

    public init(_ kind: Kind, taskId: String? = nil, runId: String? = nil, status: String? = nil) {
        self.kind = kind
        self.taskId = taskId
        self.runId = runId
        self.status = status
    }

    public var description: String { "\(kind.rawValue) task=\(taskId ?? "-") run=\(runId ?? "-") status=\(status ?? "-")" }
}

/// Fans events out to every subscriber. A subscriber that stops iterating is dropped.
public final class LifecycleEvents: Sendable {
    private let subscribers = Mutex<[Int: AsyncStream<LifecycleEvent>.Continuation]>([:])
    private let nextId = Atomic<Int>(0)

    public init() {}

    /// A stream of every event from now on.
    public func subscribe() -> AsyncStream<LifecycleEvent> {
        let id = nextId.add(1, ordering: .relaxed).newValue
        let (stream, continuation) = AsyncStream<LifecycleEvent>.makeStream(bufferingPolicy: .bufferingNewest(10_000))
        continuation.onTermination = { [weak self] _ in _ = self?.subscribers.withLock { $0.removeValue(forKey: id) } }
        subscribers.withLock { $0[id] = continuation }
        return stream
    }

    func emit(_ events: [LifecycleEvent]) {
        guard !events.isEmpty else { return }
        let targets = subscribers.withLock { Array($0.values) }
        for continuation in targets { for event in events { continuation.yield(event) } }
    }
}
