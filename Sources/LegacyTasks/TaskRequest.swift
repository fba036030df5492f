import CWOM
import TowerJSON

// The two request schemas of `POST /tasks/enqueue` (reference §1.2.1): the canonical
// `TaskCreateV1`, which forbids unknown keys at the top level and in `target`, and the legacy
// `TaskCreateLegacyV1`, which ignores unknown keys and accepts the aliases `type`, `payload` and
// `target.repository`. Both are read with the CWOM reader, so errors carry pydantic's types,
// messages and paths.

/// `requested_by`: ignores unknown keys in both schemas.
public struct RequestedByInput: CWOMModel, Hashable {
    public static let schemaName = "RequestedBy"
    public static let ignoresExtraKeys = true
    public var kind: RequesterKind
    public var id: String
    public var label: String?

    public init(reading r: ObjectReader) {
        kind = r.enumeration("kind", literal: true)
        id = r.string("id", min: 1, max: 128)
        label = r.optionalString("label", min: 1, max: 256)
    }

    public var json: JSONValue { ["kind": kind.json, "id": id.json, "label": label.json] }
}

/// `constraints`: ignores unknown keys in both schemas.
public struct ConstraintsInput: CWOMModel, Hashable {
    public static let schemaName = "Constraints"
    public static let ignoresExtraKeys = true
    public var timeBudgetSeconds: Int
    public var allowNetwork: Bool
    public var allowSecrets: Bool

    public init(timeBudgetSeconds: Int = 900, allowNetwork: Bool = false, allowSecrets: Bool = false) {
        self.timeBudgetSeconds = timeBudgetSeconds
        self.allowNetwork = allowNetwork
        self.allowSecrets = allowSecrets
    }

    public init(reading r: ObjectReader) {
        timeBudgetSeconds = r.int("time_budget_seconds", min: 30, max: 86400, default: 900)
        allowNetwork = r.bool("allow_network", default: false)
        allowSecrets = r.bool("allow_secrets", default: false)
    }

    public var json: JSONValue {
        [
            "time_budget_seconds": timeBudgetSeconds.json, "allow_network": allowNetwork.json,
            "allow_secrets": allowSecrets.json,
        ]
    }
}

/// The canonical `target` (`TargetV1`): unknown keys are rejected.
public struct TargetInput: CWOMModel, Hashable {
    public static let schemaName = "TargetV1"
    public var repo: String
    public var ref: String
    public var path: String

    public init(reading r: ObjectReader) {
        repo = r.string("repo", min: 1, max: 256)
        ref = r.string("ref", min: 1, max: 256, default: "main")
        path = r.string("path", max: 512, default: "")
    }

    public var json: JSONValue { ["repo": repo.json, "ref": ref.json, "path": path.json] }
}

/// The legacy `target`: `repository` stands in for `repo`; unknown keys are ignored.
public struct LegacyTargetInput: CWOMModel, Hashable {
    public static let schemaName = "Target"
    public static let ignoresExtraKeys = true
    public var repo: String?
    public var repository: String?
    public var ref: String
    public var path: String

    public init(reading r: ObjectReader) {
        repo = r.optionalString("repo", min: 1, max: 256)
        repository = r.optionalString("repository", min: 1, max: 256)
        ref = r.string("ref", min: 1, max: 256, default: "main")
        path = r.string("path", max: 512, default: "")
        r.check(oneOf: ["repo", "repository"], "Either 'repo' or 'repository' must be provided")
    }

    public var json: JSONValue { ["repo": (repo ?? repository).json, "ref": ref.json, "path": path.json] }
}

/// The body of `POST /tasks/enqueue` after validation, in canonical form.
public struct TaskRequest: Sendable, Hashable {
    public var version: String
    public var idempotencyKey: String?
    public var requestedBy: Requester
    public var objective: String
    public var operation: TaskOperation
    public var target: TaskTarget
    public var constraints: TaskConstraints
    public var inputs: JSONObject
    public var acceptanceCriteria: [String]
    public var evidenceRequirements: [String]
    public var metadata: JSONObject

    public init(version: String = "1.0", idempotencyKey: String? = nil, requestedBy: Requester, objective: String,
        operation: TaskOperation, target: TaskTarget, constraints: TaskConstraints = TaskConstraints(),
        inputs: JSONObject = [:], acceptanceCriteria: [String] = [], evidenceRequirements: [String] = [],
        metadata: JSONObject = [:])
    {
        self.version = version
        self.idempotencyKey = idempotencyKey
        self.requestedBy = requestedBy
        self.objective = objective
        self.operation = operation
        self.target = target
        self.constraints = constraints
        self.inputs = inputs
        self.acceptanceCriteria = acceptanceCriteria
        self.evidenceRequirements = evidenceRequirements
        self.metadata = metadata
    }
}

/// `TaskCreateV1`, the canonical schema.
struct CanonicalTaskCreate: CWOMModel {
    static let schemaName = "TaskCreateV1"
    var request: TaskRequest

    init(reading r: ObjectReader) {
        r.constant("version", "1.0")
        let key = r.optionalString("idempotency_key", min: 1, max: 256)
        let requester = r.model("requested_by", RequestedByInput.self)
        let objective = r.string("objective", min: 5, max: 4000)
        let operation: TaskOperation = r.enumeration("operation", literal: true)
        let target = r.model("target", TargetInput.self)
        let constraints = r.model("constraints", default: ConstraintsInput())
        let inputs = r.dictionary("inputs")
        let acceptance = r.strings("acceptance_criteria")
        let evidence = r.strings("evidence_requirements")
        let metadata = r.dictionary("metadata")
        request = TaskRequest(
            idempotencyKey: key,
            requestedBy: Requester(kind: requester.kind, id: requester.id, label: requester.label),
            objective: objective, operation: operation,
            target: TaskTarget(repo: target.repo, ref: target.ref, path: target.path),
            constraints: TaskConstraints(
                timeBudgetSeconds: constraints.timeBudgetSeconds, allowNetwork: constraints.allowNetwork,
                allowSecrets: constraints.allowSecrets),
            inputs: inputs, acceptanceCriteria: acceptance, evidenceRequirements: evidence, metadata: metadata)
    }

