/// Why the lifecycle engine refused an operation. Each case says what a caller can do about it;
/// the API maps them to 404, 409, 422 and 400.
public enum LifecycleError: Error, Sendable, Equatable, CustomStringConvertible {
    /// No such task, Run or Issue.
    case notFound(entity: String, id: String)
    /// `current → requested` is not a transition of the entity's state machine (HTTP 409).
    case invalidTransition(entity: String, id: String, current: String, requested: String)
    /// A worker (or agent) is executing this Run or task: only a cancel may change it (HTTP 409).
    case ownedByWorker(entity: String, id: String, taskId: String, worker: String?)
    /// The request names objects that do not belong together, or do not exist (HTTP 400).
    case rejected(String)
    /// A new object names a `kind` object `id` that does not exist (HTTP 422).
    case missingReference(kind: String, id: String)
    /// A new object collides with one that exists: the message names the key (HTTP 409).
    case alreadyExists(String)

    public var description: String {
        switch self {
        case .notFound(let entity, let id): return "\(entity) '\(id)' not found"
        case .invalidTransition(let entity, let id, let current, let requested):
            return "\(entity) '\(id)' cannot go from \(current) to \(requested)"
        case .ownedByWorker(let entity, let id, let taskId, let worker):
            return "\(entity) '\(id)' is being executed by \(worker ?? "a worker") for task \(taskId): only cancelling it is allowed"
        case .rejected(let message): return message
        case .missingReference(let kind, let id): return "Referenced \(kind) '\(id)' does not exist"
        case .alreadyExists(let message): return message
        }
    }
}
