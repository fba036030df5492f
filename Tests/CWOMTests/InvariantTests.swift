import CWOM
import Testing
import TowerJSON

/// A ref field and the kind it must hold.
struct RefField: CustomTestStringConvertible, Sendable {
    let model: String
    let path: String
    let kind: String
    var testDescription: String { "\(model).\(path) is a \(kind) ref" }
}

let refFields: [RefField] = [
    .init(model: "Issue", path: "repo", kind: "Repo"),
    .init(model: "Issue", path: "doctrine_refs[0]", kind: "DoctrineRef"),
    .init(model: "Issue", path: "constraints[0]", kind: "ConstraintSnapshot"),
    .init(model: "Issue", path: "context_packets[0]", kind: "ContextPacket"),
    .init(model: "Issue", path: "runs[0]", kind: "Run"),
    .init(model: "Issue", path: "relationships.parent", kind: "Issue"),
    .init(model: "Issue", path: "relationships.blocks[0]", kind: "Issue"),
    .init(model: "Issue", path: "relationships.blocked_by[0]", kind: "Issue"),
    .init(model: "Issue", path: "relationships.duplicates[0]", kind: "Issue"),
    .init(model: "ContextPacket", path: "for_issue", kind: "Issue"),
    .init(model: "ContextPacket", path: "doctrine_refs[0]", kind: "DoctrineRef"),
    .init(model: "ContextPacket", path: "constraint_snapshot", kind: "ConstraintSnapshot"),
    .init(model: "DoctrineRef", path: "applicability.repo_refs[0]", kind: "Repo"),
    .init(model: "Run", path: "for_issue", kind: "Issue"),
    .init(model: "Run", path: "repo", kind: "Repo"),
    .init(model: "Run", path: "inputs.context_packets[0]", kind: "ContextPacket"),
    .init(model: "Run", path: "inputs.doctrine_refs[0]", kind: "DoctrineRef"),
    .init(model: "Run", path: "inputs.constraint_snapshot", kind: "ConstraintSnapshot"),
    .init(model: "Run", path: "outputs.artifacts[0]", kind: "Artifact"),
    .init(model: "Artifact", path: "produced_by", kind: "Run"),
    .init(model: "Artifact", path: "for_issue", kind: "Issue"),
    .init(model: "EvidencePack", path: "for_run", kind: "Run"),
    .init(model: "EvidencePack", path: "for_issue", kind: "Issue"),
    .init(model: "ReviewDecision", path: "for_evidence_pack", kind: "EvidencePack"),
    .init(model: "ReviewDecision", path: "for_run", kind: "Run"),
    .init(model: "ReviewDecision", path: "for_issue", kind: "Issue"),
]

@Suite("Invariants the spec states")
struct InvariantTests {
    @Test("a ref's kind matches the field it sits in", arguments: refFields)
    func refKinds(_ field: RefField) {
        let (type, base) = fixture(field.model)
        let wrongKind = field.kind == "Repo" ? "Artifact" : "Repo"
        let found = errors(type, base.setting(path(field.path + ".kind"), to: .string(wrongKind)))
        #expect(found.map(\.type) == ["value_error"])
        #expect(found.first?.path.description == field.path + ".kind")
        #expect(found.first?.message == "Value error, expected a \(field.kind) reference, got \(wrongKind)")
    }

    @Test("a DataBlob has uri or inline")
    func dataBlob() {
        let blob = "inputs.data_blobs[0]"
        let neither = Fixtures.contextPacket.setting(path(blob + ".uri"), to: nil)
        let found = errors(ContextPacket.self, neither)
        #expect(found.map(\.description) == ["\(blob): Value error, a DataBlob needs 'uri' or 'inline'"])
        let inline = neither.setting(path(blob + ".inline"), to: "hello")
        #expect(errors(ContextPacket.self, inline) == [])
    }

    @Test("telemetry ended_at is not before started_at")
    func telemetryOrder() {
        let early = Fixtures.run.setting(path("telemetry.ended_at"), to: "2026-01-02T03:04:04Z")
        #expect(errors(Run.self, early).map(\.description) == [
            "telemetry.ended_at: Value error, ended_at must not be before started_at"
        ])
        let same = Fixtures.run.setting(path("telemetry.ended_at"), to: .string(Fixtures.ts))
        #expect(errors(Run.self, same) == [])
    }

    @Test("a failed Run carries a failure")
    func failedRun() {
        let failed = Fixtures.run.setting(path("status"), to: "failed")
        #expect(errors(Run.self, failed) == [])
        #expect(errors(Run.self, failed.setting(path("failure"), to: .null)).map(\.description) == [
            "failure: Value error, a failed Run must carry a failure"
        ])
        #expect(errors(Run.self, Fixtures.run.setting(path("failure"), to: .null)) == [])
    }

    @Test("a ContextPacket's new version is a new object; the old one is unchanged")
    func contextPacketVersions() throws {
        let first = try ContextPacket.decode(Fixtures.contextPacket)
        let second = first.nextVersion("2.0", summary: "Refined")
        #expect(second.id != first.id)
        #expect(second.version == "2.0")
        #expect(second.summary == "Refined")
        #expect(second.forIssue == first.forIssue)
        #expect(second.instructions == first.instructions)
        #expect(first.version == "1.0")
        #expect(first.json == Fixtures.contextPacket)
    }

    @Test("a ConstraintSnapshot is superseded by a new one, never edited")
    func constraintSnapshots() throws {
        let first = try ConstraintSnapshot.decode(Fixtures.constraintSnapshot)
        let next = first.superseded(by: Constraints(time: TimeConstraint(availableMinutes: 5)))
        #expect(next.id != first.id)
        #expect(next.constraints.time?.availableMinutes == 5)
        #expect(first.constraints.time?.availableMinutes == 15)
        #expect(next.owner == first.owner)
    }
}
