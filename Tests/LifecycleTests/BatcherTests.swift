import Foundation
import Storage
import TowerTestSupport
import Synchronization
import Testing

/// Group commit: an idle batcher flushes at once (or after its linger), and what arrives while a
/// flush runs leaves together in the next one.
@Suite("Batcher")
struct BatcherTests {
    /// A linger that ends when the test says so: `started` yields when an item begins to wait,
    /// `end()` ends the wait.
    final class ControlledLinger: Sendable {
        let (started, startedSignal) = AsyncStream<Duration>.makeStream()
        private let sleepers = Mutex<[CheckedContinuation<Void, Never>]>([])

        var sleep: @Sendable (Duration) async -> Void {
            { duration in
                await withCheckedContinuation { sleeper in
                    self.sleepers.withLock { $0.append(sleeper) }
                    self.startedSignal.yield(duration)
                }
            }
        }

        /// Ends the oldest linger still waiting.
        func end() { sleepers.withLock { $0.isEmpty ? nil : $0.removeFirst() }?.resume() }
    }

    /// The next value of `stream`, or nil after `seconds`: a wait that a broken batcher cannot hang.
    static func next<T: Sendable>(_ stream: AsyncStream<T>, seconds: Double = 10) async throws -> T? {
        try await withDeadline(seconds: seconds) {
            for await value in stream { return value }
            return nil
        }
    }

    /// A batcher with a linger the test ends, whose flushes are reported on `flushes` and answer
    /// each item with ten times its value.
    static func lingering(maxBatch: Int, linger duration: Duration) -> (Batcher<Int, Int>, ControlledLinger, flushes: AsyncStream<[Int]>) {
        let linger = ControlledLinger()
        let (flushes, flushed) = AsyncStream<[Int]>.makeStream()
        let batcher = Batcher<Int, Int>(maxBatch: maxBatch, linger: duration, sleep: linger.sleep) { items in
            flushed.yield(items)
            return items.map { .success($0 * 10) }
        }
        return (batcher, linger, flushes)
    }

    @Test("with a linger, an item that finds the batcher idle waits for others and leaves with them")
    func lingerGathers() async throws {
        let (batcher, linger, flushes) = Self.lingering(maxBatch: 10, linger: .milliseconds(1))
        let first = Task { try await batcher.submit(0) }
        #expect(try #require(await Self.next(linger.started)) == .milliseconds(1), "the lone item lingers")
        let others = (1...3).map { n in Task { try await batcher.submit(n) } }
        while batcher.waitingCount < 4 { await Task.yield() }
        linger.end()
        #expect(try Set(#require(await Self.next(flushes))) == [0, 1, 2, 3], "one flush for all four, after the linger")
        #expect(try await first.value == 0)
        for (n, task) in others.enumerated() { #expect(try await task.value == (n + 1) * 10) }

        // A lone item after that lingers again, and leaves alone when nothing joins it.
        let alone = Task { try await batcher.submit(9) }
        _ = try #require(await Self.next(linger.started))
        linger.end()
        #expect(try #require(await Self.next(flushes)) == [9])
        #expect(try await alone.value == 90)
    }

    @Test("a linger ends early when a full batch is waiting")
    func lingerEndsWhenFull() async throws {
        let (batcher, linger, flushes) = Self.lingering(maxBatch: 3, linger: .seconds(3600))
        let first = Task { try await batcher.submit(0) }
        _ = try #require(await Self.next(linger.started))
        let others = (1...2).map { n in Task { try await batcher.submit(n) } }
        #expect(try #require(await Self.next(flushes), "flushed without the linger's end").count == 3)
        _ = try await first.value
        for task in others { _ = try await task.value }
        linger.end()  // that linger's own end, later, flushes nothing
        let next = Task { try await batcher.submit(7) }
        _ = try #require(await Self.next(linger.started), "the next lone item lingers anew")
        linger.end()
        #expect(try #require(await Self.next(flushes)) == [7])
        #expect(try await next.value == 70)
    }

    @Test("an item alone is flushed at once; items submitted during a flush leave together in the next one")
    func naturalBatching() async throws {
        let sizes = Mutex<[Int]>([])
        let (started, startedSignal) = AsyncStream<Void>.makeStream()
        let (gate, openGate) = AsyncStream<Void>.makeStream()
        let batcher = Batcher<Int, Int>(maxBatch: 10) { items in
            sizes.withLock { $0.append(items.count) }
            if items == [0] {
                startedSignal.yield()
                for await _ in gate { break }  // the first flush holds until the test opens the gate
            }
            return items.map { .success($0 * 10) }
        }
        let first = Task { try await batcher.submit(0) }
        for await _ in started { break }
        let others = (1...5).map { n in Task { try await batcher.submit(n) } }
        while batcher.waitingCount < 5 { await Task.yield() }
        openGate.yield()
        #expect(try await first.value == 0)
        var answers: [Int] = []
        for task in others { answers.append(try await task.value) }
        #expect(answers == [10, 20, 30, 40, 50], "each caller gets its own answer")
        #expect(sizes.withLock { $0 } == [1, 5])
    }

    @Test("a batch never exceeds maxBatch, and a flush's failure reaches every caller of that batch")
    func limitsAndFailures() async throws {
        struct Boom: Error {}
        let sizes = Mutex<[Int]>([])
        let (gate, openGate) = AsyncStream<Void>.makeStream()
        let (started, startedSignal) = AsyncStream<Void>.makeStream()
        let batcher = Batcher<Int, Int>(maxBatch: 2) { items in
            sizes.withLock { $0.append(items.count) }
            if items == [0] {
                startedSignal.yield()
                for await _ in gate { break }
            }
            return items.map { $0 == 3 ? .failure(Boom()) : .success($0) }
        }
        let first = Task { try await batcher.submit(0) }
        for await _ in started { break }
        let others = (1...4).map { n in Task { try await batcher.submit(n) } }
        while batcher.waitingCount < 4 { await Task.yield() }
        openGate.yield()
        _ = try await first.value
        var results: [Int: Bool] = [:]
        for (index, task) in others.enumerated() {
            do { _ = try await task.value; results[index + 1] = true } catch { results[index + 1] = false }
        }
        #expect(results == [1: true, 2: true, 3: false, 4: true])
        #expect(sizes.withLock { $0 } == [1, 2, 2])
    }
}

extension BatcherTests {
    /// The values of the `Tracked` items freed so far.
    final class Freed: Sendable {
        private let values = Mutex<Set<Int>>([])
        func record(_ value: Int) { values.withLock { _ = $0.insert(value) } }
        var all: Set<Int> { values.withLock { $0 } }
    }

