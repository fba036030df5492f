import Foundation
import Storage
import TowerTestSupport
import Synchronization
import Testing

/// Group commit without a timer: an idle batcher flushes at once, and what arrives while a flush
/// runs leaves together in the next one.
@Suite("Batcher")
struct BatcherTests {
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
        while await batcher.waitingCount < 5 { await Task.yield() }
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
        while await batcher.waitingCount < 4 { await Task.yield() }
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
