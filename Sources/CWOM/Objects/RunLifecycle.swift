/// The one state machine of a Run's status.
///
/// ```
/// planned → ready → running → done | failed | canceled
///                   running → under_review → done | failed
/// planned, ready ⇄ blocked;  planned, ready, blocked → canceled
/// ```
/// `done`, `failed` and `canceled` are final: a retry is a new Run.
public enum RunLifecycle {
    public static func allowedTargets(from status: Status) -> Set<Status> {
        switch status {
        case .planned: return [.ready, .running, .blocked, .canceled]
        case .ready: return [.running, .blocked, .canceled]
        case .blocked: return [.planned, .ready, .canceled]
        case .running: return [.done, .failed, .canceled, .underReview]
        case .underReview: return [.done, .failed]
        case .done, .failed, .canceled: return []
        }
    }

    /// Whether a run may go from `old` to `new` (staying put is always allowed).
    public static func canTransition(from old: Status, to new: Status) -> Bool {
        old == new || allowedTargets(from: old).contains(new)
    }
}
