import CWOM
import Foundation
import LegacyTasks
import Storage

/// How a worker runs, read once at start (`tower worker --help` lists the flags; the legacy
/// environment names are honoured).
public struct WorkerConfiguration: Sendable {
    /// Tasks run at once (default: the number of cores).
    public var concurrency: Int
    /// Seconds between polls when nothing wakes the worker (`WORKER_POLL_INTERVAL`, default 5).
    public var pollInterval: Double
    /// How long a partly busy worker waits for more slots to free before it claims
    /// (`TOWER_CLAIM_GATHER_MS`, default 50 ms; 0 claims for each slot as it frees). See
    /// `BridgeWorker.claimLoop`.
    public var claimGather: Duration = .milliseconds(50)
    /// How long a finished attempt that finds the completer idle waits for others to share its
    /// transaction (`TOWER_COMPLETION_LINGER_MS`, default 1 ms; 0 writes it at once). See
    /// `Batcher`.
    public var completionLinger: Duration = .milliseconds(1)
    /// How many files of a Run's `artifacts/` become Artifacts, the first by path
    /// (`TOWER_ARTIFACT_LIMIT`, default 10,000; nil: every one). See `RunRecorder`.
    public var artifactLimit: Int? = RunRecorder.defaultArtifactLimit
    /// How long a claim holds without a heartbeat.
    public var leaseSeconds: Double
    /// How often the worker extends its leases and looks for cancellations.
    public var heartbeatSeconds: Double
    /// How often the worker looks for tasks whose lease expired.
    public var rescueSeconds: Double
    /// How long running work may finish after SIGTERM before it is stopped and requeued.
    public var gracePeriodSeconds: Double
    /// Attempts and the delay between them (`TOWER_RETRY_*`), for executor failures and for the
    /// tasks of lost workers alike.
    public var retry: RetryPolicy
    /// The root of the trace folders (`JCT_TRACE_ROOT`), one folder per run.
    public var traceRoot: URL
    /// Where executors work (`TOWER_WORKSPACE_ROOT`), one folder per Run, outside the trace
    /// folders: a checkout never lands in a trace, and is removed when the Run ends.
    public var workspaceRoot: URL
    /// `--keep-workspaces` (`TOWER_KEEP_WORKSPACES`): leave them for debugging.
    public var keepWorkspaces: Bool
    /// `TOWER_RETENTION_DAYS`: the hourly retention pass this worker runs (one process at a
    /// time prunes); nil: none.
    public var retention: Retention.Options?
    /// How often that pass runs (an hour), and how long after the start the first does (a minute).
    public var retentionInterval: Duration = .seconds(3600)
    public var retentionFirstPass: Duration = .seconds(60)
    /// Which executor runs which operation.
    public var executors: ExecutorRegistry
    /// `JCT_REVIEW_AUTO_APPROVE` and `JCT_REVIEW_AUTO_APPROVE_VERDICTS`.
    public var reviewAutoApprove: Bool
    public var autoApproveVerdicts: [String]
    /// host + pid + a ULID, new at each start.
    public var workerId: String

    public init(concurrency: Int = ProcessInfo.processInfo.activeProcessorCount, pollInterval: Double = 5,
        leaseSeconds: Double = 30, heartbeatSeconds: Double = 1, rescueSeconds: Double = 5,
        gracePeriodSeconds: Double = 30, retry: RetryPolicy = RetryPolicy(),
        traceRoot: URL, retention: Retention.Options? = nil, workspaceRoot: URL? = nil, keepWorkspaces: Bool = false, executors: ExecutorRegistry = ExecutorRegistry(), reviewAutoApprove: Bool = false,
        autoApproveVerdicts: [String] = ["pass"], workerId: String = WorkerConfiguration.makeWorkerId())
    {
        self.concurrency = max(1, concurrency)
        self.pollInterval = pollInterval > 0 ? pollInterval : 5
        self.leaseSeconds = leaseSeconds
        self.heartbeatSeconds = heartbeatSeconds
        self.rescueSeconds = rescueSeconds
        self.gracePeriodSeconds = gracePeriodSeconds
        self.retry = retry
        self.traceRoot = traceRoot
        self.workspaceRoot = workspaceRoot ?? traceRoot.deletingLastPathComponent().appendingPathComponent("workspaces", isDirectory: true)
        self.keepWorkspaces = keepWorkspaces
        self.retention = retention
        self.executors = executors
        self.reviewAutoApprove = reviewAutoApprove
        self.autoApproveVerdicts = autoApproveVerdicts
        self.workerId = workerId
    }

    /// `<host>-<pid>-<ULID>`, at most 100 characters (the `assigned_to` column).
    public static func makeWorkerId() -> String {
        let host = ProcessInfo.processInfo.hostName.split(separator: ".").first.map(String.init) ?? "host"
        return String("\(host.prefix(40))-\(ProcessInfo.processInfo.processIdentifier)-\(ULID.make())".prefix(100))
    }


    /// Parses `JCT_TRACE_ROOT`: `file:///abs/path`, or a plain path (relative to the working
    /// directory). Other schemes are refused with a clear error.
    public static func traceRoot(from value: String?, default fallback: String) throws -> URL {
        let text = value.flatMap { $0.isEmpty ? nil : $0 } ?? fallback
        if text.hasPrefix("file://") {
            guard let url = URL(string: text), url.isFileURL, url.path.hasPrefix("/") else {
                throw WorkerError("JCT_TRACE_ROOT '\(text)' must be an absolute file:/// URI or a path")
            }
            return url.standardizedFileURL
        }
        if text.contains("://") {
            throw WorkerError("JCT_TRACE_ROOT '\(text)': only local folders (file:///… or a path) are supported")
        }
        return URL(fileURLWithPath: text).standardizedFileURL
    }
}

extension WorkerConfiguration {
    /// `TOWER_WORKSPACE_ROOT`: a path (or `file:///…`), never inside the trace root (every file
    /// of a trace folder is hashed and listed).
    public static func workspaceRoot(from value: String?, traceRoot: URL) throws -> URL? {
        guard let text = value, !text.isEmpty else { return nil }
        let url: URL
        if text.hasPrefix("file://") {
            guard let parsed = URL(string: text), parsed.isFileURL, parsed.path.hasPrefix("/") else {
                throw WorkerError("TOWER_WORKSPACE_ROOT '\(text)' must be an absolute file:/// URI or a path")
            }
            url = parsed.standardizedFileURL
        } else {
            url = URL(fileURLWithPath: text).standardizedFileURL
        }
        if (url.path + "/").hasPrefix(traceRoot.path + "/") {
            throw WorkerError("TOWER_WORKSPACE_ROOT '\(url.path)' must not be inside the trace root '\(traceRoot.path)'")
        }
        return url
    }
}

/// A worker failure with a message for the operator.
public struct WorkerError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

