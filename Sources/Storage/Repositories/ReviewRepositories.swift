import CWOM
import TowerJSON

/// `cwom_evidence_packs`.
public struct EvidencePackRepository: Sendable {
    let session: any DatabaseSession

    static func columns(_ pack: EvidencePack) -> Columns {
            [
                "id": .text(pack.id), "kind": .text("EvidencePack"), "trace_id": .text(pack.header.traceId),
                "for_run_id": .text(pack.forRun.id), "for_run_kind": .text(pack.forRun.kind.rawValue),
                "for_run_role": .text(pack.forRun.role), "for_issue_id": .text(pack.forIssue.id),
                "for_issue_kind": .text(pack.forIssue.kind.rawValue), "for_issue_role": .text(pack.forIssue.role),
                "verdict": .text(pack.verdict.rawValue), "verdict_reason": .text(pack.verdictReason),
                "evaluated_at": .timestamp(pack.evaluatedAt), "evaluated_by_kind": .text(pack.evaluatedBy.actorKind.rawValue),
                "evaluated_by_id": .text(pack.evaluatedBy.actorId), "evaluated_by_display": .text(pack.evaluatedBy.display),
                "criteria_results": .json(writing: pack.criteriaResults), "evidence_collected": .json(writing: pack.evidenceCollected),
                "evidence_missing": .json(writing: pack.evidenceMissing), "checks_passed": .int(pack.checksPassed),
                "checks_failed": .int(pack.checksFailed), "checks_skipped": .int(pack.checksSkipped),
                "evidence_uri": .text(pack.evidenceUri), "tags": .json(writing: pack.tags), "meta": .json(writing: pack.meta),
                "created_at": .timestamp(pack.createdAt), "updated_at": .timestamp(pack.updatedAt),
            ]
    }

    public func insert(_ pack: EvidencePack) async throws(StorageError) {
        try await insert([pack])
    }

    /// Inserts several packs with one multi-row statement.
    public func insert(_ packs: [EvidencePack]) async throws(StorageError) {
        for (sql, binds) in SQL.insertMany("cwom_evidence_packs", packs.map(Self.columns)) { try await session.query(sql, binds) }
    }

    public func get(_ id: String) async throws(StorageError) -> EvidencePack? {
        try await session.query("SELECT * FROM cwom_evidence_packs WHERE id = $1", [.text(id)]).first.map(Self.decode)
    }

    public func list(runId: String? = nil, issueId: String? = nil, verdict: String? = nil, page: Page = Page())
        async throws(StorageError) -> [EvidencePack]
    {
        var filters = Filters()
        filters.add("for_run_id", runId)
        filters.add("for_issue_id", issueId)
        filters.add("verdict", verdict, as: Verdict.self)
        let limit = filters.page(limit: page.limit, offset: page.offset)
        if filters.matchesNothing { return [] }
        return try await session.query(
            "SELECT * FROM cwom_evidence_packs\(filters.whereClause) ORDER BY created_at DESC, id DESC\(limit)",
            filters.binds
        ).map(Self.decode)
    }

    static func decode(_ row: SQLRow) throws(StorageError) -> EvidencePack {
        var legacy = JSONObject()
        return EvidencePack(
            header: try row.header(), forRun: try row.ref("for_run", kind: .run),
            forIssue: try row.ref("for_issue", kind: .issue),
            verdict: Verdict(rawValue: try row.string("verdict")) ?? .pending,
            verdictReason: try row.string("verdict_reason"), evaluatedAt: try row.timestamp("evaluated_at"),
            evaluatedBy: Actor(
                kind: ActorKind(rawValue: try row.string("evaluated_by_kind")) ?? .system,
                id: try row.string("evaluated_by_id"), display: try row.optionalString("evaluated_by_display")),
            criteriaResults: try row.models("criteria_results", CriterionResult.self, legacy: &legacy),
            evidenceCollected: try row.models("evidence_collected", EvidenceItem.self, legacy: &legacy),
            evidenceMissing: try row.strings("evidence_missing"), checksPassed: try row.int("checks_passed"),
            checksFailed: try row.int("checks_failed"), checksSkipped: try row.int("checks_skipped"),
            evidenceUri: try row.optionalString("evidence_uri"), tags: try row.strings("tags"),
            meta: try row.object("meta").addingLegacy(legacy), createdAt: try row.timestamp("created_at"),
            updatedAt: try row.timestamp("updated_at"))
    }
}

/// `cwom_review_decisions`.
public struct ReviewDecisionRepository: Sendable {
    let session: any DatabaseSession

