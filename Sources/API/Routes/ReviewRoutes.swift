import CWOM
import Storage
import TowerJSON

/// Reviews (reference §4.2), with the checks the legacy service left out: the run exists and
/// the evidence pack belongs to the run and the issue.
struct ReviewRoutes: Sendable {
    let context: CWOMContext
    var database: Database { context.database }

    func register(on router: inout Router) {
        router.add(
            "POST", "/cwom/reviews", summary: "Decide on an EvidencePack of an Issue under review", tag: "CWOM", access: .review,
            parameters: [.traceId], body: .create(ReviewDecision.self), answers: .success("review", ReviewDecision.self)
        ) { request in
            var review = try context.payload(ReviewDecision.self, request)
            review.header.traceId = context.traceId(request)
            try await context.engine.review(review)
            return .json(201, ["status": "success", "review": review.json])
        }
        context.getOne(&router, "/cwom/reviews/{review_id}", parameter: "review_id", summary: "Get a ReviewDecision") {
            try await $0.reviews.get($1)
        }
        router.add(
            "GET", "/cwom/reviews", summary: "List ReviewDecisions", tag: "CWOM", access: .read,
            parameters: [
                Parameter("evidence_pack_id", "The EvidencePack's id."), Parameter("issue_id", "The Issue's id."),
                .filter("decision", ReviewDecisionStatus.self, "The decision"),
            ] + Parameter.page,
            answers: .list(ReviewDecision.self)
        ) { request in
            let page = try context.page(request)
            let reviews = try await database.read {
                try await $0.reviews.list(
                    evidencePackId: request.queryValue("evidence_pack_id"), issueId: request.queryValue("issue_id"),
                    decision: request.queryValue("decision"), page: page)
            }
            return .json(200, reviews.json)
        }
        router.add(
            "GET", "/cwom/evidence-packs/{evidence_pack_id}/review", summary: "The ReviewDecision of an EvidencePack", tag: "CWOM", access: .read,
            answers: .object(ReviewDecision.self)
        ) {
            request in
            let reviews = try await database.read {
                try await $0.reviews.list(evidencePackId: request.parameter("evidence_pack_id"), page: Page(limit: 1))
            }
            guard let review = reviews.first else {
                throw APIError.detail(404, "No ReviewDecision found for this EvidencePack")
            }
            return .json(200, review.json)
        }
        router.add(
            "GET", "/cwom/issues/{issue_id}/reviews", summary: "ReviewDecisions of an Issue", tag: "CWOM", access: .read,
            parameters: [.filter("decision", ReviewDecisionStatus.self, "The decision")], answers: .list(ReviewDecision.self)
        ) { request in
            let reviews = try await database.read {
                try await $0.reviews.list(
                    issueId: request.parameter("issue_id"), decision: request.queryValue("decision"), page: Page(limit: 10_000))
            }
            return .json(200, reviews.json)
        }
    }
}
