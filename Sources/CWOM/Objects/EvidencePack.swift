import TowerJSON

/// What the prover found for one Run: a verdict, per-criterion results and the evidence
/// collected. `evaluated_by` is an Actor like every other actor of the model (the legacy service
/// wrote `{kind, id, display}` here; see docs/compatibility.md).
public struct EvidencePack: CWOMModel, Hashable {
    public static let schemaName = "EvidencePack"
    public var header: ObjectHeader
    public var forRun: Ref
    public var forIssue: Ref
    public var verdict: Verdict
    public var verdictReason: String
    public var evaluatedAt: Timestamp
    public var evaluatedBy: Actor
    public var criteriaResults: [CriterionResult]
    public var evidenceCollected: [EvidenceItem]
    public var evidenceMissing: [String]
    public var checksPassed: Int
    public var checksFailed: Int
    public var checksSkipped: Int
    public var evidenceUri: String?
    public var tags: [String]
    public var meta: JSONObject
    public var createdAt: Timestamp
    public var updatedAt: Timestamp

    public var id: String { header.id }
    public var ref: Ref { Ref(kind: .evidencePack, id: id) }

    public init(header: ObjectHeader = ObjectHeader(), forRun: Ref, forIssue: Ref, verdict: Verdict,
        verdictReason: String, evaluatedAt: Timestamp = .now(), evaluatedBy: Actor,
        criteriaResults: [CriterionResult] = [], evidenceCollected: [EvidenceItem] = [],
        evidenceMissing: [String] = [], checksPassed: Int = 0, checksFailed: Int = 0, checksSkipped: Int = 0,
        evidenceUri: String? = nil, tags: [String] = [], meta: JSONObject = [:], createdAt: Timestamp = .now(),
        updatedAt: Timestamp? = nil)
    {
        self.header = header
        self.forRun = forRun
        self.forIssue = forIssue
        self.verdict = verdict
        self.verdictReason = verdictReason
        self.evaluatedAt = evaluatedAt
        self.evaluatedBy = evaluatedBy
        self.criteriaResults = criteriaResults
        self.evidenceCollected = evidenceCollected
        self.evidenceMissing = evidenceMissing
        self.checksPassed = checksPassed
        self.checksFailed = checksFailed
        self.checksSkipped = checksSkipped
        self.evidenceUri = evidenceUri
        self.tags = tags
        self.meta = meta
        self.createdAt = createdAt
        self.updatedAt = updatedAt ?? createdAt
    }

    public init(reading r: ObjectReader) {
        header = r.header(.evidencePack)
        forRun = r.ref("for_run", kind: .run)
        forIssue = r.ref("for_issue", kind: .issue)
        verdict = r.enumeration("verdict")
        verdictReason = r.string("verdict_reason")
        evaluatedAt = r.timestamp("evaluated_at")
        evaluatedBy = r.model("evaluated_by", Actor.self)
        criteriaResults = r.models("criteria_results", CriterionResult.self)
        evidenceCollected = r.models("evidence_collected", EvidenceItem.self)
        evidenceMissing = r.strings("evidence_missing")
        checksPassed = r.int("checks_passed", min: 0, default: 0)
        checksFailed = r.int("checks_failed", min: 0, default: 0)
        checksSkipped = r.int("checks_skipped", min: 0, default: 0)
        evidenceUri = r.optionalString("evidence_uri")
        tags = r.strings("tags")
        meta = r.dictionary("meta")
        (createdAt, updatedAt) = r.timestamps()
    }

    public var json: JSONValue {
        [
            "kind": "EvidencePack", "id": id.json, "trace_id": header.traceId.json, "for_run": forRun.json,
            "for_issue": forIssue.json, "verdict": verdict.json, "verdict_reason": verdictReason.json,
            "evaluated_at": evaluatedAt.json, "evaluated_by": evaluatedBy.json,
            "criteria_results": criteriaResults.json, "evidence_collected": evidenceCollected.json,
            "evidence_missing": evidenceMissing.json, "checks_passed": checksPassed.json,
            "checks_failed": checksFailed.json, "checks_skipped": checksSkipped.json,
            "evidence_uri": evidenceUri.json, "tags": tags.json, "meta": meta.json,
            "created_at": createdAt.json, "updated_at": updatedAt.json,
        ]
    }
}
