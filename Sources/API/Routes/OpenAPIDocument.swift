import CWOM
import Foundation
import TowerJSON

/// `GET /openapi.json`: an OpenAPI 3.1 document of every route, whose component schemas are the
/// CWOM JSON Schemas (the same ones `tower schema export` writes).
enum OpenAPIDocument {
    /// Create payload schemas by route.
    static let requestBodies: [String: String] = [
        "POST /cwom/repos": "RepoCreate", "POST /cwom/issues": "IssueCreate",
        "POST /cwom/context-packets": "ContextPacketCreate", "POST /cwom/constraint-snapshots": "ConstraintSnapshotCreate",
        "POST /cwom/doctrine-refs": "DoctrineRefCreate", "POST /cwom/runs": "RunCreate",
        "POST /cwom/artifacts": "ArtifactCreate", "POST /cwom/reviews": "ReviewDecisionCreate",
        "PATCH /cwom/runs/{run_id}": "RunUpdate",
    ]

    static func build(for router: Router, version: String) -> JSONValue {
        var paths = JSONObject()
        var operations: [(method: String, pattern: String, summary: String, tag: String, access: RouteAccess)] = router.routes.map {
            ($0.method, $0.pattern, $0.summary, $0.tag, $0.access)
        }
        operations.append(("GET", "/openapi.json", "This OpenAPI document", "Meta", .read))
        for operation in operations {
            let path = operation.pattern.replacingOccurrences(of: "...}", with: "}")
            var item = paths[path]?.objectValue ?? [:]
            var op: JSONObject = [
                "summary": .string(operation.summary), "tags": [.string(operation.tag)],
                "operationId": .string(operationId(operation.method, path)),
            ]
            let parameters = path.split(separator: "/").filter { $0.hasPrefix("{") }.map { segment -> JSONValue in
                ["name": .string(String(segment.dropFirst().dropLast())), "in": "path", "required": true,
                    "schema": ["type": "string"]]
            }
            if !parameters.isEmpty { op["parameters"] = .array(parameters) }
            if let schema = requestBodies["\(operation.method) \(operation.pattern)"] {
                op["requestBody"] = [
                    "required": true,
                    "content": ["application/json": ["schema": ["$ref": .string("#/components/schemas/\(schema)")]]],
                ]
            }
            // Who may call it: a bearer key holding one of these scopes (admin holds them all).
            let scopes = operation.access.allowed(metricsPublic: router.access.metricsPublic)
            if !scopes.isEmpty {
                op["security"] = [["BearerAuth": []]]
                op["x-scopes"] = .array(scopes.sorted().map { .string($0.rawValue) })
            }
            op["responses"] = [
                operation.method == "POST" ? "201" : "200": ["description": "Success"],
                "default": ["description": "An error: {\"detail\": …}"],
            ]
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

    static func operationId(_ method: String, _ path: String) -> String {
        let words = path.split(whereSeparator: { "/{}-._".contains($0) }).map { $0.prefix(1).uppercased() + $0.dropFirst() }
        return method.lowercased() + words.joined()
    }

    /// Every CWOM schema with its `$defs` hoisted into `components/schemas` and references
    /// rewritten to point there.
    static func componentSchemas() -> JSONObject {
        var components = JSONObject()
        for file in CWOMCatalog.schemaFiles() {
            var schema = file.schema
            if let defs = schema["$defs"]?.objectValue {
                for (name, def) in defs { components[name] = rewrite(def) }
            }
            schema["$defs"] = nil
            schema["$schema"] = nil
            components[file.name] = rewrite(.object(schema))
        }
        return components
    }

    static func rewrite(_ value: JSONValue) -> JSONValue {
        switch value {
        case .string(let s) where s.hasPrefix("#/$defs/"):
            return .string("#/components/schemas/" + s.dropFirst("#/$defs/".count))
        case .array(let elements): return .array(elements.map(rewrite))
        case .object(let object): return .object(JSONObject(object.map { ($0.key, rewrite($0.value)) }))
        default: return value
        }
    }
}
