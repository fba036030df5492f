import CWOM
import Logging
import PostgresNIO
import Synchronization

/// The driver's PostgreSQL connections: opened when a transaction needs one and none is idle, up
/// to `pool_size`, and handed out one transaction at a time (pgx's pool, under River, works so).
///
/// Why not PostgresNIO's `PostgresClient`: while the server is down its pool keeps a lease waiting
/// and retries connecting in the background with a backoff that grows to a minute, and only fails
/// the waiting leases after a minute without a connection. Seen with `tower serve` and a stopped
/// server: the first requests (and `/healthz`) answered after 67 s, and after the server came back
/// the API kept answering 503 for another 35 s, until the backoff's next attempt. Here a
/// transaction that finds no idle connection opens one itself: while the server is down that
/// fails at once (or within the connect timeout, 10 s, for a host that does not answer) and the
/// caller gets `unreachable` (a 503 from the API); the first transaction after the server is back
/// connects. A transaction that finds every connection in use waits at most `acquire_timeout`
/// for one, then fails as `unreachable` too.
///
/// A connection the server closes (a restart, `pg_terminate_backend`, `idle_session_timeout`) is
/// dropped when it closes if idle, or when its transaction ends if in use; its place goes to the
/// next transaction. A connection idle for more than a minute is closed when the pool next looks
/// for one, and a new one opened instead (PostgresNIO's pool closed them after a minute too): a
/// firewall or NAT on the way may have dropped it silently meanwhile, and its next query would
/// then wait out `query_timeout`; the server keeps a backend for each.
final class PostgresPool: Sendable {
    /// What a waiting transaction is handed: a connection, or a place to open one in (a
    /// connection closed and freed it).
    fileprivate enum Handout: Sendable {
        case connection(PostgresConnection)
        case open
    }

    fileprivate struct Waiter {
        let id: Int
        let continuation: CheckedContinuation<Handout, any Error>
        var deadline: Int?
    }

    fileprivate struct Idle {
        let connection: PostgresConnection
        let since: Timestamp
    }

    fileprivate struct State {
        /// Newest last: a transaction takes the connection used last, whose backend is warm.
        var idle: [Idle] = []
        /// Connections open or being opened (idle, in use, or promised to a waiter).
        var places = 0
        var waiters: [Waiter] = []
        var nextId = 0
        var closed = false
    }

    let settings: PostgresSettings
    private let logger: Logger
    private let watchdog: QueryWatchdog
    private let state = Mutex(State())
    /// Failed connection attempts in a row: an outage, logged as it starts, once a minute while
    /// it lasts and once when a connection succeeds again (`RepeatingFailure`).
    private let connecting = Mutex(RepeatingFailure())

    /// `first`: an open connection to start with (the driver's check of the server at start).
    init(settings: PostgresSettings, watchdog: QueryWatchdog, logger: Logger, first: PostgresConnection?) {
        self.settings = settings
        self.watchdog = watchdog
        self.logger = logger
        if let first {
            state.withLock { state in
                state.idle.append(Idle(connection: first, since: settings.clock.now()))
                state.places = 1
                state.nextId = first.id + 1
            }
            watchClose(first)
        }
    }

    /// Runs `body` with a connection of its own, then returns the connection to the pool.
    func withConnection<T>(_ body: (PostgresConnection) async throws -> T) async throws -> T {
        let connection = try await acquire()
        do {
            let value = try await body(connection)
            release(connection)
            return value
        } catch {
            release(connection)
            throw error
        }
    }

    private enum Step {
        case use(PostgresConnection)
        case open(id: Int)
        case wait
        case closed
    }

    /// Microseconds a connection may stay idle in the pool (see the type's comment).
    static let maximumIdle: Int64 = 60_000_000

    func acquire() async throws -> PostgresConnection {
        let now = settings.clock.now()
        let (step, stale) = state.withLock { state -> (Step, [PostgresConnection]) in
            guard !state.closed else { return (.closed, []) }
            var stale: [PostgresConnection] = []
            while let entry = state.idle.popLast() {
                if now.microseconds - entry.since.microseconds > Self.maximumIdle {
                    // This one and all below it, idle longer still, go.
                    stale += [entry.connection] + state.idle.map(\.connection)
                    state.places -= 1 + state.idle.count
                    state.idle = []
                    break
                }
                // Closed since it went idle, before its close was seen (`watchClose`).
                guard entry.connection.isClosed else { return (.use(entry.connection), stale) }
                stale.append(entry.connection)
                state.places -= 1
            }
            if state.places < settings.maximumConnections {
                state.places += 1
                state.nextId += 1
                return (.open(id: state.nextId - 1), stale)
            }
            return (.wait, stale)
        }
        for connection in stale { close(connection) }
        switch step {
        case .use(let connection):
            return connection
        case .open(let id):
            return try await open(id: id)
        case .closed:
            throw Self.closedError
        case .wait:
            switch try await waitForHandout() {
            case .connection(let connection):
                return connection
            case .open:
                return try await open(id: state.withLock { state in
                    state.nextId += 1
                    return state.nextId - 1
                })
            }
        }
    }

    /// Gives `connection` to the first waiting transaction, or keeps it idle; a closed one frees
    /// its place instead.
    func release(_ connection: PostgresConnection) {
        let closed = connection.isClosed
        let now = settings.clock.now()
        let (waiter, handout, closeIt) = state.withLock { state -> (Waiter?, Handout?, Bool) in
            if state.closed {
                state.places -= 1
                return (nil, nil, true)
            }
            if closed {
                state.places -= 1
                return (state.handOutPlace(maximum: settings.maximumConnections), .open, false)
            }
            guard !state.waiters.isEmpty else {
                state.idle.append(Idle(connection: connection, since: now))
                return (nil, nil, false)
            }
            return (state.waiters.removeFirst(), .connection(connection), false)
        }
        if closeIt { close(connection) }
        if let waiter, let handout { resume(waiter, with: handout) }
    }

