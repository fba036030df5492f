import CWOM
import Testing
import TowerJSON

/// One length or range bound of the spec (reference §5.2–5.3), located in a fixture.
struct Bound: CustomTestStringConvertible, Sendable {
    let model: String
    let path: String
    let min: Int
    let max: Int?
    var testDescription: String { "\(model).\(path) \(min)..\(max.map(String.init) ?? "∞")" }
}

let stringBounds: [Bound] = [
    .init(model: "Repo", path: "id", min: 1, max: 128),
    .init(model: "Repo", path: "name", min: 1, max: 256),
    .init(model: "Repo", path: "slug", min: 1, max: 256),
    .init(model: "Repo", path: "source.system", min: 1, max: 64),
    .init(model: "Repo", path: "source.external_id", min: 1, max: 256),
    .init(model: "Repo", path: "source.url", min: 1, max: 2000),
    .init(model: "Repo", path: "default_branch", min: 1, max: 128),
    .init(model: "Repo", path: "owners[0].actor_id", min: 1, max: 128),
    .init(model: "Repo", path: "owners[0].display", min: 1, max: 256),
    .init(model: "Repo", path: "policy.secrets_profile", min: 0, max: 64),
    .init(model: "Issue", path: "title", min: 1, max: 512),
    .init(model: "Issue", path: "description", min: 0, max: 16000),
    .init(model: "Issue", path: "repo.id", min: 1, max: 128),
    .init(model: "Issue", path: "repo.role", min: 1, max: 64),
    .init(model: "ContextPacket", path: "version", min: 1, max: 64),
    .init(model: "ContextPacket", path: "summary", min: 1, max: 4000),
    .init(model: "ContextPacket", path: "instructions", min: 0, max: 8000),
    .init(model: "ContextPacket", path: "inputs.documents[0].title", min: 1, max: 256),
    .init(model: "ContextPacket", path: "inputs.documents[0].uri", min: 1, max: 2000),
    .init(model: "ContextPacket", path: "inputs.documents[0].digest", min: 1, max: 128),
    .init(model: "ContextPacket", path: "inputs.documents[0].excerpt", min: 0, max: 4000),
    .init(model: "ContextPacket", path: "inputs.data_blobs[0].name", min: 1, max: 256),
    .init(model: "ContextPacket", path: "inputs.data_blobs[0].media_type", min: 1, max: 128),
    .init(model: "ContextPacket", path: "inputs.data_blobs[0].uri", min: 1, max: 2000),
    .init(model: "ContextPacket", path: "inputs.data_blobs[0].digest", min: 1, max: 128),
    .init(model: "ConstraintSnapshot", path: "owner.actor_id", min: 1, max: 128),
    .init(model: "ConstraintSnapshot", path: "constraints.energy.notes", min: 0, max: 500),
    .init(model: "ConstraintSnapshot", path: "constraints.health.notes", min: 0, max: 500),
    .init(model: "ConstraintSnapshot", path: "constraints.environment.location", min: 0, max: 128),
    .init(model: "ConstraintSnapshot", path: "constraints.environment.device", min: 0, max: 128),
    .init(model: "ConstraintSnapshot", path: "constraints.risk.notes", min: 0, max: 500),
    .init(model: "DoctrineRef", path: "namespace", min: 1, max: 128),
    .init(model: "DoctrineRef", path: "name", min: 1, max: 256),
    .init(model: "DoctrineRef", path: "version", min: 1, max: 64),
    .init(model: "DoctrineRef", path: "statement", min: 1, max: 4000),
    .init(model: "DoctrineRef", path: "rationale", min: 0, max: 4000),
    .init(model: "Run", path: "executor.runtime", min: 1, max: 64),
    .init(model: "Run", path: "executor.actor.actor_id", min: 1, max: 128),
    .init(model: "Run", path: "outputs.result_summary", min: 0, max: 4000),
    .init(model: "Run", path: "failure.message", min: 1, max: 4000),
    .init(model: "Run", path: "artifact_root_uri", min: 1, max: 2000),
    .init(model: "Artifact", path: "title", min: 1, max: 512),
    .init(model: "Artifact", path: "uri", min: 1, max: 2000),
    .init(model: "Artifact", path: "digest", min: 1, max: 128),
    .init(model: "Artifact", path: "media_type", min: 1, max: 128),
    .init(model: "Artifact", path: "preview", min: 0, max: 4000),
    .init(model: "Artifact", path: "verification.checks[0].name", min: 1, max: 128),
    .init(model: "Artifact", path: "verification.checks[0].evidence_uri", min: 1, max: 2000),
]

let integerBounds: [Bound] = [
    .init(model: "ConstraintSnapshot", path: "constraints.time.available_minutes", min: 0, max: nil),
    .init(model: "ConstraintSnapshot", path: "constraints.energy.score_0_5", min: 0, max: 5),
    .init(model: "Artifact", path: "size_bytes", min: 0, max: nil),
    .init(model: "Run", path: "cost.tokens", min: 0, max: nil),
    .init(model: "EvidencePack", path: "checks_passed", min: 0, max: nil),
    .init(model: "EvidencePack", path: "checks_failed", min: 0, max: nil),
    .init(model: "EvidencePack", path: "checks_skipped", min: 0, max: nil),
    .init(model: "EvidencePack", path: "criteria_results[0].index", min: 0, max: nil),
    .init(model: "EvidencePack", path: "evidence_collected[0].index", min: 0, max: nil),
    .init(model: "ReviewDecision", path: "criteria_overrides[0].criterion_index", min: 0, max: nil),
]

