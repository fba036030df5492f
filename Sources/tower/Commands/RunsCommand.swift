import API
import ArgumentParser
import CWOM
import Foundation
import LegacyTasks
import Storage
import TowerJSON

struct RunsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "runs", abstract: "Inspect runs.", subcommands: [Show.self])

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show a run with its pinned context, artifacts and trace files.")
        @OptionGroup var database: DatabaseOptions
        @Argument(help: "The run id.") var id: String
        @Flag(help: "JSON instead of text.") var json = false

        func run() async throws {
            let runId = id
            let found = try await database.withDatabase { db in try await db.read { store -> (Run, ContextPacket?, ConstraintSnapshot?, [Artifact])? in
                guard let run = try await store.runs.get(runId) else { return nil }
                let packet = try await run.inputs.contextPackets.first.map { $0.id }.asyncMap { try await store.contextPackets.get($0) } ?? nil
                let snapshot = try await run.inputs.constraintSnapshot.map { $0.id }.asyncMap { try await store.constraintSnapshots.get($0) } ?? nil
                return (run, packet, snapshot, try await store.artifacts.list(forRun: run.id))
            } }
            guard let (run, packet, snapshot, artifacts) = found else {
                FileHandle.standardError.write(Data("no run \(id)\n".utf8))
                throw ExitCodes.notFound
            }
            let files = (run.localTraceFolder.flatMap { try? TraceFolder.files(in: $0) }) ?? []
            if json {
                print(JSONValue.object([
                    "run": run.json, "context_packet": packet?.json ?? .null, "constraint_snapshot": snapshot?.json ?? .null,
                    "artifacts": artifacts.json, "trace_files": .array(files),
                ]).serialized(.init(pretty: true)))
                return
            }
            print("Run \(run.id)  \(run.status.rawValue)  mode \(run.mode.rawValue)  executor \(run.executor.runtime) by \(run.executor.actor.actorId)")
            print("  issue \(run.forIssue.id)  repo \(run.repo.id)  trace \(run.header.traceId ?? "-")")
            if let started = run.telemetry.startedAt { print("  started \(started.iso8601)  ended \(run.telemetry.endedAt?.iso8601 ?? "-")  \(run.telemetry.durationS.map { String(format: "%.3fs", $0) } ?? "")") }
            if let failure = run.failure { print("  failure (\(failure.category.rawValue)): \(failure.message)") }
            if let packet { print("  pinned context packet \(packet.id) version \(packet.version): \(packet.summary)") }
            if let snapshot {
                print("  pinned constraint snapshot \(snapshot.id): \(snapshot.constraints.time?.availableMinutes.map { "\($0) min" } ?? "-"), risk \(snapshot.constraints.risk?.tolerance.rawValue ?? "-")")
            }
            print("  artifacts:")
            for artifact in artifacts { print("    \(artifact.type.rawValue)  \(artifact.title)  \(artifact.sizeBytes.map { "\($0) B" } ?? "")  \(artifact.uri)") }
            print("  trace files:")
            for file in files { print("    \(file["path"]?.stringValue ?? "")  \(file["size"]?.intValue ?? 0) B") }
        }
    }
}

extension Optional {
    func asyncMap<T>(_ transform: (Wrapped) async throws -> T) async rethrows -> T? {
        guard let value = self else { return nil }
        return try await transform(value)
    }
}

struct TraceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "trace", abstract: "Print a run's trace log (--follow while it runs).")
    @OptionGroup var database: DatabaseOptions
    @Argument(help: "A run id, or a task id (its current run).") var id: String
    @Flag(help: "Keep printing new lines until the run ends.") var follow = false

    func run() async throws {
        let lookup = id
        try await database.withDatabase { db in try await follow(db, lookup) }
    }

    private func follow(_ db: Database, _ lookup: String) async throws {
        let run = try await db.read { store -> Run? in
            if let run = try await store.runs.get(lookup) { return run }
            if let task = try await store.tasks.get(lookup.lowercased()), let runId = task.currentRunId { return try await store.runs.get(runId) }
            return nil
        }
        guard let run, let root = run.localTraceFolder else {
            FileHandle.standardError.write(Data("no run or trace for \(id)\n".utf8))
            throw ExitCodes.notFound
        }
        let log = root.appendingPathComponent("trace.log")
        var offset: UInt64 = 0
        while true {
            if let handle = try? FileHandle(forReadingFrom: log) {
                try handle.seek(toOffset: offset)
                if let data = try handle.readToEnd(), !data.isEmpty {
                    FileHandle.standardOutput.write(data)
                    offset += UInt64(data.count)
                }
                try? handle.close()
            }
            guard follow else { break }
            let status = try await db.read { try await $0.runs.get(run.id)?.status }
            if let status, status != .running && status != .planned && status != .ready { break }
            try await Task.sleep(for: .milliseconds(500))
        }
    }
}