    /// An item that records when it is freed.
    final class Tracked: Sendable {
        let value: Int
        private let freed: Freed
        init(_ value: Int, _ freed: Freed) {
            self.value = value
            self.freed = freed
        }
        deinit { freed.record(value) }
    }

    @Test("once its caller has its answer, the batcher keeps no reference to the item, also while it goes on flushing later batches")
    func itemsLetGoBeforeAnswers() async throws {
        let gates = AsyncStream<Void>.makeStream()
        let (started, startedSignal) = AsyncStream<[Int]>.makeStream()
        let freed = Freed()
        let batcher = Batcher<Tracked, Int>(maxBatch: 10) { items in
            startedSignal.yield(items.map(\.value))
            for await _ in gates.stream { break }  // each flush holds until the test lets it end
            return items.map { .success($0.value * 10) }
        }
        // The first batch: one item, whose flush holds.
        let first = Task { try await batcher.submit(Tracked(1, freed)) }
        #expect(try #require(await Self.next(started)) == [1])
        // The second batch waits meanwhile, and is flushed by the same run, after the first.
        let second = Task { try await batcher.submit(Tracked(2, freed)) }
        while batcher.waitingCount < 1 { await Task.yield() }
        gates.continuation.yield()
        #expect(try await first.value == 10)
        #expect(try #require(await Self.next(started)) == [2], "the second flush holds now")
        // The first caller has let go of its item: nothing else may hold it while the second
        // batch is being flushed (the flush that ended freed its items with its callers).
        #expect(freed.all == [1], "the first item is freed while the batcher is still busy")
        gates.continuation.yield()
        #expect(try await second.value == 20)
        #expect(freed.all == [1, 2])
    }
}

@Suite("Batcher on a database")
struct BatcherExecutorTests {
    @Test("on SQLite, flushes given the writer's executor run on the thread of its transactions, so that they reach them without a hop; without it, elsewhere")
    func flushesOnTheWriterThread() async throws {
        try await withDatabase(.sqlite) { database, _ in
            let writer = try await database.driver.write { _ in pthread_self() }
            let executor = try #require(database.driver.writeExecutor)
            let onWriter = Batcher<Int, pthread_t>(executor: executor) { items in items.map { _ in .success(pthread_self()) } }
            let elsewhere = Batcher<Int, pthread_t> { items in items.map { _ in .success(pthread_self()) } }
            #expect(try await onWriter.submit(1) == writer)
            #expect(try await elsewhere.submit(1) != writer)
        }
        try await withDatabase(.postgres) { database, _ in
            #expect(database.driver.writeExecutor == nil, "PostgreSQL's transactions run on any thread")
        }
    }
}
