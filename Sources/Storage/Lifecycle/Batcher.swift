/// Group commit: many concurrent callers submit items; the batcher hands them to `flush` in
/// batches and gives each caller its own answer once its batch is done (committed).
///
/// No timer: when no flush is running, an item is flushed at once (an idle system adds no
/// latency); items that arrive while `maxInFlight` flushes run wait and leave together in the
/// next one, at most `maxBatch` at a time. Batches form exactly when the database is the
/// bottleneck (River's `BatchCompleter` and graphile-worker's completion batching, without their
/// fixed delay).
public actor Batcher<Item: Sendable, Output: Sendable> {
    public typealias Flush = @Sendable ([Item]) async -> [Result<Output, any Error>]

    private let maxBatch: Int
    private let maxInFlight: Int
    private let flush: Flush
    /// Where flushes start (see `init`).
    private let executor: (any TaskExecutor)?
    private var waiting: [(item: Item, answer: CheckedContinuation<Output, any Error>)] = []
    private var inFlight = 0

    /// `executor`: where a flush starts, the database's writer thread when it has one
    /// (`DatabaseDriver.writeExecutor`), so that a flush reaches its transaction without a
    /// thread hop in or out.
    public init(maxBatch: Int = 64, maxInFlight: Int = 1, executor: (any TaskExecutor)? = nil, flush: @escaping Flush) {
        self.maxBatch = max(1, maxBatch)
        self.maxInFlight = max(1, maxInFlight)
        self.executor = executor
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
        while inFlight < maxInFlight && !waiting.isEmpty {
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
