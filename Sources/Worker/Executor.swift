import CWOM
import Foundation
import LegacyTasks
import Storage
import TowerJSON

/// What an executor receives: the task and exactly the objects its Run is pinned to.
public struct ExecutionContext: Sendable {
    public var task: TaskRecord
    public var runId: String
    public var traceId: String
    public var issue: Issue
    public var contextPacket: ContextPacket
    public var constraintSnapshot: ConstraintSnapshot
    public var trace: TraceStore
    public var workerId: String
    /// A folder of the Run's own to work in, outside the trace folder; the worker removes it when
    /// the Run ends (unless told to keep it). What should outlive the Run goes to the trace's
    /// `artifacts/`. Kept as a path, joined as a string (`TraceRoot.folderPath`): a `URL` made
    /// for every Run cost a stub run 17,000 instructions, and only an executor that works in
    /// the folder asks for it (`workspace`).
    public var workspacePath: String
    /// `workspacePath` as a folder URL.
    public var workspace: URL { URL(fileURLWithPath: workspacePath, isDirectory: true) }
}

/// How an execution ended.
public typealias ExecutionOutcome = AttemptOutcome

public struct ExecutionResult: Sendable {
    public var outcome: ExecutionOutcome
    /// What goes into `tasks.result`.
    public var outputs: JSONObject
    public var summary: String?
    public var decisionLog: [String]
    public var cost: Cost
    public var errorMessage: String?
    public var failureCategory: FailureCategory
    /// The failure is transient (a rate-limited API, a flaky clone): try again while the task
    /// has attempts left (`RetryPolicy`).
    public var retryable: Bool

    public init(outcome: ExecutionOutcome, outputs: JSONObject = [:], summary: String? = nil, decisionLog: [String] = [],
        cost: Cost = Cost(), errorMessage: String? = nil, failureCategory: FailureCategory = .runtime, retryable: Bool = false)
    {
        self.retryable = retryable
        self.outcome = outcome
        self.outputs = outputs
        self.summary = summary
        self.decisionLog = decisionLog
        self.cost = cost
        self.errorMessage = errorMessage
        self.failureCategory = failureCategory
    }

    public var success: Bool { outcome == .succeeded }
}

/// Something that does the work of a task. Executors must tolerate being run more than once for
/// one task (delivery is at least once: a rescued task runs again) and must stop promptly when
/// their Swift task is cancelled (time budget, cancel request, shutdown).
public protocol TaskExecutor: Sendable {
    var name: String { get }
    var version: String { get }
    /// The Run's trace folder may be built in memory and written once when the attempt ends
    /// (`TraceStore.flush`): the same files, a fraction of the file operations. Only for an
    /// executor that works in this process and ends within moments, and reads no path of the
    /// folder: until the attempt ends nothing of it is on disk, for other processes to read or
    /// write, or for anyone to watch. Default false: the folder is written as the Run goes.
    var keepsTraceInMemory: Bool { get }
    func execute(_ context: ExecutionContext) async -> ExecutionResult
}

extension TaskExecutor {
    public var keepsTraceInMemory: Bool { false }

    /// Where a run of this executor goes, from its claim to its completion. An executor that
    /// keeps its trace in memory works in this process and ends within moments: its run stays on
    /// the worker's event loop with the claims and completions (nil: no preference), which spares
    /// it the thread hand-offs a run would otherwise cost (docs/worker.md, "Where a worker's code
    /// runs"). Any other may block on files of any size or a child process, which must never
    /// hold an event loop: `BlockingExecutor`.
    var runsOn: (any _Concurrency.TaskExecutor)? { keepsTraceInMemory ? nil : BlockingExecutor.shared }

    /// Debug builds stop here when a run that may block finds itself on an event loop (the tests
    /// run `tower worker` built so, on event loops).
    func checkPlacement() {
        assert(keepsTraceInMemory || !EventLoops.onLoop, "a run of '\(name)' may block and must not run on an event loop")
    }
}

/// Which executor runs which operation.
public struct ExecutorRegistry: Sendable {
    public var fallback: any TaskExecutor
    public var byOperation: [TaskOperation: any TaskExecutor]

    public init(fallback: any TaskExecutor = StubExecutor(), byOperation: [TaskOperation: any TaskExecutor] = [:]) {
        self.fallback = fallback
        self.byOperation = byOperation
    }

    public func executor(for operation: TaskOperation) -> any TaskExecutor { byOperation[operation] ?? fallback }
}

/// Instant and deterministic: writes `artifacts/output.md` as the legacy stub did, without its
/// one-second sleep.
public struct StubExecutor: TaskExecutor {
    public let name = "stub"
    public let version = "0.1.0"
    /// It writes its report and returns: nothing to watch, no other process.
    public var keepsTraceInMemory: Bool { true }

    public init() {}

    public func execute(_ context: ExecutionContext) async -> ExecutionResult {
        let task = context.task
        let trace = context.trace
        trace.event(
            "execution_started",
            [
                "executor": .string(name), "executor_version": .string(version), "task_id": .string(task.id),
                "run_id": .string(context.runId), "trace_id": .string(context.traceId),
            ])
        trace.event("context_packet_loaded", ["context_packet_id": .string(context.contextPacket.id), "version": .string(context.contextPacket.version)])
        let report = """
            # Stub Execution Report

            **Task ID:** \(task.id)
            **Run ID:** \(context.runId)
            **TaskOperation:** \(task.operation.rawValue)

            ## Objective

            \(task.objective)

            ## Target

            - Repository: \(task.target.repo)
            - Ref: \(task.target.ref)
            - Path: \(task.target.path.isEmpty ? "(root)" : task.target.path)

            ## Note

            This is a stub execution. No actual work was performed.

            ## Constraints Applied

            - Time budget: \(task.constraints.timeBudgetSeconds)s
            - Network access: \(task.constraints.allowNetwork ? "allowed" : "denied")
            - Secrets access: \(task.constraints.allowSecrets ? "allowed" : "denied")

            ---
            Generated by StubExecutor v\(version)

            """
        do {
            try trace.write("artifacts/output.md", report)
        } catch {
            return ExecutionResult(outcome: .failed, errorMessage: "cannot write the stub output: \(error)")
        }
        trace.event("artifact_created", ["path": "artifacts/output.md", "type": "stub_output"])
        trace.event("execution_completed", ["status": "succeeded", "duration_seconds": 0.0])
        return ExecutionResult(
            outcome: .succeeded,
            outputs: ["message": "Stub execution completed successfully", "artifact_path": "artifacts/output.md"],
            summary: "Stub execution completed successfully", decisionLog: ["stub: no work performed"])
    }
}
