import TowerJSON

/// A reviewer's decision on an evidence pack, for one run of one issue.
public struct ReviewDecision: CWOMModel, Hashable {
    public static let schemaName = "ReviewDecision"
    public var header: ObjectHeader
    public var forEvidencePack: Ref
    public var forRun: Ref
    public var forIssue: Ref
    public var reviewer: Actor
    public var decision: ReviewDecisionStatus
    public var decisionReason: String
    public var reviewedAt: Timestamp
    public var criteriaOverrides: [CriterionOverride]
    public var tags: [String]
    public var meta: JSONObject
    public var createdAt: Timestamp
    public var updatedAt: Timestamp

    public var id: String { header.id }
    public var ref: Ref { Ref(kind: .reviewDecision, id: id) }

    public init(header: ObjectHeader = ObjectHeader(), forEvidencePack: Ref, forRun: Ref, forIssue: Ref,
        reviewer: Actor, decision: ReviewDecisionStatus, decisionReason: String, reviewedAt: Timestamp = .now(),
        criteriaOverrides: [CriterionOverride] = [], tags: [String] = [], meta: JSONObject = [:],
        createdAt: Timestamp = .now(), updatedAt: Timestamp? = nil)
    {
        self.header = header
        self.forEvidencePack = forEvidencePack
        self.forRun = forRun
        self.forIssue = forIssue
        self.reviewer = reviewer
        self.decision = decision
        self.decisionReason = decisionReason
        self.reviewedAt = reviewedAt
        self.criteriaOverrides = criteriaOverrides
        self.tags = tags
        self.meta = meta
        self.createdAt = createdAt
        self.updatedAt = updatedAt ?? createdAt
    }

    public init(reading r: ObjectReader) {
        header = r.header(.reviewDecision)
        forEvidencePack = r.ref("for_evidence_pack", kind: .evidencePack)
        forRun = r.ref("for_run", kind: .run)
        forIssue = r.ref("for_issue", kind: .issue)
        reviewer = r.model("reviewer", Actor.self)
        decision = r.enumeration("decision")
        decisionReason = r.string("decision_reason")
        reviewedAt = r.mode == .object ? r.timestamp("reviewed_at") : .now()
        criteriaOverrides = r.models("criteria_overrides", CriterionOverride.self)
        tags = r.strings("tags")
        meta = r.dictionary("meta")
        (createdAt, updatedAt) = r.timestamps()
    }

    public var json: JSONValue {
        [
            "kind": "ReviewDecision", "id": id.json, "trace_id": header.traceId.json,
            "for_evidence_pack": forEvidencePack.json, "for_run": forRun.json, "for_issue": forIssue.json,
            "reviewer": reviewer.json, "decision": decision.json, "decision_reason": decisionReason.json,
            "reviewed_at": reviewedAt.json, "criteria_overrides": criteriaOverrides.json, "tags": tags.json,
            "meta": meta.json, "created_at": createdAt.json, "updated_at": updatedAt.json,
        ]
    }
}
