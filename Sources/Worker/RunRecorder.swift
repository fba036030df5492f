import CWOM
import Foundation
import LegacyTasks
import Storage
import TowerJSON

/// The trace folder of one attempt and the record of its end, for whoever does the work: a
/// worker's executor or an agent over MCP. Both start the folder the same way (manifest, context,
/// constraints, log) and end it the same way (manifest, Artifacts for every output file and log,
/// the trace folder's digest, the evidence pack), so that a Run reads the same whoever ran it.
public struct RunRecorder: Sendable {
    public let claim: LifecycleEngine.Claim
    /// The executor recorded in the manifest (the Run's executor was set at the claim).
    public let executor: (name: String, version: String)
    /// The lease holder: a worker id, or an agent's key name.
    public let holder: String
    public let trace: TraceStore
    /// At most this many files of `artifacts/` become Artifacts (the first by path); nil: all.
    public let artifactLimit: Int?

    /// A command that leaves a build's output in `artifacts/` (a hundred thousand files) would
    /// otherwise make as many Artifacts and audit rows in its completion's one transaction.
    public static let defaultArtifactLimit = 10_000

    /// `traceInMemory`: the trace folder is built in memory and written when the attempt's
    /// completion is prepared (`TraceStore.flush`), for an executor that keeps its trace in memory.
    public init(
        claim: LifecycleEngine.Claim, executor: (name: String, version: String), holder: String, traceRoot: TraceRoot,
        traceInMemory: Bool = false, artifactLimit: Int? = RunRecorder.defaultArtifactLimit
    ) throws {
        self.claim = claim
        self.executor = executor
        self.holder = holder
        self.artifactLimit = artifactLimit
        self.trace = try TraceStore(root: traceRoot, runId: claim.run.id, inMemory: traceInMemory)
    }

    var task: TaskRecord { claim.task }

    /// The folder at the start of the attempt: `manifest.json` (status running), `context.json`,
    /// `constraints.json` and the first lines of `trace.log`.
    public func start() throws {
        let task = claim.task
        try trace.writeJSON(
            "manifest.json",
            [
                "version": "1.0", "task_id": .string(task.id), "run_id": .string(claim.run.id),
                "trace_id": task.traceId.json, "worker_id": .string(holder),
                "executor": ["name": .string(executor.name), "version": .string(executor.version)],
                "started_at": .string(Timestamp.now().iso8601), "status": "running", "attempt": .int(task.attempt),
                "task": [
                    "objective": .string(task.objective), "operation": task.operation.json,
                    "target": ["repo": .string(task.target.repo), "ref": .string(task.target.ref), "path": .string(task.target.path)],
                    "constraints": [
                        "time_budget_seconds": .int(task.constraints.timeBudgetSeconds),
                        "allow_network": .bool(task.constraints.allowNetwork), "allow_secrets": .bool(task.constraints.allowSecrets),
                    ],
                ],
            ])
        try trace.writeJSON("context.json", claim.packet.json)
        try trace.writeJSON("constraints.json", claim.snapshot.json)
        trace.log(
            "Execution started",
            details: [
                "Executor: \(executor.name) v\(executor.version)", "Task ID: \(task.id)",
                "Operation: \(task.operation.rawValue)", "Objective: \(task.objective)",
                "Target: \(task.target.repo):\(task.target.ref)", "Time budget: \(task.constraints.timeBudgetSeconds)s",
                "Context packet: \(claim.packet.id) (version \(claim.packet.version))",
                "Constraint snapshot: \(claim.snapshot.id)",
            ])
    }

