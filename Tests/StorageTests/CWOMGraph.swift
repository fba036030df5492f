import CWOM
import Storage
import TowerJSON
import TowerTestSupport

/// A full causality chain (Repo → Issue → ContextPacket → ConstraintSnapshot → DoctrineRef → Run
/// → Artifact → EvidencePack → ReviewDecision) written in one transaction.
struct CWOMGraph: Sendable {
    let repo: Repo
    let snapshot: ConstraintSnapshot
    let doctrine: DoctrineRef
    let issue: Issue
    let packet: ContextPacket
    let run: Run
    let artifact: Artifact
    let evidence: EvidencePack
    let review: ReviewDecision

    static func build(in database: Database, slug: String = "myorg/" + ULID.make().lowercased()) async throws -> CWOMGraph {
        let owner = Actor(kind: .human, id: "alice", display: "Alice")
        let repo = Repo(name: "service", slug: slug, source: Source(system: "jct", externalId: slug))
        let snapshot = ConstraintSnapshot(
            scope: .run, owner: owner,
            constraints: Constraints(time: TimeConstraint(availableMinutes: 15), risk: RiskConstraint(tolerance: .low)),
            meta: ["time_budget_seconds": 900])
        let doctrine = DoctrineRef(
            namespace: "org", name: "small-prs-" + ULID.make(), version: "1", type: .principle,
            statement: "Keep changes small", applicability: DoctrineApplicability(repoRefs: [repo.ref]))
        var issue = Issue(
            repo: repo.ref, title: "Update the docs", description: "Update the docs\nsecond line", type: .doc,
            assignees: [owner], doctrineRefs: [doctrine.ref], constraints: [snapshot.ref],
            acceptance: Acceptance(criteria: ["docs updated"]), meta: ["source": "jct_task"])
        let packet = ContextPacket(
            forIssue: issue.ref, version: "1.0", summary: "Initial context from JCT task",
            inputs: ContextInputs(documents: [Document(title: "Spec", uri: "file:///spec.md")]),
            assumptions: ["Target branch: main"], instructions: "Update the docs", doctrineRefs: [doctrine.ref],
            constraintSnapshot: snapshot.ref)
        issue.contextPackets = [packet.ref]
        let started = Timestamp.now()
        let run = Run(
            header: ObjectHeader(traceId: "trace-1"), forIssue: issue.ref, repo: repo.ref, status: .done, mode: .system,
            executor: Executor(actor: Actor(kind: .system, id: "worker-1"), runtime: "stub", toolchain: ["swift"]),
            inputs: RunInputs(contextPackets: [packet.ref], doctrineRefs: [doctrine.ref], constraintSnapshot: snapshot.ref),
            telemetry: Telemetry(startedAt: started, endedAt: started.adding(seconds: 1), durationS: 1),
            cost: Cost(usd: 0.01, tokens: 10), artifactRootUri: "file:///tmp/runs/x/")
        let artifact = Artifact(
            producedBy: run.ref, forIssue: issue.ref, type: .doc, title: "Stub Output",
            uri: "file:///tmp/runs/x/artifacts/output.md", digest: "sha256:00", mediaType: "text/markdown", sizeBytes: 10)
        var finishedRun = run
        finishedRun.outputs = RunOutputs(artifacts: [artifact.ref], resultSummary: "ok", decisionLog: ["did it"])
        let evidence = EvidencePack(
            forRun: run.ref, forIssue: issue.ref, verdict: .pass, verdictReason: "All automated checks passed",
            evaluatedBy: Actor(kind: .system, id: "prover"),
            criteriaResults: [CriterionResult(criterion: "docs updated", index: 0, status: .unverified)],
            checksPassed: 2, checksSkipped: 1)
        let review = ReviewDecision(
            forEvidencePack: evidence.ref, forRun: run.ref, forIssue: issue.ref, reviewer: owner, decision: .approved,
            decisionReason: "looks good")
        try await database.write { [issue, finishedRun] store in
            try await store.repos.insert(repo)
            try await store.constraintSnapshots.insert(snapshot)
            try await store.doctrineRefs.insert(doctrine)
            var withoutPacket = issue
            withoutPacket.contextPackets = []
            try await store.issues.insert(withoutPacket)
            try await store.contextPackets.insert(packet)
            try await store.issues.link(issue.id, to: packet.ref, at: issue.createdAt)
            try await store.runs.insert(finishedRun)
            try await store.artifacts.insert(artifact)
            try await store.evidencePacks.insert(evidence)
            try await store.reviews.insert(review)
        }
        return CWOMGraph(
            repo: repo, snapshot: snapshot, doctrine: doctrine, issue: issue, packet: packet, run: finishedRun,
            artifact: artifact, evidence: evidence, review: review)
    }
}
