import CWOM
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import Metrics
import NIOCore
import Storage
import Synchronization
import TowerJSON

/// The HTTP API: the legacy `/tasks` shim and health routes, over one database.
public final class TowerAPI: HTTPResponder {
    public typealias Context = BasicRequestContext

    public let database: Database
    /// Every status change a route asks for goes through the engine.
    public let engine: LifecycleEngine
    public let configuration: APIConfiguration
    public let router: Router
    /// The open MCP sessions (Streamable HTTP and legacy SSE); `closeAll()` at shutdown.
    public let mcpSessions = MCPSessions()
    /// The browsers signed in to the console.
    public let consoleSessions = ConsoleSessions()
    /// The keys and scopes every request is admitted by (SIGHUP replaces the keys).
    public var access: AccessControl { router.access }
    let logger: Logger
    private let requestCounters = Mutex<[String: Counter]>([:])
    /// Requests the database could not serve: when to log them (`RepeatingFailure`).
    private let unreachable = Mutex(RepeatingFailure())

    public init(database: Database, configuration: APIConfiguration, logger: Logger = Logger(label: "tower.api"),
        engine: LifecycleEngine? = nil, metrics: (@Sendable () -> String)? = nil)
    {
        let engine = engine ?? LifecycleEngine(database: database, retry: configuration.retry)
        self.database = database
        self.engine = engine
        self.configuration = configuration
        self.logger = logger
        var router = Router(access: AccessControl(configuration.access))
        let routes = TaskRoutes(
            database: database, engine: engine, intake: engine.intake(), configuration: configuration, logger: logger)
        routes.register(on: &router)
        HealthRoutes(database: database, version: configuration.version).register(on: &router)
        let cwom = CWOMContext(database: database, engine: engine)
        CWOMRoutes(context: cwom).register(on: &router)
        TraceRoutes(context: cwom).register(on: &router)
        AuditRoutes(context: cwom).register(on: &router)
        let agentTools = AgentTools(database: database, engine: engine, configuration: configuration, logger: logger)
        MCPRoutes(tools: agentTools, sessions: mcpSessions, version: configuration.version).register(on: &router)
        ConsoleRoutes(
            database: database, engine: engine, access: router.access, sessions: consoleSessions, configuration: configuration, logger: logger
        ).register(on: &router)
        if let metrics { MetricsRoute(database: database, emit: metrics).register(on: &router) }
        OpenAPIDocument.register(on: &router, version: configuration.version)
        self.router = router
    }

    /// Ends the streams that would hold the HTTP server's drain at shutdown: MCP sessions and
    /// the console's live trace logs.
    public func endStreams() async {
        await mcpSessions.closeAll()
        await consoleSessions.endStreams()
    }

    /// Answers one request. Errors a route did not turn into a response become a 500 with a
    /// JSON detail, and are logged with the request.
    public func respond(_ request: APIRequest, host: String? = nil) async -> APIResponse {
        if let preflight = configuration.cors.preflight(request) { return preflight }
        var pattern = "unmatched"
        var response = await answer(request, host: host, pattern: &pattern)
        configuration.cors.decorate(&response, for: request)
        requestCounter(method: request.method, route: pattern, status: response.status).increment()
        return response
    }

    /// The request counter of one method, route and status, made once: creating a swift-metrics
    /// counter asks the backend's registry (a lock and a lookup) every time.
    func requestCounter(method: String, route: String, status: Int) -> Counter {
        let key = "\(method) \(route) \(status)"
        if let counter = requestCounters.withLock({ $0[key] }) { return counter }
        let counter = Counter(
            label: "tower_http_requests_total", dimensions: [("method", method), ("route", route), ("status", String(status))])
        requestCounters.withLock { $0[key] = counter }
        return counter
    }

    func answer(_ request: APIRequest, host: String?, pattern: inout String) async -> APIResponse {
        do {
            return try await router.respond(to: request, host: host, pattern: &pattern)
        } catch let error as APIError {
            return error.response
        } catch let error as LifecycleError {
            return APIError.lifecycle(error).response
        } catch let error as StorageError where error.kind == .invalidValue {
            return .detail(422, .string("Invalid input: \(error.message)"))
        } catch let error as StorageError where error.kind == .unreachable {
            logUnreachable(error, path: request.path)
            return .detail(503, .string("Database unavailable: \(error.message)"))
        } catch {
            logger.error(
                "request failed", metadata: ["method": "\(request.method)", "path": "\(request.path)", "error": "\(error)"])
            return .detail(500, .string("Internal error: \(error)"))
        }
    }

    /// A request the database could not serve, answered 503 (and counted in
    /// `tower_http_requests_total`): logged as the outage starts, then once a minute with how
    /// many requests met it, each of them at `debug`. Logged at every request, an outage under
    /// load wrote a line per request.
    func logUnreachable(_ error: StorageError, path: String) {
        switch unreachable.withLock({ $0.failed() }) {
        case .started:
            logger.error("database unreachable", metadata: ["path": "\(path)", "error": "\(error)"])
        case .repeated(let failures):
            logger.debug("database unreachable", metadata: ["path": "\(path)", "error": "\(error)", "requests": "\(failures)"])
        case .ongoing(let failures, let seconds):
            logger.error(
                "database still unreachable",
                metadata: ["path": "\(path)", "error": "\(error)", "requests": "\(failures)", "for_seconds": "\(Int(seconds))"])
        case .ended:
            break
        }
    }

    public func respond(to request: Request, context: BasicRequestContext) async throws -> Response {
        var request = request
        let body: [UInt8]
        do {
            let buffer = try await request.collectBody(upTo: configuration.limits.maxBodyBytes)
            body = Array(buffer.readableBytesView)
        } catch {
            return Self.encode(.detail(413, "Request body too large"))
        }
        var headers = request.headers.map { (name: $0.name.canonicalName, value: $0.value) }
        // HTTP/1's Host header arrives as the request's authority; routes read it as a header.
        if let authority = request.head.authority, !headers.contains(where: { $0.name == "host" }) {
            headers.append((name: "host", value: authority))
        }
        let apiRequest = APIRequest(
            method: request.method.rawValue, path: request.uri.path, query: request.uri.query, headers: headers,
            body: body)
        return Self.encode(await respond(apiRequest, host: request.head.authority ?? apiRequest.header("host")))
    }

    /// A Hummingbird response for an API response.
    public static func encode(_ response: APIResponse) -> Response {
        var fields = HTTPFields()
        for (name, value) in response.headers {
            if let field = HTTPField.Name(name) { fields.append(HTTPField(name: field, value: value)) }
        }
        if let stream = response.stream {
            return Response(
                status: HTTPResponse.Status(code: response.status), headers: fields,
                body: ResponseBody(asyncSequence: stream.map { ByteBuffer(bytes: $0) }))
        }
        return Response(
            status: HTTPResponse.Status(code: response.status), headers: fields,
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: response.body)))
    }
}