let numberBounds: [Bound] = [
    .init(model: "ConstraintSnapshot", path: "constraints.budget.usd_available", min: 0, max: nil),
    .init(model: "ConstraintSnapshot", path: "constraints.budget.burn_limit_usd", min: 0, max: nil),
    .init(model: "Run", path: "telemetry.duration_s", min: 0, max: nil),
    .init(model: "Run", path: "cost.usd", min: 0, max: nil),
    .init(model: "Run", path: "cost.compute_s", min: 0, max: nil),
]

func fixture(_ model: String) -> (type: any CWOMModel.Type, json: JSONValue) {
    guard let entry = Fixtures.all.first(where: { $0.type.schemaName == model }) else {
        fatalError("no fixture for \(model)")
    }
    return entry
}

/// The errors of decoding `json`, or [] when it is valid.
func errors(_ type: any CWOMModel.Type, _ json: JSONValue) -> [FieldError] {
    do {
        _ = try decodeAny(type, json)
        return []
    } catch {
        return error.errors
    }
}

@Suite("Every length and range bound of the spec")
struct BoundsTests {
    @Test("strings: accepted at both ends, rejected one past them with the path and the bound",
        arguments: stringBounds)
    func stringBound(_ bound: Bound) {
        let (type, base) = fixture(bound.model)
        let at = path(bound.path)
        // Lengths count Unicode scalars: "é" is one character to Python and to us.
        func text(_ n: Int) -> JSONValue { .string(String(repeating: "é", count: n)) }
        #expect(errors(type, base.setting(at, to: text(max(bound.min, 0)))) == [])
        if let max = bound.max {
            #expect(errors(type, base.setting(at, to: text(max))) == [])
            let over = errors(type, base.setting(at, to: text(max + 1)))
            #expect(over.count == 1)
            #expect(over.first?.type == "string_too_long")
            #expect(over.first?.path.description == bound.path)
            #expect(over.first?.message == "String should have at most \(max) characters")
        }
        if bound.min > 0 {
            let under = errors(type, base.setting(at, to: text(bound.min - 1)))
            #expect(under.count == 1)
            #expect(under.first?.type == "string_too_short")
            #expect(under.first?.description == "\(bound.path): String should have at least \(bound.min) character")
        }
    }

    @Test("integers: accepted at both ends, rejected one past them", arguments: integerBounds)
    func integerBound(_ bound: Bound) {
        let (type, base) = fixture(bound.model)
        let at = path(bound.path)
        #expect(errors(type, base.setting(at, to: .int(bound.min))) == [])
        let under = errors(type, base.setting(at, to: .int(bound.min - 1)))
        #expect(under.map(\.type) == ["greater_than_equal"])
        #expect(under.first?.path.description == bound.path)
        #expect(under.first?.message == "Input should be greater than or equal to \(bound.min)")
        if let max = bound.max {
            #expect(errors(type, base.setting(at, to: .int(max))) == [])
            let over = errors(type, base.setting(at, to: .int(max + 1)))
            #expect(over.map(\.type) == ["less_than_equal"])
            #expect(over.first?.message == "Input should be less than or equal to \(max)")
        }
    }

    @Test("numbers: zero accepted, a negative value rejected", arguments: numberBounds)
    func numberBound(_ bound: Bound) {
        let (type, base) = fixture(bound.model)
        let at = path(bound.path)
        #expect(errors(type, base.setting(at, to: .double(0))) == [])
        #expect(errors(type, base.setting(at, to: .int(0))) == [])
        let under = errors(type, base.setting(at, to: .double(-0.5)))
        #expect(under.map(\.type) == ["greater_than_equal"])
        #expect(under.first?.path.description == bound.path)
    }

    @Test("a date-time given as a number is seconds since 1970, or milliseconds past 2×10¹⁰, from 1600 to 9999, as pydantic reads it",
        arguments: [
            (JSONValue.int(1_700_000_000), "2023-11-14T22:13:20Z"), (.double(1_700_000_000.5), "2023-11-14T22:13:20.500000Z"),
            (.int(1_700_000_000_123), "2023-11-14T22:13:20.123000Z"), (.int(-86_400), "1969-12-31T00:00:00Z"),
            (.int(253_402_300_799_999), "9999-12-31T23:59:59.999000Z"), (.int(20_000_000_001), "1970-08-20T11:33:20.001000Z"),
        ])
    func numericTimestamp(_ number: JSONValue, _ expected: String) throws {
        let json = Fixtures.constraintSnapshot.setting(path("constraints.time.deadline"), to: number)
        let snapshot = try #require(try decodeAny(ConstraintSnapshot.self, json) as? ConstraintSnapshot)
        #expect(snapshot.constraints.time?.deadline == Timestamp(iso8601: expected), "\(snapshot.constraints.time?.deadline?.iso8601 ?? "nil")")
    }

    @Test("a date-time number outside the years 1600 to 9999 is an error naming the field, not a crash",
        arguments: [
            (JSONValue.double(1e300), "dates after 9999"), (.int(Int.max), "dates after 9999"), (.int(253_402_300_800_000), "dates after 9999"),
            (.double(-1e300), "dates before 1600"), (.int(Int.min), "dates before 1600"),
        ])
    func numericTimestampOutOfRange(_ number: JSONValue, _ message: String) {
        let found = errors(ConstraintSnapshot.self, Fixtures.constraintSnapshot.setting(path("constraints.time.deadline"), to: number))
        #expect(found.map(\.type) == ["datetime_parsing"])
        #expect(found.map(\.description) == ["constraints.time.deadline: Input should be a valid datetime, \(message) are not supported as unix timestamps"])
    }

    @Test("a wrong type names the field: a number where a string belongs")
    func stringType() {
        let found = errors(Repo.self, Fixtures.repo.setting(path("source.system"), to: .int(3)))
        #expect(found.map(\.description) == ["source.system: Input should be a valid string"])
    }
}