    static func columns(_ review: ReviewDecision) -> Columns {
            [
                "id": .text(review.id), "kind": .text("ReviewDecision"), "trace_id": .text(review.header.traceId),
                "for_evidence_pack_id": .text(review.forEvidencePack.id),
                "for_evidence_pack_kind": .text(review.forEvidencePack.kind.rawValue),
                "for_evidence_pack_role": .text(review.forEvidencePack.role), "for_run_id": .text(review.forRun.id),
                "for_run_kind": .text(review.forRun.kind.rawValue), "for_run_role": .text(review.forRun.role),
                "for_issue_id": .text(review.forIssue.id), "for_issue_kind": .text(review.forIssue.kind.rawValue),
                "for_issue_role": .text(review.forIssue.role), "reviewer_kind": .text(review.reviewer.actorKind.rawValue),
                "reviewer_id": .text(review.reviewer.actorId), "reviewer_display": .text(review.reviewer.display),
                "decision": .text(review.decision.rawValue), "decision_reason": .text(review.decisionReason),
                "reviewed_at": .timestamp(review.reviewedAt), "criteria_overrides": .json(review.criteriaOverrides.json),
                "tags": .json(review.tags.json), "meta": .json(review.meta.json),
                "created_at": .timestamp(review.createdAt), "updated_at": .timestamp(review.updatedAt),
            ]
    }

    public func insert(_ review: ReviewDecision) async throws(StorageError) {
        try await insert([review])
    }

    /// Inserts several decisions with one multi-row statement.
    public func insert(_ reviews: [ReviewDecision]) async throws(StorageError) {
        for (sql, binds) in SQL.insertMany("cwom_review_decisions", reviews.map(Self.columns)) { try await session.query(sql, binds) }
    }

    public func get(_ id: String) async throws(StorageError) -> ReviewDecision? {
        try await session.query("SELECT * FROM cwom_review_decisions WHERE id = $1", [.text(id)]).first.map(
            Self.decode)
    }

    public func list(evidencePackId: String? = nil, issueId: String? = nil, decision: String? = nil,
        page: Page = Page()) async throws(StorageError) -> [ReviewDecision]
    {
        var filters = Filters()
        filters.add("for_evidence_pack_id", evidencePackId)
        filters.add("for_issue_id", issueId)
        filters.add("decision", decision, as: ReviewDecisionStatus.self)
        let limit = filters.page(limit: page.limit, offset: page.offset)
        if filters.matchesNothing { return [] }
        return try await session.query(
            "SELECT * FROM cwom_review_decisions\(filters.whereClause) ORDER BY created_at DESC, id DESC\(limit)",
            filters.binds
        ).map(Self.decode)
    }

    static func decode(_ row: SQLRow) throws(StorageError) -> ReviewDecision {
        var legacy = JSONObject()
        return ReviewDecision(
            header: try row.header(), forEvidencePack: try row.ref("for_evidence_pack", kind: .evidencePack),
            forRun: try row.ref("for_run", kind: .run), forIssue: try row.ref("for_issue", kind: .issue),
            reviewer: Actor(
                kind: ActorKind(rawValue: try row.string("reviewer_kind")) ?? .system, id: try row.string("reviewer_id"),
                display: try row.optionalString("reviewer_display")),
            decision: ReviewDecisionStatus(rawValue: try row.string("decision")) ?? .needsChanges,
            decisionReason: try row.string("decision_reason"), reviewedAt: try row.timestamp("reviewed_at"),
            criteriaOverrides: try row.models("criteria_overrides", CriterionOverride.self, legacy: &legacy),
            tags: try row.strings("tags"), meta: try row.object("meta").addingLegacy(legacy),
            createdAt: try row.timestamp("created_at"), updatedAt: try row.timestamp("updated_at"))
    }
}

extension EvidencePackRepository {
    /// The packs of several runs, in one query, oldest first.
    public func list(forRuns runIds: [String]) async throws(StorageError) -> [EvidencePack] {
        guard !runIds.isEmpty else { return [] }
        let (list, binds) = SQL.oneOf("for_run_id", runIds, dialect: session.dialect)
        return try await session.query("SELECT * FROM cwom_evidence_packs WHERE \(list) ORDER BY created_at, id", binds).map(Self.decode)
    }
}

extension RunRepository {
    /// Every run of an issue, oldest first.
    public func list(forIssue issueId: String) async throws(StorageError) -> [Run] {
        try await session.query(
            "SELECT * FROM cwom_runs WHERE for_issue_id = $1 ORDER BY created_at, id", [.text(issueId)]
        ).map(Self.decode)
    }
}

extension Store {
    /// Whether an object of `kind` with `id` exists.
    public func exists(_ ref: Ref) async throws(StorageError) -> Bool {
        let table: String
        switch ref.kind {
        case .repo: table = "cwom_repos"
        case .issue: table = "cwom_issues"
        case .contextPacket: table = "cwom_context_packets"
        case .constraintSnapshot: table = "cwom_constraint_snapshots"
        case .doctrineRef: table = "cwom_doctrine_refs"
        case .run: table = "cwom_runs"
        case .artifact: table = "cwom_artifacts"
        case .evidencePack: table = "cwom_evidence_packs"
        case .reviewDecision: table = "cwom_review_decisions"
        }
        return try await !session.query("SELECT 1 AS one FROM \(table) WHERE id = $1", [.text(ref.id)]).isEmpty
    }
}
