import CWOM
import TowerJSON

/// Valid stored objects with every nested primitive present, so that every field path of the
/// spec exists in some fixture.
enum Fixtures {
    static let ts = "2026-01-02T03:04:05.000000Z"
    static func ref(_ kind: String, _ id: String = "01J0000000000000000000000A") -> JSONValue {
        ["kind": .string(kind), "id": .string(id), "role": "primary"]
    }
    /// Refs held in join tables have no role.
    static func joinRef(_ kind: String, _ id: String = "01J0000000000000000000000A") -> JSONValue {
        ["kind": .string(kind), "id": .string(id)]
    }
    static let actor: JSONValue = ["actor_kind": "human", "actor_id": "alice", "display": "Alice"]

    static let repo: JSONValue = [
        "kind": "Repo", "id": "repo-1", "trace_id": "trace-1", "name": "service", "slug": "myorg/service",
        "source": ["system": "github", "external_id": "myorg/service", "url": "https://example.invalid/x"],
        "default_branch": "main", "visibility": "private", "owners": [actor],
        "policy": ["allowed_tools": ["git"], "secrets_profile": "default"], "links": ["l"], "tags": ["t"],
        "meta": ["k": "v"], "created_at": .string(ts), "updated_at": .string(ts),
    ]

    static let issue: JSONValue = [
        "kind": "Issue", "id": "issue-1", "trace_id": nil, "repo": ref("Repo"), "title": "Fix it",
        "description": "Details", "type": "bug", "priority": "P1", "status": "ready", "assignees": [actor],
        "watchers": [actor], "doctrine_refs": [joinRef("DoctrineRef")], "constraints": [joinRef("ConstraintSnapshot")],
        "context_packets": [joinRef("ContextPacket")],
        "acceptance": ["criteria": ["works"], "tests_expected": ["unit"]],
        "relationships": [
            "parent": ref("Issue"), "blocks": [ref("Issue")], "blocked_by": [ref("Issue")],
            "duplicates": [ref("Issue")],
        ],
        "runs": [ref("Run")], "tags": [], "meta": [:], "created_at": .string(ts), "updated_at": .string(ts),
    ]

    static let contextPacket: JSONValue = [
        "kind": "ContextPacket", "id": "cp-1", "trace_id": nil, "for_issue": ref("Issue"), "version": "1.0",
        "summary": "Initial context",
        "inputs": [
            "documents": [["title": "Spec", "uri": "file:///spec.md", "digest": "sha256:abc", "excerpt": "…"]],
            "data_blobs": [
                ["name": "blob", "media_type": "text/plain", "uri": "file:///b", "inline": nil, "digest": "d"]
            ],
            "links": ["https://example.invalid"],
        ],
        "assumptions": ["a"], "open_questions": ["q"], "instructions": "Do it",
        "doctrine_refs": [joinRef("DoctrineRef")], "constraint_snapshot": joinRef("ConstraintSnapshot"), "tags": [],
        "meta": [:], "created_at": .string(ts), "updated_at": .string(ts),
    ]

    static let constraintSnapshot: JSONValue = [
        "kind": "ConstraintSnapshot", "id": "cs-1", "trace_id": nil, "scope": "run", "captured_at": .string(ts),
        "owner": actor,
        "constraints": [
            "time": ["available_minutes": 15, "deadline": .string(ts)],
            "energy": ["score_0_5": 3, "notes": "ok"],
            "health": ["flags": ["f"], "notes": "fine"],
            "budget": ["usd_available": 10.5, "burn_limit_usd": 2.0],
            "tools": ["allowed": ["git"], "blocked": ["curl"]],
            "environment": ["location": "home", "connectivity": "limited", "device": "laptop"],
            "risk": ["tolerance": "low", "notes": "allow_network=False, allow_secrets=False"],
        ],
        "tags": [], "meta": ["source": "jct_task"],
    ]

    static let doctrineRef: JSONValue = [
        "kind": "DoctrineRef", "id": "dr-1", "trace_id": nil, "namespace": "org", "name": "small-prs",
        "version": "1", "type": "principle", "priority": "must", "statement": "Keep PRs small",
        "rationale": "Reviewable", "links": [],
        "applicability": ["repo_refs": [ref("Repo")], "issue_types": ["bug"], "tags": []], "tags": [],
        "meta": [:], "created_at": .string(ts), "updated_at": .string(ts),
    ]

