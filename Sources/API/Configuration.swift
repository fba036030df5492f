import Foundation
import LegacyTasks
import NIOCore
import Storage
import Worker

/// What the HTTP API needs to know, read once at start.
public struct APIConfiguration: Sendable {
    /// Keys and scopes (`JCT_API_KEY`, `TOWER_API_KEYS_FILE`, `TOWER_METRICS_PUBLIC`, `TOWER_RATE_LIMIT`).
    public var access: AccessConfiguration
    /// `JCT_ALLOWED_REPO_PREFIXES`.
    public var policy: PolicyConfig
    /// What `GET /version` reports.
    public var version: String
    /// Request size and time limits.
    public var limits: HTTPLimits
    /// `JCT_TRACE_ROOT`: where the runs of agents over MCP get their trace folders.
    public var traceRoot: URL
    /// What an agent's completion over MCP does after the prover (as a worker's).
    public var reviewPolicy: ReviewPolicy
    /// `TOWER_ARTIFACT_LIMIT`: at most this many files of an agent's `artifacts/` folder become
    /// Artifacts when it completes over MCP (nil: every one), as for a worker's runs.
    public var artifactLimit: Int?
    /// `TOWER_CORS_ORIGINS`: which other sites' pages may call the API.
    public var cors: CORSPolicy
    /// `TOWER_RETRY_*`: the attempts a task gets when it is enqueued (and by a retry).
    public var retry: RetryPolicy
    /// `TOWER_HTTP_THREADS`: the HTTP server's own event loops, each a thread that reads requests
    /// and runs their handlers (`HTTPServer`). By default one fewer than the machine's cores
    /// (`defaultHTTPThreads`). `tower api` has them only when the variable is set; otherwise it
    /// serves HTTP on the loops its Swift concurrency runs on (`APILoops` in the `tower` target).
    public var httpThreads: Int

    /// One event loop per core but one, at least one. NIO's default is one per core, as if the
    /// loops were the process's only busy threads; here a core's worth of work happens beside
    /// them: SQLite's writer thread commits every write (most of a core under load), PostgresNIO
    /// runs the database protocol on loops of its own, a `tower serve` runs its worker, and a
    /// PostgreSQL on the same machine runs its server processes. On two cores one loop instead of
    /// two answered `POST /tasks/enqueue` 10 % faster on SQLite and 13 % faster on PostgreSQL
    /// (docs/benchmarks.md, twenty-fifth session): fewer threads to share the cores, and the
    /// answers of one commit wake one loop, not two.
    public static var defaultHTTPThreads: Int { max(1, System.coreCount - 1) }

    public init(access: AccessConfiguration = AccessConfiguration(), policy: PolicyConfig = PolicyConfig(allowedRepoPrefixes: []),
        version: String = "0.1.0", limits: HTTPLimits = HTTPLimits(),
        traceRoot: URL = URL(fileURLWithPath: ".tower/runs", isDirectory: true), reviewPolicy: ReviewPolicy = ReviewPolicy(),
        cors: CORSPolicy = CORSPolicy(), retry: RetryPolicy = RetryPolicy(), httpThreads: Int = Self.defaultHTTPThreads,
        artifactLimit: Int? = RunRecorder.defaultArtifactLimit)
    {
        self.artifactLimit = artifactLimit
        self.httpThreads = max(1, httpThreads)
        self.cors = cors
        self.retry = retry
        self.access = access
        self.policy = policy
        self.version = version
        self.limits = limits
        self.traceRoot = traceRoot
        self.reviewPolicy = reviewPolicy
    }

    /// The legacy configuration: one full-access key (`JCT_API_KEY`; nil or empty turns keys off).
    public init(apiKey: String?, policy: PolicyConfig = PolicyConfig(allowedRepoPrefixes: []), version: String = "0.1.0") {
        self.init(access: AccessConfiguration(legacyKey: apiKey), policy: policy, version: version)
    }
}

/// How large and how slow a request may be. A client over a limit gets 413 (body), 431 (headers)
/// or its connection closed (too slow, or idle).
public struct HTTPLimits: Sendable, Equatable {
    /// `TOWER_MAX_BODY_BYTES`: the largest request body (10 MiB).
    public var maxBodyBytes: Int
    /// `TOWER_MAX_HEADER_BYTES`: the largest request line and headers together (32 KiB).
    public var maxHeaderBytes: Int
    /// `TOWER_READ_TIMEOUT`: seconds a request's body may take to arrive after its headers (30).
    public var readTimeoutSeconds: Int
    /// `TOWER_IDLE_TIMEOUT`: seconds a connection may stay without a request under way before it
    /// is closed; this also bounds how long a request's headers may take to arrive (60).
    public var idleTimeoutSeconds: Int

    public init(maxBodyBytes: Int = 10 << 20, maxHeaderBytes: Int = 32 << 10, readTimeoutSeconds: Int = 30, idleTimeoutSeconds: Int = 60) {
        self.maxBodyBytes = maxBodyBytes
        self.maxHeaderBytes = maxHeaderBytes
        self.readTimeoutSeconds = readTimeoutSeconds
        self.idleTimeoutSeconds = idleTimeoutSeconds
    }
}
