import Foundation
import Logging
import MCP
import TowerJSON

/// MCP over HTTP on the API: Streamable HTTP at `/mcp` (the SDK's stateful transport, one per
/// session) and the legacy SSE endpoints (`GET /mcp/sse`, `POST /mcp/messages/?session_id=`) for
/// clients configured against the legacy service. Every request carries the bearer key (any
/// scope: each tool checks its own), and a session answers only the key that opened it; the
/// legacy `session_id` alone opens nothing.
struct MCPRoutes: Sendable {
    let tools: AgentTools
    let sessions: MCPSessions
    let version: String

    /// Any valid key reaches the transport; the tools decide by scope.
    static let access = RouteAccess.scopes(Set(Scope.allCases))

    func register(on router: inout Router) {
        for method in ["POST", "GET", "DELETE"] {
            router.add(method, "/mcp", summary: "MCP over Streamable HTTP (docs/mcp.md)", tag: "MCP", access: Self.access, blocking: true) { request in
                await streamable(request)
            }
        }
        router.add("GET", "/mcp/sse", summary: "MCP over the legacy SSE transport: the event stream", tag: "MCP", access: Self.access, blocking: true) {
            request in
            await openLegacyStream(request)
        }
        router.add(
            "POST", "/mcp/messages/", summary: "MCP over the legacy SSE transport: a client message", tag: "MCP", access: Self.access,
            blocking: true, parameters: [Parameter("session_id", required: true, "The session the event stream announced.")]
        ) { request in
            await legacyMessage(request)
        }
    }

    // MARK: - Streamable HTTP

    func streamable(_ request: APIRequest) async -> APIResponse {
        let owner = request.principal?.name
        let asked = HTTPRequest(
            method: request.method, headers: Dictionary(request.headers.map { ($0.name, $0.value) }) { first, _ in first },
            body: request.body.isEmpty ? nil : Data(request.body), path: request.path)
        let transport: StatefulHTTPServerTransport
        if let id = request.header(HTTPHeaderName.sessionID) {
            switch await sessions.streamable(id, owner: owner) {
            case .missing: return Self.jsonRPCError(404, "Session not found: initialize a new one")
            case .foreign: return Self.jsonRPCError(403, "This session belongs to another key")
            case .found(let found): transport = found
            }
        } else {
            guard request.method == "POST" else { return Self.jsonRPCError(400, "Mcp-Session-Id header required") }
            transport = StatefulHTTPServerTransport(logger: tools.logger)
            let server = await TowerMCP.server(tools: tools, caller: AgentTools.Caller(principal: request.principal), version: version)
            do { try await server.start(transport: transport) } catch {
                return Self.jsonRPCError(500, "MCP session could not start: \(error)")
            }
            let answer = await transport.handleRequest(asked)
            if let id = answer.headers.first(where: { FieldName.equal($0.key, HTTPHeaderName.sessionID) })?.value {
                await sessions.add(streamable: transport, server: server, id: id, owner: owner)
            } else {
                await server.stop()
            }
            return Self.response(answer)
        }
        let answer = await transport.handleRequest(asked)
        if request.method == "DELETE", let id = request.header(HTTPHeaderName.sessionID) { await sessions.remove(id) }
        return Self.response(answer)
    }

    static func response(_ answer: HTTPResponse) -> APIResponse {
        let headers = answer.headers.map { (name: $0.key, value: $0.value) }
        switch answer {
        case .stream(let stream, _):
            return APIResponse(status: answer.statusCode, headers: headers, stream: EventStream.keptAlive(stream.map { Array($0) }))
        default:
            return APIResponse(status: answer.statusCode, headers: headers, body: answer.bodyData.map { Array($0) } ?? [])
        }
    }

    static func jsonRPCError(_ status: Int, _ message: String) -> APIResponse {
        .json(status, ["jsonrpc": "2.0", "id": .null, "error": ["code": -32000, "message": .string(message)]])
    }

    // MARK: - The legacy SSE transport

    func openLegacyStream(_ request: APIRequest) async -> APIResponse {
        let id = UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
        let transport = LegacySSETransport(logger: tools.logger)
        let server = await TowerMCP.server(tools: tools, caller: AgentTools.Caller(principal: request.principal), version: version)
        do { try await server.start(transport: transport) } catch {
            return .detail(500, .string("MCP session could not start: \(error)"))
        }
        await sessions.add(legacy: transport, server: server, id: id, owner: request.principal?.name)
        let sessions = self.sessions
        let events = EventStream.keptAlive(transport.events(endpoint: "/mcp/messages/?session_id=\(id)")) { await sessions.remove(id) }
        return EventStream.response(events)
    }

    func legacyMessage(_ request: APIRequest) async -> APIResponse {
        guard let id = request.queryValue("session_id") else { return .detail(400, "session_id is required") }
        switch await sessions.legacy(id, owner: request.principal?.name) {
        case .missing: return .detail(404, "Could not find session")
        case .foreign: return .detail(403, "This session belongs to another key")
        case .found(let transport):
            guard (try? JSONParser.parse(bytes: request.body)) != nil else { return .detail(400, "Could not parse message") }
            await transport.deliver(Data(request.body))
            return APIResponse(status: 202, headers: [("content-type", "text/plain; charset=utf-8")], body: Array("Accepted".utf8))
        }
    }
}

