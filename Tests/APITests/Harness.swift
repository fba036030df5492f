import API
import CWOM
import Foundation
import LegacyTasks
import Logging
import Storage
import Testing
import TowerJSON
import TowerTestSupport

/// An answer, with its body parsed as JSON when it is JSON.
struct Answer: Sendable {
    let status: Int
    let headers: [(name: String, value: String)]
    let text: String
    var json: JSONValue { (try? JSONParser.parse(text)) ?? .null }
    subscript(key: String) -> JSONValue? { json[key] }
    func header(_ name: String) -> String? {
        headers.first(where: { $0.name.caseInsensitiveCompare(name) == .orderedSame })?.value
    }
    /// The `type`s of a 422 list.
    var errorTypes: [String] { (json["detail"]?.arrayValue ?? []).compactMap { $0["type"]?.stringValue } }
    var errorLocs: [JSONValue] { (json["detail"]?.arrayValue ?? []).compactMap { $0["loc"] } }
}

/// The API over a database of its own, called without a socket.
struct Harness: Sendable {
    let api: TowerAPI
    let database: Database
    let dialect: Dialect

    func send(_ method: String, _ path: String, body: [UInt8] = [], headers: [(String, String)] = []) async -> Answer {
        let (pathPart, query) = splitQuery(path)
        let request = APIRequest(
            method: method, path: pathPart, query: query, headers: headers.map { (name: $0.0, value: $0.1) }, body: body)
        let response = await api.respond(request, host: "testserver")
        return Answer(status: response.status, headers: response.headers, text: String(decoding: response.body, as: UTF8.self))
    }

    func send(_ method: String, _ path: String, json: JSONValue, headers: [(String, String)] = []) async -> Answer {
        await send(method, path, body: json.bytes(), headers: [("content-type", "application/json")] + headers)
    }

    func get(_ path: String, headers: [(String, String)] = []) async -> Answer {
        await send("GET", path, headers: headers)
    }

    func enqueue(_ body: JSONValue, query: String = "", headers: [(String, String)] = []) async -> Answer {
        await send("POST", "/tasks/enqueue" + query, json: body, headers: headers)
    }

    /// Rows in a table (-1 when the query fails, which no expectation accepts).
    func count(_ table: String) async -> Int {
        (try? await database.read { store in
            try await store.session.query("SELECT COUNT(*) AS n FROM \(table)", []).first?.int("n") ?? 0
        }) ?? -1
    }

    private func splitQuery(_ path: String) -> (String, String?) {
        guard let mark = path.firstIndex(of: "?") else { return (path, nil) }
        return (String(path[..<mark]), String(path[path.index(after: mark)...]))
    }
}

let testConfiguration = APIConfiguration(policy: PolicyConfig(allowedRepoPrefixes: ["testorg/"]))

func withAPI(_ dialect: Dialect, configuration: APIConfiguration = testConfiguration, logger: Logger = quietLogger("tower.api"),
    _ body: (Harness) async throws -> Void) async throws
{
    try await withDatabase(dialect) { database, _ in
        try await body(Harness(api: TowerAPI(database: database, configuration: configuration, logger: logger), database: database, dialect: dialect))
    }
}

/// A valid canonical request; tests change one thing at a time.
func validTask(objective: String = "Update the README", repo: String = "testorg/docs") -> JSONValue {
    [
        "requested_by": ["kind": "human", "id": "alice", "label": "Alice"], "objective": .string(objective),
        "operation": "docs", "target": ["repo": .string(repo)],
    ]
}

extension JSONValue {
    /// A copy with `value` at a dotted path (`target.repo`); nil removes the key.
    func with(_ path: String, _ value: JSONValue?) -> JSONValue {
        let keys = path.split(separator: ".").map(String.init)
        return setting(keys[...], value)
    }

    private func setting(_ keys: ArraySlice<String>, _ value: JSONValue?) -> JSONValue {
        guard let key = keys.first, case .object(var object) = self else { return self }
        if keys.count == 1 {
            object[key] = value
        } else {
            object[key] = (object[key] ?? .object([:])).setting(keys.dropFirst(), value)
        }
        return .object(object)
    }
}
