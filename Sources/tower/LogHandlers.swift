import ArgumentParser
import Foundation
import Logging
import Synchronization
import TowerJSON

/// Control Tower's log lines on standard error, in one of two formats:
/// - `json` (`LOG_FORMAT=json`): one JSON object per line, `ts`, `level`, `label`, `message`,
///   then the metadata (`task_id`, `run_id`, `trace_id`, `worker_id`, …) as top-level keys;
/// - `text` (the default): exactly the lines of swift-log's `StreamLogHandler`, with the
///   metadata rendered only when a line is written. `StreamLogHandler` renders it each time a
///   key is set, and the HTTP server sets a request id on every request's logger: under `wrk`
///   that was about 1 % of the api's CPU, spent on lines an `info` level never writes.
struct LineLogHandler: LogHandler {
    enum Format { case text, json }

    let label: String
    let format: Format
    var logLevel: Logger.Level
    var metadata: Logger.Metadata = [:]
    static let output = Mutex(())

    init(label: String, format: Format, level: Logger.Level) {
        self.label = label
        self.format = format
        self.logLevel = level
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        switch format {
        case .text:
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = logLevel
            handler.metadata = metadata
            handler.log(event: event)
        case .json:
            var object: JSONObject = [
                "ts": .string(ISO8601DateFormatter.string(from: Date(), timeZone: .gmt, formatOptions: [.withInternetDateTime, .withFractionalSeconds])),
                "level": .string(event.level.rawValue), "label": .string(label), "message": .string("\(event.message)"),
            ]
            for (key, value) in metadata.merging(event.metadata ?? [:], uniquingKeysWith: { $1 }) {
                object[key] = .string("\(value)")
            }
            if let error = event.error { object["error"] = .string("\(error)") }
            let line = JSONValue.object(object).serialized() + "\n"
            Self.output.withLock { _ in FileHandle.standardError.write(Data(line.utf8)) }
        }
    }
}

enum Logs {
    /// Bootstraps logging and metrics once: human-readable lines by default, JSON lines with
    /// `LOG_FORMAT=json`; `LOG_LEVEL` (trace, debug, info, notice, warning, error, critical).
    /// Refuses an unknown `LOG_LEVEL` or `LOG_FORMAT` (Python's names `WARN` and `FATAL` are
    /// accepted, as the legacy service did).
    static func bootstrap() throws {
        let environment = ProcessInfo.processInfo.environment
        let level = try Self.level(environment["LOG_LEVEL"])
        let format = environment["LOG_FORMAT"]?.trimmingCharacters(in: .whitespaces).lowercased() ?? ""
        guard ["", "json", "text"].contains(format) else {
            throw CommandError("LOG_FORMAT must be json or text, not '\(format)'")
        }
        let json = format == "json"
        Telemetry.bootstrap()
        LoggingSystem.bootstrap { label in
            LineLogHandler(label: label, format: json ? .json : .text, level: level)
        }
    }

    static func level(_ value: String?) throws -> Logger.Level {
        guard let text = value?.trimmingCharacters(in: .whitespaces).lowercased(), !text.isEmpty else { return .info }
        let aliases = ["warn": "warning", "fatal": "critical"]
        guard let level = Logger.Level(rawValue: aliases[text] ?? text) else {
            throw CommandError("LOG_LEVEL must be one of \(Logger.Level.allCases.map(\.rawValue).joined(separator: ", ")), not '\(text)'")
        }
        return level
    }
}
