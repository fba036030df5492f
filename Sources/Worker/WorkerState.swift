import Foundation

/// Why a running execution was stopped.
enum StopReason: Sendable, Equatable {
    case timedOut
    case cancelRequested
    case shutdown
    case leaseLost
}

/// The executions a worker is running, and a wake-up signal for its claim loop.
actor WorkerState {
    struct Running {
        var stop: (@Sendable () -> Void)?
        var reason: StopReason?
    }

    private var running: [String: Running] = [:]
    private(set) var shuttingDown = false
    private(set) var healthy = true

    var runningCount: Int { running.count }
    var runningIds: [String] { Array(running.keys) }

    func add(_ id: String) { running[id] = Running() }

    func attach(_ id: String, stop: @escaping @Sendable () -> Void) {
        running[id]?.stop = stop
        if running[id]?.reason != nil { stop() }
    }

    func remove(_ id: String) { running[id] = nil }

    /// Stops an execution; the first reason wins.
    func stop(_ id: String, _ reason: StopReason) {
        guard running[id] != nil, running[id]?.reason == nil else { return }
        running[id]?.reason = reason
        running[id]?.stop?()
    }

    func reason(_ id: String) -> StopReason? { running[id]?.reason }

    func beginShutdown() { shuttingDown = true }

    func setHealthy(_ value: Bool) { healthy = value }
}

/// A wake-up signal: `fire` wakes one waiter, or the next `wait` if nobody waits.
actor Signal {
    private var pending = false
    private var waiter: CheckedContinuation<Void, Never>?

    func fire() {
        if let waiter {
            self.waiter = nil
            waiter.resume()
        } else {
            pending = true
        }
    }

    /// Returns when fired or after `seconds`.
    func wait(seconds: Double) async {
        if pending {
            pending = false
            return
        }
        let timer = Task { [weak self] in
            try? await Task.sleep(for: .seconds(seconds))
            if !Task.isCancelled { await self?.fire() }
        }
        await withCheckedContinuation { waiter = $0 }
        timer.cancel()
        pending = false
    }
}
