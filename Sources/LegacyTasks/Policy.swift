import CWOM
import TowerJSON

/// The allow-list of repository prefixes (`JCT_ALLOWED_REPO_PREFIXES`).
public struct PolicyConfig: Sendable, Hashable {
    public var allowedRepoPrefixes: [String]

    public init(allowedRepoPrefixes: [String]) { self.allowedRepoPrefixes = allowedRepoPrefixes }

    /// Splits on `,`, trims each piece and drops empty ones. Empty means deny every repository.
    public init(environmentValue: String?) {
        allowedRepoPrefixes = (environmentValue ?? "").split(separator: ",", omittingEmptySubsequences: false)
            .map { String($0).pythonStripped() }.filter { !$0.isEmpty }
    }
}

/// A policy rejection: 422 `{"detail":{"error":"policy_violation","code":…,"message":…}}`.
public struct PolicyError: Error, Sendable, Hashable {
    public var code: String
    public var message: String

    public var json: JSONValue { ["error": "policy_violation", "code": .string(code), "message": .string(message)] }
}

/// The policy gate (`policy/task_gate.py`): checks in the legacy order, then normalises.
public enum TaskPolicy {
    public static let allowedOperations = ["analysis", "code_change", "docs", "ops"]

    /// `target.repo` normalised: trimmed, one lowercase `.git` removed, lowercased.
    public static func normalizeRepo(_ repo: String) -> String {
        var value = repo.pythonStripped()
        if value.hasSuffix(".git") { value.removeLast(4) }
        return value.lowercased()
    }

    /// Returns the normalised request, or the first failing check.
    public static func evaluate(_ request: TaskRequest, config: PolicyConfig) throws(PolicyError) -> TaskRequest {
        guard allowedOperations.contains(request.operation.rawValue) else {
            throw PolicyError(
                code: "INVALID_OPERATION",
                message: "Operation '\(request.operation.rawValue)' is not allowed. Allowed operations: \(allowedOperations.joined(separator: ", "))"
            )
        }
        let repo = normalizeRepo(request.target.repo)
        guard config.allowedRepoPrefixes.contains(where: { repo.hasPrefix($0.lowercased()) }) else {
            throw PolicyError(
                code: "REPO_NOT_ALLOWED",
                message: "Repository '\(request.target.repo)' is not in the allowed namespace. Allowed prefixes: \(config.allowedRepoPrefixes.joined(separator: ", "))"
            )
        }
        let budget = request.constraints.timeBudgetSeconds
        if budget < 30 {
            throw PolicyError(code: "TIME_BUDGET_TOO_LOW", message: "Time budget \(budget)s is below minimum (30s)")
        }
        if budget > 86400 {
            throw PolicyError(code: "TIME_BUDGET_TOO_HIGH", message: "Time budget \(budget)s exceeds maximum (86400s)")
        }
        if request.constraints.allowNetwork {
            throw PolicyError(
                code: "NETWORK_ACCESS_DENIED",
                message: "Network access is not allowed in V1. Set constraints.allow_network to false.")
        }
        if request.constraints.allowSecrets {
            throw PolicyError(
                code: "SECRETS_ACCESS_DENIED",
                message: "Secrets access is not allowed in V1. Set constraints.allow_secrets to false.")
        }
        var normalized = request
        normalized.target.repo = repo
        if normalized.target.ref.isEmpty { normalized.target.ref = "main" }
        normalized.objective = request.objective.pythonStripped()
        normalized.constraints.allowNetwork = false
        normalized.constraints.allowSecrets = false
        return normalized
    }
}

extension String {
    /// Python's `str.strip()`: trims Unicode whitespace at both ends.
    public func pythonStripped() -> String {
        let scalars = unicodeScalars
        guard let start = scalars.firstIndex(where: { !$0.isPythonWhitespace }),
            let end = scalars.lastIndex(where: { !$0.isPythonWhitespace })
        else { return "" }
        return String(scalars[start...end])
    }

    /// Length in Unicode scalars, as Python's `len` counts.
    public var scalarCount: Int { unicodeScalars.count }
}

extension Unicode.Scalar {
    var isPythonWhitespace: Bool {
        switch value {
        case 0x09...0x0D, 0x1C...0x1F, 0x20, 0x85, 0xA0: return true
        default: return properties.isWhitespace
        }
    }
}