    /// The end of an attempt as the engine records it: the final manifest, the Artifacts and the
    /// evidence pack are prepared here; the engine writes task, Run, Issue, Artifacts, evidence
    /// and the review policy's decision in one transaction, guarded on the attempt.
    ///
    /// `recorded` are Artifacts already stored for this Run (an agent reports them as it goes):
    /// their files are not recorded twice, and the evidence counts them.
    public func completion(_ result: ExecutionResult, reason: StopReason? = nil, recorded: [Artifact] = []) throws
        -> LifecycleEngine.Completion
    {
        let now = Timestamp.now()
        var outcome = result.outcome
        var message = result.errorMessage
        var category = result.failureCategory
        if reason == .timedOut {
            outcome = .timedOut
            message = "timed out after \(task.constraints.timeBudgetSeconds)s (the task's time budget); the process group was killed"
            category = .runtime
            trace.event("execution_timed_out", ["time_budget_seconds": .int(task.constraints.timeBudgetSeconds)])
        } else if reason == .cancelRequested {
            outcome = .canceled
            message = "cancelled on request"
            trace.event("execution_cancelled", [:])
        }
        let started = claim.run.telemetry.startedAt ?? now
        let telemetry = Telemetry(startedAt: started, endedAt: now, durationS: max(0, now.seconds(since: started)))
        let outputs = RunOutputs(
            artifacts: recorded.map(\.ref), resultSummary: result.summary.map { String($0.prefix(4000)) }, decisionLog: result.decisionLog)
        // Artifacts: every output file, the logs, and the trace folder itself.
        let recordedPaths = Set(recorded.compactMap { $0.meta["path"]?.stringValue })
        let (collected, hashed, omitted) = try collectArtifacts(now: now, except: recordedPaths)
        var artifacts = collected
        if omitted > 0, let kept = artifactLimit {
            trace.event("artifacts_over_limit", ["recorded": .int(kept), "not_recorded": .int(omitted)])
            trace.log(
                "Artifacts over the limit",
                details: [
                    "\(kept + omitted) files in artifacts/: the first \(kept) by path recorded as Artifacts (TOWER_ARTIFACT_LIMIT)",
                    "\(omitted) more stay in the folder, covered by its digest",
                ])
        }
        var evidence: EvidencePack?
        if outcome != .canceled {
            evidence = Prover.prove(
                run: claim.run, succeeded: outcome == .succeeded,
                failure: outcome == .succeeded ? nil : Failure(category: category, message: message ?? "execution failed"),
                issue: claim.issue, packet: claim.packet, artifacts: recorded + artifacts, prover: Actor(kind: .system, id: holder),
                trace: trace)
        }
        let taskStatus: TaskStatus = outcome == .succeeded ? .completed : outcome == .canceled ? .cancelled : .failed
        try trace.writeJSON(
            "manifest.json",
            [
                "version": "1.0", "task_id": .string(task.id), "run_id": .string(claim.run.id), "trace_id": task.traceId.json,
                "worker_id": .string(holder),
                "executor": ["name": .string(executor.name), "version": .string(executor.version)],
                "started_at": started.json, "completed_at": now.json, "duration_seconds": telemetry.durationS.json,
                "status": .string(taskStatus.rawValue),
                "result": [
                    "success": .bool(outcome == .succeeded), "status": .string(outcome.rawValue),
                    "outputs": .object(result.outputs), "error_message": message.json,
                ],
            ])
        let (files, digest) = try trace.manifestDigest(hashed: hashed)
        // On disk before the engine records the Run that points to it.
        try trace.flush()
        artifacts.append(
            Artifact(
                header: ObjectHeader(traceId: task.traceId), producedBy: claim.run.ref, forIssue: claim.issue.ref,
                type: .trace, title: "Trace folder", uri: trace.rootURI, digest: digest, mediaType: "inode/directory",
                sizeBytes: files.reduce(0) { $0 + $1.size }, meta: ["files": .int(files.count)], createdAt: now))
        return LifecycleEngine.Completion(
            claim: claim, holder: holder, outcome: outcome, message: message, failureCategory: category,
            result: .object(result.outputs), tracePath: trace.uri, telemetry: telemetry, cost: result.cost, outputs: outputs,
            artifacts: artifacts, evidence: evidence, retryable: result.retryable && outcome == .failed)
    }

    /// Output files (`artifacts/`, up to `artifactLimit`, but those at the paths of `recorded`
    /// Artifacts) and non-empty logs become Artifacts with `file://` uri, sha256 digest, size and
    /// media type; `hashed` are the files as read (paths inside the trace folder, every one), for
    /// the folder's digest; `omitted` the output files past the limit.
    func collectArtifacts(now: Timestamp, except recorded: Set<String> = [])
        throws -> (artifacts: [Artifact], hashed: [TraceFile], omitted: Int)
    {
        var artifacts: [Artifact] = []
        var hashed: [TraceFile] = []
        var omitted = 0
        for file in try trace.files(in: "artifacts") {
            hashed.append(TraceFile(path: "artifacts/" + file.path, sha256: file.sha256, size: file.size))
            if recorded.contains("artifacts/" + file.path) { continue }
            if let artifactLimit, artifacts.count >= artifactLimit {
                omitted += 1
                continue
            }
            let type: ArtifactType
            switch TraceFile.pathExtension(file.path) {
            case "patch", "diff": type = .codePatch
            case "log": type = .log
            case "md", "txt", "rst", "html": type = .doc
            case "json", "csv", "jsonl": type = .report
            default: type = .binary
            }
            let isStub = executor.name == "stub" && file.path == "output.md"
            artifacts.append(
                Artifact(
                    header: ObjectHeader(traceId: task.traceId), producedBy: claim.run.ref,
                    forIssue: claim.issue.ref, type: type, title: isStub ? "Stub Output" : String(file.path.prefix(512)),
                    uri: trace.fileURI("artifacts/" + file.path), digest: "sha256:" + file.sha256,
                    mediaType: TraceFile.mediaType(file.path), sizeBytes: file.size, meta: ["path": .string("artifacts/" + file.path)],
                    createdAt: now))
        }
        for log in ["stdout.log", "stderr.log"] {
            guard let file = try trace.file(log), file.size > 0 else { continue }
            hashed.append(file)
            artifacts.append(
                Artifact(
                    header: ObjectHeader(traceId: task.traceId), producedBy: claim.run.ref,
                    forIssue: claim.issue.ref, type: .log, title: log, uri: trace.fileURI(log),
                    digest: "sha256:" + file.sha256, mediaType: "text/plain", sizeBytes: file.size,
                    createdAt: now))
        }
        return (artifacts, hashed, omitted)
    }
}
