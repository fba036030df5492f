/// What a key may do. A route names the scopes that let a request through; `admin` passes every
/// route. Scopes do not imply one another (a `write` key cannot read), so a key gets exactly the
/// powers it is given: `tower keys add ci --scope write --scope read`.
public enum Scope: String, Sendable, CaseIterable, Comparable {
    /// Every `GET`: tasks, CWOM objects, trace files, the audit log, `/openapi.json`, `/metrics`.
    case read
    /// Enqueue, cancel, retry and the CWOM writes.
    case write
    /// Review decisions (`POST /cwom/reviews`).
    case review
    /// Claiming, reporting and completing tasks: the agents' routes (and the MCP server's tools).
    case agent
    /// Everything.
    case admin

    var rank: Int {
        switch self {
        case .read: 0
        case .write: 1
        case .review: 2
        case .agent: 3
        case .admin: 4
        }
    }

    public static func < (lhs: Scope, rhs: Scope) -> Bool { lhs.rank < rhs.rank }

    /// `read, write, review, agent, admin`, for messages.
    public static var names: String { allCases.map(\.rawValue).joined(separator: ", ") }
}

/// Who may call a route. Every route declares one when it is added to the router, so a route
/// without a decision cannot exist.
public enum RouteAccess: Sendable, Equatable {
    /// Anyone, with or without a key: liveness and version.
    case open
    /// `/metrics`: open when `TOWER_METRICS_PUBLIC=true`, else a `read` key.
    case metrics
    /// A key holding one of these scopes (or `admin`).
    case scopes(Set<Scope>)

    public static let read = RouteAccess.scopes([.read])
    public static let write = RouteAccess.scopes([.write])
    public static let review = RouteAccess.scopes([.review])

    /// The scopes that let a request through, `admin` included; empty for an open route.
    public func allowed(metricsPublic: Bool) -> Set<Scope> {
        switch self {
        case .open: return []
        case .metrics: return metricsPublic ? [] : [.read, .admin]
        case .scopes(let scopes): return scopes.union([.admin])
        }
    }
}
