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

    /// The end of an attempt: task, run, issue, artifacts, evidence pack and review policy in one
    /// transaction, fenced on the task's attempt.
    func complete(_ claimed: ClaimedTask, result: ExecutionResult, reason: StopReason?, trace: TraceStore) async throws
        -> String
    {
        let now = Timestamp.now()
        var task = claimed.task
        var run = claimed.run
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
        let started = run.telemetry.startedAt ?? now
        run.telemetry = Telemetry(startedAt: started, endedAt: now, durationS: max(0, now.seconds(since: started)))
        run.cost = result.cost
        run.updatedAt = now
        let taskStatus: TaskStatus
        let issueStatus: Status
        switch outcome {
        case .succeeded:
            taskStatus = .completed
            run.status = .done
            issueStatus = .done
        case .canceled:
            taskStatus = .cancelled
            run.status = .canceled
            issueStatus = .canceled
        case .failed, .timedOut:
            taskStatus = .failed
            run.status = .failed
            issueStatus = .failed
            run.failure = Failure(category: category, message: String((message ?? "execution failed").prefix(4000)))
        }
        // Artifacts: every output file, the logs, and the trace folder itself.
        var artifacts = try collectArtifacts(claimed, trace: trace, now: now)
        run.outputs = RunOutputs(
            artifacts: [], resultSummary: result.summary.map { String($0.prefix(4000)) },
            decisionLog: result.decisionLog)
        var evidence: EvidencePack?
        if outcome != .canceled {
            evidence = Prover.prove(
                run: run, issue: claimed.issue, packet: claimed.packet, artifacts: artifacts,
                prover: Actor(kind: .system, id: workerId), trace: trace)
        }
        try trace.writeJSON(
            "manifest.json",
            [
                "version": "1.0", "task_id": .string(task.id), "run_id": .string(run.id), "trace_id": task.traceId.json,
                "worker_id": .string(workerId),
                "executor": ["name": .string(claimed.executor.name), "version": .string(claimed.executor.version)],
                "started_at": started.json, "completed_at": now.json, "duration_seconds": run.telemetry.durationS.json,
                "status": .string(taskStatus.rawValue),
                "result": [
                    "success": .bool(outcome == .succeeded), "status": .string(outcome.rawValue),
                    "outputs": .object(result.outputs), "error_message": message.json,
                ],
            ])
        let (files, digest) = try trace.manifestDigest()
        let traceArtifact = Artifact(
            header: ObjectHeader(traceId: task.traceId), producedBy: run.ref, forIssue: claimed.issue.ref, type: .trace,
            title: "Trace folder", uri: trace.rootURI, digest: digest, mediaType: "inode/directory",
            sizeBytes: files.reduce(0) { $0 + $1.size }, meta: ["files": .int(files.count)], createdAt: now)
        artifacts.append(traceArtifact)
        run.outputs.artifacts = artifacts.map(\.ref)
        task.status = taskStatus
        task.completedAt = now
        task.result = .object(result.outputs)
        task.error = outcome == .succeeded ? nil : message
        task.tracePath = trace.uri
        task.leaseExpiresAt = nil
        let finishedTask = task
        let finishedRun = run
        let allArtifacts = artifacts
        let pack = evidence
        let worker = self.actor
        let configuration = self.configuration
        let finalOutcome = outcome
        let finalMessage = message
        try await database.write { store in
            let outcome = finalOutcome
            let message = finalMessage
            guard try await store.queue.finish(finishedTask, worker: configuration.workerId) else { throw Fenced() }
            var finalRun = finishedRun
            try await store.artifacts.insert(allArtifacts)
            var issueTarget = issueStatus
            if let pack { try await store.evidencePacks.insert(pack) }
            var review: ReviewDecision?
            if outcome == .succeeded, let pack {
                // The review policy (reference §6.6).
                if configuration.reviewAutoApprove && configuration.autoApproveVerdicts.contains(pack.verdict.rawValue) {
                    review = ReviewDecision(
                        header: ObjectHeader(traceId: finishedTask.traceId), forEvidencePack: pack.ref, forRun: finalRun.ref,
                        forIssue: claimed.issue.ref,
                        reviewer: Actor(kind: .system, id: "auto-approve", display: "Automatic Review (Policy-Based)"),
                        decision: .approved, decisionReason: "Auto-approved: verdict=\(pack.verdict.rawValue)",
                        tags: ["auto-approved", "v0"])
                } else {
                    finalRun.status = .underReview
                    issueTarget = .underReview
                }
            }
            try await store.runs.update(finalRun)
            try await store.issues.overwriteStatus(claimed.issue.id, issueTarget, at: now)
            var entries: [AuditEntry] = [
                AuditEntry(
                    ts: now, actor: worker, action: .statusChanged, entityKind: "Task", entityId: finishedTask.id,
                    before: ["status": "running"], after: ["status": finishedTask.status.json],
                    note: "Status changed: running -> \(finishedTask.status.rawValue)", traceId: finishedTask.traceId),
                AuditEntry(
                    ts: now, actor: worker, action: .statusChanged, entityKind: "Run", entityId: finalRun.id,
                    before: ["status": "running"], after: ["status": finishedRun.status.json],
                    note: outcome == .succeeded ? "Execution completed" : "Execution \(outcome.rawValue): \(message ?? "")",
                    traceId: finishedTask.traceId),
            ]
            for artifact in allArtifacts {
                entries.append(
                    AuditEntry(
                        ts: now, actor: worker, action: .created, entityKind: "Artifact", entityId: artifact.id,
                        after: artifact.json, traceId: finishedTask.traceId))
            }
            if let pack {
                entries.append(
                    AuditEntry(
                        ts: now, actor: worker, action: .created, entityKind: "EvidencePack", entityId: pack.id,
                        after: pack.json, note: "Evidence pack created with verdict: \(pack.verdict.rawValue)",
                        traceId: finishedTask.traceId))
            }
            if finalRun.status == .underReview {
                entries.append(
                    AuditEntry(
                        ts: now, actor: worker, action: .statusChanged, entityKind: "Run", entityId: finalRun.id,
                        before: ["status": "done"], after: ["status": "under_review"], note: "Awaiting manual review",
                        traceId: finishedTask.traceId))
            }
            entries.append(
                AuditEntry(
                    ts: now, actor: worker, action: .statusChanged, entityKind: "Issue", entityId: claimed.issue.id,
                    before: ["status": "running"], after: ["status": issueTarget.json],
                    note: issueTarget == .underReview ? "Awaiting manual review" : "Status changed: running -> \(issueTarget.rawValue)",
                    traceId: finishedTask.traceId))
            try await store.audit.append(entries)
            if let review {
                // Through under_review to done, as the legacy policy did, in this transaction.
                finalRun.status = .underReview
                try await store.runs.update(finalRun)
                try await store.issues.overwriteStatus(claimed.issue.id, .underReview, at: now)
                try await store.reviews.insert(review)
                try await store.audit.created("ReviewDecision", review.id, snapshot: review.json, by: worker, traceId: finishedTask.traceId)
                finalRun.status = .done
                try await store.runs.update(finalRun)
                try await store.issues.overwriteStatus(claimed.issue.id, .done, at: now)
                try await store.audit.statusChanged(
                    "Issue", claimed.issue.id, from: "under_review", to: "done", by: worker,
                    note: "Review decision: approved", traceId: finishedTask.traceId)
                try await store.audit.statusChanged(
                    "Run", finalRun.id, from: "under_review", to: "done", by: worker, note: "Review decision: approved",
                    traceId: finishedTask.traceId)
            }
        }
        return taskStatus.rawValue
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
            guard let attributes = try? FileManager.default.attributesOfItem(atPath: url.path),
                let size = attributes[.size] as? Int, size > 0
            else { continue }
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
        let now = Timestamp.now()
        var task = claimed.task
        task.status = .queued
        task.attempt = max(0, task.attempt - 1)
        task.leaseExpiresAt = nil
        task.runAfter = nil
        var run = claimed.run
        run.status = .canceled
        run.telemetry.endedAt = now
        run.updatedAt = now
        trace.log("Execution stopped: the worker shut down; the task was requeued")
        let worker = self.actor
        let workerId = self.workerId
        let requeued = task
        let canceled = run
        try await database.write { store in
            // Fenced on the attempt that was running (before it was given back).
            let rows = try await store.session.query(
                """
                UPDATE tasks SET status = 'queued', attempt = $1, lease_expires_at = NULL, run_after = NULL
                WHERE id = $2 AND attempt = $3 AND status = 'running' AND assigned_to = $4 RETURNING id
                """, [.int(requeued.attempt), .text(requeued.id), .int(claimed.task.attempt), .text(workerId)])
            guard !rows.isEmpty else { throw Fenced() }
            try await store.runs.update(canceled)
            try await store.issues.overwriteStatus(claimed.issue.id, .ready, at: now)
            try await store.audit.statusChanged(
                "Task", requeued.id, from: "running", to: "queued", by: worker,
                note: "Worker shut down; requeued without counting the attempt", traceId: requeued.traceId)
            try await store.audit.statusChanged(
                "Run", canceled.id, from: "running", to: "canceled", by: worker, note: "Worker shut down", traceId: requeued.traceId)
            try await store.queue.notify()
        }
    }

    /// The ids every log line about a task carries.
    static func metadata(_ task: TaskRecord, runId: String?) -> Logger.Metadata {
        ["task_id": "\(task.id)", "run_id": "\(runId ?? "-")", "trace_id": "\(task.traceId ?? "-")"]
    }

    /// A worker-side error (trace folder unwritable, database hiccup): the attempt fails.
    func failAfterWorkerError(_ claimed: ClaimedTask, message: String) async {
        let now = Timestamp.now()
        var task = claimed.task
        task.status = .failed
        task.completedAt = now
        task.error = "Worker error: \(message)"
        var run = claimed.run
        run.status = .failed
        run.failure = Failure(category: .runtime, message: String("Worker error: \(message)".prefix(4000)))
        run.telemetry.endedAt = now
        run.updatedAt = now
        let failedTask = task
        let failedRun = run
        let worker = self.actor
        let workerId = self.workerId
        do {
            try await database.write { store in
                guard try await store.queue.finish(failedTask, worker: workerId) else { return }
                try await store.runs.update(failedRun)
                try await store.issues.overwriteStatus(claimed.issue.id, .failed, at: now)
                try await store.audit.statusChanged(
                    "Run", failedRun.id, from: "running", to: "failed", by: worker, note: "Worker error: \(message)",
                    traceId: failedTask.traceId)
            }
        } catch {
            logger.error(
                "cannot record a worker error", metadata: Self.metadata(task, runId: run.id).merging(["error": "\(error)"]) { $1 })
        }
    }
}
