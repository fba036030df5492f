/// When to log a failure that comes back at every try while its cause lasts (the database down,
/// most often): a worker polls, heartbeats and rescues every second or so, and the API answers
/// every request; each failed and logged again (a worker wrote two lines a second, and the API a
/// line per request). Now a failure is logged when it starts, then at most once every `every`
/// with how often and how long it has failed, and once when it works again; the tries in
/// between only at `debug`. A failure after `every` without one starts over: the first of a new
/// outage, not the next of the last.
///
/// A value owned by one loop (or behind one lock); the times come from the caller, so that a
/// test can step them.
public struct RepeatingFailure: Sendable {
    public enum Report: Sendable, Equatable {
        /// The first failure since the start, since a success, or after `every` without one.
        case started
        /// One more failed try, within `every` of the last report: not worth a line of its own.
        case repeated(failures: Int)
        /// Still failing, `every` after the last report.
        case ongoing(failures: Int, seconds: Double)
        /// It works again, after `failures` failed tries over `seconds`.
        case ended(failures: Int, seconds: Double)
    }

    public let every: Duration
    private var since: ContinuousClock.Instant?
    private var lastReport: ContinuousClock.Instant?
    private var lastFailure: ContinuousClock.Instant?
    private var failures = 0

    public init(every: Duration = .seconds(60)) { self.every = every }

    /// A try failed: how to log it.
    public mutating func failed(at now: ContinuousClock.Instant = .now) -> Report {
        if let lastFailure, lastFailure.duration(to: now) > every { self = RepeatingFailure(every: every) }
        failures += 1
        lastFailure = now
        guard let since, let lastReport else {
            since = now
            lastReport = now
            return .started
        }
        guard lastReport.duration(to: now) >= every else { return .repeated(failures: failures) }
        self.lastReport = now
        return .ongoing(failures: failures, seconds: Timers.seconds(since.duration(to: now)))
    }

    /// A try worked: `.ended` when it had been failing, else nil.
    public mutating func succeeded(at now: ContinuousClock.Instant = .now) -> Report? {
        guard let since else { return nil }
        let report = Report.ended(failures: failures, seconds: Timers.seconds(since.duration(to: now)))
        self = RepeatingFailure(every: every)
        return report
    }
}