/// The MCP sessions of this API process, by id, with the key that opened each.
public actor MCPSessions {
    enum Lookup<T: Sendable>: Sendable {
        case found(T)
        case missing
        case foreign
    }

    struct Session {
        var streamable: StatefulHTTPServerTransport?
        var legacy: LegacySSETransport?
        let server: Server
        let owner: String?
        var lastUsed = ContinuousClock.now
    }

    private var sessions: [String: Session] = [:]
    /// A Streamable HTTP session unused this long is ended (its client went away without
    /// `DELETE`); a legacy SSE session ends with its event stream.
    let idleLimit: Duration
    /// The most Streamable HTTP sessions one key (or, without keys, everyone) holds at once: a
    /// new one beyond it ends that key's least recently used. Each session is a server of its
    /// own, kept for up to `idleLimit`; without a bound, a client that initializes in a loop
    /// and never sends `DELETE` grew the process without end.
    let sessionsPerKey: Int

    public init(idleLimit: Duration = .seconds(3600), sessionsPerKey: Int = 64) {
        self.idleLimit = idleLimit
        self.sessionsPerKey = sessionsPerKey
    }

    public var count: Int { sessions.count }

    func add(streamable: StatefulHTTPServerTransport, server: Server, id: String, owner: String?) async {
        let now = ContinuousClock.now
        for (idle, session) in sessions where session.streamable != nil && now - session.lastUsed > idleLimit {
            await remove(idle)
        }
        let owned = sessions.filter { $0.value.streamable != nil && $0.value.owner == owner }
        for oldest in evictedForOneMore(owned, limit: sessionsPerKey, lastUsed: \.lastUsed) { await remove(oldest) }
        sessions[id] = Session(streamable: streamable, legacy: nil, server: server, owner: owner)
    }

    func add(legacy: LegacySSETransport, server: Server, id: String, owner: String?) {
        sessions[id] = Session(streamable: nil, legacy: legacy, server: server, owner: owner)
    }

    func streamable(_ id: String, owner: String?) -> Lookup<StatefulHTTPServerTransport> {
        guard let session = sessions[id], let transport = session.streamable else { return .missing }
        guard session.owner == owner else { return .foreign }
        sessions[id]?.lastUsed = .now
        return .found(transport)
    }

    func legacy(_ id: String, owner: String?) -> Lookup<LegacySSETransport> {
        guard let session = sessions[id], let transport = session.legacy else { return .missing }
        return session.owner == owner ? .found(transport) : .foreign
    }

    func remove(_ id: String) async {
        guard let session = sessions.removeValue(forKey: id) else { return }
        await session.server.stop()
    }

    /// Ends every session (at shutdown): their event streams finish, so that the HTTP server's
    /// graceful shutdown does not wait on them.
    public func closeAll() async {
        for id in Array(sessions.keys) { await remove(id) }
    }
}

/// The legacy SSE transport (FastMCP's `SseServerTransport`): the client holds a `GET` event
/// stream whose first event names the URL to post its messages to; every server message is a
/// `message` event on that stream.
actor LegacySSETransport: Transport {
    nonisolated let logger: Logger
    private let incoming: AsyncThrowingStream<Data, any Error>
    private let incomingContinuation: AsyncThrowingStream<Data, any Error>.Continuation
    private var outgoing: AsyncThrowingStream<[UInt8], any Error>.Continuation?

    init(logger: Logger) {
        self.logger = logger
        (incoming, incomingContinuation) = AsyncThrowingStream<Data, any Error>.makeStream()
    }

    /// The event stream of the `GET`: first the `endpoint` event, then the server's messages,
    /// until the session is stopped.
    nonisolated func events(endpoint: String) -> AsyncThrowingStream<[UInt8], any Error> {
        let (stream, continuation) = AsyncThrowingStream<[UInt8], any Error>.makeStream()
        continuation.yield(Array("event: endpoint\r\ndata: \(endpoint)\r\n\r\n".utf8))
        Task { await self.attach(continuation) }
        return stream
    }

    private func attach(_ continuation: AsyncThrowingStream<[UInt8], any Error>.Continuation) { outgoing = continuation }

    func deliver(_ message: Data) { incomingContinuation.yield(message) }

    func connect() async throws {}

    func disconnect() async {
        incomingContinuation.finish()
        outgoing?.finish()
    }

    func send(_ data: Data) async throws {
        let text = String(decoding: data, as: UTF8.self).replacingOccurrences(of: "\n", with: "")
        outgoing?.yield(Array("event: message\r\ndata: \(text)\r\n\r\n".utf8))
    }

    func receive() -> AsyncThrowingStream<Data, any Error> { incoming }
}