struct EnqueueCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "enqueue",
        abstract: "Enqueue a task from flags or a JSON file, through the same validation and policy as POST /tasks/enqueue.",
        discussion: "Prints the task id. Exit codes: 0 created, 2 invalid input or policy rejection, 4 idempotency conflict."
    )
    @OptionGroup var database: DatabaseOptions
    @Option(help: "A JSON file with the request body (as for POST /tasks/enqueue); - reads standard input.") var file: String?
    @Option(help: "The objective.") var objective: String?
    @Option(help: "code_change, docs, analysis or ops.") var operation: String?
    @Option(help: "The repository (e.g. myorg/app).") var repo: String?
    @Option(help: "The ref.") var ref: String?
    @Option(help: "Who asks: kind:id (default human:$USER).") var requestedBy: String?
    @Option(help: "An idempotency key.") var idempotencyKey: String?
    @Option(help: "Seconds.") var timeBudget: Int?
    @Option(help: "Allowed repository prefixes (default: $JCT_ALLOWED_REPO_PREFIXES).") var allowedRepoPrefixes: String?
    @Flag(help: "Do not create CWOM objects now (the worker does on claim).") var noCwom = false
    @Flag(help: "Print the whole answer as JSON.") var json = false

    func body() throws -> JSONValue {
        if let file {
            let data: Data
            if file == "-" {
                data = FileHandle.standardInput.readDataToEndOfFile()
            } else {
                // Read by hand for the system's reason: Foundation's was an NSCocoaErrorDomain dump.
                let descriptor = open(file, O_RDONLY | O_CLOEXEC)
                guard descriptor >= 0 else { throw CommandError("cannot read \(file): \(String(cString: strerror(errno)))") }
                do { data = try FileHandle(fileDescriptor: descriptor, closeOnDealloc: true).readToEnd() ?? Data() } catch {
                    throw CommandError("cannot read \(file): \(String(cString: strerror(errno)))")
                }
            }
            do { return try JSONParser.parse(bytes: Array(data)) } catch { throw ValidationError("\(file) is not valid JSON: \(error)") }
        }
        guard let objective, let operation, let repo else {
            throw ValidationError("give --file, or --objective, --operation and --repo")
        }
        let requester = (requestedBy ?? "human:\(ProcessInfo.processInfo.environment["USER"] ?? "cli")").split(separator: ":", maxSplits: 1)
        var object: JSONObject = [
            "requested_by": ["kind": .string(String(requester.first ?? "human")), "id": .string(String(requester.last ?? "cli"))],
            "objective": .string(objective), "operation": .string(operation),
            "target": .object(["repo": .string(repo), "ref": ref.map { .string($0) } ?? "main"]),
        ]
        if let idempotencyKey { object["idempotency_key"] = .string(idempotencyKey) }
        if let timeBudget { object["constraints"] = ["time_budget_seconds": .int(timeBudget)] }
        return .object(object)
    }

    func run() async throws {
        let prefixes = allowedRepoPrefixes ?? ProcessInfo.processInfo.environment["JCT_ALLOWED_REPO_PREFIXES"]
        let request = APIRequest(
            method: "POST", path: "/tasks/enqueue", query: noCwom ? "create_cwom=false" : nil,
            headers: [("content-type", "application/json")], body: try body().bytes())
        let response = try await database.withDatabase { db in
            let api = TowerAPI(database: db, configuration: APIConfiguration(policy: PolicyConfig(environmentValue: prefixes)))
            return await api.respond(request)
        }
        let answer = (try? JSONParser.parse(bytes: response.body)) ?? .null
        if json || response.status >= 300 {
            let text = answer.serialized(.init(pretty: true)) + "\n"
            if response.status >= 300 { FileHandle.standardError.write(Data(text.utf8)) } else { print(text, terminator: "") }
        } else {
            print(answer["task_id"]?.stringValue ?? "")
        }
        switch response.status {
        case 201: return
        case 409: throw ExitCodes.conflict
        case 400, 422: throw ExitCode(2)
        default: throw ExitCode.failure
        }
    }
}
