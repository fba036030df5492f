import Foundation
import LegacyTasks

/// When a failed attempt is tried again, and after how long (DESIGN.md §7, issue "operating for
/// months"). A task gets its allowance of attempts when it is enqueued (`tasks.max_attempts`, as
/// River sets `max_attempts` at insert), so that changing the policy never strands a task in
/// flight; the delay is chosen when an attempt fails.
///
/// Only failures the executor marks as transient are retried (exit status 75, `EX_TEMPFAIL`, or
/// `"retryable": true` in its result file), and time-outs when `retryTimeouts` says so: a failure
/// that would fail again the same way (a bad objective, a policy refusal) should not cost more
/// attempts. Tasks of lost workers are retried by the rescuer within the same allowance.
///
/// The delay doubles with every attempt from `baseDelay`, capped at `maxDelay`, with ±25 % of
/// random jitter so that tasks that failed together (a rate-limited model API) do not all come
/// back in the same second. River (`attempt⁴` seconds, 25 attempts) and Oban (`15 + attempt⁴`,
/// 20 attempts) retry far more often; an agent's attempt costs money and minutes, so the default
/// here is three attempts, 10 s then 20 s apart.
public struct RetryPolicy: Sendable, Equatable {
    /// `TOWER_RETRY_MAX_ATTEMPTS`: attempts a task gets, the first included.
    public var maxAttempts: Int
    /// `TOWER_RETRY_BASE_DELAY`: seconds before the second attempt.
    public var baseDelay: Double
    /// `TOWER_RETRY_MAX_ATTEMPTS_<OPERATION>`, `TOWER_RETRY_BASE_DELAY_<OPERATION>`.
    public var maxAttemptsByOperation: [TaskOperation: Int]
    public var baseDelayByOperation: [TaskOperation: Double]
    /// `TOWER_RETRY_TIMEOUTS`: whether an attempt that ran out of its time budget is retried.
    public var retryTimeouts: Bool
    /// The longest delay, whatever the attempt (one hour).
    public var maxDelay: Double

    public init(maxAttempts: Int = TaskRecord.defaultMaxAttempts, baseDelay: Double = 10, maxAttemptsByOperation: [TaskOperation: Int] = [:],
        baseDelayByOperation: [TaskOperation: Double] = [:], retryTimeouts: Bool = false, maxDelay: Double = 3600)
    {
        self.maxAttempts = maxAttempts
        self.baseDelay = baseDelay
        self.maxAttemptsByOperation = maxAttemptsByOperation
        self.baseDelayByOperation = baseDelayByOperation
        self.retryTimeouts = retryTimeouts
        self.maxDelay = maxDelay
    }

    public func maxAttempts(for operation: TaskOperation) -> Int { maxAttemptsByOperation[operation] ?? maxAttempts }

    /// Seconds to wait after attempt `attempt` (1-based) failed: `base · 2^(attempt−1)`, capped,
    /// times a jitter factor in [0.75, 1.25) (`jitter` in [0, 1)).
    public func delay(afterAttempt attempt: Int, operation: TaskOperation, jitter: Double = Double.random(in: 0..<1)) -> Double {
        let base = baseDelayByOperation[operation] ?? baseDelay
        let exponential = base * pow(2, Double(max(0, min(attempt - 1, 30))))
        return min(maxDelay, exponential) * (0.75 + 0.5 * jitter)
    }

    /// Reads the policy from `TOWER_RETRY_*`; a wrong value is an error naming the variable.
    public init(environment: [String: String]) throws(RetryPolicyError) {
        self.init()
        func number(_ name: String) throws(RetryPolicyError) -> Double? {
            guard let text = environment[name]?.trimmingCharacters(in: .whitespaces), !text.isEmpty else { return nil }
            guard let value = Double(text), value >= 0, value.isFinite else {
                throw RetryPolicyError("\(name) must be a number of seconds (fractions allowed), not '\(text)'")
            }
            return value
        }
        func count(_ name: String) throws(RetryPolicyError) -> Int? {
            guard let text = environment[name]?.trimmingCharacters(in: .whitespaces), !text.isEmpty else { return nil }
            guard let value = Int(text), value >= 1 else {
                throw RetryPolicyError("\(name) must be a whole number of attempts, at least 1, not '\(text)'")
            }
            return value
        }
        if let value = try count("TOWER_RETRY_MAX_ATTEMPTS") { maxAttempts = value }
        if let value = try number("TOWER_RETRY_BASE_DELAY") { baseDelay = value }
        for operation in TaskOperation.allCases {
            let suffix = operation.rawValue.uppercased()
            if let value = try count("TOWER_RETRY_MAX_ATTEMPTS_\(suffix)") { maxAttemptsByOperation[operation] = value }
            if let value = try number("TOWER_RETRY_BASE_DELAY_\(suffix)") { baseDelayByOperation[operation] = value }
        }
        if let text = environment["TOWER_RETRY_TIMEOUTS"]?.trimmingCharacters(in: .whitespaces).lowercased(), !text.isEmpty {
            switch text {
            case "true", "1", "yes", "on": retryTimeouts = true
            case "false", "0", "no", "off": retryTimeouts = false
            default: throw RetryPolicyError("TOWER_RETRY_TIMEOUTS must be true or false, not '\(text)'")
            }
        }
    }
}

public struct RetryPolicyError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
