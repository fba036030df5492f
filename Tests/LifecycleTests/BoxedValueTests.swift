import CWOM
import LegacyTasks
import Storage
import Testing
import TowerTestSupport

/// `Claim` and `Completion` keep their fields in one shared box (cheap copies); they must still
/// behave as values: changing a copy leaves the original as it was.
@Suite("Claims and completions are values")
struct BoxedValueTests {
    @Test("a changed copy of a claim or a completion leaves the original alone")
    func copiesAreIndependent() async throws {
        try await withEngine(.sqlite) { bench in
            _ = try await bench.enqueue()
            let claim = try await bench.claimOne()
            var changedClaim = claim
            changedClaim.issue.status = .done
            changedClaim.run.status = .failed
            #expect(claim.issue.status == .running, "the original claim keeps its Issue")
            #expect(claim.run.status == .running, "the original claim keeps its Run")
            #expect(changedClaim.issue.status == .done && changedClaim.run.status == .failed)

            let completion = bench.completion(claim, .failed)
            var changed = completion
            changed.retryable = true
            changed.claim.task.objective = "changed"
            changed.artifacts = [
                Artifact(producedBy: claim.run.ref, forIssue: claim.issue.ref, type: .doc, title: "x", uri: "file:///x")
            ]
            #expect(!completion.retryable && completion.artifacts.isEmpty, "the original completion is unchanged")
            #expect(completion.claim.task.objective == claim.task.objective)
            #expect(changed.retryable && changed.artifacts.count == 1 && changed.claim.task.objective == "changed")
        }
    }
}
