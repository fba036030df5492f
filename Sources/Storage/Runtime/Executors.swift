import CExecutorHook
import Dispatch
import NIOCore
import NIOPosix
import Synchronization

// Where a process's code runs, and the timers it waits on (docs/worker.md, "Where a worker's
// code runs").
//
// Every hand-off of work from one thread to another costs this VM a wake-up, a context switch
// and cold caches on both sides: a PostgreSQL statement sent from Swift's global pool crosses to
// NIO's event loop and its answer crosses back, and each `Task.sleep` wakes Dispatch's timer
// thread to arm it. A `tower worker` process therefore runs Swift concurrency on NIO's event
// loops (`EventLoops.runConcurrency`): a claim, its statements and their answers, the completer
// and the timers of a drain stay on one thread. What may block for long (files of any size, a
// child process, removing trace folders) must then never run there: it runs on
// `BlockingExecutor.shared`.

/// A task executor over a NIO event loop: a job enqueued from the loop's own thread joins its
/// queue without a wake-up; from elsewhere it wakes the loop, as any `execute` does.
public final class EventLoopTaskExecutor: TaskExecutor {
    public let loop: any EventLoop

    public init(_ loop: any EventLoop) { self.loop = loop }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        loop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}

/// Dispatch's global queue as a task executor, for work that may block: reading or writing files
/// of any size, waiting on a child process, removing folders. Dispatch adds threads when its
/// threads block, which an event loop cannot. Without `EventLoops.runConcurrency` this is where
/// Swift's global executor runs everything anyway; with it, this is where blocking work goes.
public final class BlockingExecutor: TaskExecutor {
    public static let shared = BlockingExecutor()

    private init() {}

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        DispatchQueue.global().async { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}

public enum EventLoops {
    /// Makes NIO's singleton event loop group, of `threads` loops, Swift concurrency's global
    /// executor for the rest of the process. Called once, first thing, by `tower worker`, `api`
    /// and `serve`, before anything uses NIO's loops; true when installed, false when the hook
    /// is taken already or this compiler's runtime is not one the hook's shape is known for
    /// (everything then runs on Dispatch, as without it).
    ///
    /// One loop by default (`TOWER_WORKER_THREADS`): a worker's own CPU per task is a fraction of
    /// a millisecond, so one thread serves thousands of tasks a second, and on a second loop its
    /// tasks and the answers they wait for would cross between two threads again (on SQLite the
    /// drain's CPU per task was 7–17 % higher with two; docs/benchmarks.md).
    ///
    /// Why not NIO's `NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()`,
    /// which does the same: it finds the runtime's hook with `dlsym`, and in the binary as
    /// shipped (`--static-swift-stdlib`, deploy/Dockerfile) the runtime's symbols are not
    /// exported, so it answered false and every process silently ran on Dispatch
    /// (docs/benchmarks.md, thirty-sixth session). `CExecutorHook` reaches the hook through the
    /// linker, statically or dynamically linked alike. The job goes to the loop the caller runs
    /// on, or to the next loop of the group, as with NIO's hook; unlike NIO's, it runs there on
    /// the generic executor (`cexecutorhook_run_generic`).
    @discardableResult
    public static func runConcurrency(threads: Int) -> Bool {
        NIOSingletons.groupLoopCountSuggestion = max(1, threads)
        // The runtime's hook type, `SWIFT_CC(swift) void (*)(Job *, swift_task_enqueueGlobal_original)`,
        // spelled as NIO spells it; known unchanged up to the compilers NIO names.
        #if compiler(<6.6)
        typealias EnqueueGlobalHook = @convention(thin) (UnownedJob, @convention(thin) (UnownedJob) -> Void) -> Void
        return withUnsafeTemporaryAllocation(of: EnqueueGlobalHook.self, capacity: 1) { buffer in
            guard let slot = buffer.baseAddress else { return false }
            slot.initialize(to: { job, _ in EventLoops.hand(job) })
            return slot.withMemoryRebound(to: UnsafeRawPointer.self, capacity: 1) { cexecutorhook_install($0.pointee) }
        }
        #else
        return false
        #endif
    }

