import CWOM
import Foundation
import LegacyTasks
import Logging
import Metrics
import Storage
import TowerJSON

/// Thrown inside a completion transaction when the task is no longer this worker's attempt.
struct Fenced: Error {}

extension BridgeWorker {
    /// Runs one claimed task: trace folder, executor under its time budget, then the completion
    /// transaction (fenced on the attempt).
    func process(_ claimed: ClaimedTask) async {
        let task = claimed.task
        var log = logger
        for (key, value) in Self.metadata(task, runId: claimed.run.id) { log[metadataKey: key] = value }
        do {
            let trace = try TraceStore(root: configuration.traceRoot, runId: claimed.run.id)
            try writeInitialTrace(claimed, trace: trace)
            log.info("run started", metadata: ["executor": "\(claimed.executor.name)", "attempt": "\(task.attempt)"])
            let context = ExecutionContext(
                task: task, runId: claimed.run.id, traceId: task.traceId ?? claimed.run.id, issue: claimed.issue,
                contextPacket: claimed.packet, constraintSnapshot: claimed.snapshot, trace: trace, workerId: workerId)
            let executor = claimed.executor
            let execution = Task { await executor.execute(context) }
            await state.attach(task.id) { execution.cancel() }
            let budget = Double(task.constraints.timeBudgetSeconds)
            let timer = Task {
                try? await Task.sleep(for: .seconds(budget))
                if !Task.isCancelled { await self.state.stop(task.id, .timedOut) }
            }
            let result = await execution.value
            timer.cancel()
            let reason = await state.reason(task.id)
            switch reason {
            case .shutdown:
                try await requeue(claimed, trace: trace)
                log.info("run stopped by shutdown; task requeued")
            case .leaseLost:
                log.warning("run abandoned: the task was rescued by another worker")
            default:
                let outcome = try await complete(claimed, result: result, reason: reason, trace: trace)
                log.info("run finished", metadata: ["status": "\(outcome)"])
                let operation = task.operation.rawValue
                Counter(label: "tower_task_completions_total", dimensions: [("operation", operation), ("status", outcome)]).increment()
                if outcome == "cancelled" { Counter(label: "tower_task_cancellations_total").increment() }
                if let started = claimed.run.telemetry.startedAt {
                    Metrics.Timer(label: "tower_run_duration_seconds", dimensions: [("operation", operation)]).recordNanoseconds(
                        max(0, (Timestamp.now().microseconds - started.microseconds) * 1000))
                }
            }
        } catch is Fenced {
            log.warning("result discarded: the task is no longer this worker's attempt")
        } catch let error as StorageError where error.kind == .unreachable {
            // The outcome could not be recorded. The task keeps no lease (the heartbeat extends only
            // what this worker runs), so a rescuer gives it a new attempt: a database hiccup must
            // not fail work for good.
            log.warning("database unreachable while recording the run; the task is retried when its lease expires",
                metadata: ["error": "\(error)"])
        } catch {
            log.error("run failed", metadata: ["error": "\(error)"])
            await failAfterWorkerError(claimed, message: "\(error)")
        }
        await state.remove(task.id)
        await wake.fire()  // a slot is free
    }

