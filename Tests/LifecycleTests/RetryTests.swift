import CWOM
import Foundation
import LegacyTasks
import Storage
import Testing
import TowerTestSupport

/// Retries of failed attempts (`RetryPolicy`): a transient failure queues the task again after a
/// growing delay, each attempt a new Run, until the allowance set at enqueue runs out.
@Suite("Retry policy")
struct RetryTests {
    func withPolicy(_ dialect: Dialect, _ policy: RetryPolicy, _ body: (Bench) async throws -> Void) async throws {
        try await withDatabase(dialect) { database, _ in
            let clock = ManualClock(Timestamp(microseconds: 1_800_000_000_000_000))
            try await body(Bench(database: database, clock: clock, engine: LifecycleEngine(database: database, clock: clock, retry: policy)))
        }
    }

    func retryable(_ bench: Bench, _ claim: LifecycleEngine.Claim) -> LifecycleEngine.Completion {
        var completion = bench.completion(claim, .failed)
        completion.retryable = true
        return completion
    }

    @Test("retryable failures: queued again after base·2^(n−1) ± 25 %, each attempt a new Run, the last failure final",
        arguments: Dialect.allCases)
    func retryableUntilExhausted(_ dialect: Dialect) async throws {
        try await withPolicy(dialect, RetryPolicy(maxAttempts: 3, baseDelay: 10)) { bench in
            let task = try await bench.enqueue()
            #expect(task.maxAttempts == 3, "the allowance is set at enqueue")
            var runs: [String] = []
            for attempt in 1...2 {
                let claim = try await bench.claimOne()
                runs.append(claim.run.id)
                #expect(try await bench.engine.complete(retryable(bench, claim)) == .finished(.queued))
                let queued = try await bench.task(task.id)
                #expect(queued.status == .queued && queued.attempt == attempt && queued.completedAt == nil)
                let wait = try #require(queued.runAfter).seconds(since: bench.clock.now())
                let base = 10 * pow(2, Double(attempt - 1))
                #expect(wait >= base * 0.75 && wait < base * 1.25, "attempt \(attempt) waits \(wait) s")
                #expect(try await bench.run(claim.run.id).status == .failed, "the attempt's Run fails")
                #expect(try await bench.issue(claim.issue.id).status == .ready, "the Issue waits for the next attempt")
                #expect(try await bench.engine.claim(bench.claimant("worker-a"), limit: 1).isEmpty, "not before its delay")
                bench.clock.advance(seconds: wait + 0.001)
            }
            let last = try await bench.claimOne()
            runs.append(last.run.id)
            #expect(try await bench.engine.complete(retryable(bench, last)) == .finished(.failed))
            let failed = try await bench.task(task.id)
            #expect(failed.status == .failed && failed.attempt == 3 && failed.error == "it went wrong")
            #expect(Set(runs).count == 3, "three attempts, three Runs")
            #expect(try await bench.issue(last.issue.id).status == .failed)
            let notes = try await bench.audit("Task", task.id).compactMap(\.note)
            #expect(notes.contains { $0.hasPrefix("Attempt 1 of 3 failed (retryable): next attempt in ") })
            #expect(notes.contains("Attempt 3 of 3 failed (retryable): no attempts left"))
        }
    }

    @Test("a failure not marked retryable is final at once; a time-out is retried only when the policy says so",
        arguments: Dialect.allCases)
    func notRetryable(_ dialect: Dialect) async throws {
        try await withPolicy(dialect, RetryPolicy(maxAttempts: 5, baseDelay: 0)) { bench in
            let plain = try await bench.enqueue("Fails for good")
            #expect(try await bench.engine.complete(bench.completion(try await bench.claimOne(), .failed)) == .finished(.failed))
            #expect(try await bench.task(plain.id).attempt == 1)
            try await bench.enqueue("Times out")
            var timeout = bench.completion(try await bench.claimOne(), .timedOut)
            timeout.retryable = false
            #expect(try await bench.engine.complete(timeout) == .finished(.failed), "time-outs are not retried by default")
        }
        try await withPolicy(dialect, RetryPolicy(maxAttempts: 2, baseDelay: 0, retryTimeouts: true)) { bench in
            try await bench.enqueue("Times out")
            #expect(try await bench.engine.complete(bench.completion(try await bench.claimOne(), .timedOut)) == .finished(.queued))
        }
    }

    @Test("per-operation settings win over the defaults; wrong values are refused with the variable's name")
    func environment() throws {
        let policy = try RetryPolicy(environment: [
            "TOWER_RETRY_MAX_ATTEMPTS": "4", "TOWER_RETRY_BASE_DELAY": "0.5", "TOWER_RETRY_MAX_ATTEMPTS_CODE_CHANGE": "2",
            "TOWER_RETRY_BASE_DELAY_OPS": "30", "TOWER_RETRY_TIMEOUTS": "yes",
        ])
        #expect(policy.maxAttempts(for: .docs) == 4 && policy.maxAttempts(for: .codeChange) == 2)
        #expect(policy.delay(afterAttempt: 1, operation: .docs, jitter: 0.5) == 0.5)
        #expect(policy.delay(afterAttempt: 3, operation: .ops, jitter: 0.5) == 120)
        #expect(policy.delay(afterAttempt: 40, operation: .ops, jitter: 0.999) < 3600 * 1.25, "capped")
        #expect(policy.retryTimeouts)
        #expect(RetryPolicy().maxAttempts == 3 && RetryPolicy().baseDelay == 10, "the documented defaults")
        for (name, value) in [("TOWER_RETRY_MAX_ATTEMPTS", "0"), ("TOWER_RETRY_BASE_DELAY", "-1"), ("TOWER_RETRY_BASE_DELAY_DOCS", "soon"),
            ("TOWER_RETRY_TIMEOUTS", "maybe")]
        {
            #expect { try RetryPolicy(environment: [name: value]) } throws: { "\($0)".contains(name) }
        }
    }
}