    /// The hook's work: `job` goes to the loop the caller runs on, without a wake-up, or to the
    /// next loop of the group. It runs there as on Swift's own pool, on the generic executor: run
    /// as the loop's serial executor (NIO's `enqueue`), every hop of its task to the generic
    /// executor would enqueue the task once more (`cexecutorhook_run_generic`).
    private static func hand(_ job: UnownedJob) {
        jobCount.add(1, ordering: .relaxed)
        MultiThreadedEventLoopGroup.singleton.any().execute {
            cexecutorhook_run_generic(unsafeBitCast(job, to: UnsafeMutableRawPointer.self))
        }
    }

    /// The jobs Swift concurrency has handed to the loops since `runConcurrency` installed the
    /// hook: a test signal (`RuntimeTests`), one relaxed atomic add a job.
    public static var jobsRun: Int { jobCount.load(ordering: .relaxed) }
    private static let jobCount = Atomic<Int>(0)

    /// Whether the caller runs on an event loop (then it must not block).
    public static var onLoop: Bool { MultiThreadedEventLoopGroup.currentEventLoop != nil }
}

/// Timers that cost an event loop an entry in its timer heap, where `Task.sleep` costs a wake-up
/// of Dispatch's timer thread per call. On an event loop they are the loop's scheduled tasks;
/// anywhere else, `Task.sleep`.
public enum Timers {
    /// `2` for 2.0, `0.5` for 0.5: seconds as a person writes them, for messages.
    public static func secondsText(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int(value)) : String(value)
    }

    /// A duration in seconds, fractions included.
    public static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }

    /// Returns after `duration`, or throws `CancellationError` as soon as the task is cancelled.
    public static func sleep(for duration: Duration) async throws {
        guard let loop = MultiThreadedEventLoopGroup.currentEventLoop else {
            try await Task.sleep(for: duration)
            return
        }
        let scheduled = loop.scheduleTask(in: TimeAmount(duration)) {}
        try await withTaskCancellationHandler {
            do {
                try await scheduled.futureResult.get()
            } catch {
                throw CancellationError()  // the only way the scheduled task fails
            }
        } onCancel: {
            scheduled.cancel()
        }
    }

    /// Runs `action` after `duration` unless the handle is cancelled first. No task waits
    /// meanwhile: `action` runs on the loop (keep it short: start a task for anything more).
    public static func after(_ duration: Duration, _ action: @escaping @Sendable () -> Void) -> TimerHandle {
        if let loop = MultiThreadedEventLoopGroup.currentEventLoop {
            let scheduled = loop.scheduleTask(in: TimeAmount(duration), action)
            return TimerHandle { scheduled.cancel() }
        }
        let task = Task {
            do { try await Task.sleep(for: duration) } catch { return }
            action()
        }
        return TimerHandle { task.cancel() }
    }
}

/// A timer of `Timers.after`; cancelling one that ran already does nothing.
public struct TimerHandle: Sendable {
    private let cancelAction: @Sendable () -> Void
    init(_ cancel: @escaping @Sendable () -> Void) { cancelAction = cancel }
    public func cancel() { cancelAction() }
}

extension TimeAmount {
    /// A Swift `Duration` in NIO's nanoseconds: negative is zero, beyond about 292 years is
    /// 292 years.
    init(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        let nanoseconds = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        guard !nanoseconds.overflow else {
            self = .nanoseconds(seconds < 0 ? 0 : .max)
            return
        }
        let total = nanoseconds.partialValue.addingReportingOverflow(attoseconds / 1_000_000_000)
        self = .nanoseconds(total.overflow ? .max : max(0, total.partialValue))
    }
}
