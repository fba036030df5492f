import CWOM
import LegacyTasks

/// A state machine written once as data: the legal transitions of one kind of entity, each with
/// the engine operations that take it. The engine checks every status write against it, the
/// transition tests walk it edge by edge, and `docs/worker.md` draws it from `mermaid`.
public struct StateMachine<State: RawRepresentable & Hashable & Sendable>: Sendable where State.RawValue == String {
    public struct Edge: Sendable, Hashable {
        public let from: State
        public let to: State
        /// The engine operations that take this edge (for the diagram and the tests).
        public let via: [String]
    }

    /// `Task`, `Run` or `Issue`: the audit log's `entity_kind`.
    public let entity: String
    public let edges: [Edge]

    init(_ entity: String, _ edges: [(State, [State], [String])]) {
        self.entity = entity
        self.edges = edges.flatMap { from, targets, via in targets.map { Edge(from: from, to: $0, via: via) } }
    }

    /// Whether `from → to` is a transition of this machine (taken by `operation`, when given).
    /// Staying put is not a transition.
    public func allows(_ from: State, _ to: State, via operation: String? = nil) -> Bool {
        edges.contains { edge in
            edge.from == from && edge.to == to && (operation.map { name in edge.via.contains { $0.hasPrefix(name) } } ?? true)
        }
    }

    /// Throws the typed 409 error when `from → to` is not a transition (of `operation`, when given).
    public func check(_ id: String, from: State, to: State, via operation: String? = nil) throws(LifecycleError) {
        guard allows(from, to, via: operation) else {
            throw LifecycleError.invalidTransition(entity: entity, id: id, current: from.rawValue, requested: to.rawValue)
        }
    }

    /// The machine as a Mermaid `stateDiagram-v2`, edges labelled with their operations.
    public var mermaid: String {
        var lines = ["stateDiagram-v2"]
        for edge in edges {
            lines.append("    \(edge.from.rawValue) --> \(edge.to.rawValue): \(edge.via.joined(separator: ", "))")
        }
        return lines.joined(separator: "\n")
    }
}

/// The three machines of the product (DESIGN.md §7).
public enum Lifecycle {
    /// The legacy `tasks.status` (`queued → running → completed | failed`, as legacy readers expect).
    public static let task = StateMachine<TaskStatus>(
        "Task",
        [
            (.pending, [.queued], ["enqueue", "set status"]),
            (.pending, [.cancelled], ["cancel"]),
            (.queued, [.running], ["claim", "set status"]),
            (.queued, [.cancelled], ["cancel"]),
            (.running, [.completed], ["complete", "set status"]),
            (.running, [.failed], ["complete", "fail", "rescue (attempts exhausted)", "set status"]),
            (.running, [.cancelled], ["complete (cancel requested)"]),
            (.running, [.queued], ["requeue", "rescue", "complete (retryable failure)"]),
            (.completed, [.queued], ["retry"]),
            (.failed, [.queued], ["retry"]),
            (.cancelled, [.queued], ["retry"]),
        ])

    /// A Run's status. `done`, `failed` and `canceled` are final: a retry is a new Run.
    public static let run = StateMachine<Status>(
        "Run",
        [
            (.planned, [.ready, .running, .blocked, .canceled], ["set status"]),
            (.ready, [.running, .blocked, .canceled], ["set status"]),
            (.blocked, [.planned, .ready, .canceled], ["set status"]),
            (.running, [.underReview], ["complete (manual review)", "set status"]),
            (.running, [.done], ["complete", "set status"]),
            (.running, [.failed], ["complete", "fail", "rescue", "set status"]),
            (.running, [.canceled], ["complete (cancel requested)", "requeue", "set status"]),
            (.underReview, [.done], ["review (approved)", "set status"]),
            (.underReview, [.failed], ["review (rejected, needs_changes)", "set status"]),
        ])

    /// An Issue's status: it follows the attempts of its task, and a retry reopens it.
    public static let issue = StateMachine<Status>(
        "Issue",
        [
            (.planned, [.ready, .blocked], ["set status"]),
            (.planned, [.running], ["claim", "set status"]),
            (.planned, [.canceled], ["cancel", "set status"]),
            (.ready, [.planned, .blocked], ["set status"]),
            (.ready, [.running], ["claim", "set status"]),
            (.ready, [.canceled], ["cancel", "set status"]),
            (.blocked, [.planned, .ready, .canceled], ["set status"]),
            (.running, [.underReview], ["complete (manual review)", "set status"]),
            (.running, [.done], ["complete", "set status"]),
            (.running, [.failed], ["complete", "fail", "rescue (attempts exhausted)", "set status"]),
            (.running, [.canceled], ["complete (cancel requested)", "set status"]),
            (.running, [.ready], ["requeue", "rescue", "complete (retryable failure)", "set status"]),
            (.underReview, [.done], ["review (approved)", "set status"]),
            (.underReview, [.failed], ["review (rejected, needs_changes)", "set status"]),
            (.done, [.ready], ["retry", "set status"]),
            (.failed, [.ready], ["retry", "set status"]),
            (.canceled, [.ready], ["retry", "set status"]),
        ])
}
