import Foundation

/// `TOWER_CORS_ORIGINS`: the browser origins (`https://dash.example.com`, or `*` for any) whose
/// pages may call the API from another site, an external dashboard say. Without it no CORS
/// header is sent and browsers keep other sites out. The API authenticates with the bearer
/// header, never a cookie, so credentials are not allowed across origins; the console (`/ui`),
/// which does use a cookie, is same-origin only and never answers cross-origin.
public struct CORSPolicy: Sendable, Equatable {
    public private(set) var origins: Set<String>
    public private(set) var anyOrigin: Bool

    /// Headers a cross-origin page may send: the key, JSON bodies, the legacy intake's and the MCP
    /// transports' own.
    static let allowedHeaders = "authorization, content-type, idempotency-key, x-trace-id, mcp-session-id, mcp-protocol-version, last-event-id"
    /// Headers such a page may read.
    static let exposedHeaders = "location, retry-after, www-authenticate, mcp-session-id"

    public init(origins: [String] = []) {
        self.origins = Set(origins.filter { $0 != "*" })
        self.anyOrigin = origins.contains("*")
    }

    /// A comma-separated list of origins; each must be `*` or `scheme://host[:port]` with no path,
    /// as browsers send them in `Origin`.
    public init(environmentValue: String?) throws(ConfigurationError) {
        let items = (environmentValue ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        for item in items where item != "*" {
            guard let url = URL(string: item), let scheme = url.scheme, ["http", "https"].contains(scheme), url.host != nil,
                url.path.isEmpty, url.query == nil, url.fragment == nil, !item.hasSuffix("/")
            else {
                throw ConfigurationError(
                    "TOWER_CORS_ORIGINS: '\(item)' is not an origin; give scheme://host[:port] (no path, no trailing slash) or *")
            }
        }
        self.init(origins: items.map { $0.lowercased() })
    }

    public var isEnabled: Bool { anyOrigin || !origins.isEmpty }

    /// The `Access-Control-Allow-Origin` value for a request from `origin`, nil when it is not
    /// allowed (or the request is the console's).
    func allowedOrigin(_ request: APIRequest) -> String? {
        guard isEnabled, let origin = request.header("origin"), !request.path.hasPrefix("/ui") else { return nil }
        if anyOrigin { return "*" }
        return origins.contains(origin.lowercased()) ? origin : nil
    }

    /// The answer to a browser's preflight (`OPTIONS` with `Access-Control-Request-Method`) from an
    /// allowed origin; nil for every other request. It needs no key: browsers send none with it.
    func preflight(_ request: APIRequest) -> APIResponse? {
        guard request.method == "OPTIONS", request.header("access-control-request-method") != nil,
            let origin = allowedOrigin(request)
        else { return nil }
        return APIResponse(
            status: 204,
            headers: [
                ("access-control-allow-origin", origin), ("access-control-allow-methods", "GET, POST, PATCH, DELETE"),
                ("access-control-allow-headers", Self.allowedHeaders), ("access-control-max-age", "600"), ("vary", "Origin"),
            ])
    }

    /// Adds the CORS headers to the answer of a request from an allowed origin.
    func decorate(_ response: inout APIResponse, for request: APIRequest) {
        guard let origin = allowedOrigin(request) else { return }
        response.headers.append(("access-control-allow-origin", origin))
        response.headers.append(("access-control-expose-headers", Self.exposedHeaders))
        response.headers.append(("vary", "Origin"))
    }
}

/// A setting that is wrong, with what to do about it.
public struct ConfigurationError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
