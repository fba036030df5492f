import CWOM
import Foundation
import Spawn
import Storage
import LegacyTasks
import TowerJSON

#if canImport(Glibc)
    import Glibc
#endif

/// Runs a configured program (an agent CLI, a script) for a task, in the Run's workspace (a
/// folder of its own outside the trace folder, removed by the worker when the Run ends).
///
/// The program gets `task.json` in the trace folder (the task, issue, context packet and
/// constraint snapshot exactly as pinned) and `TOWER_*` environment variables; its stdout and stderr go to `stdout.log` and
/// `stderr.log` in the trace folder, each up to `outputLimit`. Exit 0 means success. An optional `result.json` (path in
/// `TOWER_RESULT_FILE`) gives `{"summary","decision_log":[…],"cost":{…},"outputs":{…}}`. Files in
/// `TOWER_ARTIFACTS_DIR` become artifacts; a git workspace's diff becomes a `code_patch`.
///
/// Constraints are enforced: the program runs in its own process group, killed as a whole when
/// the time budget ends or the task is cancelled; its environment is an allow-list unless the
/// task allows secrets; with `sandbox` on and network not allowed it runs in a network namespace
/// of its own (`unshare -n`), and refuses to run without one.
public struct CommandExecutor: TaskExecutor {
    public let name = "command"
    public let version = "0.1.0"
    public var executable: String
    public var arguments: [String]
    public var sandbox: Bool
    /// Environment variables passed through when secrets are not allowed.
    public var environmentAllowList: [String]
    /// The environment a child starts from (filtered by the allow-list unless the task allows
    /// secrets): the worker's own, read once when the executor is made.
    public var parentEnvironment: [String: String]
    /// The most bytes `stdout.log` and `stderr.log` each keep (nil: no limit). A command's output
    /// past it is read and dropped, and the log ends with a line saying how much: a runaway
    /// command cannot fill the trace disk within a time budget that may be a day long.
    public var outputLimit: Int?

    /// 64 MiB per log (`TOWER_EXECUTOR_OUTPUT_LIMIT_MB`).
    public static let defaultOutputLimit = 64 << 20

    /// The exit status that marks a failure as transient (`EX_TEMPFAIL`).
    public static let temporaryFailure: Int32 = 75

    /// The largest `result.json` a run's completion reads (as the API's largest body).
    public static let resultFileLimit = 10 << 20

    public static let defaultAllowList = ["PATH", "LANG", "LC_ALL", "TZ", "TERM", "USER", "LOGNAME", "SHELL"]

    public init(executable: String, arguments: [String] = [], sandbox: Bool = false,
        environmentAllowList: [String] = CommandExecutor.defaultAllowList,
        parentEnvironment: [String: String] = ProcessInfo.processInfo.environment, outputLimit: Int? = CommandExecutor.defaultOutputLimit)
    {
        self.executable = executable
        self.arguments = arguments
        self.sandbox = sandbox
        self.environmentAllowList = environmentAllowList
        self.parentEnvironment = parentEnvironment
        self.outputLimit = outputLimit
    }

    /// Parses a command line such as `claude -p --output-format json` (words split on spaces;
    /// quote nothing: use a wrapper script for anything fancier).
    public init(commandLine: String, sandbox: Bool = false, outputLimit: Int? = CommandExecutor.defaultOutputLimit) throws {
        let words = commandLine.split(separator: " ").map(String.init)
        guard let first = words.first else { throw WorkerError("an empty executor command") }
        self.init(executable: first, arguments: Array(words.dropFirst()), sandbox: sandbox, outputLimit: outputLimit)
    }

