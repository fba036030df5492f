import Foundation
import NIOCore
import NIOPosix
import Storage
import Testing
import TowerTestSupport

/// Where code runs (`Sources/Storage/Runtime/Executors.swift`): timers on an event loop are the
/// loop's own scheduled tasks, and blocking work leaves the loop.
@Suite("Executors and timers")
struct RuntimeTests {
    /// `body` on the one loop of a group of its own, as a worker's code runs on NIO's loops.
    static func onLoop<T: Sendable>(_ body: @Sendable (any EventLoop) async throws -> T) async throws -> T {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let loop = group.next()
        do {
            let result = try await withTaskExecutorPreference(EventLoopTaskExecutor(loop)) { try await body(loop) }
            try await group.shutdownGracefully()
            return result
        } catch {
            try? await group.shutdownGracefully()
            throw error
        }
    }

    /// The first of the events `start` reports, or "deadline" after `seconds` (`withDeadline`): a
    /// test that waits for something which never comes fails instead of hanging.
    static func firstEvent(within seconds: Double, _ start: @Sendable (AsyncStream<String>.Continuation) -> Void) async throws -> String {
        let (events, report) = AsyncStream<String>.makeStream()
        start(report)
        return try await withDeadline(seconds: seconds) {
            for await event in events { return event }
            return nil
        } ?? "deadline"
    }

    @Test("a sleep on an event loop lasts its duration, on the loop")
    func sleepOnLoop() async throws {
        let (waited, stillOnLoop) = try await Self.onLoop { loop in
            let start = ContinuousClock.now
            try await Timers.sleep(for: .milliseconds(30))
            return (ContinuousClock.now - start, loop.inEventLoop)
        }
        #expect(waited >= .milliseconds(30))
        #expect(stillOnLoop)
    }

    @Test("a sleep ends with CancellationError as soon as its task is cancelled, on a loop or off it")
    func sleepCancelled() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        for executor in [EventLoopTaskExecutor(group.next()) as (any TaskExecutor)?, nil] {
            let outcome = try await Self.firstEvent(within: 30) { report in
                let sleeper = Task(executorPreference: executor) {
                    do {
                        try await Timers.sleep(for: .seconds(600))
                        report.yield("slept")
                    } catch is CancellationError {
                        report.yield("cancelled")
                    } catch {
                        report.yield("failed: \(error)")
                    }
                }
                sleeper.cancel()
            }
            #expect(outcome == "cancelled", "on \(executor == nil ? "the global executor" : "an event loop")")
        }
        try await group.shutdownGracefully()
    }

    /// The loop runs its timers in order of their deadlines, and off a loop the cancelled timer's
    /// task ends before its time: either way a cancelled timer that ran would be the first event.
    @Test("a timer runs its action, on the loop when set on one; a cancelled one never runs", arguments: [true, false])
    func timer(setOnLoop: Bool) async throws {
        let start: @Sendable (AsyncStream<String>.Continuation) -> Void = { report in
            let cancelled = Timers.after(.milliseconds(1)) { report.yield("the cancelled timer ran") }
            cancelled.cancel()
            _ = Timers.after(.milliseconds(20)) { report.yield(EventLoops.onLoop ? "ran on a loop" : "ran off the loops") }
        }
        let outcome =
            setOnLoop
            ? try await Self.onLoop { _ in try await Self.firstEvent(within: 30, start) } : try await Self.firstEvent(within: 30, start)
        #expect(outcome == (setOnLoop ? "ran on a loop" : "ran off the loops"))
    }

    /// In a process of its own (an exit test), since the hook takes over the process's global
    /// executor: with `EventLoops.runConcurrency`, as in `tower worker`, a task's hops to
    /// nonisolated code (a cancellation handler's scope, a step of an async iterator, which every
    /// PostgreSQL statement's rows take several of) continue in place. Were the hook's jobs run as
    /// the loop's serial executor (NIO's own `enqueue`), each of those hops would be one more job
    /// through the loop's queue: 200 steps here made more than 1,000.
    @Test("on the loops of `runConcurrency`, a task's hops to nonisolated code cost no job each")
    func hopsRunInPlace() async {
        await #expect(processExitsWith: .success) {
            guard EventLoops.runConcurrency(threads: 1) else { exit(2) }
            let before = EventLoops.jobsRun
            let (stream, continuation) = AsyncStream<Int>.makeStream()
            // Where the task ran is read inside it: after `.value` the body may go on where it
            // was (a task that has already ended answers without a hop), which is no loop.
            let (steps, onLoop) = await Task {
                var steps = 0
                for value in 0..<200 {
                    continuation.yield(value)
                    await withTaskCancellationHandler {
                        await RuntimeTests.step()
                    } onCancel: {}
                }
                continuation.finish()
                for await _ in stream { steps += 1 }
                return (steps, EventLoops.onLoop)
            }.value
            let jobs = EventLoops.jobsRun - before
            guard onLoop, steps == 200 else { exit(3) }
            exit(jobs < 50 ? 0 : 1)
        }
    }

    /// A nonisolated async function that is not inlined: entered by a hop to the generic executor.
    @inline(never)
    nonisolated static func step() async {}

    @Test("blocking work called from an event loop runs off it, and the caller comes back to the loop")
    func blockingLeavesTheLoop() async throws {
        let (inBlocking, backOnLoop) = try await Self.onLoop { loop in
            let inBlocking = await withTaskExecutorPreference(BlockingExecutor.shared) { EventLoops.onLoop }
            return (inBlocking, loop.inEventLoop)
        }
        #expect(!inBlocking)
        #expect(backOnLoop)
    }
}
