import CWOM
import Testing
import TowerJSON

@Suite("The CWOM object model")
struct ModelTests {
    @Test("every enum has exactly the values of the spec")
    func enumValues() {
        #expect(ObjectKind.allValues == [
            "Repo", "Issue", "ContextPacket", "Run", "Artifact", "ConstraintSnapshot", "DoctrineRef", "EvidencePack",
            "ReviewDecision",
        ])
        #expect(Status.allValues == ["planned", "ready", "running", "blocked", "done", "failed", "canceled", "under_review"])
        #expect(IssueType.allValues == ["feature", "bug", "chore", "research", "ops", "doc", "incident"])
        #expect(Priority.allValues == ["P0", "P1", "P2", "P3", "P4"])
        #expect(RunMode.allValues == ["human", "agent", "hybrid", "system"])
        #expect(ArtifactType.allValues == [
            "code_patch", "commit", "pr", "build", "container_image", "doc", "report", "dataset", "log", "trace",
            "binary", "link",
        ])
        #expect(VerificationStatus.allValues == ["unverified", "passed", "failed"])
        #expect(CheckStatus.allValues == ["unverified", "passed", "failed"])
        #expect(DoctrineType.allValues == ["principle", "policy", "procedure", "heuristic", "pattern"])
        #expect(DoctrinePriority.allValues == ["must", "should", "may"])
        #expect(Visibility.allValues == ["public", "private", "internal"])
        #expect(ActorKind.allValues == ["human", "agent", "system"])
        #expect(ConstraintScope.allValues == ["personal", "repo", "org", "system", "run"])
        #expect(Connectivity.allValues == ["offline", "limited", "ok"])
        #expect(RiskTolerance.allValues == ["low", "medium", "high"])
        #expect(FailureCategory.allValues == ["policy", "build", "test", "runtime", "dependency", "unknown"])
        #expect(Verdict.allValues == ["pass", "fail", "partial", "pending"])
        #expect(CriterionStatus.allValues == ["satisfied", "not_satisfied", "unverified", "skipped"])
        #expect(ReviewDecisionStatus.allValues == ["approved", "rejected", "needs_changes"])
        #expect(CWOMVersion.current == "0.1")
    }

    @Test("every enum value is accepted where it belongs and a stranger is rejected with the list")
    func enumFields() throws {
        for value in Status.allValues {
            #expect(errors(Issue.self, Fixtures.issue.setting(path("status"), to: .string(value))) == [])
        }
        for value in ArtifactType.allValues {
            #expect(errors(Artifact.self, Fixtures.artifact.setting(path("type"), to: .string(value))) == [])
        }
        for value in IssueType.allValues {
            #expect(errors(Issue.self, Fixtures.issue.setting(path("type"), to: .string(value))) == [])
        }
        for value in RunMode.allValues {
            #expect(errors(Run.self, Fixtures.run.setting(path("mode"), to: .string(value))) == [])
        }
        for value in Verdict.allValues {
            #expect(errors(EvidencePack.self, Fixtures.evidencePack.setting(path("verdict"), to: .string(value))) == [])
        }
        let wrong = errors(Repo.self, Fixtures.repo.setting(path("visibility"), to: "secret"))
        #expect(wrong.map(\.type) == ["enum"])
        #expect(wrong.first?.message == "Input should be 'public', 'private' or 'internal'")
        #expect(wrong.first?.context?["expected"] == "'public', 'private' or 'internal'")
        let category = errors(Run.self, Fixtures.run.setting(path("failure.category"), to: "oops"))
        #expect(category.map(\.type) == ["literal_error"])
    }

    @Test("every fixture decodes and encodes back to the same JSON", arguments: ["Repo", "Issue", "ContextPacket", "ConstraintSnapshot", "DoctrineRef", "Run", "Artifact", "EvidencePack", "ReviewDecision"])
    func roundTrip(_ model: String) throws {
        let (type, json) = fixture(model)
        let value = try decodeAny(type, json)
        #expect(value.json == json)
        #expect(try decodeAny(type, value.json).json == json)
    }

    @Test("defaults of the spec")
    func defaults() throws {
        let repo = try Repo.create(from: ["name": "x", "slug": "org/x", "source": ["system": "jct"]])
        #expect(repo.defaultBranch == "main")
        #expect(repo.visibility == .private)
        #expect(ULID.isValid(repo.id))
        let issue = try Issue.create(from: ["repo": ["kind": "Repo", "id": .string(repo.id)], "title": "t", "type": "bug"])
        #expect(issue.status == .planned)
        #expect(issue.priority == .p2)
        #expect(issue.description == "")
        let run = try Run.create(from: [
            "for_issue": ["kind": "Issue", "id": .string(issue.id)], "repo": ["kind": "Repo", "id": .string(repo.id)], "mode": "agent",
            "executor": ["actor": ["actor_kind": "agent", "actor_id": "a"], "runtime": "cli"],
        ])
        #expect(run.status == .planned)
        #expect(run.failure == nil)
        let artifact = try Artifact.create(from: [
            "produced_by": ["kind": "Run", "id": .string(run.id)], "for_issue": ["kind": "Issue", "id": .string(issue.id)],
            "type": "doc", "title": "t", "uri": "file:///x",
        ])
        #expect(artifact.verification.status == .unverified)
        #expect(Ref(kind: .repo, id: "x").role == nil)
    }

    @Test("timestamps are ISO-8601 UTC with microseconds")
    func timestampShape() throws {
        let repo = try Repo.decode(Fixtures.repo)
        #expect(repo.json["created_at"] == "2026-01-02T03:04:05.000000Z")
    }

    @Test("legacy ids (UUIDs) and any 1..128 character id are accepted")
    func legacyIds() throws {
        let uuid = "7f1c2a3b-4d5e-4f60-8a9b-0c1d2e3f4a5b"
        let issue = try Issue.decode(Fixtures.issue.setting(path("id"), to: .string(uuid)).setting(
            path("repo.id"), to: .string(uuid)))
        #expect(issue.id == uuid)
        #expect(issue.repo.id == uuid)
    }

    @Test("create payloads reject unknown keys, at any depth, and keys only stored objects have")
    func unknownKeys() {
        do {
            _ = try Repo.create(from: [
                "name": "x", "slug": "s", "source": ["system": "jct", "extra": 1], "colour": "blue", "id": "mine",
            ])
            Issue.record("expected a validation error")
        } catch {
            #expect(error.model == "RepoCreate")
            #expect(Set(error.errors.map(\.description)) == [
                "source.extra: Extra inputs are not permitted", "colour: Extra inputs are not permitted",
                "id: Extra inputs are not permitted",
            ])
        }
        let stored = errors(Repo.self, Fixtures.repo.setting(path("colour"), to: "blue"))
        #expect(stored.map(\.type) == ["extra_forbidden"])
    }

    @Test("an unknown key is found wherever it stands, whatever the order of the known keys around it")
    func unknownKeysInAnyOrder() throws {
        let fixture = try #require(Fixtures.repo.objectValue)
        // The stored Repo's keys reversed (a model reads them in its own order), with unknown
        // keys first, in the middle and last.
        var reordered = JSONObject()
        reordered["first"] = 1
        for (index, key) in fixture.keys.reversed().enumerated() {
            reordered[key] = fixture[key]
            if index == fixture.count / 2 { reordered["middle"] = 2 }
        }
        reordered["last"] = 3
        #expect(Set(errors(Repo.self, .object(reordered)).map(\.description)) == [
            "first: Extra inputs are not permitted", "middle: Extra inputs are not permitted",
            "last: Extra inputs are not permitted",
        ])
        var reversed = JSONObject()
        for key in fixture.keys.reversed() { reversed[key] = fixture[key] }
        #expect(errors(Repo.self, .object(reversed)).isEmpty)
    }

    @Test("missing required fields are reported in field order, with the enclosing object as input")
    func missing() {
        let found = errors(Issue.self, Fixtures.issue.setting(path("title"), to: nil).setting(path("type"), to: nil))
        #expect(found.map(\.description) == ["title: Field required", "type: Field required"])
        #expect(found.first?.input?["repo"] != nil)
    }

    @Test("lax coercions follow pydantic: numeric strings and integral floats are integers")
    func laxNumbers() throws {
        let snapshot = try ConstraintSnapshot.decode(
            Fixtures.constraintSnapshot.setting(path("constraints.time.available_minutes"), to: "15"))
        #expect(snapshot.constraints.time?.availableMinutes == 15)
        let fromFloat = try ConstraintSnapshot.decode(
            Fixtures.constraintSnapshot.setting(path("constraints.time.available_minutes"), to: 15.0))
        #expect(fromFloat.constraints.time?.availableMinutes == 15)
        let fractional = errors(
            ConstraintSnapshot.self,
            Fixtures.constraintSnapshot.setting(path("constraints.time.available_minutes"), to: 15.5))
        #expect(fractional.map(\.type) == ["int_from_float"])
        let word = errors(
            ConstraintSnapshot.self,
            Fixtures.constraintSnapshot.setting(path("constraints.time.available_minutes"), to: "many"))
        #expect(word.map(\.type) == ["int_parsing"])
    }
}
