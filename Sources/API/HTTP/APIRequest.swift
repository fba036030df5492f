import Foundation
import CWOM
import Hummingbird
import Storage
import TowerJSON

/// An HTTP request as the routes see it: method, path, decoded query, headers and raw body.
public struct APIRequest: Sendable {
    public var method: String
    public var path: String
    /// Query parameters in order; a repeated name keeps every value.
    public var query: [(name: String, value: String)]
    public var headers: [(name: String, value: String)]
    public var body: [UInt8]
    /// Path parameters captured by the route (`{task_id}` → value).
    public var parameters: [String: String] = [:]
    /// The key the request was admitted with; nil when no key is configured.
    public var principal: Principal?
    /// The parameters its route declares (`Router.add(…, parameters:)`); nil until routed.
    var declared: [Parameter]?

    /// The audit actor of what this request does: the key's name, else the route's own actor.
    public func actor(else fallback: Actor) -> Actor { principal?.actor ?? fallback }

    public init(method: String, path: String, query: String?, headers: [(name: String, value: String)], body: [UInt8]) {
        self.method = method
        self.path = path
        self.query = Self.parseQuery(query ?? "")
        self.headers = headers
        self.body = body
    }

    /// The last value of a query parameter (Starlette keeps the last one). The route must declare
    /// it, so that `/openapi.json` lists it: a debug build stops here when it does not.
    public func queryValue(_ name: String) -> String? {
        assert(
            declared.map { $0.contains { $0.location == .query && $0.name == name } } ?? true,
            "\(method) \(path) reads the query parameter '\(name)' that its route does not declare (Router.add(…, parameters:))")
        return query.last(where: { $0.name == name })?.value
    }

    /// A header, case-insensitively.
    public func header(_ name: String) -> String? { headers.value(named: name) }

    public func parameter(_ name: String) -> String { parameters[name] ?? "" }

    /// `application/x-www-form-urlencoded` decoding (`+` is a space), as Python's `parse_qsl`.
    static func parseQuery(_ query: String) -> [(name: String, value: String)] {
        query.split(separator: "&", omittingEmptySubsequences: true).map { pair in
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            func decode(_ s: Substring) -> String {
                let spaced = s.replacingOccurrences(of: "+", with: " ")
                return spaced.removingPercentEncoding ?? spaced
            }
            return (decode(parts[0]), parts.count > 1 ? decode(parts[1]) : "")
        }
    }
}

/// An HTTP response: status, headers and body bytes.
public struct APIResponse: Sendable {
    public var status: Int
    public var headers: [(name: String, value: String)]
    public var body: [UInt8]
    /// A body sent as it is produced (server-sent events), instead of `body`.
    public var stream: AsyncThrowingStream<[UInt8], any Error>?

    public init(status: Int, headers: [(name: String, value: String)] = [], body: [UInt8] = [],
        stream: AsyncThrowingStream<[UInt8], any Error>? = nil)
    {
        self.status = status
        self.headers = headers
        self.body = body
        self.stream = stream
    }

    /// A JSON body, serialised compactly as the legacy service did.
    public static func json(_ status: Int, _ value: JSONValue, headers: [(name: String, value: String)] = [])
        -> APIResponse
    {
        APIResponse(status: status, headers: [("content-type", "application/json")] + headers, body: value.bytes())
    }

    /// A JSON body written by a `JSONSink` (`JSONSink.text()`), straight from the models it holds.
    public static func json(_ status: Int, written sink: consuming JSONSink) -> APIResponse {
        APIResponse(status: status, headers: [("content-type", "application/json")], body: sink.bytes())
    }

    /// `{"detail": <detail>}`.
    public static func detail(_ status: Int, _ detail: JSONValue, headers: [(name: String, value: String)] = [])
        -> APIResponse
    {
        json(status, ["detail": detail], headers: headers)
    }

    public func header(_ name: String) -> String? { headers.value(named: name) }
}

/// HTTP field names are ASCII tokens compared without regard to case (RFC 9110 §5.1): a byte
/// comparison does, where Foundation's `caseInsensitiveCompare` folds Unicode under a locale.
enum FieldName {
    static func equal(_ a: String, _ b: String) -> Bool {
        a.utf8.count == b.utf8.count && zip(a.utf8, b.utf8).allSatisfy { x, y in x == y || lowercased(x) == lowercased(y) }
    }

    private static func lowercased(_ byte: UInt8) -> UInt8 {
        byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") ? byte + 32 : byte
    }
}

extension Array where Element == (name: String, value: String) {
    /// The first value of the field `name`.
    func value(named name: String) -> String? { first(where: { FieldName.equal($0.name, name) })?.value }
}

/// An error a route throws to answer with a specific response.
public struct APIError: Error, Sendable {
    public var response: APIResponse
    public init(_ response: APIResponse) { self.response = response }

    public static func detail(_ status: Int, _ detail: JSONValue) -> APIError { APIError(.detail(status, detail)) }
}

extension APIError {
    /// The answer to an operation the lifecycle engine refused: 404 for a missing task, Run or
    /// Issue, 409 with the current and the requested status for a transition its state machine
    /// does not have or an object a worker is executing, 400 for objects that do not belong together,
    /// 422 for a new object naming one that does not exist and 409 for one that exists already.
    static func lifecycle(_ error: LifecycleError) -> APIError {
        switch error {
        case .notFound(let entity, _):
            return .detail(404, .string("\(entity) not found"))
        case .invalidTransition(let entity, let id, let current, let requested):
            return .detail(
                409,
                [
                    "error": "INVALID_TRANSITION", "message": .string(error.description), "entity": .string(entity),
                    "id": .string(id), "current_status": .string(current), "requested_status": .string(requested),
                ])
        case .ownedByWorker(let entity, let id, let taskId, let worker):
            return .detail(
                409,
                [
                    "error": "OWNED_BY_WORKER", "message": .string(error.description), "entity": .string(entity),
                    "id": .string(id), "task_id": .string(taskId), "worker": worker.json,
                ])
        case .rejected(let message):
            return .detail(400, .string(message))
        case .missingReference:
            return .detail(422, .string(error.description))
        case .alreadyExists(let message):
            return .detail(409, .string(message))
        }
    }
}
