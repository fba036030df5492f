import Synchronization

/// Group commit: many concurrent callers submit items; the batcher hands them to `flush` in
/// batches and gives each caller its own answer once its batch is done (committed).
///
/// Items that arrive while a flush runs wait and leave together in the next one, at most
/// `maxBatch` at a time: batches form when the database is the bottleneck. One flush at a time,
/// on PostgreSQL too: there two in flight halved every batch under `wrk -c 4` (two enqueues a
/// transaction instead of four), and the statements and wake-ups that cost on the shared cores
/// outweighed the overlap (docs/benchmarks.md, 2026-12-08). An item that
/// finds the batcher idle is flushed at once, unless `linger` is set: then it waits up to that
/// long for company (River's `BatchCompleter` collects for a few milliseconds too). Without it a
/// worker's claim of eight tasks, whose executions end within a millisecond of each other, was
/// completed as one transaction of the first and one of the other seven; the intake keeps no
/// linger (a request's answer waits on its commit, and a delay cost `POST /tasks/enqueue` more
/// than the bigger batches gained).
///
/// A flush that ends takes the batch waiting by then itself, on the thread it ran on (SQLite's
/// writer): the batcher's state is behind a lock rather than in an actor, so that neither a
/// submit nor the step from one batch to the next waits for a thread of Swift's global pool.
/// Under `wrk` both of that pool's threads are busy parsing requests, and an actor hop between
/// two batches left the writer idle until one of them was free.
public final class Batcher<Item: Sendable, Output: Sendable>: Sendable {
    public typealias Flush = @Sendable ([Item]) async -> [Result<Output, any Error>]
    /// An item and its caller's continuation. Unchecked: `run` resumes each exactly once (with
    /// its result, or `missingAnswer`), and a checked continuation's bookkeeping was 2 % of
    /// SQLite's writer thread under `wrk`, which resumes every caller of a batch.
    private typealias Entry = (item: Item, answer: UnsafeContinuation<Output, any Error>)

    private struct State {
        var waiting: [Entry] = []
        var flushing = false
        /// The linger under way, if any (a number, so that one that ended early is not ended twice).
        var lingering: Int?
        var lingers = 0
    }

    /// What to start once the lock is let go.
    private enum Start {
        case nothing
        case batch([Entry])
        case linger(Int)
    }

    private let maxBatch: Int
    private let flush: Flush
    /// Where flushes start (see `init`).
    private let executor: (any TaskExecutor)?
    private let linger: Duration
    private let sleep: @Sendable (Duration) async -> Void
    private let state = Mutex(State())

    /// `executor`: where a flush starts, the database's writer thread when it has one
    /// (`DatabaseDriver.writeExecutor`), so that a flush reaches its transaction without a
    /// thread hop in or out. `linger`: how long an item that finds the batcher idle waits for
    /// others (zero: not at all); it ends early when a batch is full. `sleep` waits out a linger
    /// (tests pass one they control).
    public init(maxBatch: Int = 64, executor: (any TaskExecutor)? = nil, linger: Duration = .zero,
        sleep: @escaping @Sendable (Duration) async -> Void = { try? await Timers.sleep(for: $0) }, flush: @escaping Flush)
    {
        self.maxBatch = max(1, maxBatch)
        self.executor = executor
        self.linger = linger
        self.sleep = sleep
        self.flush = flush
    }

    /// Items waiting for the next flush.
    public var waitingCount: Int { state.withLock { $0.waiting.count } }

    /// Submits one item and returns its answer once the batch that carried it is done.
    public func submit(_ item: Item) async throws -> Output {
        try await withUnsafeThrowingContinuation { answer in
            let start = state.withLock { state in
                state.waiting.append((item, answer))
                return next(&state)
            }
            launch(start)
        }
    }

    /// What may start now, taken out of `state`: a linger for a lone item that finds the batcher
    /// idle, or a batch when no flush runs (none while a linger gathers a batch that is not full
    /// yet).
    private func next(_ state: inout State) -> Start {
        if state.lingering != nil {
            guard state.waiting.count >= maxBatch else { return .nothing }
            state.lingering = nil
        } else if linger > .zero, !state.flushing, state.waiting.count == 1 {
            state.lingers += 1
            state.lingering = state.lingers
            return .linger(state.lingers)
        }
        return takeBatch(&state)
    }

    /// The next batch out of `waiting`, when no flush runs.
    private func takeBatch(_ state: inout State) -> Start {
        guard !state.flushing, !state.waiting.isEmpty else { return .nothing }
        let batch = Array(state.waiting.prefix(maxBatch))
        state.waiting.removeFirst(batch.count)
        state.flushing = true
        return .batch(batch)
    }

    private func launch(_ start: Start) {
        switch start {
        case .linger(let number):
            let (sleep, linger) = (self.sleep, self.linger)
            Task {
                await sleep(linger)
                self.lingered(number)
            }
        case .batch(let batch):
            let handOff = HandOff(batch)
            Task(executorPreference: executor) { await self.run(handOff.take()) }
        case .nothing:
            break
        }
    }

    /// A batch on its way to the task that flushes it, which takes it out. Captured directly,
    /// the batch stayed referenced by the task's closure until the task ended, after every batch
    /// that task went on to flush: the items of the first were freed then, on SQLite's writer
    /// (a tenth of its instructions under `wrk`), instead of by their callers.
    private final class HandOff: Sendable {
        private let batch: Mutex<[Entry]>
        init(_ batch: [Entry]) { self.batch = Mutex(batch) }
        func take() -> [Entry] {
            batch.withLock { batch in
                var taken: [Entry] = []
                swap(&batch, &taken)
                return taken
            }
        }
    }

    /// Flushes `batch` and answers its callers; then, on the same thread, the next batch waiting
    /// by then, until none is.
    private func run(_ first: consuming [Entry]) async {
        var batch = first
        while true {
            var results = await flush(batch.map { $0.item })  // a closure: a generic key path is built per call
            // The batch lets go of its items and answers before their callers resume: a caller
            // that answers its request on another thread before this one moves on would
            // otherwise leave the last reference to its item (an enqueue's rows and objects),
            // or to its answer, here, and SQLite's writer would free them while every other
            // write waits (docs/benchmarks.md, fifty-first session).
            let answers = batch.map { $0.answer }
            batch = []
            if results.count > answers.count { results.removeLast(results.count - answers.count) }
            results.reverse()
            for answer in answers {
                answer.resume(with: results.popLast() ?? .failure(BatcherError.missingAnswer))
            }
            let start = state.withLock { state in
                state.flushing = false
                return next(&state)
            }
            guard case .batch(let following) = start else {
                launch(start)
                return
            }
            batch = following
        }
    }

    private func lingered(_ number: Int) {
        let start = state.withLock { state -> Start in
            guard state.lingering == number else { return .nothing }
            state.lingering = nil
            // The lone item has waited: it leaves now with whatever joined it (`waiting.count`
            // may be 1 again, which must not start a second linger).
            return takeBatch(&state)
        }
        launch(start)
    }
}

enum BatcherError: Error, CustomStringConvertible {
    case missingAnswer
    var description: String { "a batch flush returned fewer answers than items" }
}
