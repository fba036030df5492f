import CWOM
import LegacyTasks
import Storage
import TowerJSON

/// What every `/cwom` route needs: the database, auth for writes, body and paging helpers.
struct CWOMContext: Sendable {
    let database: Database
    let engine: LifecycleEngine

    static let service = Actor(kind: .system, id: "cwom-service")

    /// Reads a create payload (`RepoCreate`, …): unknown keys rejected, errors in the FastAPI
    /// list shape with `loc` starting at `body`.
    func payload<T: CWOMModel>(_ type: T.Type, _ request: APIRequest, mode: ReadMode = .create) throws(APIError) -> T {
        let body = try RequestReading.jsonBody(request)
        guard let body, !body.isNull else {
            throw RequestReading.validationError([
                RequestError(loc: ["body"], error: PydanticError.missing(FieldPath(), input: .null))
            ])
        }
        do {
            return try ObjectReader.read(T.self, from: body, mode: mode)
        } catch {
            throw RequestReading.validationError(error.errors.map {
                RequestError(loc: ["body"] + $0.path.components.map(\.json), error: $0)
            })
        }
    }

    /// `limit` 1..1000 (default 100) and `offset` ≥ 0.
    func page(_ request: APIRequest) throws(APIError) -> Page {
        var errors: [RequestError] = []
        let limit = RequestReading.int(request, "limit", default: 100, min: 1, max: 1000, errors: &errors)
        let offset = RequestReading.int(request, "offset", default: 0, min: 0, errors: &errors)
        guard errors.isEmpty else { throw RequestReading.validationError(errors) }
        return Page(limit: limit, offset: offset)
    }

    /// The trace id of a write: a valid `X-Trace-Id`, else none.
    func traceId(_ request: APIRequest) -> String? {
        guard let raw = request.header("x-trace-id"), (1...36).contains(raw.unicodeScalars.count),
            raw.unicodeScalars.allSatisfy({ $0.value >= 0x20 && $0.value <= 0x7E })
        else { return nil }
        return raw
    }

    /// 201 `{"status":"success","<key>":<object>}`.
    static func created(_ key: String, _ value: JSONValue) -> APIResponse {
        .json(201, .object(JSONObject([("status", "success"), (key, value)])))
    }

    static func notFound(_ kind: String) -> APIError { .detail(404, .string("\(kind) not found")) }

    /// `PUT` and `PATCH <pattern>` of an immutable kind: 405 `IMMUTABILITY_VIOLATION` with
    /// `message` and the path's id, whether or not the object exists (the legacy answer).
    func refuseChanges(_ router: inout Router, _ pattern: String, parameter: String, kind: String, message: String) {
        for method in ["PUT", "PATCH"] {
            router.add(
                method, pattern, summary: "Refused: \(kind) are immutable", tag: "CWOM", access: .write,
                answers: .refused(405, "`IMMUTABILITY_VIOLATION`, always.")
            ) { request in
                .detail(
                    405,
                    ["error": "IMMUTABILITY_VIOLATION", "message": .string(message), "object_id": .string(request.parameter(parameter))])
            }
        }
    }

    /// `GET <pattern>`: the object `load` finds for the path parameter, or 404 `<Kind> not found`.
    func getOne<T: CWOMModel>(_ router: inout Router, _ pattern: String, parameter: String, summary: String,
        _ load: @escaping @Sendable (Store, String) async throws -> T?)
    {
        let database = self.database
        router.add("GET", pattern, summary: summary, tag: "CWOM", access: .read, answers: .object(T.self)) { request in
            let id = request.parameter(parameter)
            guard let object = try await database.read({ try await load($0, id) }) else {
                throw CWOMContext.notFound(T.schemaName)
            }
            return .json(200, object.json)
        }
    }
}

