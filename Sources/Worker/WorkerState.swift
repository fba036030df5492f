import Foundation
import Storage

/// Why an attempt stopped before its executor finished.
public enum StopReason: Sendable, Equatable {
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
        /// The execution ended; its completion is being recorded.
        var recording = false
    }

    private var running: [String: Running] = [:]
    private(set) var shuttingDown = false
    private(set) var healthy = true
    /// Slots held by claims in flight.
    private(set) var reserved = 0

    /// Attempts this worker holds: executions running and ended ones whose completion has not
    /// committed yet. The heartbeat keeps the lease of every one.
    var runningCount: Int { running.count }
    /// Ended attempts whose completion has not committed yet.
    private var recording: Int { running.values.count(where: \.recording) }
    /// How many of those may wait for their commit without holding a slot (River's completer
    /// backlog): beyond it, a slot frees only at a commit, so a stalled database stops claims.
    let recordingBacklog: Int

    init(recordingBacklog: Int) { self.recordingBacklog = recordingBacklog }

    /// Slots in use: running executions, claims in flight, and ended attempts beyond the
    /// recording backlog.
    var busySlots: Int { running.count - recording + reserved + max(0, recording - recordingBacklog) }

    /// The attempt's execution ended and its completion is on its way to the database: its slot
    /// is free for the next claim while the backlog has room. True when a slot was freed.
    func ended(_ id: String) -> Bool {
        guard running[id] != nil, running[id]?.recording == false else { return false }
        running[id]?.recording = true
        return recording <= recordingBacklog
    }

    /// Set when the last claim found fewer tasks than slots: the loop then waits for a wake-up.
    var queueLooksEmpty = false
    func setQueueLooksEmpty(_ value: Bool) { queueLooksEmpty = value }

    /// Set when the last claim got every task it asked for: a backlog is likely, so the claim
    /// loop gathers free slots before claiming again.
    private(set) var lastClaimFilled = false
    func setLastClaimFilled(_ value: Bool) { lastClaimFilled = value }

    func reserve(_ slots: Int) { reserved += slots }
    func release(_ slots: Int) {
        reserved -= slots
        guard reserved == 0 else { return }
        for waiter in unreserved { waiter.resume() }
        unreserved = []
    }

    private var unreserved: [CheckedContinuation<Void, Never>] = []

    /// Returns once no claim is in flight (every reserved slot released). It waits on the
    /// release itself, not on a timer, and a cancelled caller waits too: a stopping worker must
    /// know every task its claims took before it drains (a poll here, under cancellation, spun
    /// without sleeping and kept an event loop from running the very claim it waited for).
    func claimsSettled() async {
        guard reserved > 0 else { return }
        await withCheckedContinuation { unreserved.append($0) }
    }
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

/// A wake-up signal: `fire` wakes every waiter, or the next `wait` if nobody waits.
actor Signal {
    private var pending = false
    /// How many times the signal has fired: lets a claim tell whether a wake-up came while it ran.
    private(set) var fired = 0
    private var waiters: [Int: CheckedContinuation<Void, Never>] = [:]
    private var next = 0

    func fire() {
        fired &+= 1
        if waiters.isEmpty {
            pending = true
            return
        }
        let all = waiters.values
        waiters = [:]
        for waiter in all { waiter.resume() }
    }

    private func timeout(_ id: Int) {
        waiters.removeValue(forKey: id)?.resume()
    }

    /// Returns when fired or after `seconds`.
    func wait(seconds: Double) async { await wait(for: .seconds(seconds)) }

    /// Returns when fired or after `duration`.
    func wait(for duration: Duration) async {
        if pending {
            pending = false
            return
        }
        next += 1
        let id = next
        // A timer on the event loop, not a sleeping task: the claim loop waits here every time its
        // slots are full.
        let timer = Timers.after(duration) { [weak self] in Task { await self?.timeout(id) } }
        await withCheckedContinuation { waiters[id] = $0 }
        timer.cancel()
    }
}
