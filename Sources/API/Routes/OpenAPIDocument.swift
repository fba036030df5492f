import CWOM
import Foundation
import LegacyTasks
import TowerJSON

/// `GET /openapi.json`: an OpenAPI 3.1 document of every route, whose component schemas are the
/// CWOM JSON Schemas (the same ones `tower schema export` writes) and the two schemas of the
/// legacy intake's body, each recorded from the code that reads it. A route's query parameters,
/// body and answers are declared where it is registered (`Router.add(…, parameters:, body:, answers:)`).
enum OpenAPIDocument {
    /// Adds `GET /openapi.json`, which describes every route registered so far and itself.
    static func register(on router: inout Router, version: String) {
        func route(_ handler: @escaping @Sendable (APIRequest) async throws -> APIResponse) -> Route {
            Route(
                "GET", "/openapi.json", summary: "This OpenAPI document", tag: "Meta", access: .read, answers: .json([200], "This document."),
                handler: handler)
        }
        // The copy in the document only describes the route: its handler is never called.
        let routes = router.routes + [route { _ in .detail(500, "not served") }]
        let access = router.access
        router.add(route { _ in .json(200, build(routes, access: access, version: version)) })
    }

    static func build(_ routes: [Route], access: AccessControl, version: String) -> JSONValue {
        var paths = JSONObject()
        for operation in routes {
            let path = operation.pattern.replacingOccurrences(of: "...}", with: "}")
            var item = paths[path]?.objectValue ?? [:]
            var op: JSONObject = [
                "summary": .string(operation.summary), "tags": [.string(operation.tag)],
                "operationId": .string(operationId(operation.method, path)),
            ]
            let parameters = path.split(separator: "/").filter { $0.hasPrefix("{") }.map { segment -> JSONValue in
                ["name": .string(String(segment.dropFirst().dropLast())), "in": "path", "required": true,
                    "schema": ["type": "string"]]
            } + operation.parameters.map(\.openAPI)
            if !parameters.isEmpty { op["parameters"] = .array(parameters) }
            if let body = operation.body { op["requestBody"] = body.openAPI }
            // Who may call it: a bearer key holding one of these scopes (admin holds them all).
            let scopes = operation.access.allowed(metricsPublic: access.metricsPublic)
            if !scopes.isEmpty {
                op["security"] = [["BearerAuth": []]]
                op["x-scopes"] = .array(scopes.sorted().map { .string($0.rawValue) })
            }
            var responses = JSONObject()
            if let answers = operation.answers {
                var response: JSONObject = ["description": .string(answers.description)]
                if let type = answers.contentType {
                    response["content"] = [type: answers.schema.map { ["schema": $0] } ?? [:]]
                }
                for status in answers.statuses { responses[String(status)] = .object(response) }
            } else {
                responses[operation.method == "POST" ? "201" : "200"] = ["description": "Success"]
            }
            // The console answers in HTML and the MCP transports in JSON-RPC; every other route's
            // error is JSON with `detail`.
            responses["default"] =
                ["Console", "MCP"].contains(operation.tag)
                ? ["description": "An error"]
                : ["description": "An error: {\"detail\": …}", "content": ["application/json": ["schema": errorSchema]]]
            op["responses"] = .object(responses)
            item[operation.method.lowercased()] = .object(op)
            paths[path] = .object(item)
        }
        return [
            "openapi": "3.1.0",
            "info": [
                "title": "Control Tower", "version": .string(version),
                "description": "The legacy JCT V1 task intake and the CWOM v0.1 system of record.",
            ],
            "paths": .object(paths),
            "components": ["schemas": .object(componentSchemas()), "securitySchemes": ["BearerAuth": ["type": "http", "scheme": "bearer"]]],
        ]
    }

    /// `{"detail": …}`: a message, a policy or transition object, or FastAPI's list of errors.
    static let errorSchema: JSONValue = ["type": "object", "required": ["detail"], "properties": ["detail": [:]]]

    static func operationId(_ method: String, _ path: String) -> String {
        let words = path.split(whereSeparator: { "/{}-._".contains($0) }).map { $0.prefix(1).uppercased() + $0.dropFirst() }
        return method.lowercased() + words.joined()
    }

    /// Every CWOM schema and the intake's with their `$defs` hoisted into `components/schemas`
    /// and references rewritten to point there. The intake's models are named `Task…` there:
    /// some share a name with a CWOM model (`Constraints`) that the errors' messages keep.
    static func componentSchemas() -> JSONObject {
        var components = JSONObject()
        for (files, prefix) in [(CWOMCatalog.schemaFiles(), ""), (TaskRequestParser.schemas, "Task")] {
            for file in files {
                var schema = file.schema
                if let defs = schema["$defs"]?.objectValue {
                    for (name, def) in defs { components[prefix + name] = rewrite(def, prefix: prefix) }
                }
                schema["$defs"] = nil
                schema["$schema"] = nil
                components[file.name] = rewrite(.object(schema), prefix: prefix)
            }
        }
        return components
    }

    static func rewrite(_ value: JSONValue, prefix: String) -> JSONValue {
        switch value {
        case .string(let s) where s.hasPrefix("#/$defs/"):
            return .string("#/components/schemas/" + prefix + s.dropFirst("#/$defs/".count))
        case .array(let elements): return .array(elements.map { rewrite($0, prefix: prefix) })
        case .object(let object): return .object(JSONObject(object.map { ($0.key, rewrite($0.value, prefix: prefix)) }))
        default: return value
        }
    }
}
