import CWOM
import Storage
import TowerJSON

/// Reviews (reference §4.2), with the checks the legacy service left out: the run exists and
/// the evidence pack belongs to the run and the issue.
struct ReviewRoutes: Sendable {
    let context: CWOMContext
    var database: Database { context.database }

    func register(on router: inout Router) {
        router.add("POST", "/cwom/reviews", summary: "Decide on an EvidencePack of an Issue under review", tag: "CWOM") { request in
            try context.auth.check(request)
            var review = try context.payload(ReviewDecision.self, request)
            review.header.traceId = context.traceId(request)
            let stored = review
            try await database.write { store in try await Self.apply(stored, in: store) }
            return .json(201, ["status": "success", "review": review.json])
        }
        context.getOne(&router, "/cwom/reviews/{review_id}", parameter: "review_id", summary: "Get a ReviewDecision") {
            try await $0.reviews.get($1)
        }
        router.add("GET", "/cwom/reviews", summary: "List ReviewDecisions", tag: "CWOM") { request in
            let page = try context.page(request)
            let reviews = try await database.read {
                try await $0.reviews.list(
                    evidencePackId: request.queryValue("evidence_pack_id"), issueId: request.queryValue("issue_id"),
                    decision: request.queryValue("decision"), page: page)
            }
            return .json(200, reviews.json)
        }
        router.add("GET", "/cwom/evidence-packs/{evidence_pack_id}/review", summary: "The ReviewDecision of an EvidencePack", tag: "CWOM") {
            request in
            let reviews = try await database.read {
                try await $0.reviews.list(evidencePackId: request.parameter("evidence_pack_id"), page: Page(limit: 1))
            }
            guard let review = reviews.first else {
                throw APIError.detail(404, "No ReviewDecision found for this EvidencePack")
            }
            return .json(200, review.json)
        }
        router.add("GET", "/cwom/issues/{issue_id}/reviews", summary: "ReviewDecisions of an Issue", tag: "CWOM") { request in
            let reviews = try await database.read {
                try await $0.reviews.list(
                    issueId: request.parameter("issue_id"), decision: request.queryValue("decision"), page: Page(limit: 10_000))
            }
            return .json(200, reviews.json)
        }
    }

    /// Checks the preconditions in the legacy order, stores the decision and moves the issue and
    /// run: approved → done; rejected or needs_changes → failed. Audited with the reviewer.
    static func apply(_ review: ReviewDecision, in store: Store) async throws {
        guard let pack = try await store.evidencePacks.get(review.forEvidencePack.id) else {
            throw APIError.detail(400, .string("EvidencePack '\(review.forEvidencePack.id)' not found"))
        }
        guard let issue = try await store.issues.get(review.forIssue.id) else {
            throw APIError.detail(400, .string("Issue '\(review.forIssue.id)' not found"))
        }
        guard issue.status == .underReview else {
            throw APIError.detail(400, .string("Issue '\(issue.id)' is not under review (status: \(issue.status.rawValue))"))
        }
        guard var run = try await store.runs.get(review.forRun.id) else {
            throw APIError.detail(400, .string("Run '\(review.forRun.id)' not found"))
        }
        guard pack.forRun.id == run.id, pack.forIssue.id == issue.id, run.forIssue.id == issue.id else {
            throw APIError.detail(
                400, .string("EvidencePack '\(pack.id)' does not belong to Run '\(run.id)' of Issue '\(issue.id)'"))
        }
        try await store.reviews.insert(review)
        let reviewer = review.reviewer
        let trace = review.header.traceId
        let target: Status = review.decision == .approved ? .done : .failed
        try await store.audit.created("ReviewDecision", review.id, snapshot: review.json, by: reviewer, traceId: trace)
        try await store.issues.setStatus(issue.id, target)
        try await store.audit.statusChanged(
            "Issue", issue.id, from: issue.status.rawValue, to: target.rawValue, by: reviewer,
            note: "Review decision: \(review.decision.rawValue)", traceId: trace)
        let old = run.status
        if RunLifecycle.canTransition(from: old, to: target) {
            run.status = target
            if target == .failed && run.failure == nil {
                let reason = review.decisionReason.isEmpty ? review.decision.rawValue : review.decisionReason
                run.failure = Failure(category: .policy, message: String("Review decision \(review.decision.rawValue): \(reason)".prefix(4000)))
            }
            run.updatedAt = .now()
            try await store.runs.update(run)
            try await store.audit.statusChanged(
                "Run", run.id, from: old.rawValue, to: target.rawValue, by: reviewer,
                note: "Review decision: \(review.decision.rawValue)", traceId: trace)
        }
    }
}
