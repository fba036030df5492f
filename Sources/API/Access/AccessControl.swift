import CWOM
import Foundation
import Storage
import Synchronization
import TowerJSON

/// Who asks: the key a request carried, with its scopes.
public struct Principal: Sendable, Equatable {
    public let name: String
    public let scopes: Set<Scope>
    /// `JCT_API_KEY`: full access, and the actors of what it does stay those the service always
    /// wrote, so legacy clients and their audit trail notice nothing.
    public let isLegacyKey: Bool

    public init(name: String, scopes: Set<Scope>, isLegacyKey: Bool = false) {
        self.name = name
        self.scopes = scopes
        self.isLegacyKey = isLegacyKey
    }

    /// The actor of the audit rows of what this key does: its name, an agent for an `agent` key,
    /// a person for a `review` key, else a system. Nil for the legacy key.
    public var actor: Actor? {
        if isLegacyKey { return nil }
        let kind: ActorKind = scopes.contains(.agent) ? .agent : scopes.contains(.review) ? .human : .system
        return Actor(kind: kind, id: name)
    }

    public func holds(any allowed: Set<Scope>) -> Bool { !scopes.isDisjoint(with: allowed) }
}

/// The access model, as configured at start: the legacy key, the keys file, whether `/metrics`
/// is open, and the default per-key rate limit.
public struct AccessConfiguration: Sendable {
    /// `JCT_API_KEY`: full access under the legacy 401 answer.
    public var legacyKey: String?
    /// The entries of `TOWER_API_KEYS_FILE`; nil when no file is configured. An empty file
    /// denies every keyed route.
    public var keys: [KeyEntry]?
    /// Where `keys` came from: SIGHUP re-reads it.
    public var keysFile: String?
    /// `TOWER_METRICS_PUBLIC`.
    public var metricsPublic: Bool
    /// `TOWER_RATE_LIMIT`: for keys whose line has no `rate=`; nil is unlimited.
    public var defaultRate: RateLimit?

    public init(legacyKey: String? = nil, keys: [KeyEntry]? = nil, keysFile: String? = nil, metricsPublic: Bool = false,
        defaultRate: RateLimit? = nil)
    {
        self.legacyKey = legacyKey.flatMap { $0.isEmpty ? nil : $0 }
        self.keys = keys
        self.keysFile = keysFile
        self.metricsPublic = metricsPublic
        self.defaultRate = defaultRate
    }

    /// Keys are required as soon as either kind is configured.
    public var isEnabled: Bool { legacyKey != nil || keys != nil }
}

/// The one gate of the API: the router asks it about every request before the route runs.
/// Keys are compared by their SHA-256 in constant time, against every configured key, so the time
/// of an answer says nothing about how close a guess was. The keys can be replaced while serving
/// (SIGHUP re-reads the file).
public final class AccessControl: Sendable {
    struct Keys: Sendable {
        var legacy: [UInt8]?
        var entries: [KeyEntry]?
    }

    private let keys: Mutex<Keys>
    public let metricsPublic: Bool
    let defaultRate: RateLimit?
    let limiter = RateLimiter()

    public init(_ configuration: AccessConfiguration) {
        keys = Mutex(Keys(legacy: configuration.legacyKey.map(KeyEntry.digest(of:)), entries: configuration.keys))
        metricsPublic = configuration.metricsPublic
        defaultRate = configuration.defaultRate
    }

    /// Whether any key is configured (else every route is open, as the legacy service without
    /// `JCT_API_KEY`).
    public var isEnabled: Bool { keys.withLock { $0.legacy != nil || $0.entries != nil } }

    /// Replaces the keys of the keys file; requests already admitted are not affected.
    public func replaceKeys(_ entries: [KeyEntry]) {
        keys.withLock { $0.entries = entries }
    }

    /// The names of the configured keys, for the start-up log.
    public var keyNames: [String] { keys.withLock { $0.entries?.map(\.name) ?? [] } }