    var json: JSONValue { .null }
}

/// `TaskCreateLegacyV1`, the legacy schema with its aliases, resolved after validation
/// (`function-after[resolve_legacy_aliases(), TaskCreateLegacyV1]`).
struct LegacyTaskCreate: CWOMModel {
    static let schemaName = "TaskCreateLegacyV1"
    static let ignoresExtraKeys = true
    var request: TaskRequest

    init(reading r: ObjectReader) {
        r.constant("version", "1.0")
        let key = r.optionalString("idempotency_key", min: 1, max: 256)
        let requester = r.model("requested_by", RequestedByInput.self)
        let objective = r.string("objective", min: 5, max: 4000)
        let operation: TaskOperation? = r.optionalEnumeration("operation", literal: true)
        let type: TaskOperation? = r.optionalEnumeration("type", literal: true)
        let target = r.model("target", LegacyTargetInput.self)
        let constraints = r.model("constraints", default: ConstraintsInput())
        let inputs = r.dictionary("inputs")
        let payload = r.optionalDictionary("payload")
        let acceptance = r.strings("acceptance_criteria")
        let evidence = r.strings("evidence_requirements")
        let metadata = r.dictionary("metadata")
        r.check(oneOf: ["operation", "type"], "Either 'operation' or 'type' must be provided")
        request = TaskRequest(
            idempotencyKey: key,
            requestedBy: Requester(kind: requester.kind, id: requester.id, label: requester.label),
            objective: objective, operation: operation ?? type ?? .codeChange,
            target: TaskTarget(repo: target.repo ?? target.repository ?? "", ref: target.ref, path: target.path),
            constraints: TaskConstraints(
                timeBudgetSeconds: constraints.timeBudgetSeconds, allowNetwork: constraints.allowNetwork,
                allowSecrets: constraints.allowSecrets),
            // `payload` fills `inputs` only when `inputs` is empty or absent.
            inputs: inputs.isEmpty ? (payload ?? inputs) : inputs, acceptanceCriteria: acceptance,
            evidenceRequirements: evidence, metadata: metadata)
    }

    var json: JSONValue { .null }
}

/// One validation error located in the request (`loc` starts with `body` or `query`).
public struct RequestError: Sendable, Hashable {
    public var loc: [JSONValue]
    public var error: FieldError

    public init(loc: [JSONValue], error: FieldError) {
        self.loc = loc
        self.error = error
    }

    /// The FastAPI/pydantic shape: `{"type","loc","msg","input","ctx"?,"url"}`.
    public var json: JSONValue {
        var o: JSONObject = ["type": .string(error.type), "loc": .array(loc), "msg": .string(error.message)]
        o["input"] = error.input ?? .null
        if let context = error.context { o["ctx"] = .object(context) }
        if error.type != "json_invalid" {
            o["url"] = .string("https://errors.pydantic.dev/2.11/v/\(error.type)")
        }
        return .object(o)
    }
}

/// Validation errors of one request.
public struct RequestErrors: Error, Sendable {
    public var errors: [RequestError]
    public init(_ errors: [RequestError]) { self.errors = errors }
}

public enum TaskRequestParser {
    public static let canonicalLabel = "TaskCreateV1"
    public static let legacyLabel = "function-after[resolve_legacy_aliases(), TaskCreateLegacyV1]"

    /// Validates the body as the union `TaskCreateV1 | TaskCreateLegacyV1`: the canonical
    /// schema first, then the legacy one. When both fail, every error of both branches is
    /// returned, canonical first, with the branch label after `body`.
    public static func parse(_ body: JSONValue?) -> Result<TaskRequest, RequestErrors> {
        guard let body, !body.isNull else {
            return .failure(
                RequestErrors([RequestError(loc: ["body"], error: PydanticError.missing(FieldPath(), input: .null))]))
        }
        let canonicalErrors: [FieldError]
        do throws(CWOMValidationError) {
            return .success(try ObjectReader.read(CanonicalTaskCreate.self, from: body).request)
        } catch {
            canonicalErrors = error.errors
        }
        do throws(CWOMValidationError) {
            return .success(try ObjectReader.read(LegacyTaskCreate.self, from: body).request)
        } catch {
            let canonical = canonicalErrors.map { locate($0, label: canonicalLabel) }
            let legacy = error.errors.map { locate($0, label: legacyLabel) }
            return .failure(RequestErrors(canonical + legacy))
        }
    }

    /// The JSON Schemas of the two branches, recorded from the code that reads them, each with the
    /// models it uses under `$defs`: what `/openapi.json` documents as the body.
    public static var schemas: [(name: String, schema: JSONObject)] {
        [
            ("TaskCreateV1", ObjectReader.schema(of: CanonicalTaskCreate.self, mode: .create)),
            ("TaskCreateLegacyV1", ObjectReader.schema(of: LegacyTaskCreate.self, mode: .create)),
        ]
    }

    static func locate(_ error: FieldError, label: String) -> RequestError {
        RequestError(loc: ["body", .string(label)] + error.path.components.map(\.json), error: error)
    }
}
