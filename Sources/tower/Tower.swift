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
}

/// A failure the command line reports as `Error: <message>` with exit code 1 (no usage text).
struct CommandError: Error, CustomStringConvertible {
    let description: String
    init(_ message: String) { description = message }
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
