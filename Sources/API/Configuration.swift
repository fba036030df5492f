import LegacyTasks

/// What the HTTP API needs to know, read once at start.
public struct APIConfiguration: Sendable {
    /// `JCT_API_KEY`; nil or empty turns authentication off.
    public var apiKey: String?
    /// `JCT_ALLOWED_REPO_PREFIXES`.
    public var policy: PolicyConfig
    /// What `GET /version` reports.
    public var version: String
    /// The largest request body accepted, in bytes.
    public var maxBodyBytes: Int

    public init(apiKey: String? = nil, policy: PolicyConfig = PolicyConfig(allowedRepoPrefixes: []),
        version: String = "0.1.0", maxBodyBytes: Int = 10 << 20)
    {
        self.apiKey = apiKey.flatMap { $0.isEmpty ? nil : $0 }
        self.policy = policy
        self.version = version
        self.maxBodyBytes = maxBodyBytes
    }
}
