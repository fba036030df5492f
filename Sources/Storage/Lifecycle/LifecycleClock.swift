import CWOM
import Synchronization

/// Where the engine reads the time. Production uses the system clock; tests set the time
/// instead of sleeping (a lease expires because the test moved the clock, not because it waited).
public protocol LifecycleClock: Sendable {
    func now() -> Timestamp
}

public struct SystemClock: LifecycleClock {
    public init() {}
    public func now() -> Timestamp { .now() }
}

/// A clock that stands still until a test moves it.
public final class ManualClock: LifecycleClock {
    private let current: Mutex<Timestamp>

    public init(_ start: Timestamp = .now()) { current = Mutex(start) }

    public func now() -> Timestamp { current.withLock { $0 } }

    public func set(_ time: Timestamp) { current.withLock { $0 = time } }

    public func advance(seconds: Double) { current.withLock { $0 = $0.adding(seconds: seconds) } }
}
