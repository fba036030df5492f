import ArgumentParser
import CWOM
import Foundation
import LegacyTasks
import Storage
import TowerJSON

/// Exit codes scripts can rely on.
enum ExitCodes {
    static let notFound = ExitCode(3)
    static let conflict = ExitCode(4)
}

struct TasksCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tasks",
        abstract: "List, show, cancel and retry tasks.",
        discussion: "Exit codes: 0 success, 1 error, 3 not found, 4 conflict (for example cancelling a finished task).",
        subcommands: [List.self, Show.self, Cancel.self, Retry.self]
    )

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List tasks, newest first.")
        @OptionGroup var database: DatabaseOptions
        @Option(help: "Only tasks with this status.") var status: String?
        @Option(help: "Only tasks of this operation.") var operation: String?
        @Option(help: "Only tasks for this (normalised) repository.") var repo: String?
        @Option(help: "How many.") var limit = 20
        @Flag(help: "JSON lines instead of a table.") var json = false

        /// A misspelt status or operation listed nothing, as if no task matched.
        func validate() throws {
            guard limit >= 1 else { throw ValidationError("--limit must be at least 1") }
            try Self.check(status, "--status", TaskStatus.self)
            try Self.check(operation, "--operation", TaskOperation.self)
        }

        static func check<Value: CWOMEnum>(_ text: String?, _ flag: String, _: Value.Type) throws {
            guard let text, Value(rawValue: text) == nil else { return }
            throw ValidationError("\(flag) takes \(Value.allValues.joined(separator: ", ")), not '\(text)'")
        }

        func run() async throws {
            let filter = TaskRepository.Filter(status: status, operation: operation, targetRepo: repo)
            let page = Page(limit: limit)
            let tasks = try await database.withDatabase { db in
                try await db.read { store in try await store.tasks.list(filter, page: page) }
            }
            if json {
                for task in tasks { print(task.json.serialized()) }
                return
            }
            Table.print(
                ["TASK", "STATUS", "OPERATION", "REPO", "ATTEMPT", "QUEUED", "OBJECTIVE"],
                tasks.map {
                    [
                        $0.id, $0.status.rawValue, $0.operation.rawValue, $0.target.repo, String($0.attempt),
                        $0.queuedAt.map { String($0.iso8601.prefix(19)) } ?? "-", String($0.objective.prefix(40)),
                    ]
                })
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one task with its issue and runs.")
        @OptionGroup var database: DatabaseOptions
        @Argument(help: "The task id.") var id: String
        @Flag(help: "JSON instead of text.") var json = false

        func run() async throws {
            let taskId = id.lowercased()
            let found = try await database.withDatabase { db in
                try await db.read { store -> (TaskRecord, [Run])? in
                    guard let task = try await store.tasks.get(taskId) else { return nil }
                    var runs: [Run] = []
                    if let issueId = task.cwomIssueId { runs = try await store.runs.list(forIssue: issueId) }
                    return (task, runs)
                }
            }
            guard let (task, runs) = found else {
                FileHandle.standardError.write(Data("no task \(id)\n".utf8))
                throw ExitCodes.notFound
            }
            if json {
                var object = task.json.objectValue ?? [:]
                object["runs"] = runs.json
                print(JSONValue.object(object).serialized(.init(pretty: true)))
                return
            }
            print("Task \(task.id)  \(task.status.rawValue)  attempt \(task.attempt)/\(task.maxAttempts)")
            print("  objective: \(task.objective)")
            print("  \(task.operation.rawValue) on \(task.target.repo)@\(task.target.ref) \(task.target.path)")
            print("  queued \(task.queuedAt?.iso8601 ?? "-")  started \(task.startedAt?.iso8601 ?? "-")  finished \(task.completedAt?.iso8601 ?? "-")")
            print("  worker \(task.assignedTo ?? "-")  trace \(task.traceId ?? "-")")
            if let error = task.error { print("  error: \(error)") }
            if let issue = task.cwomIssueId { print("  issue \(issue)") }
            for run in runs {
                print("  run \(run.id)  \(run.status.rawValue)  \(run.artifactRootUri ?? "")")
            }
        }
    }

    struct Cancel: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Cancel a task: a queued one at once, a running one by its worker within a heartbeat.")
        @OptionGroup var database: DatabaseOptions
        @Argument(help: "The task id.") var id: String

        func run() async throws {
            let taskId = id.lowercased()
            let outcome = try await database.lifecycle { engine in
                try await engine.cancel(taskId, by: TasksCommand.actor, note: "Cancelled with tower tasks cancel")
            }
            switch outcome {
            case .cancelled(let task): print("cancelled \(task.id)")
            case .requested(let task): print("cancellation requested for \(task.id) (running)")
            }
        }
    }

    struct Retry: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Retry a finished task (completed, failed or cancelled): a new attempt with a new Run.")
        @OptionGroup var database: DatabaseOptions
        @Argument(help: "The task id.") var id: String

        func run() async throws {
            let taskId = id.lowercased()
            let task = try await database.lifecycle { engine in try await engine.retry(taskId, by: TasksCommand.actor) }
            print("queued \(task.id) for attempt \(task.attempt + 1)")
        }
    }

    /// The person at the terminal, the actor of what they change.
    static var actor: Actor { Actor(kind: .human, id: ProcessInfo.processInfo.environment["USER"] ?? "cli") }
}

extension DatabaseOptions {
    /// Runs one lifecycle engine operation; a refusal becomes its message on stderr and an exit
    /// code (3 not found, 4 conflict).
    func lifecycle<T: Sendable>(_ body: @Sendable (LifecycleEngine) async throws -> T) async throws -> T {
        do {
            let retry = try WorkerOptions.retryPolicy(ProcessInfo.processInfo.environment)
            return try await withDatabase { db in try await body(LifecycleEngine(database: db, retry: retry)) }
        } catch let error as LifecycleError {
            FileHandle.standardError.write(Data("\(error)\n".utf8))
            switch error {
            case .notFound: throw ExitCodes.notFound
            case .invalidTransition, .ownedByWorker, .alreadyExists: throw ExitCodes.conflict
            case .rejected, .missingReference: throw ExitCode.failure
            }
        }
    }
}

/// A plain text table for terminals.
enum Table {
    static func print(_ header: [String], _ rows: [[String]]) {
        var widths = header.map(\.count)
        for row in rows { for (i, cell) in row.enumerated() { widths[i] = max(widths[i], cell.count) } }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { $0.element.padding(toLength: widths[$0.offset], withPad: " ", startingAt: 0) }
                .joined(separator: "  ")
        }
        Swift.print(line(header))
        for row in rows { Swift.print(line(row)) }
    }
}
