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

    public func write(to sink: inout JSONSink) {
        header.beginJSON(.evidencePack, to: &sink)
        sink.member("for_run", forRun)
        sink.member("for_issue", forIssue)
        sink.member("verdict", verdict)
        sink.member("verdict_reason", verdictReason)
        sink.member("evaluated_at", evaluatedAt)
        sink.member("evaluated_by", evaluatedBy)
        sink.member("criteria_results", criteriaResults)
        sink.member("evidence_collected", evidenceCollected)
        sink.member("evidence_missing", evidenceMissing)
        sink.member("checks_passed", checksPassed)
        sink.member("checks_failed", checksFailed)
        sink.member("checks_skipped", checksSkipped)
        sink.member("evidence_uri", evidenceUri)
        ObjectHeader.endJSON(tags: tags, meta: meta, createdAt: createdAt, updatedAt: updatedAt, to: &sink)
    }

    public var json: JSONValue { JSONSink.tree(of: self) }
}
