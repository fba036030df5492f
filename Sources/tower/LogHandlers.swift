import ArgumentParser
import Foundation
import Logging
import Synchronization
import TowerJSON

/// One JSON object per line (`LOG_FORMAT=json`): `ts`, `level`, `label`, `message`, then the
/// metadata (`task_id`, `run_id`, `trace_id`, `worker_id`, …) as top-level keys.
struct JSONLogHandler: LogHandler {
    let label: String
    var logLevel: Logger.Level
    var metadata: Logger.Metadata = [:]
    static let output = Mutex(())

    init(label: String, level: Logger.Level) {
        self.label = label
        self.logLevel = level
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
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

/// Human-readable lines, exactly as swift-log's `StreamLogHandler` writes them, with the metadata
/// rendered only when a line is written. `StreamLogHandler` renders its metadata each time a key
/// is set, and the HTTP server sets a request id on every request's logger: under `wrk` that was
/// about 1 % of the api's CPU spent on lines an `info` level never writes.
struct TextLogHandler: LogHandler {
    let label: String
    var logLevel: Logger.Level
    var metadata: Logger.Metadata = [:]

    init(label: String, level: Logger.Level) {
        self.label = label
        self.logLevel = level
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var handler = StreamLogHandler.standardError(label: label)
        handler.logLevel = logLevel
        handler.metadata = metadata
        handler.log(event: event)
    }
}

enum Logs {
    /// Bootstraps logging and metrics once: human-readable lines by default, JSON lines with
    /// `LOG_FORMAT=json`; `LOG_LEVEL` (trace, debug, info, notice, warning, error, critical).
    /// Refuses an unknown `LOG_LEVEL` or `LOG_FORMAT` (Python's names `WARN` and `FATAL` are
    /// accepted, as the legacy service did).
    static func bootstrap() throws -> Logger {
        let environment = ProcessInfo.processInfo.environment
        let level = try Self.level(environment["LOG_LEVEL"])
        let format = environment["LOG_FORMAT"]?.trimmingCharacters(in: .whitespaces).lowercased() ?? ""
        guard ["", "json", "text"].contains(format) else {
            throw CommandError("LOG_FORMAT must be json or text, not '\(format)'")
        }
        let json = format == "json"
        Telemetry.bootstrap()
        LoggingSystem.bootstrap { label in
            if json { return JSONLogHandler(label: label, level: level) }
            return TextLogHandler(label: label, level: level)
        }
        return Logger(label: "tower")
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