    /// The program as a task will start it (found in `path` as the child's `PATH` would find
    /// it), or an error saying why no task could start it: a worker checks this at start rather
    /// than failing every task it claims.
    public func checkedExecutable(path: String?) throws -> String {
        let resolved = resolve(executable, path: path)
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: resolved, isDirectory: &isFolder), !isFolder.boolValue,
            FileManager.default.isExecutableFile(atPath: resolved)
        else {
            throw WorkerError(
                executable.contains("/")
                    ? "\(executable) is not an executable file"
                    : "\(executable) is not found in PATH (\(path ?? Self.defaultPath))")
        }
        return resolved
    }

    public func execute(_ context: ExecutionContext) async -> ExecutionResult {
        let trace = context.trace
        let workspace = context.workspace
        let task = context.task
        do {
            try FileManager.default.createDirectory(at: workspace, withIntermediateDirectories: true)
            try trace.writeJSON(
                "task.json",
                [
                    "task": task.json, "run_id": .string(context.runId), "trace_id": .string(context.traceId),
                    "issue": context.issue.json, "context_packet": context.contextPacket.json,
                    "constraint_snapshot": context.constraintSnapshot.json,
                ])
        } catch {
            return ExecutionResult(outcome: .failed, errorMessage: "cannot prepare the workspace: \(error)")
        }
        let environment = self.environment(context, workspace: workspace)
        var command = [resolve(executable, path: environment["PATH"])] + arguments
        if sandbox && !task.constraints.allowNetwork {
            guard FileManager.default.isExecutableFile(atPath: "/usr/bin/unshare") else {
                return ExecutionResult(
                    outcome: .failed, errorMessage: "network isolation was asked for but unshare is not installed",
                    failureCategory: .policy)
            }
            command = ["/usr/bin/unshare", getuid() == 0 ? "-n" : "-rn", "--"] + command
        }
        trace.event("execution_started", ["executor": .string(name), "command": .array(command.map { .string($0) })])
        trace.log("Execution started", details: ["executor: \(name)", "command: \(command.joined(separator: " "))"])

        let status: ProcessStatus
        var lostOutput: String?
        do {
            let logs = ["stdout.log", "stderr.log"].map { name in
                outputLimit.map { ChildOutput.capped(trace.url(name), limit: $0) } ?? .file(trace.url(name))
            }
            let child = try Self.start(command, environment: environment, directory: workspace, stdout: logs[0], stderr: logs[1])
            status = await Self.wait(for: child)
            for (descriptor, name) in [(Int32(1), "stdout.log"), (2, "stderr.log")] {
                guard let copied = child.copiedOutput(descriptor) else { continue }
                if let failure = copied.writeFailure {
                    lostOutput = lostOutput ?? "\(name) could not be written: \(failure) (the command's output from byte \(copied.keptBytes) on is lost)"
                    trace.event("output_lost", ["file": .string(name), "kept_bytes": .int(copied.keptBytes), "error": .string(failure)])
                } else if copied.droppedBytes > 0 {
                    trace.event("output_cut", ["file": .string(name), "kept_bytes": .int(copied.keptBytes), "dropped_bytes": .int(copied.droppedBytes)])
                    trace.log(
                        "\(name) cut at its limit", details: ["kept: \(copied.keptBytes) bytes (TOWER_EXECUTOR_OUTPUT_LIMIT_MB)", "dropped: \(copied.droppedBytes) bytes"])
                }
            }
        } catch {
            trace.log("FATAL ERROR: \(error)")
            return ExecutionResult(outcome: .failed, errorMessage: "cannot start \(executable): \(error)")
        }
        if Task.isCancelled {
            trace.log("Execution stopped", details: ["the process group was killed"])
            return ExecutionResult(outcome: .canceled, errorMessage: "stopped")
        }

        var (result, unusable) = readResultFile(trace.url("result.json"))
        await writeGitDiff(workspace: workspace, trace: trace)
        switch status {
        case .exited(0):
            result.outcome = .succeeded
        case .exited(let code):
            result.outcome = .failed
            result.errorMessage = result.errorMessage ?? "\(executable) exited with status \(code)"
            // 75 is sysexits' EX_TEMPFAIL: "try again later".
            if code == Self.temporaryFailure { result.retryable = true }
        case .signaled(let signal):
            result.outcome = .failed
            result.errorMessage = "\(executable) was killed by signal \(signal)"
        }
        if let unusable {
            // Its values would fail the completion on PostgreSQL and pass on SQLite: the same
            // failure on both, which says what the command wrote. Trying again would not help.
            result = ExecutionResult(outcome: .failed, errorMessage: unusable)
        }
        if let lostOutput {
            // A trace folder without the command's whole output is evidence a reviewer cannot
            // trust, whatever the command's exit status (a child writing its own files saw the
            // error itself; behind the pipe it cannot).
            trace.log("FATAL ERROR: \(lostOutput)")
            result = ExecutionResult(outcome: .failed, errorMessage: lostOutput)
        }
        trace.event("execution_completed", ["status": .string(result.outcome.rawValue)])
        trace.log("Execution completed", details: ["Status: \(result.outcome.rawValue)"])
        return result
    }

    func environment(_ context: ExecutionContext, workspace: URL) -> [String: String] {
        let parent = parentEnvironment
        var environment: [String: String] = [:]
        if context.task.constraints.allowSecrets {
            environment = parent
        } else {
            for name in environmentAllowList { if let value = parent[name] { environment[name] = value } }
        }
        let task = context.task
        environment["HOME"] = workspace.path
        environment["TMPDIR"] = workspace.path
        environment.merge([
            "TOWER_TASK_ID": task.id, "TOWER_RUN_ID": context.runId, "TOWER_TRACE_ID": context.traceId,
            "TOWER_ISSUE_ID": context.issue.id, "TOWER_CONTEXT_PACKET_ID": context.contextPacket.id,
            "TOWER_CONSTRAINT_SNAPSHOT_ID": context.constraintSnapshot.id,
            "TOWER_TASK_FILE": context.trace.url("task.json").path,
            "TOWER_WORKSPACE": workspace.path, "TOWER_ARTIFACTS_DIR": context.trace.artifactsFolder.path,
            "TOWER_RESULT_FILE": context.trace.url("result.json").path, "TOWER_OBJECTIVE": task.objective,
            "TOWER_OPERATION": task.operation.rawValue, "TOWER_TARGET_REPO": task.target.repo,
            "TOWER_TARGET_REF": task.target.ref, "TOWER_TARGET_PATH": task.target.path,
            "TOWER_TIME_BUDGET_SECONDS": String(task.constraints.timeBudgetSeconds),
        ]) { _, new in new }
        return environment
    }

    /// Where a program is looked for when the environment has no `PATH`.
    static let defaultPath = "/usr/local/bin:/usr/bin:/bin"

    func resolve(_ executable: String, path: String?) -> String {
        guard !executable.contains("/") else { return executable }
        for folder in (path ?? Self.defaultPath).split(separator: ":") {
            let candidate = "\(folder)/\(executable)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return executable
    }

    /// The command's result file, and why it cannot be stored when it holds a value that the
    /// databases do not both keep (`JSONValue.firstUnstorable`).
    func readResultFile(_ url: URL) -> (ExecutionResult, unusable: String?) {
        var result = ExecutionResult(outcome: .succeeded)
        // Read whole and parsed in the worker's memory, beside every other run's: a command that
        // wrote a result of gigabytes would take the worker down with it.
        if let size = TraceFile.regularFileSize(url.path), size > Self.resultFileLimit {
            return (result, "the result file is \(size) bytes, over the \(Self.resultFileLimit >> 20) MiB a result file may hold")
        }
        guard let data = FileManager.default.contents(atPath: url.path),
            let json = try? JSONParser.parse(bytes: Array(data)), case .object(let object) = json
        else { return (result, nil) }
        if let found = json.firstUnstorable() {
            return (result, "the result file cannot be stored: \(FieldPath(json: found.path)) holds \(found.value.unstorableReason)")
        }
        result.summary = object["summary"]?.stringValue.map { String($0.prefix(4000)) }
        result.decisionLog = (object["decision_log"]?.arrayValue ?? []).compactMap(\.stringValue)
        if let cost = object["cost"], let decoded = try? Cost.decode(cost) { result.cost = decoded }
        result.outputs = object["outputs"]?.objectValue ?? [:]
        if let summary = result.summary { result.outputs["summary"] = .string(summary) }
        result.errorMessage = object["error"]?.stringValue
        result.retryable = object["retryable"] == .bool(true)
        return (result, nil)
    }

    /// `git diff HEAD` of a git workspace into `artifacts/changes.patch` (kept only when not
    /// empty), started like the task's own command.
    func writeGitDiff(workspace: URL, trace: TraceStore) async {
        guard FileManager.default.fileExists(atPath: workspace.appendingPathComponent(".git").path) else { return }
        let output = trace.artifactsFolder.appendingPathComponent("changes.patch")
        _ = try? await Self.run(
            ["/usr/bin/git", "-C", workspace.path, "diff", "HEAD"], environment: parentEnvironment, directory: workspace,
            stdout: .file(output), stderr: .discard)
        if TraceFile.regularFileSize(output.path) == 0 { try? FileManager.default.removeItem(at: output) }
    }

    /// Runs a program and waits for it. The child leads a new process group, which its own
    /// children inherit, so the whole tree can be stopped: cancelling the calling task sends
    /// SIGTERM to the group, then SIGKILL two seconds later.
    static func run(_ command: [String], environment: [String: String], directory: URL, stdout: ChildOutput, stderr: ChildOutput)
        async throws -> ProcessStatus
    {
        await wait(for: try start(command, environment: environment, directory: directory, stdout: stdout, stderr: stderr))
    }

    /// Starts a program as the leader of a new process group (`run`).
    static func start(_ command: [String], environment: [String: String], directory: URL, stdout: ChildOutput, stderr: ChildOutput)
        throws -> ChildProcess
    {
        try ChildProcess(command, environment: environment, directory: directory, stdout: stdout, stderr: stderr, newProcessGroup: true)
    }

    /// Waits for a child started by `start`; cancelling the calling task stops its group.
    static func wait(for child: ChildProcess) async -> ProcessStatus {
        await withTaskCancellationHandler {
            await child.wait()
        } onCancel: {
            child.terminate(grace: 2)
        }
    }
}