    /// Ends the pool: waiting transactions fail, idle connections close now and those in use when
    /// their transactions end.
    func close() async {
        let (idle, waiters) = state.withLock { state -> ([PostgresConnection], [Waiter]) in
            state.closed = true
            defer { state.idle = []; state.waiters = [] }
            state.places -= state.idle.count
            return (state.idle.map(\.connection), state.waiters)
        }
        for waiter in waiters {
            if let deadline = waiter.deadline { watchdog.finish(deadline) }
            waiter.continuation.resume(throwing: Self.closedError)
        }
        for connection in idle { try? await connection.close() }
    }

    /// Connections open or being opened now (a test signal).
    var openConnections: Int { state.withLock { $0.places } }

    private static var closedError: StorageError { StorageError(.unreachable, "the PostgreSQL connection pool is closed") }

    private func open(id: Int) async throws -> PostgresConnection {
        do {
            let connection = try await settings.connect(id: id, logger: logger)
            if case .ended(let failures, let seconds)? = connecting.withLock({ $0.succeeded() }) {
                logger.notice(
                    "PostgreSQL reachable again",
                    metadata: ["failed_connections": "\(failures)", "after_seconds": "\(Timers.secondsText((seconds * 10).rounded() / 10))"])
            }
            watchClose(connection)
            return connection
        } catch {
            switch connecting.withLock({ $0.failed() }) {
            case .started:
                logger.error("cannot connect to PostgreSQL", metadata: ["error": "\(error)"])
            case .repeated(let failures):
                logger.debug("cannot connect to PostgreSQL", metadata: ["error": "\(error)", "failed_connections": "\(failures)"])
            case .ongoing(let failures, let seconds):
                logger.error(
                    "PostgreSQL still unreachable",
                    metadata: ["error": "\(error)", "failed_connections": "\(failures)", "for_seconds": "\(Int(seconds))"])
            case .ended:
                break
            }
            // The place goes back: to a waiter, who tries in turn (the server may be back by then;
            // if it is not, the waiter fails as fast as this did), or to the next transaction.
            let waiter = state.withLock { state -> Waiter? in
                state.places -= 1
                return state.closed ? nil : state.handOutPlace(maximum: settings.maximumConnections)
            }
            if let waiter { resume(waiter, with: .open) }
            throw error
        }
    }

    /// An idle connection that closes (the server restarted or ended it) leaves the pool then.
    private func watchClose(_ connection: PostgresConnection) {
        connection.closeFuture.whenComplete { [weak self] _ in
            self?.watchdog.connectionClosed(connection.id)
            self?.closed(connection)
        }
    }

    private func closed(_ connection: PostgresConnection) {
        let waiter = state.withLock { state -> Waiter? in
            guard let index = state.idle.firstIndex(where: { $0.connection === connection }) else { return nil }
            state.idle.remove(at: index)
            state.places -= 1
            return state.closed ? nil : state.handOutPlace(maximum: settings.maximumConnections)
        }
        if let waiter { resume(waiter, with: .open) }
    }

    private func close(_ connection: PostgresConnection) {
        let closing: EventLoopFuture<Void> = connection.close()
        closing.whenComplete { _ in }
    }

    private func resume(_ waiter: Waiter, with handout: Handout) {
        if let deadline = waiter.deadline { watchdog.finish(deadline) }
        waiter.continuation.resume(returning: handout)
    }

    /// Waits for a connection or a place, at most `acquireTimeout`, or until the task is cancelled.
    private func waitForHandout() async throws -> Handout {
        let id = state.withLock { state in
            state.nextId += 1
            return state.nextId - 1
        }
        let wait = settings.acquireTimeout
        let (server, pool) = (settings.description, settings.maximumConnections)
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Handout, any Error>) in
                let registered = state.withLock { state -> Bool in
                    guard !state.closed, !Task.isCancelled else { return false }
                    state.waiters.append(Waiter(id: id, continuation: continuation, deadline: nil))
                    return true
                }
                guard registered else {
                    continuation.resume(throwing: Task.isCancelled ? CancellationError() : Self.closedError)
                    return
                }
                let deadline = watchdog.register(after: wait) { [weak self] _ in
                    guard let waiter = self?.removeWaiter(id) else { return }
                    waiter.continuation.resume(
                        throwing: StorageError(
                            .unreachable,
                            "no connection to PostgreSQL at \(server) within \(Timers.secondsText(wait)) s: all \(pool) of the pool (pool_size) are in use"))
                }
                // The waiter may be served (or cancelled) before its deadline is written down:
                // the deadline then ends by itself, since it finds no waiter.
                let served = state.withLock { state -> Bool in
                    guard let index = state.waiters.firstIndex(where: { $0.id == id }) else { return true }
                    state.waiters[index].deadline = deadline
                    return false
                }
                if served { watchdog.finish(deadline) }
            }
        } onCancel: {
            removeWaiter(id)?.continuation.resume(throwing: CancellationError())
        }
    }

    private func removeWaiter(_ id: Int) -> Waiter? {
        state.withLock { state in
            guard let index = state.waiters.firstIndex(where: { $0.id == id }) else { return nil }
            return state.waiters.remove(at: index)
        }
    }
}

extension PostgresPool.State {
    /// A freed place, for the first waiter (who opens a connection in it), if any waits.
    fileprivate mutating func handOutPlace(maximum: Int) -> PostgresPool.Waiter? {
        guard !waiters.isEmpty, places < maximum else { return nil }
        places += 1
        return waiters.removeFirst()
    }
}