    static let run: JSONValue = [
        "kind": "Run", "id": "run-1", "trace_id": "trace-1", "for_issue": ref("Issue"), "repo": ref("Repo"),
        "status": "done", "mode": "system",
        "executor": ["actor": actor, "runtime": "stub", "toolchain": ["swift"]],
        "inputs": [
            "context_packets": [ref("ContextPacket")], "doctrine_refs": [ref("DoctrineRef")],
            "constraint_snapshot": ref("ConstraintSnapshot"),
        ],
        "plan": ["steps": ["s"], "risk_notes": ["r"]],
        "telemetry": ["started_at": .string(ts), "ended_at": .string(ts), "duration_s": 0.5],
        "cost": ["usd": 0.1, "tokens": 100, "compute_s": 1.5],
        "outputs": ["artifacts": [ref("Artifact")], "result_summary": "ok", "decision_log": ["d"]],
        "failure": ["category": "runtime", "message": "boom"], "artifact_root_uri": "file:///tmp/run-1/",
        "tags": [], "meta": [:], "created_at": .string(ts), "updated_at": .string(ts),
    ]

    static let artifact: JSONValue = [
        "kind": "Artifact", "id": "art-1", "trace_id": nil, "produced_by": ref("Run"), "for_issue": ref("Issue"),
        "type": "doc", "title": "Output", "uri": "file:///tmp/run-1/artifacts/output.md", "digest": "sha256:0",
        "media_type": "text/markdown", "size_bytes": 12, "preview": "# Out",
        "verification": [
            "status": "passed", "checks": [["name": "lint", "status": "passed", "evidence_uri": "file:///l"]],
        ],
        "tags": [], "meta": [:], "created_at": .string(ts), "updated_at": .string(ts),
    ]

    static let evidencePack: JSONValue = [
        "kind": "EvidencePack", "id": "ep-1", "trace_id": nil, "for_run": ref("Run"), "for_issue": ref("Issue"),
        "verdict": "pass", "verdict_reason": "All automated checks passed", "evaluated_at": .string(ts),
        "evaluated_by": ["actor_kind": "system", "actor_id": "prover", "display": nil],
        "criteria_results": [
            ["criterion": "works", "index": 0, "status": "unverified", "reason": "v0", "evidence_refs": []]
        ],
        "evidence_collected": [
            [
                "requirement": "doc", "index": 0, "found": true, "artifact_uri": "file:///x",
                "artifact_type": "doc", "notes": "Matched",
            ]
        ],
        "evidence_missing": [], "checks_passed": 2, "checks_failed": 0, "checks_skipped": 1,
        "evidence_uri": "file:///tmp/run-1/evidence/", "tags": [], "meta": [:], "created_at": .string(ts),
        "updated_at": .string(ts),
    ]

    static let reviewDecision: JSONValue = [
        "kind": "ReviewDecision", "id": "rd-1", "trace_id": nil, "for_evidence_pack": ref("EvidencePack"),
        "for_run": ref("Run"), "for_issue": ref("Issue"), "reviewer": actor, "decision": "approved",
        "decision_reason": "", "reviewed_at": .string(ts),
        "criteria_overrides": [
            ["criterion_index": 0, "original_status": "unverified", "override_status": "satisfied", "reason": "ok"]
        ],
        "tags": [], "meta": [:], "created_at": .string(ts), "updated_at": .string(ts),
    ]

    /// Every object type with its valid fixture.
    static let all: [(type: any CWOMModel.Type, json: JSONValue)] = [
        (Repo.self, repo), (Issue.self, issue), (ContextPacket.self, contextPacket),
        (ConstraintSnapshot.self, constraintSnapshot), (DoctrineRef.self, doctrineRef), (Run.self, run),
        (Artifact.self, artifact), (EvidencePack.self, evidencePack), (ReviewDecision.self, reviewDecision),
    ]
}

extension JSONValue {
    /// A copy with the value at `path` replaced (or removed when `value` is nil).
    func setting(_ path: [PathComponent], to value: JSONValue?) -> JSONValue {
        guard let first = path.first else { return value ?? .null }
        let rest = Array(path.dropFirst())
        switch (self, first) {
        case (.object(var o), .key(let k)):
            if rest.isEmpty { o[k] = value } else { o[k] = (o[k] ?? .null).setting(rest, to: value) }
            return .object(o)
        case (.array(var a), .index(let i)):
            if rest.isEmpty { if let value { a[i] = value } else { a.remove(at: i) } } else {
                a[i] = a[i].setting(rest, to: value)
            }
            return .array(a)
        default:
            return self
        }
    }
}

/// Decodes `json` as a stored object of a type known only at run time.
func decodeAny(_ type: any CWOMModel.Type, _ json: JSONValue) throws(CWOMValidationError) -> any CWOMModel {
    try type.decode(json)
}

/// `a.b[0].c` into path components.
func path(_ text: String) -> [PathComponent] {
    var components: [PathComponent] = []
    for part in text.split(separator: ".") {
        var name = Substring(part)
        var indices: [Int] = []
        while let open = name.lastIndex(of: "["), let close = name.lastIndex(of: "]"), open < close {
            if let i = Int(name[name.index(after: open)..<close]) { indices.insert(i, at: 0) }
            name = name[..<open]
        }
        components.append(.key(String(name)))
        components.append(contentsOf: indices.map { PathComponent.index($0) })
    }
    return components
}
