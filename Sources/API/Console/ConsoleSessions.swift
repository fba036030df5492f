import Foundation

/// The console's signed-in browsers: a random session token (the `HttpOnly` cookie) mapped to
/// the key that signed in and the CSRF token every form of that session carries. Sessions end
/// at sign-out, after `idleLimit` without a request, or when their key is revoked.
public actor ConsoleSessions {
    public struct Session: Sendable {
        public let principal: Principal
        public let csrf: String
        var lastSeen: ContinuousClock.Instant
    }

    private var sessions: [String: Session] = [:]
    let idleLimit: Duration
    /// The most sessions one key holds at once (browsers, tabs that signed in again): a new one
    /// beyond it ends the key's least recently used, so that signing in in a loop cannot grow
    /// the process without end.
    let sessionsPerKey: Int

    public init(idleLimit: Duration = .seconds(8 * 3600), sessionsPerKey: Int = 32) {
        self.idleLimit = idleLimit
        self.sessionsPerKey = sessionsPerKey
    }

    /// A new session for `principal`: its token (for the cookie) and its CSRF token.
    func open(_ principal: Principal) -> (token: String, session: Session) {
        let now = ContinuousClock.now
        sessions = sessions.filter { now - $0.value.lastSeen <= idleLimit }
        let owned = sessions.filter { $0.value.principal.name == principal.name }
        for oldest in evictedForOneMore(owned, limit: sessionsPerKey, lastUsed: \.lastSeen) { sessions[oldest] = nil }
        let token = Self.randomToken()
        let session = Session(principal: principal, csrf: Self.randomToken(), lastSeen: now)
        sessions[token] = session
        return (token, session)
    }

    /// The sessions open now.
    public var count: Int { sessions.count }

    /// The live session of a cookie token, touched; nil when unknown, idle too long, or its key
    /// is no longer configured (`stillValid`).
    func session(_ token: String, stillValid: (Principal) -> Bool) -> Session? {
        guard var session = sessions[token] else { return nil }
        let now = ContinuousClock.now
        guard now - session.lastSeen <= idleLimit, stillValid(session.principal) else {
            sessions[token] = nil
            return nil
        }
        session.lastSeen = now
        sessions[token] = session
        return session
    }

    func close(_ token: String) { sessions[token] = nil }

    // MARK: - Live streams

    /// The open live trace logs, each with its key's name (nil without keys), when it opened and
    /// the way to end it: at shutdown they end before the HTTP server drains, as the MCP sessions
    /// do.
    private var streams: [UUID: (owner: String?, opened: ContinuousClock.Instant, end: @Sendable () -> Void)] = [:]
    private var shuttingDown = false
    /// The most live logs one key (or, without keys, everyone) follows at once: each polls its
    /// file and the database while it is open, so a new one beyond it ends the key's oldest.
    let streamsPerKey = 16

    /// Registers a live stream; false once shutdown has begun (the stream should end at once).
    func opened(_ id: UUID, owner: String?, end: @escaping @Sendable () -> Void) -> Bool {
        guard !shuttingDown else { return false }
        let owned = streams.filter { $0.value.owner == owner }
        for oldest in evictedForOneMore(owned, limit: streamsPerKey, lastUsed: \.opened) { streams.removeValue(forKey: oldest)?.end() }
        streams[id] = (owner, .now, end)
        return true
    }

    func closed(_ id: UUID) { streams[id] = nil }

    /// The live logs open now.
    public var streamCount: Int { streams.count }

    /// Ends every live stream, and every stream opened from now on.
    public func endStreams() {
        shuttingDown = true
        for stream in streams.values { stream.end() }
        streams = [:]
    }

    /// 256 random bits, base64url.
    static func randomToken() -> String {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        return Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }
}
