import CWOM
import Foundation
import TowerJSON

/// The evidence of a run (reference §6.5), schema-correct: the verdict, a result per
/// acceptance criterion, and a search for each evidence requirement among the run's artifacts.
public enum Prover {
    public static let unverifiedReason = "v0: Automated verification not available. Requires LLM evaluation in v1."

    /// Builds the evidence pack of a finished run and writes `evidence/` into the trace folder.
    /// Criteria and requirements come from the pinned context packet (the CWOM copies), never from
    /// task metadata that a client controls.
    public static func prove(run: Run, succeeded: Bool, failure: Failure?, issue: Issue, packet: ContextPacket,
        artifacts: [Artifact], prover: Actor, trace: TraceStore?) -> EvidencePack
    {
        let criteria =
            (packet.meta["acceptance_criteria"]?.arrayValue?.compactMap(\.stringValue)).flatMap { $0.isEmpty ? nil : $0 }
            ?? issue.acceptance.criteria
        let requirements = (packet.meta["evidence_requirements"]?.arrayValue ?? []).compactMap(\.stringValue)
        var passed = 0
        var failed = 0
        if succeeded { passed += 1 } else { failed += 1 }
        if failure == nil { passed += 1 } else { failed += 1 }
        var collected: [EvidenceItem] = []
        var missing: [String] = []
        for (index, requirement) in requirements.enumerated() {
            if let match = findArtifact(for: requirement, in: artifacts) {
                passed += 1
                collected.append(
                    EvidenceItem(
                        requirement: requirement, index: index, found: true, artifactUri: match.uri,
                        artifactType: match.type.rawValue, notes: "Matched artifact: \(match.title)"))
            } else {
                failed += 1
                missing.append(requirement)
                collected.append(
                    EvidenceItem(requirement: requirement, index: index, found: false, notes: "No matching artifact found"))
            }
        }
        let results = criteria.enumerated().map {
            CriterionResult(criterion: $0.element, index: $0.offset, status: .unverified, reason: unverifiedReason)
        }
        let verdict: Verdict
        var reason: String
        if !succeeded || failure != nil {
            verdict = .fail
            reason = failure != nil ? "Run failed" : "Run did not complete successfully"
            if let failure { reason += ": \(failure.message)" }
        } else if !missing.isEmpty {
            verdict = .partial
            reason = "Missing evidence: \(missing.joined(separator: ", "))"
        } else {
            verdict = .pass
            reason = "All automated checks passed"
            if !results.isEmpty { reason += " (\(results.count) criteria require manual/LLM verification)" }
        }
        let pack = EvidencePack(
            header: ObjectHeader(traceId: run.header.traceId), forRun: run.ref, forIssue: issue.ref, verdict: verdict,
            verdictReason: reason, evaluatedBy: prover, criteriaResults: results, evidenceCollected: collected,
            evidenceMissing: missing, checksPassed: passed, checksFailed: failed, checksSkipped: results.count,
            evidenceUri: trace.map { $0.uri + "/evidence/" })
        if let trace {
            try? trace.writeJSON(
                "evidence/verdict.json",
                [
                    "verdict": pack.verdict.json, "verdict_reason": .string(reason),
                    "evaluated_at": pack.evaluatedAt.json, "evaluated_by": prover.json,
                    "summary": ["checks_passed": .int(passed), "checks_failed": .int(failed), "checks_skipped": .int(results.count)],
                ])
            try? trace.writeJSON(
                "evidence/collected.json", ["evidence_collected": collected.json, "evidence_missing": missing.json])
            try? trace.makeFolder("evidence/criteria")
            for result in results { try? trace.writeJSON("evidence/criteria/criterion_\(result.index).json", result.json) }
            trace.event(
                "evidence_pack_created",
                ["verdict": pack.verdict.json, "checks_passed": .int(passed), "checks_failed": .int(failed), "checks_skipped": .int(results.count)])
        }
        return pack
    }

    /// An exact title match, then any word of the requirement inside a title, then the legacy
    /// type heuristics (tests → log or trace, screenshots → binary, docs → doc).
    static func findArtifact(for requirement: String, in artifacts: [Artifact]) -> Artifact? {
        let wanted = requirement.lowercased()
        if let exact = artifacts.first(where: { $0.title.lowercased() == wanted }) { return exact }
        let words = wanted.split(whereSeparator: \.isWhitespace).map(String.init)
        if let partial = artifacts.first(where: { artifact in words.contains { artifact.title.lowercased().contains($0) } }) {
            return partial
        }
        if wanted.contains("test") || wanted.contains("pytest") {
            return artifacts.first(where: { $0.type == .log }) ?? artifacts.first(where: { $0.type == .trace })
        }
        if wanted.contains("screenshot") || wanted.contains("image") { return artifacts.first(where: { $0.type == .binary }) }
        if wanted.contains("doc") || wanted.contains("readme") { return artifacts.first(where: { $0.type == .doc }) }
        return nil
    }
}
