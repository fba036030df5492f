import Foundation
import Storage
import TowerJSON

/// A route: a method and a path pattern with `{name}` segments.
public struct Route: Sendable {
    public var method: String
    public var pattern: String
    public var summary: String
    public var tag: String
    /// Who may call it; the router admits every request through `AccessControl` first.
    public var access: RouteAccess
    /// The handler reads or writes files (trace folders): it runs on `BlockingExecutor` (Dispatch's
    /// pool) rather than on its connection's event loop, where every other handler runs (`HTTPServer`), so
    /// that a slow disk holds up no other connection of that loop.
    public var blocking: Bool
    /// The query parameters and headers the handler reads, as `/openapi.json` describes them.
    public var parameters: [Parameter]
    /// The JSON body it reads, as `/openapi.json` describes it.
    public var body: RequestBody?
    /// What it answers when it succeeds, as `/openapi.json` describes it (nil: not described).
    public var answers: Answer?
    let segments: [Segment]
    let handler: @Sendable (APIRequest) async throws -> APIResponse

    enum Segment: Sendable, Equatable {
        case literal(String)
        case parameter(String)
        case rest(String)  // {name...}: the rest of the path
    }

    init(_ method: String, _ pattern: String, summary: String, tag: String, access: RouteAccess, blocking: Bool = false,
        parameters: [Parameter] = [], body: RequestBody? = nil, answers: Answer? = nil,
        handler: @escaping @Sendable (APIRequest) async throws -> APIResponse)
    {
        self.method = method
        self.access = access
        self.blocking = blocking
        self.parameters = parameters
        self.body = body
        self.answers = answers
        self.pattern = pattern
        self.summary = summary
        self.tag = tag
        self.handler = handler
        // A pattern that ends in `/` matches only with the slash (`/mcp/messages/`, as the legacy SSE
        // clients post to it).
        self.segments = pattern.split(separator: "/", omittingEmptySubsequences: false).dropFirst().map { part in
            if part.hasPrefix("{") && part.hasSuffix("...}") { return .rest(String(part.dropFirst().dropLast(4))) }
            if part.hasPrefix("{") && part.hasSuffix("}") { return .parameter(String(part.dropFirst().dropLast())) }
            return .literal(String(part))
        }
    }

    /// The captured parameters when `path` matches, else nil. Path segments are percent-decoded
    /// after splitting, so an encoded slash stays inside its segment.
    func match(_ pathSegments: [String]) -> [String: String]? {
        var parameters: [String: String] = [:]
        for (index, segment) in segments.enumerated() {
            switch segment {
            case .rest(let name):
                guard index < pathSegments.count else { return nil }
                parameters[name] = pathSegments[index...].joined(separator: "/")
                return parameters
            case .literal(let text):
                guard index < pathSegments.count, pathSegments[index] == text else { return nil }
            case .parameter(let name):
                guard index < pathSegments.count, !pathSegments[index].isEmpty else { return nil }
                parameters[name] = pathSegments[index]
            }
        }
        return pathSegments.count == segments.count ? parameters : nil
    }
}

/// Dispatches requests to routes with Starlette's behaviour for everything else: 404
/// `{"detail":"Not Found"}`, 405 `{"detail":"Method Not Allowed"}` with `allow` (every method of
/// the first matching route's pattern, where Starlette names that route's only), and a 307 to the
/// same path without its trailing slash. A matched request is admitted by `AccessControl`
/// before its route runs: the route table is the access table.
public struct Router: Sendable {
    public private(set) var routes: [Route] = []
    public let access: AccessControl

    public init(access: AccessControl = AccessControl(AccessConfiguration())) {
        self.access = access
    }

    /// Adds a route. `access` has no default: every route says who may call it. `blocking`: the
    /// handler touches files (see `Route.blocking`). `parameters`: every query parameter (and the
    /// headers of its own) the handler reads; reading another query parameter is a programming
    /// error that stops a debug build (`APIRequest.queryValue`), so that `/openapi.json` cannot miss
    /// one. `body`: the JSON body it reads. `answers`: its success.
    public mutating func add(_ method: String, _ pattern: String, summary: String, tag: String, access: RouteAccess,
        blocking: Bool = false, parameters: [Parameter] = [], body: RequestBody? = nil, answers: Answer? = nil,
        _ handler: @escaping @Sendable (APIRequest) async throws -> APIResponse)
    {
        routes.append(
            Route(
                method, pattern, summary: summary, tag: tag, access: access, blocking: blocking, parameters: parameters, body: body, answers: answers,
                handler: handler))
    }

    /// Adds a route built elsewhere (`OpenAPIDocument.register`).
    mutating func add(_ route: Route) { routes.append(route) }

    /// The path's segments after its leading `/`, percent-decoded. Split on the bytes: a path
    /// is bytes (RFC 3986), and `String.split` walked it by `Character`, 9 K instructions for
    /// `/tasks/enqueue` (`scripts/api-instructions`).
    static func split(_ path: String) -> [String] {
        let slash = UInt8(ascii: "/"), percent = UInt8(ascii: "%")
        return path.utf8.split(separator: slash, omittingEmptySubsequences: false).dropFirst().map { bytes in
            let segment = String(Substring(bytes))
            // Foundation's percent decoding is slow; most segments have nothing to decode.
            return bytes.contains(percent) ? segment.removingPercentEncoding ?? segment : segment
        }
    }

    /// Answers `request`; `pattern` is set to the pattern of the route that answers it (for the
    /// metrics' `route` label) as soon as one matches, and stays `unmatched` otherwise.
    public func respond(to request: APIRequest, host: String?, pattern: inout String) async throws -> APIResponse {
        let segments = Self.split(request.path)
        var partial: Route?
        for route in routes {
            guard let parameters = route.match(segments) else { continue }
            if route.method == request.method {
                pattern = route.pattern
                var matched = request
                matched.principal = try access.admit(request, to: route.access, route: "\(route.method) \(route.pattern)")
                matched.parameters = parameters
                matched.declared = route.parameters
                guard route.blocking else { return try await route.handler(matched) }
                return try await withTaskExecutorPreference(BlockingExecutor.shared) { try await route.handler(matched) }
            }
            if partial == nil { partial = route }
        }
        if let partial {
            // `allow` (RFC 9110 §15.5.6): the methods of the first route whose path matches and of
            // the others with its pattern (`/tasks/enqueue` is POST alone, although
            // `/tasks/{task_id}` matches it too), as `/openapi.json` lists them. Worked out here,
            // not in the loop above, which every answered request runs.
            var allowed: [String] = []
            for route in routes where route.pattern == partial.pattern && !allowed.contains(route.method) { allowed.append(route.method) }
            return .detail(405, "Method Not Allowed", headers: [("allow", allowed.joined(separator: ", "))])
        }
        if request.path.count > 1 && request.path.hasSuffix("/") {
            let trimmed = String(request.path.dropLast())
            if routes.contains(where: { $0.match(Self.split(trimmed)) != nil }) {
                let location = "http://\(host ?? "localhost")\(trimmed)"
                return APIResponse(status: 307, headers: [("location", location)])
            }
        }
        return .detail(404, "Not Found")
    }
}
