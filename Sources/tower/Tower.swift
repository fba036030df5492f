import ArgumentParser
import NIOCore
import ServiceLifecycle

@main
struct Tower: AsyncParsableCommand {
    static let version = "0.1.0"

    static let configuration = CommandConfiguration(
        commandName: "tower",
        abstract: "Control Tower: a task-queue bridge worker that records work as CWOM objects.",
        discussion: """
            Keeps the legacy JCT V1 task intake working, executes tasks in the background and \
            records every execution as Canonical Work Object Model (CWOM v0.1) records.
            """,
        version: version,
        subcommands: [
            ServeCommand.self, APICommand.self, WorkerCommand.self, MigrateCommand.self, BackfillCommand.self, EnqueueCommand.self,
            TasksCommand.self, RunsCommand.self, TraceCommand.self, KeysCommand.self, MCPCommand.self, PruneCommand.self, BenchCommand.self, SchemaCommand.self,
        ]
    )

    /// ArgumentParser's own `main`, with one step between parsing and running: logging (and
    /// metrics) set up from `LOG_LEVEL` and `LOG_FORMAT` for every command that can log, so that
    /// `tower enqueue` or `tower tasks list` honour them as `tower serve` does (they wrote
    /// swift-log's default info lines before). Those are the asynchronous ones; the synchronous
    /// ones (`keys`, `schema`, and ArgumentParser's help) write no log line, and help still
    /// answers when a setting is wrong.
    static func main() async {
        do {
            var command = try await asyncParseAsRoot()
            if var asyncCommand = command as? any AsyncParsableCommand {
                try Logs.bootstrap()
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            exit(withError: error)
        }
    }
}

/// A failure the command line reports as `Error: <message>` with exit code 1 (no usage text).
struct CommandError: Error, CustomStringConvertible {
    let description: String
    init(_ message: String) { description = message }
}

/// A port to listen on, from a flag or the environment, checked once at start: NIO keeps only the
/// low 16 bits of a number, so `--port 70000` bound 4464 without a word.
enum ListenPort {
    /// `value` (from `source`, a flag or a variable) when it is a port: 1–65535, or 0 ("any free
    /// port", the log names the one bound) where `anyAllowed`.
    static func checked(_ value: Int, from source: String, anyAllowed: Bool) throws -> Int {
        let lowest = anyAllowed ? 0 : 1
        guard (lowest...65535).contains(value) else { throw CommandError("\(source) must be a port number (\(lowest)-65535), not \(value)") }
        return value
    }

    /// The same for text from the environment.
    static func parsed(_ text: String, from source: String, anyAllowed: Bool) throws -> Int {
        guard let value = Int(text) else {
            throw CommandError("\(source) must be a port number (\(anyAllowed ? 0 : 1)-65535), not '\(text)'")
        }
        return try checked(value, from: source, anyAllowed: anyAllowed)
    }
}

/// Runs a service group. An HTTP listener that cannot bind stops the group (the worker drains)
/// and is reported with its address instead of NIO's bare `bind(…)` message.
func runServices(_ group: ServiceGroup, listeningOn address: String) async throws {
    do {
        try await group.run()
    } catch let error as IOError {
        throw CommandError("cannot serve on \(address): \(error). Is another server using the port? Choose another one.")
    }
}
