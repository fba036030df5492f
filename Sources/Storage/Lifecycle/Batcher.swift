/// Group commit: many concurrent callers submit items; the batcher hands them to `flush` in
/// batches and gives each caller its own answer once its batch is done (committed).
///
/// Items that arrive while `maxInFlight` flushes run wait and leave together in the next one, at
/// most `maxBatch` at a time: batches form when the database is the bottleneck. An item that
/// finds the batcher idle is flushed at once, unless `linger` is set: then it waits up to that
/// long for company (River's `BatchCompleter` collects for a few milliseconds too). Without it a
/// worker's claim of eight tasks, whose executions end within a millisecond of each other, was
/// completed as one transaction of the first and one of the other seven; the intake keeps no
/// linger (a request's answer waits on its commit, and a delay cost `POST /tasks/enqueue` more
/// than the bigger batches gained).
public actor Batcher<Item: Sendable, Output: Sendable> {
    public typealias Flush = @Sendable ([Item]) async -> [Result<Output, any Error>]

    private let maxBatch: Int
    private let maxInFlight: Int
    private let flush: Flush
    /// Where flushes start (see `init`).
    private let executor: (any TaskExecutor)?
    private var waiting: [(item: Item, answer: CheckedContinuation<Output, any Error>)] = []
    private var inFlight = 0
    private let linger: Duration
    private let sleep: @Sendable (Duration) async -> Void
    /// The linger under way, if any (a number, so that one that ended early is not ended twice).
    private var lingering: Int?
    private var lingers = 0

    /// `executor`: where a flush starts, the database's writer thread when it has one
    /// (`DatabaseDriver.writeExecutor`), so that a flush reaches its transaction without a
    /// thread hop in or out. `linger`: how long an item that finds the batcher idle waits for
    /// others (zero: not at all); it ends early when a batch is full. `sleep` waits out a linger
    /// (tests pass one they control).
    public init(maxBatch: Int = 64, maxInFlight: Int = 1, executor: (any TaskExecutor)? = nil, linger: Duration = .zero,
        sleep: @escaping @Sendable (Duration) async -> Void = { try? await Task.sleep(for: $0) }, flush: @escaping Flush)
    {
        self.maxBatch = max(1, maxBatch)
        self.maxInFlight = max(1, maxInFlight)
        self.executor = executor
        self.linger = linger
        self.sleep = sleep
        self.flush = flush
    }

    /// Items waiting for the next flush.
    public var waitingCount: Int { waiting.count }

    /// Submits one item and returns its answer once the batch that carried it is done.
    public func submit(_ item: Item) async throws -> Output {
        try await withCheckedThrowingContinuation { answer in
            waiting.append((item, answer))
            startFlushes()
        }
    }

    private func startFlushes() {
        if lingering != nil {
            guard waiting.count >= maxBatch else { return }
            lingering = nil
        } else if linger > .zero, inFlight == 0, waiting.count == 1 {
            lingers += 1
            let number = lingers
            lingering = number
            let (sleep, linger) = (self.sleep, self.linger)
            Task {
                await sleep(linger)
                self.lingered(number)  // the task runs on this actor
            }
            return
        }
        while inFlight < maxInFlight && !waiting.isEmpty { startOneFlush() }
    }

    private func startOneFlush() {
        let batch = Array(waiting.prefix(maxBatch))
        waiting.removeFirst(batch.count)
        inFlight += 1
        let flush = self.flush
        Task(executorPreference: executor) {
            let results = await flush(batch.map { $0.item })  // a closure: a generic key path is built per call
            for (index, entry) in batch.enumerated() {
                entry.answer.resume(with: index < results.count ? results[index] : .failure(BatcherError.missingAnswer))
            }
            await self.flushed()
        }
    }

    private func lingered(_ number: Int) {
        guard lingering == number else { return }
        lingering = nil
        // The lone item has waited: it leaves now with whatever joined it (`waiting.count` may
        // be 1 again, which must not start a second linger).
        while inFlight < maxInFlight && !waiting.isEmpty { startOneFlush() }
    }

    private func flushed() {
        inFlight -= 1
        startFlushes()
    }
}

enum BatcherError: Error, CustomStringConvertible {
    case missingAnswer
    var description: String { "a batch flush returned fewer answers than items" }
}
