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
        claimed.executor.checkPlacement()
        var log = logger
        for (key, value) in Self.metadata(task, runId: claimed.run.id) { log[metadataKey: key] = value }
        var folder: TraceStore?
        do {
            let recorder = try RunRecorder(
                claim: claimed.claim, executor: (claimed.executor.name, claimed.executor.version), holder: workerId,
                traceRoot: traceRoot, traceInMemory: claimed.executor.keepsTraceInMemory, artifactLimit: configuration.artifactLimit)
            let trace = recorder.trace
            folder = trace
            try recorder.start()
            log.info("run started", metadata: ["executor": "\(claimed.executor.name)", "attempt": "\(task.attempt)"])
            let workspace = workspaceRoot.folderPath(claimed.run.id)
            let context = ExecutionContext(
                task: task, runId: claimed.run.id, traceId: task.traceId ?? claimed.run.id, issue: claimed.issue,
                contextPacket: claimed.packet, constraintSnapshot: claimed.snapshot, trace: trace, workerId: workerId,
                workspacePath: workspace)
            let executor = claimed.executor
            // An unstructured task does not inherit the run's executor preference (SE-0417).
            let execution = Task(executorPreference: executor.runsOn) {
                executor.checkPlacement()
                return await executor.execute(context)
            }
            await state.attach(task.id) { execution.cancel() }
            let state = self.state
            let timer = Timers.after(.seconds(task.constraints.timeBudgetSeconds)) {
                Task { await state.stop(task.id, .timedOut) }
            }
            let result = await execution.value
            timer.cancel()
            removeWorkspace(workspace, log: log)
            let reason = await state.reason(task.id)
            // The slot is free while the completion waits for its batch's commit: the next claim
            // overlaps it, as River's producer frees a slot when its job returns. The attempt stays
            // this worker's (heartbeat, shutdown) until the commit acknowledges it.
            if await state.ended(task.id) { await wake.fire() }
            switch reason {
            case .shutdown:
                try await requeue(claimed, trace: trace)
                log.info("run stopped by shutdown; task requeued")
            case .leaseLost:
                log.warning("run abandoned: the task was rescued by another worker")
            default:
                let outcome = try await complete(claimed, recorder: recorder, result: result, reason: reason)
                log.info("run finished", metadata: ["status": "\(outcome)"])
                let retried = outcome == TaskStatus.queued.rawValue
                series.completions(task.operation, status: retried ? "retried" : outcome).increment()
                if retried { series.retries(task.operation).increment() }
                if outcome == "cancelled" { TowerMetrics.cancellations.increment() }
                if let started = claimed.run.telemetry.startedAt {
                    series.runDuration(task.operation).recordNanoseconds(max(0, (Timestamp.now().microseconds - started.microseconds) * 1000))
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
        // A folder kept in memory reaches the disk however the attempt ended (a completion wrote
        // it already): an abandoned or failed Run keeps what it had written.
        do {
            try folder?.flush()
        } catch {
            log.warning("cannot write the trace folder", metadata: ["error": "\(error)"])
        }
        await state.remove(task.id)
        await wake.fire()  // a slot is free
    }

    /// The end of an attempt, recorded by the engine's batch completer, guarded on the attempt.
    func complete(_ claimed: ClaimedTask, recorder: RunRecorder, result: ExecutionResult, reason: StopReason?) async throws -> String {
        switch try await completer.submit(try recorder.completion(result, reason: reason)) {
        case .fenced: throw Fenced()
        case .finished(let status): return status.rawValue
        }
    }

    /// Shutdown after the grace period: the run is canceled and the task goes back to the queue
    /// without counting the attempt.
    func requeue(_ claimed: ClaimedTask, trace: TraceStore) async throws {
        trace.log("Execution stopped: the worker shut down; the task was requeued")
        try trace.flush()
        if try await engine.requeue(claimed.claim, holder: workerId, note: "Worker shut down") == .fenced { throw Fenced() }
    }

    /// The Run's workspace goes when the Run ends, whatever the outcome, so that workspaces never
    /// pile up (`--keep-workspaces` leaves them for debugging).
    func removeWorkspace(_ workspace: String, log: Logger) {
        guard !configuration.keepWorkspaces, FileManager.default.fileExists(atPath: workspace) else { return }
        do {
            try FileManager.default.removeItem(atPath: workspace)
        } catch {
            log.warning("cannot remove the workspace", metadata: ["workspace": "\(workspace)", "error": "\(error)"])
        }
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