    func writeInitialTrace(_ claimed: ClaimedTask, trace: TraceStore) throws {
        let task = claimed.task
        try trace.writeJSON(
            "manifest.json",
            [
                "version": "1.0", "task_id": .string(task.id), "run_id": .string(claimed.run.id),
                "trace_id": task.traceId.json, "worker_id": .string(workerId),
                "executor": ["name": .string(claimed.executor.name), "version": .string(claimed.executor.version)],
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
        try trace.writeJSON("context.json", claimed.packet.json)
        try trace.writeJSON("constraints.json", claimed.snapshot.json)
        trace.log(
            "Execution started",
            details: [
                "Executor: \(claimed.executor.name) v\(claimed.executor.version)", "Task ID: \(task.id)",
                "Operation: \(task.operation.rawValue)", "Objective: \(task.objective)",
                "Target: \(task.target.repo):\(task.target.ref)", "Time budget: \(task.constraints.timeBudgetSeconds)s",
                "Context packet: \(claimed.packet.id) (version \(claimed.packet.version))",
                "Constraint snapshot: \(claimed.snapshot.id)",
            ])
    }

    /// The end of an attempt: the trace folder's manifest, the Artifacts and the evidence pack
    /// are prepared here; the engine writes task, Run, Issue, Artifacts, evidence and the review
    /// policy's decision in one transaction, guarded on the attempt.
    func complete(_ claimed: ClaimedTask, result: ExecutionResult, reason: StopReason?, trace: TraceStore) async throws
        -> String
    {
        let now = Timestamp.now()
        let task = claimed.task
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
        let started = claimed.run.telemetry.startedAt ?? now
        let telemetry = Telemetry(startedAt: started, endedAt: now, durationS: max(0, now.seconds(since: started)))
        let outputs = RunOutputs(
            artifacts: [], resultSummary: result.summary.map { String($0.prefix(4000)) }, decisionLog: result.decisionLog)
        // Artifacts: every output file, the logs, and the trace folder itself.
        var artifacts = try collectArtifacts(claimed, trace: trace, now: now)
        var evidence: EvidencePack?
        if outcome != .canceled {
            evidence = Prover.prove(
                run: claimed.run, succeeded: outcome == .succeeded,
                failure: outcome == .succeeded ? nil : Failure(category: category, message: message ?? "execution failed"),
                issue: claimed.issue, packet: claimed.packet, artifacts: artifacts, prover: Actor(kind: .system, id: workerId),
                trace: trace)
        }
        let taskStatus: TaskStatus = outcome == .succeeded ? .completed : outcome == .canceled ? .cancelled : .failed
        try trace.writeJSON(
            "manifest.json",
            [
                "version": "1.0", "task_id": .string(task.id), "run_id": .string(claimed.run.id), "trace_id": task.traceId.json,
                "worker_id": .string(workerId),
                "executor": ["name": .string(claimed.executor.name), "version": .string(claimed.executor.version)],
                "started_at": started.json, "completed_at": now.json, "duration_seconds": telemetry.durationS.json,
                "status": .string(taskStatus.rawValue),
                "result": [
                    "success": .bool(outcome == .succeeded), "status": .string(outcome.rawValue),
                    "outputs": .object(result.outputs), "error_message": message.json,
                ],
            ])
        let (files, digest) = try trace.manifestDigest()
        artifacts.append(
            Artifact(
                header: ObjectHeader(traceId: task.traceId), producedBy: claimed.run.ref, forIssue: claimed.issue.ref,
                type: .trace, title: "Trace folder", uri: trace.rootURI, digest: digest, mediaType: "inode/directory",
                sizeBytes: files.reduce(0) { $0 + $1.size }, meta: ["files": .int(files.count)], createdAt: now))
        let completion = LifecycleEngine.Completion(
            claim: claimed.claim, holder: workerId, outcome: outcome, message: message, failureCategory: category,
            result: .object(result.outputs), tracePath: trace.uri, telemetry: telemetry, cost: result.cost, outputs: outputs,
            artifacts: artifacts, evidence: evidence)
        switch try await completer.submit(completion) {
        case .fenced: throw Fenced()
        case .finished(let status): return status.rawValue
        }
    }

    /// Output files (`artifacts/`) and non-empty logs become Artifacts with `file://` uri,
    /// sha256 digest, size and media type.
    func collectArtifacts(_ claimed: ClaimedTask, trace: TraceStore, now: Timestamp) throws -> [Artifact] {
        var artifacts: [Artifact] = []
        for file in try TraceFile.scan(trace.artifactsFolder) {
            let url = trace.artifactsFolder.appendingPathComponent(file.path)
            let type: ArtifactType
            switch (file.path as NSString).pathExtension.lowercased() {
            case "patch", "diff": type = .codePatch
            case "log": type = .log
            case "md", "txt", "rst", "html": type = .doc
            case "json", "csv", "jsonl": type = .report
            default: type = .binary
            }
            let isStub = claimed.executor.name == "stub" && file.path == "output.md"
            artifacts.append(
                Artifact(
                    header: ObjectHeader(traceId: claimed.task.traceId), producedBy: claimed.run.ref,
                    forIssue: claimed.issue.ref, type: type, title: isStub ? "Stub Output" : String(file.path.prefix(512)),
                    uri: url.absoluteURL.absoluteString, digest: "sha256:" + file.sha256,
                    mediaType: TraceFile.mediaType(file.path), sizeBytes: file.size, meta: ["path": .string("artifacts/" + file.path)],
                    createdAt: now))
        }
        for log in ["stdout.log", "stderr.log"] {
            let url = trace.url(log)
            guard let size = TraceFile.regularFileSize(url.path), size > 0 else { continue }
            artifacts.append(
                Artifact(
                    header: ObjectHeader(traceId: claimed.task.traceId), producedBy: claimed.run.ref,
                    forIssue: claimed.issue.ref, type: .log, title: log, uri: url.absoluteURL.absoluteString,
                    digest: "sha256:" + (try TraceFile.sha256(url.path)), mediaType: "text/plain", sizeBytes: size,
                    createdAt: now))
        }
        return artifacts
    }

    /// Shutdown after the grace period: the run is canceled and the task goes back to the queue
    /// without counting the attempt.
    func requeue(_ claimed: ClaimedTask, trace: TraceStore) async throws {
        trace.log("Execution stopped: the worker shut down; the task was requeued")
        if try await engine.requeue(claimed.claim, holder: workerId, note: "Worker shut down") == .fenced { throw Fenced() }
    }

    /// The ids every log line about a task carries.
    static func metadata(_ task: TaskRecord, runId: String?) -> Logger.Metadata {
        ["task_id": "\(task.id)", "run_id": "\(runId ?? "-")", "trace_id": "\(task.traceId ?? "-")"]
    }

    /// A worker-side error (trace folder unwritable): the attempt fails, task, Run and Issue.
    func failAfterWorkerError(_ claimed: ClaimedTask, message: String) async {
        do {
            _ = try await engine.fail(claimed.claim, holder: workerId, message: message)
        } catch {
            logger.error(
                "cannot record a worker error",
                metadata: Self.metadata(claimed.task, runId: claimed.run.id).merging(["error": "\(error)"]) { $1 })
        }
    }
}
