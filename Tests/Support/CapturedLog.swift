import Logging
import Synchronization

/// A logger whose entries a test reads, and waits for: `logger` writes into it, `entries` holds
/// what was logged so far, `next(where:)` waits for the first entry (logged before or after the
/// call) that matches.
public final class CapturedLog: Sendable {
    public struct Entry: Sendable {
        public let level: Logger.Level
        public let message: String
        public let metadata: [String: String]
    }

    private struct State {
        var entries: [Entry] = []
        var waiters: [(matches: @Sendable (Entry) -> Bool, continuation: CheckedContinuation<Entry, Never>)] = []
    }

    private let state = Mutex(State())

    public init() {}

    /// A logger into this capture, at `level` and above.
    public func logger(_ label: String, level: Logger.Level = .info) -> Logger {
        var logger = Logger(label: label) { _ in Handler(log: self) }
        logger.logLevel = level
        return logger
    }

    public var entries: [Entry] { state.withLock { $0.entries } }

    /// The first entry that matches, waiting for it when none has been logged yet. Bound the wait
    /// with `withDeadline`.
    public func next(where matches: @escaping @Sendable (Entry) -> Bool) async -> Entry {
        await withCheckedContinuation { continuation in
            let found: Entry? = state.withLock { state in
                if let entry = state.entries.first(where: matches) { return entry }
                state.waiters.append((matches, continuation))
                return nil
            }
            if let found { continuation.resume(returning: found) }
        }
    }

    fileprivate func append(_ entry: Entry) {
        let ready = state.withLock { state -> [CheckedContinuation<Entry, Never>] in
            state.entries.append(entry)
            let (ready, waiting) = (state.waiters.filter { $0.matches(entry) }, state.waiters.filter { !$0.matches(entry) })
            state.waiters = waiting
            return ready.map(\.continuation)
        }
        for continuation in ready { continuation.resume(returning: entry) }
    }

    private struct Handler: LogHandler {
        let log: CapturedLog
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            let merged = metadata.merging(event.metadata ?? [:]) { $1 }
            log.append(Entry(level: event.level, message: event.message.description, metadata: merged.mapValues { "\($0)" }))
        }
    }
}