    /// Admits a request to a route or throws its answer: 401 (the legacy body and
    /// `WWW-Authenticate: Bearer`) without a valid key, 429 with `Retry-After` over the key's
    /// rate, 403 naming the scope the key lacks. Returns the key, nil when access is open.
    public func admit(_ request: APIRequest, to access: RouteAccess, route: String) throws(APIError) -> Principal? {
        let allowed = access.allowed(metricsPublic: metricsPublic)
        guard isEnabled else { return nil }
        let principal = authenticate(request)
        if allowed.isEmpty { return principal }
        guard let principal else {
            throw APIError(.detail(401, "Invalid or missing API key", headers: [("www-authenticate", "Bearer")]))
        }
        if let rate = rate(for: principal), let wait = limiter.take(principal.name, rate: rate) {
            throw APIError(
                .detail(
                    429, .string("Rate limit of \(rate) for the key '\(principal.name)' exceeded; retry after \(wait) s"),
                    headers: [("retry-after", String(wait))]))
        }
        guard principal.holds(any: allowed) else {
            let needed = allowed.subtracting([.admin]).sorted().map(\.rawValue)
            throw APIError.detail(
                403,
                .string(
                    "The key '\(principal.name)' lacks the scope for \(route): it needs "
                        + needed.joined(separator: " or ") + " (or admin); it has "
                        + principal.scopes.sorted().map(\.rawValue).joined(separator: ", ")))
        }
        return principal
    }

    /// The key of `Authorization: Bearer <key>` (scheme case-insensitive, the key exactly as
    /// sent), or nil.
    func authenticate(_ request: APIRequest) -> Principal? {
        guard let header = request.header("authorization"), let space = header.firstIndex(of: " "),
            header[..<space].lowercased() == "bearer"
        else { return nil }
        return principal(forKey: String(header[header.index(after: space)...]))
    }

    /// The key's holder (constant time over every configured key), or nil.
    public func principal(forKey key: String) -> Principal? {
        let digest = KeyEntry.digest(of: key)
        let configured = keys.withLock { $0 }
        // Every key is compared, whatever matched before.
        var found: Principal?
        if let legacy = configured.legacy, Self.constantTimeEqual(legacy, digest) {
            found = Principal(name: "JCT_API_KEY", scopes: [.admin], isLegacyKey: true)
        }
        for entry in configured.entries ?? [] where Self.constantTimeEqual(entry.digest, digest) {
            found = Principal(name: entry.name, scopes: entry.scopes, isLegacyKey: false)
        }
        return found
    }

    /// Whether the key a principal signed in with is still configured with the same scopes (a
    /// console session ends when its key is revoked or changed).
    public func isCurrent(_ principal: Principal) -> Bool {
        keys.withLock { keys in
            if principal.isLegacyKey { return keys.legacy != nil }
            return keys.entries?.contains { $0.name == principal.name && $0.scopes == principal.scopes } ?? false
        }
    }

    func rate(for principal: Principal) -> RateLimit? {
        if principal.isLegacyKey { return defaultRate }
        let entry = keys.withLock { $0.entries?.first { $0.name == principal.name } }
        return entry?.rate ?? defaultRate
    }

    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for index in a.indices { difference |= a[index] ^ b[index] }
        return difference == 0
    }
}

/// A token bucket per key: `requests` tokens refilled over `seconds`, a burst of at most
/// `requests`.
final class RateLimiter: Sendable {
    struct Bucket {
        var tokens: Double
        var updated: ContinuousClock.Instant
    }

    private let buckets = Mutex<[String: Bucket]>([:])

    /// Takes a token for `key`: nil when there was one, else the whole seconds until there is.
    func take(_ key: String, rate: RateLimit, now: ContinuousClock.Instant = .now) -> Int? {
        let capacity = Double(rate.requests)
        let perSecond = capacity / Double(rate.seconds)
        return buckets.withLock { buckets in
            var bucket = buckets[key] ?? Bucket(tokens: capacity, updated: now)
            let seconds = Timers.seconds(bucket.updated.duration(to: now))
            bucket.tokens = min(capacity, bucket.tokens + max(0, seconds) * perSecond)
            bucket.updated = now
            defer { buckets[key] = bucket }
            if bucket.tokens >= 1 {
                bucket.tokens -= 1
                return nil
            }
            return max(1, Int(((1 - bucket.tokens) / perSecond).rounded(.up)))
        }
    }
}
