import Foundation
import Synchronization

/// The one thread that uses a SQLite connection, and a task executor on it.
///
/// SQLite is a library call, so each statement has to run on some thread that may block. A
/// thread pool hop per statement (SQLiteNIO's model) costs two context switches and a wake-up
/// per statement, and a transaction of a dozen statements pays them a dozen times (item 4 of
/// issue 13). Here a transaction runs its whole body with this thread as its task executor
/// preference (`withTaskExecutorPreference`, SE-0417): the engine's nonisolated async code, and
/// default actors it calls, run on this thread, so a statement finds itself already on the
/// connection's thread and runs inline. One hop in at `BEGIN`, one out after `COMMIT`.
///
/// Code that reaches a statement from elsewhere (another executor) still works: `perform` then
/// sends the work here and waits for it, as before.
final class SQLiteThread: TaskExecutor, @unchecked Sendable {
    // `condition` guards `jobs`, `stopping` and `threadID`.
    private let condition = NSCondition()
    private var jobs: [() -> Void] = []
    private var stopping = false
    private var threadID: pthread_t?
    private var finished = false
    private let hops = Atomic<Int>(0)

    /// Statements (and other work) that had to be sent to this thread because they were asked
    /// for elsewhere: zero for a transaction whose body stays on its connection's executor.
    var statementHops: Int { hops.load(ordering: .relaxed) }

    /// `name`: what `top -H` and `/proc/<pid>/task/*/comm` show (Linux keeps 15 bytes). Set by
    /// the thread itself: Foundation's `Thread.name` does not reach Linux's, and the thread would
    /// keep the name of the one that started it (in a worker, an event loop's).
    init(name: String) {
        let thread = Thread { [self] in
            #if os(Linux)
            try? name.write(toFile: "/proc/thread-self/comm", atomically: false, encoding: .utf8)
            #endif
            self.loop()
        }
        thread.start()
    }

    /// True on this executor's own thread.
    var isCurrent: Bool {
        condition.lock()
        defer { condition.unlock() }
        guard let threadID else { return false }
        return pthread_equal(threadID, pthread_self()) != 0
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        submit { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }

    /// Runs `work` on this thread: inline when already here, otherwise by sending it here.
    func perform<T: Sendable>(_ work: @escaping @Sendable () throws(StorageError) -> T) async throws(StorageError) -> T {
        if isCurrent { return try work() }
        hops.add(1, ordering: .relaxed)
        let result: Result<T, StorageError> = await withCheckedContinuation { continuation in
            submit {
                do throws(StorageError) {
                    continuation.resume(returning: .success(try work()))
                } catch {
                    continuation.resume(returning: .failure(error))
                }
            }
        }
        return try result.get()
    }

    /// Ends the thread after the jobs already queued; waits until it has ended.
    func stop() {
        condition.lock()
        stopping = true
        condition.broadcast()
        while !finished { condition.wait() }
        condition.unlock()
    }

    /// Runs `job` on this thread later; returns at once.
    ///
    /// Signals after letting go of the lock: signalled while the submitter still held it, the
    /// thread woke (often at once, on the submitter's core, ahead of it), found the lock taken,
    /// slept on it and had to be woken a second time once the submitter let go: four context
    /// switches per hand-off instead of two, under `wrk` on SQLite's intake a third of the
    /// writer's sleeps (`perf record -e sched:sched_switch`, docs/benchmarks.md). A wake-up
    /// cannot be lost so: the thread looks for jobs and starts waiting under the lock, so a job
    /// appended before it waits is found, and one appended after is signalled.
    func submit(_ job: @escaping () -> Void) {
        condition.lock()
        jobs.append(job)
        condition.unlock()
        condition.signal()
    }

    private func loop() {
        condition.lock()
        threadID = pthread_self()
        while true {
            while jobs.isEmpty && !stopping { condition.wait() }
            if jobs.isEmpty { break }
            // Take every queued job at once: one lock per wake-up, not one per job.
            let batch = jobs
            jobs = []
            condition.unlock()
            for job in batch { job() }
            condition.lock()
        }
        finished = true
        condition.broadcast()
        condition.unlock()
    }
}
