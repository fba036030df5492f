import API
import CWOM
import Foundation
import Storage
import Testing
import TowerJSON
import TowerTestSupport

/// Builds the whole causality chain over HTTP and returns the ids.
struct Chain {
    var repo = "", snapshot = "", doctrine = "", issue = "", packet = "", run = "", artifact = "", pack = ""

    /// `headers` go with every create (`X-Trace-Id`, a key).
    static func build(_ h: Harness, traceRoot: String? = nil, headers: [(String, String)] = []) async throws -> Chain {
        var c = Chain()
        func id(_ answer: Answer, _ key: String) throws -> String {
            #expect(answer.status == 201, "\(answer.text)")
            return try #require(answer[key]?["id"]?.stringValue)
        }
        c.repo = try id(await h.send("POST", "/cwom/repos", json: ["name": "app", "slug": "org/app", "source": ["system": "github"]], headers: headers), "repo")
        c.snapshot = try id(
            await h.send(
                "POST", "/cwom/constraint-snapshots",
                json: ["scope": "run", "owner": ["actor_kind": "human", "actor_id": "alice"], "constraints": ["time": ["available_minutes": 30]]], headers: headers),
            "constraint_snapshot")
        c.doctrine = try id(
            await h.send(
                "POST", "/cwom/doctrine-refs",
                json: ["namespace": "org", "name": "small", "version": "1", "type": "principle", "statement": "Small changes"], headers: headers),
            "doctrine_ref")
        c.issue = try id(
            await h.send(
                "POST", "/cwom/issues",
                json: [
                    "repo": ["kind": "Repo", "id": .string(c.repo)], "title": "Fix login", "type": "bug",
                    "doctrine_refs": [["kind": "DoctrineRef", "id": .string(c.doctrine)]],
                    "constraints": [["kind": "ConstraintSnapshot", "id": .string(c.snapshot)]],
                ], headers: headers), "issue")
        c.packet = try id(
            await h.send(
                "POST", "/cwom/context-packets",
                json: [
                    "for_issue": ["kind": "Issue", "id": .string(c.issue)], "version": "1", "summary": "What we know",
                    "constraint_snapshot": ["kind": "ConstraintSnapshot", "id": .string(c.snapshot)],
                ], headers: headers), "context_packet")
        c.run = try id(
            await h.send(
                "POST", "/cwom/runs",
                json: [
                    "for_issue": ["kind": "Issue", "id": .string(c.issue)], "repo": ["kind": "Repo", "id": .string(c.repo)],
                    "mode": "agent", "executor": ["actor": ["actor_kind": "agent", "actor_id": "bot"], "runtime": "cli"],
                    "inputs": [
                        "context_packets": [["kind": "ContextPacket", "id": .string(c.packet)]],
                        "constraint_snapshot": ["kind": "ConstraintSnapshot", "id": .string(c.snapshot)],
                    ],
                ], headers: headers), "run")
        c.artifact = try id(
            await h.send(
                "POST", "/cwom/artifacts",
                json: [
                    "produced_by": ["kind": "Run", "id": .string(c.run)], "for_issue": ["kind": "Issue", "id": .string(c.issue)],
                    "type": "doc", "title": "Report", "uri": "file:///tmp/report.md",
                ], headers: headers), "artifact")
        // The prover makes evidence packs; there is no POST for them.
        let pack = EvidencePack(
            forRun: Ref(kind: .run, id: c.run), forIssue: Ref(kind: .issue, id: c.issue), verdict: .pass,
            verdictReason: "All automated checks passed", evaluatedBy: Actor(kind: .system, id: "prover"))
        try await h.database.write { store in try await store.evidencePacks.insert(pack) }
        c.pack = pack.id
        return c
    }
}

@Suite("The CWOM REST API")
struct CWOMAPITests {
    @Test("the full causality chain is built and read back over HTTP", arguments: Dialect.allCases)
    func causalityChain(_ dialect: Dialect) async throws {
        try await withAPI(dialect) { h in
            let c = try await Chain.build(h)
            for step in ["ready", "running", "under_review"] {
                #expect(await h.send("PATCH", "/cwom/runs/\(c.run)", json: ["status": .string(step)]).status == 200, "\(step)")
            }
            // An Issue follows the state machine too: planned → running → under_review.
            for step in ["running", "under_review"] {
                #expect(await h.send("PATCH", "/cwom/issues/\(c.issue)/status?status=\(step)").status == 200, "\(step)")
            }
            let review = await h.send(
                "POST", "/cwom/reviews",
                json: [
                    "for_evidence_pack": ["kind": "EvidencePack", "id": .string(c.pack)],
                    "for_run": ["kind": "Run", "id": .string(c.run)], "for_issue": ["kind": "Issue", "id": .string(c.issue)],
                    "reviewer": ["actor_kind": "human", "actor_id": "carol"], "decision": "approved", "decision_reason": "ok",
                ])
            #expect(review.status == 201)
            #expect(review["status"] == "success")
            let expanded = await h.get("/cwom/issues/\(c.issue)?expand=all")
            #expect(expanded.status == 200)
            #expect(expanded["status"] == "done")
            let x = try #require(expanded["expanded"])
            #expect(x["repo"]?["id"] == .string(c.repo))
            #expect(x["context_packets"]?.arrayValue?.map { $0["id"] } == [.string(c.packet)])
            #expect(x["constraint_snapshots"]?.arrayValue?.map { $0["id"] } == [.string(c.snapshot)])
            #expect(x["doctrine_refs"]?.arrayValue?.map { $0["id"] } == [.string(c.doctrine)])
            let run = try #require(x["runs"]?.arrayValue?.first)
            #expect(run["status"] == "done")
            #expect(run["artifacts"]?.arrayValue?.map { $0["id"] } == [.string(c.artifact)])
            #expect(run["evidence_pack"]?["id"] == .string(c.pack))
            let reviewId = try #require(review["review"]?["id"]?.stringValue)
            #expect(await h.get("/cwom/reviews/\(reviewId)")["decision"] == "approved")
            #expect(await h.get("/cwom/evidence-packs/\(c.pack)/review")["id"] == .string(reviewId))
            #expect(await h.get("/cwom/issues/\(c.issue)/reviews").json.arrayValue?.count == 1)
            #expect(await h.get("/cwom/runs/\(c.run)/evidence-pack")["id"] == .string(c.pack))
            #expect(await h.get("/cwom/issues/\(c.issue)/evidence-packs").json.arrayValue?.count == 1)
            #expect(await h.get("/cwom/runs/\(c.run)/artifacts").json.arrayValue?.count == 1)
            #expect(await h.get("/cwom/issues/\(c.issue)/artifacts?type=doc").json.arrayValue?.count == 1)
            #expect(await h.get("/cwom/issues/\(c.issue)/artifacts?type=log").json == [])
            // Issue links made by IssueCreate (the legacy service dropped them).
            let issue = await h.get("/cwom/issues/\(c.issue)")
            #expect(issue["doctrine_refs"] == [["kind": "DoctrineRef", "id": .string(c.doctrine)]])
            #expect(issue["context_packets"] == [["kind": "ContextPacket", "id": .string(c.packet)]])
            #expect(issue["runs"]?.arrayValue?.first?["id"] == .string(c.run))
            // The audit trail of the issue, newest first.
            let audit = await h.get("/cwom/audit?entity_kind=Issue&entity_id=\(c.issue)")
            #expect(audit.json.arrayValue?.first?["note"] == "Review decision: approved")
        }
    }

    @Test("gets and lists: 200s, 404 bodies, filters and paging bounds", arguments: Dialect.allCases)
    func readsAndLists(_ dialect: Dialect) async throws {
        try await withAPI(dialect) { h in
            let c = try await Chain.build(h)
            let gets: [(String, String, String)] = [
                ("repos", c.repo, "Repo"), ("issues", c.issue, "Issue"), ("context-packets", c.packet, "ContextPacket"),
                ("constraint-snapshots", c.snapshot, "ConstraintSnapshot"), ("doctrine-refs", c.doctrine, "DoctrineRef"),
                ("runs", c.run, "Run"), ("artifacts", c.artifact, "Artifact"), ("evidence-packs", c.pack, "EvidencePack"),
                ("reviews", "nope", "ReviewDecision"),
            ]
            for (collection, id, kind) in gets {
                if id != "nope" {
                    let found = await h.get("/cwom/\(collection)/\(id)")
                    #expect(found.status == 200)
                    #expect(found["kind"] == .string(kind))
                }
                let missing = await h.get("/cwom/\(collection)/missing-id")
                #expect(missing.status == 404)
                #expect(missing.json == ["detail": .string("\(kind) not found")])
            }
            #expect(await h.get("/cwom/repos?visibility=private").json.arrayValue?.count == 1)
            #expect(await h.get("/cwom/repos?visibility=public").json == [])
            #expect(await h.get("/cwom/issues?status=bogus").json == [])
            #expect(await h.get("/cwom/issues?type=bug&priority=P2").json.arrayValue?.count == 1)
            #expect(await h.get("/cwom/runs?issue_id=\(c.issue)&mode=agent").json.arrayValue?.count == 1)
            #expect(await h.get("/cwom/constraint-snapshots?scope=run&owner_id=alice").json.arrayValue?.count == 1)
            #expect(await h.get("/cwom/constraint-snapshots?owner_id=alice").json.arrayValue?.count == 1)
            #expect(await h.get("/cwom/constraint-snapshots?owner_id=bob").json == [])
            #expect(await h.get("/cwom/doctrine-refs?namespace=org").json.arrayValue?.count == 1)
            #expect(await h.get("/cwom/doctrine-refs?priority=should").json.arrayValue?.count == 1, "the default priority")
            #expect(await h.get("/cwom/doctrine-refs?type=principle&priority=should").json.arrayValue?.count == 1)
            #expect(await h.get("/cwom/doctrine-refs?priority=must").json == [])
            #expect(await h.get("/cwom/doctrine-refs?priority=bogus").json == [])
            #expect(await h.get("/cwom/evidence-packs?verdict=pass").json.arrayValue?.count == 1)
            #expect(await h.get("/cwom/issues/\(c.issue)/context-packets").json.arrayValue?.count == 1)
            let bounds = await h.get("/cwom/issues?limit=0&offset=-1")
            #expect(bounds.errorTypes == ["greater_than_equal", "greater_than_equal"])
            #expect(bounds.errorLocs == [["query", "limit"], ["query", "offset"]])
            #expect(bounds["detail"]?.arrayValue?.first?["input"] == "0")
            #expect(await h.get("/cwom/repos?limit=1001").errorTypes == ["less_than_equal"])
            #expect(await h.get("/cwom/repos?limit=1000").status == 200)
            let noList = await h.get("/cwom/artifacts")
            #expect(noList.status == 405)
            #expect(noList.header("allow") == "POST")
            #expect(await h.get("/cwom/runs/\(c.run)/evidence-pack").status == 200)
            #expect(await h.get("/cwom/runs/nope/evidence-pack").json == ["detail": "Run not found"])
            #expect(await h.get("/cwom/evidence-packs/\(c.pack)/review").json == ["detail": "No ReviewDecision found for this EvidencePack"])
        }
    }

    @Test("each created object is audited once, by its creator and under the request's trace; a refused one leaves no row",
        arguments: Dialect.allCases)
    func creationAudit(_ dialect: Dialect) async throws {
        try await withAPI(dialect) { h in
            let c = try await Chain.build(h, headers: [("X-Trace-Id", "trace-of-the-chain")])
            let rows = try #require(await h.get("/cwom/audit?trace_id=trace-of-the-chain&limit=1000").json.arrayValue)
            let created = rows.filter { $0["action"] == "created" }
            #expect(created.compactMap { $0["entity_id"]?.stringValue }.sorted() == [c.repo, c.snapshot, c.doctrine, c.issue, c.packet, c.run, c.artifact].sorted())
            #expect(created.allSatisfy { $0["actor_id"] == "cwom-service" && $0["before"] == .null }, "no key: the service creates")
            #expect(created.first { $0["entity_id"] == .string(c.issue) }?["after"]?["title"] == "Fix login", "the object's snapshot")
            #expect(created.first { $0["entity_id"] == .string(c.packet) }?["note"] == "Immutable object created")
            let linked = rows.filter { $0["action"] == "linked" }
            #expect(linked.allSatisfy { $0["entity_kind"] == "Issue" && $0["entity_id"] == .string(c.issue) })
            #expect(linked.compactMap { $0["note"]?.stringValue }.sorted() == [
                "Linked to ConstraintSnapshot:\(c.snapshot)", "Linked to ContextPacket:\(c.packet)", "Linked to DoctrineRef:\(c.doctrine)",
            ])
            #expect(rows.count == created.count + linked.count)

            let all = await h.get("/cwom/audit?limit=1000").json.arrayValue?.count
            #expect(await h.send("POST", "/cwom/repos", json: ["name": "app", "slug": "org/app", "source": ["system": "github"]]).status == 409)
            #expect(await h.send("POST", "/cwom/context-packets", json: ["for_issue": ["kind": "Issue", "id": .string(c.issue)], "version": "1", "summary": "s"]).status == 409)
            #expect(await h.send("POST", "/cwom/issues", json: ["repo": ["kind": "Repo", "id": "ghost"], "title": "t", "type": "bug"]).status == 422)
            #expect(await h.get("/cwom/audit?limit=1000").json.arrayValue?.count == all)
            #expect(await h.get("/cwom/issues?limit=1000").json.arrayValue?.count == 1, "and no object")
        }
    }

    @Test("concurrent creates of one key: one is created, the others are told it exists (409, never 500)", arguments: Dialect.allCases)
    func concurrentDuplicates(_ dialect: Dialect) async throws {
        try await withAPI(dialect) { h in
            let c = try await Chain.build(h)
            let creates: [(path: String, body: JSONValue)] = [
                ("/cwom/repos", ["name": "web", "slug": "org/web", "source": ["system": "github"]]),
                ("/cwom/doctrine-refs", ["namespace": "org", "name": "tests", "version": "1", "type": "principle", "statement": "Test it"]),
                ("/cwom/context-packets", ["for_issue": ["kind": "Issue", "id": .string(c.issue)], "version": "2", "summary": "Newer"]),
            ]
            for create in creates {
                let statuses = await withTaskGroup(of: Int.self) { group in
                    for _ in 0..<8 { group.addTask { await h.send("POST", create.path, json: create.body).status } }
                    return await group.reduce(into: [Int]()) { $0.append($1) }
                }
                #expect(statuses.sorted() == [201] + Array(repeating: 409, count: 7), "\(create.path): \(statuses)")
            }
            #expect(await h.get("/cwom/issues/\(c.issue)/context-packets").json.arrayValue?.count == 2)
        }
    }

    @Test("create payloads: 422 for bad bodies and dangling refs, 409 for duplicates", arguments: Dialect.allCases)
    func writeErrors(_ dialect: Dialect) async throws {
        try await withAPI(dialect) { h in
            let c = try await Chain.build(h)
            let bad = await h.send("POST", "/cwom/repos", json: ["name": "x", "slug": "s", "source": ["system": "g"], "visibility": "secret", "id": "mine"])
            #expect(bad.status == 422)
            #expect(bad.errorTypes == ["enum", "extra_forbidden"])
            #expect(bad.errorLocs == [["body", "visibility"], ["body", "id"]])
            #expect(bad["detail"]?.arrayValue?.first?["msg"] == "Input should be 'public', 'private' or 'internal'")
            #expect(await h.send("POST", "/cwom/repos").errorTypes == ["missing"])
            let duplicate = await h.send("POST", "/cwom/repos", json: ["name": "app", "slug": "org/app", "source": ["system": "github"]])
            #expect(duplicate.status == 409)
            #expect(duplicate.json == ["detail": "Repo with slug 'org/app' already exists"])
            let doctrine = await h.send(
                "POST", "/cwom/doctrine-refs",
                json: ["namespace": "org", "name": "small", "version": "1", "type": "principle", "statement": "Again"])
            #expect(doctrine.json == ["detail": "DoctrineRef 'org/small@1' already exists"])
            let dangling = await h.send(
                "POST", "/cwom/issues", json: ["repo": ["kind": "Repo", "id": "ghost"], "title": "t", "type": "bug"])
            #expect(dangling.status == 422)
            #expect(dangling.json == ["detail": "Referenced Repo 'ghost' does not exist"])
            let wrongKind = await h.send(
                "POST", "/cwom/issues", json: ["repo": ["kind": "Issue", "id": .string(c.issue)], "title": "t", "type": "bug"])
            #expect(wrongKind.errorTypes == ["value_error"])
            let danglingPacket = await h.send(
                "POST", "/cwom/context-packets",
                json: ["for_issue": ["kind": "Issue", "id": "ghost"], "version": "2", "summary": "s"])
            #expect(danglingPacket.json == ["detail": "Referenced Issue 'ghost' does not exist"])
            let danglingRun = await h.send(
                "POST", "/cwom/runs",
                json: [
                    "for_issue": ["kind": "Issue", "id": .string(c.issue)], "repo": ["kind": "Repo", "id": "ghost"], "mode": "agent",
                    "executor": ["actor": ["actor_kind": "agent", "actor_id": "bot"], "runtime": "cli"],
                ])
            #expect(danglingRun.json == ["detail": "Referenced Repo 'ghost' does not exist"])
            let danglingArtifact = await h.send(
                "POST", "/cwom/artifacts",
                json: [
                    "produced_by": ["kind": "Run", "id": "ghost"], "for_issue": ["kind": "Issue", "id": .string(c.issue)],
                    "type": "doc", "title": "t", "uri": "file:///x",
                ])
            #expect(danglingArtifact.json == ["detail": "Referenced Run 'ghost' does not exist"])
            let badStatus = await h.send("PATCH", "/cwom/issues/\(c.issue)/status?status=bogus")
            #expect(badStatus.errorTypes == ["enum"])
            #expect(await h.send("PATCH", "/cwom/issues/ghost/status?status=done").status == 404)
            #expect(await h.send("PATCH", "/cwom/issues/\(c.issue)/status").errorTypes == ["missing"])
        }
    }

    @Test("context packets and constraint snapshots are immutable; new versions are new objects", arguments: Dialect.allCases)
    func immutability(_ dialect: Dialect) async throws {
        try await withAPI(dialect) { h in
            let c = try await Chain.build(h)
            for method in ["PUT", "PATCH"] {
                for id in [c.packet, "does-not-exist"] {
                    let answer = await h.send(method, "/cwom/context-packets/\(id)", json: ["summary": "changed"])
                    #expect(answer.status == 405)
                    #expect(answer.header("allow") == nil)
                    #expect(answer.json == [
                        "detail": [
                            "error": "IMMUTABILITY_VIOLATION",
                            "message": "ContextPackets are immutable. Create a new ContextPacket with an incremented version instead.",
                            "object_id": .string(id),
                        ]
                    ])
                }
                let snapshot = await h.send(method, "/cwom/constraint-snapshots/\(c.snapshot)", json: [:])
                #expect(snapshot["detail"]?["message"] == "ConstraintSnapshots are immutable. Create a new ConstraintSnapshot instead.")
            }
            let v2 = await h.send(
                "POST", "/cwom/context-packets",
                json: ["for_issue": ["kind": "Issue", "id": .string(c.issue)], "version": "2", "summary": "Refined"])
            #expect(v2.status == 201)
            let again = await h.send(
                "POST", "/cwom/context-packets",
                json: ["for_issue": ["kind": "Issue", "id": .string(c.issue)], "version": "2", "summary": "Again"])
            #expect(again.status == 409)
            let versions = await h.get("/cwom/issues/\(c.issue)/context-packets")
            #expect(versions.json.arrayValue?.compactMap { $0["version"]?.stringValue } == ["1", "2"])
            #expect(await h.get("/cwom/issues/\(c.issue)")["context_packets"]?.arrayValue?.count == 2)
            #expect(await h.get("/cwom/context-packets/\(c.packet)")["summary"] == "What we know")
        }
    }

    @Test("runs: legal transitions only (409 otherwise), outputs only appended, invariants kept", arguments: Dialect.allCases)
    func runUpdates(_ dialect: Dialect) async throws {
        try await withAPI(dialect) { h in
            let c = try await Chain.build(h)
            let fresh = await h.get("/cwom/runs/\(c.run)")
            for member in ["telemetry", "cost", "outputs"] {
                #expect(fresh[member] == [:], "\(member) nobody gave shows as {}, as in the legacy service")
            }
            let skip = await h.send("PATCH", "/cwom/runs/\(c.run)", json: ["status": "done"])
            #expect(skip.status == 409)
            #expect(skip["detail"]?["current_status"] == "planned")
            #expect(skip["detail"]?["requested_status"] == "done")
            #expect(await h.send("PATCH", "/cwom/runs/\(c.run)", json: ["status": "running"]).status == 200)
            let first = await h.send(
                "PATCH", "/cwom/runs/\(c.run)",
                json: ["outputs": ["artifacts": [["kind": "Artifact", "id": .string(c.artifact)]], "decision_log": ["a"]]])
            #expect(first["run"]?["outputs"]?["decision_log"] == ["a"])
            let second = await h.send("PATCH", "/cwom/runs/\(c.run)", json: ["outputs": ["artifacts": [], "decision_log": ["b"]]])
            #expect(second["run"]?["outputs"]?["decision_log"] == ["a", "b"])
            #expect(second["run"]?["outputs"]?["artifacts"]?.arrayValue?.count == 1, "refs are never removed")
            let noFailure = await h.send("PATCH", "/cwom/runs/\(c.run)", json: ["status": "failed"])
            #expect(noFailure.status == 422, "a failed run carries a failure")
            let failed = await h.send(
                "PATCH", "/cwom/runs/\(c.run)", json: ["status": "failed", "failure": ["category": "test", "message": "red"]])
            #expect(failed.status == 200)
            #expect(await h.send("PATCH", "/cwom/runs/\(c.run)", json: ["status": "running"]).status == 409, "final")
            #expect(await h.send("PATCH", "/cwom/runs/ghost", json: ["status": "ready"]).status == 404)
            #expect(await h.send("PATCH", "/cwom/runs/\(c.run)", json: ["status": "nope"]).errorTypes == ["enum"])
            let audit = await h.get("/cwom/audit?entity_kind=Run&entity_id=\(c.run)&limit=2")
            #expect(audit.json.arrayValue?.first?["action"] == "status_changed")
        }
    }

    @Test("reviews: preconditions in order, plus run, pack and issue must belong together", arguments: Dialect.allCases)
    func reviews(_ dialect: Dialect) async throws {
        try await withAPI(dialect) { h in
            let c = try await Chain.build(h)
            func review(pack: String? = nil, run: String? = nil, issue: String? = nil, decision: String = "rejected") async -> Answer {
                await h.send(
                    "POST", "/cwom/reviews",
                    json: [
                        "for_evidence_pack": ["kind": "EvidencePack", "id": .string(pack ?? c.pack)],
                        "for_run": ["kind": "Run", "id": .string(run ?? c.run)],
                        "for_issue": ["kind": "Issue", "id": .string(issue ?? c.issue)],
                        "reviewer": ["actor_kind": "human", "actor_id": "carol"], "decision": .string(decision),
                        "decision_reason": "",
                    ])
            }
            #expect(await review(pack: "ghost").json == ["detail": "EvidencePack 'ghost' not found"])
            #expect(await review(issue: "ghost").json == ["detail": "Issue 'ghost' not found"])
            #expect(await review().json == ["detail": .string("Issue '\(c.issue)' is not under review (status: planned)")])
            let skip = await h.send("PATCH", "/cwom/issues/\(c.issue)/status?status=under_review")
            #expect(skip.status == 409, "planned cannot skip running")
            #expect(skip["detail"]?["current_status"] == "planned")
            #expect(skip["detail"]?["requested_status"] == "under_review")
            for step in ["running", "under_review"] {
                #expect(await h.send("PATCH", "/cwom/issues/\(c.issue)/status?status=\(step)").status == 200, "\(step)")
            }
            #expect(await review(run: "ghost").json == ["detail": "Run 'ghost' not found"])
            for step in ["running", "under_review"] {
                _ = await h.send("PATCH", "/cwom/runs/\(c.run)", json: ["status": .string(step)])
            }
            let rejected = await review()
            #expect(rejected.status == 201)
            #expect(await h.get("/cwom/issues/\(c.issue)")["status"] == "failed")
            let run = await h.get("/cwom/runs/\(c.run)")
            #expect(run["status"] == "failed")
            #expect(run["failure"]?["category"] == "policy")
            #expect(await review(decision: "maybe").errorTypes == ["enum"])
        }
    }

    @Test("concurrent reviews of one evidence pack: one decides, the others find the Issue decided", arguments: Dialect.allCases)
    func concurrentReviews(_ dialect: Dialect) async throws {
        try await withAPI(dialect) { h in
            let c = try await Chain.build(h)
            for step in ["running", "under_review"] {
                #expect(await h.send("PATCH", "/cwom/issues/\(c.issue)/status?status=\(step)").status == 200)
                #expect(await h.send("PATCH", "/cwom/runs/\(c.run)", json: ["status": .string(step)]).status == 200)
            }
            let answers = await withTaskGroup(of: (Int, String).self) { group in
                for (index, decision) in ["approved", "rejected", "approved", "needs_changes", "rejected", "approved"].enumerated() {
                    group.addTask {
                        let answer = await h.send(
                            "POST", "/cwom/reviews",
                            json: [
                                "for_evidence_pack": ["kind": "EvidencePack", "id": .string(c.pack)],
                                "for_run": ["kind": "Run", "id": .string(c.run)], "for_issue": ["kind": "Issue", "id": .string(c.issue)],
                                "reviewer": ["actor_kind": "human", "actor_id": .string("reviewer-\(index)")], "decision": .string(decision),
                                "decision_reason": "r",
                            ])
                        return (answer.status, decision)
                    }
                }
                return await group.reduce(into: [(Int, String)]()) { $0.append($1) }
            }
            #expect(answers.map(\.0).sorted() == [201, 400, 400, 400, 400, 400], "\(answers)")
            let decided = try #require(answers.first { $0.0 == 201 }?.1)
            #expect(await h.get("/cwom/reviews?evidence_pack_id=\(c.pack)").json.arrayValue?.count == 1)
            #expect(await h.get("/cwom/issues/\(c.issue)")["status"] == (decided == "approved" ? "done" : "failed"))
        }
    }

    @Test("concurrent updates of one Run append every output: none is lost", arguments: Dialect.allCases)
    func concurrentRunUpdates(_ dialect: Dialect) async throws {
        try await withAPI(dialect) { h in
            let c = try await Chain.build(h)
            var artifacts: [String] = []
            for index in 0..<6 {
                let answer = await h.send(
                    "POST", "/cwom/artifacts",
                    json: [
                        "produced_by": ["kind": "Run", "id": .string(c.run)], "for_issue": ["kind": "Issue", "id": .string(c.issue)],
                        "type": "log", "title": .string("Log \(index)"), "uri": .string("file:///tmp/log-\(index)"),
                    ])
                artifacts.append(try #require(answer["artifact"]?["id"]?.stringValue))
            }
            let refs = artifacts
            let statuses = await withTaskGroup(of: Int.self) { group in
                for (index, id) in refs.enumerated() {
                    group.addTask {
                        await h.send(
                            "PATCH", "/cwom/runs/\(c.run)",
                            json: ["outputs": ["artifacts": [["kind": "Artifact", "id": .string(id)]], "decision_log": [.string("step \(index)")]]]
                        ).status
                    }
                }
                return await group.reduce(into: [Int]()) { $0.append($1) }
            }
            #expect(statuses == Array(repeating: 200, count: 6))
            let run = await h.get("/cwom/runs/\(c.run)")
            #expect(Set(run["outputs"]?["artifacts"]?.arrayValue?.compactMap { $0["id"]?.stringValue } ?? []) == Set(refs))
            #expect(run["outputs"]?["decision_log"]?.arrayValue?.count == 6)
        }
    }

    @Test("concurrent Runs of one Issue: each is created and listed on the Issue", arguments: Dialect.allCases)
    func concurrentRuns(_ dialect: Dialect) async throws {
        try await withAPI(dialect) { h in
            let c = try await Chain.build(h)
            let created = await withTaskGroup(of: String?.self) { group in
                for _ in 0..<6 {
                    group.addTask {
                        await h.send(
                            "POST", "/cwom/runs",
                            json: [
                                "for_issue": ["kind": "Issue", "id": .string(c.issue)], "repo": ["kind": "Repo", "id": .string(c.repo)],
                                "mode": "agent", "executor": ["actor": ["actor_kind": "agent", "actor_id": "bot"], "runtime": "cli"],
                            ])["run"]?["id"]?.stringValue
                    }
                }
                return await group.reduce(into: [String?]()) { $0.append($1) }
            }
            let runs = created.compactMap { $0 }
            #expect(runs.count == 6)
            let listed = await h.get("/cwom/issues/\(c.issue)")["runs"]?.arrayValue?.compactMap { $0["id"]?.stringValue } ?? []
            #expect(Set(listed) == Set(runs + [c.run]), "every Run on its Issue: \(listed.count) of 7")
        }
    }

    @Test("writes and reads need the API key when one is set", arguments: Dialect.allCases)
    func auth(_ dialect: Dialect) async throws {
        let configuration = APIConfiguration(apiKey: "k", policy: testConfiguration.policy)
        try await withAPI(dialect, configuration: configuration) { h in
            let body: JSONValue = ["name": "x", "slug": "s", "source": ["system": "g"]]
            #expect(await h.send("POST", "/cwom/repos", json: body).status == 401)
            #expect(await h.send("POST", "/cwom/repos", json: body, headers: [("Authorization", "Bearer k")]).status == 201)
            #expect(await h.send("PATCH", "/cwom/runs/x", json: [:]).status == 401)
            #expect(await h.send("PATCH", "/cwom/issues/x/status?status=done").status == 401)
            #expect(await h.send("POST", "/cwom/reviews", json: [:]).status == 401)
            #expect(await h.get("/cwom/repos").status == 401)
            #expect(await h.get("/cwom/repos", headers: [("Authorization", "Bearer k")]).status == 200)
        }
    }

    @Test("trace files are listed with size and sha256 and served; nothing leaves the folder", arguments: Dialect.allCases)
    func trace(_ dialect: Dialect) async throws {
        try await withAPI(dialect) { h in
            let c = try await Chain.build(h)
            let traces = FileManager.default.temporaryDirectory.appendingPathComponent("traces-\(ULID.make())")
            let root = traces.appendingPathComponent(c.run)
            let outside = FileManager.default.temporaryDirectory.appendingPathComponent("secret-\(ULID.make()).txt")
            defer {
                try? FileManager.default.removeItem(at: traces)
                try? FileManager.default.removeItem(at: outside)
            }
            try FileManager.default.createDirectory(at: root.appendingPathComponent("artifacts"), withIntermediateDirectories: true)
            try "hello".write(to: root.appendingPathComponent("trace.log"), atomically: true, encoding: .utf8)
            try "# out".write(to: root.appendingPathComponent("artifacts/output.md"), atomically: true, encoding: .utf8)
            try "secret".write(to: outside, atomically: true, encoding: .utf8)
            try FileManager.default.createSymbolicLink(at: root.appendingPathComponent("escape"), withDestinationURL: outside)
            try await h.database.write { store in
                try await store.session.query(
                    "UPDATE cwom_runs SET artifact_root_uri = $1 WHERE id = $2", [.text(root.absoluteString), .text(c.run)])
            }
            let listing = await h.get("/cwom/runs/\(c.run)/trace")
            #expect(listing.status == 200)
            #expect(listing["files"]?.arrayValue?.compactMap { $0["path"]?.stringValue } == ["artifacts/output.md", "trace.log"])
            #expect(listing["files"]?.arrayValue?.last?["size"] == 5)
            #expect(listing["files"]?.arrayValue?.last?["sha256"] == "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824")
            let file = await h.get("/cwom/runs/\(c.run)/trace/artifacts/output.md")
            #expect(file.status == 200)
            #expect(file.text == "# out")
            #expect(file.header("content-type") == "text/markdown; charset=utf-8")
            #expect(file.header("content-security-policy") == "sandbox", "an agent's file never runs as a page of this origin")
            #expect(file.header("x-content-type-options") == "nosniff")
            for attack in ["../../etc/passwd", "artifacts/../../x", "escape", "artifacts%2F..%2F..%2Fetc%2Fpasswd", "%2e%2e/%2e%2e/etc/passwd", "artifacts"] {
                #expect(await h.get("/cwom/runs/\(c.run)/trace/\(attack)").status == 404, "\(attack)")
            }
            #expect(await h.get("/cwom/runs/ghost/trace").status == 404)

            // A root that is not a folder named after the Run (or its task): never read. A legacy
            // task's `trace_path`, which any write key sets, becomes a backfilled Run's root.
            for planted in [traces.absoluteString, "file:///etc/", "file:///"] {
                try await h.database.write { store in
                    try await store.session.query("UPDATE cwom_runs SET artifact_root_uri = $1 WHERE id = $2", [.text(planted), .text(c.run)])
                }
                let refused = await h.get("/cwom/runs/\(c.run)/trace")
                #expect(refused.status == 404 && refused["detail"] == .string("Run '\(c.run)' has no local trace folder"), "\(planted): \(refused.text)")
                #expect(await h.get("/cwom/runs/\(c.run)/trace/passwd").status == 404)
            }
        }
    }

    @Test("OpenAPI: every registered route is documented and every documented route exists")
    func openAPI() async throws {
        try await withAPI(.sqlite) { h in
            let document = await h.get("/openapi.json")
            #expect(document["openapi"] == "3.1.0")
            let paths = try #require(document["paths"]?.objectValue)
            var documented: Set<String> = []
            for (path, item) in paths {
                for (method, _) in item.objectValue ?? [:] { documented.insert("\(method.uppercased()) \(path)") }
            }
            let registered = Set(h.api.router.routes.map { "\($0.method) \($0.pattern.replacingOccurrences(of: "...}", with: "}"))" })
                .union(["GET /openapi.json"])
            #expect(documented == registered)
            let schemas = try #require(document["components"]?["schemas"]?.objectValue)
            #expect(schemas["Issue"] != nil && schemas["RunUpdate"] != nil && schemas["Ref"] != nil)
            #expect(!document.text.contains("#/$defs/"), "references point into components")
            for reference in document.text.components(separatedBy: "\"#/components/schemas/").dropFirst() {
                let name = String(reference.prefix { $0 != "\"" })
                #expect(schemas[name] != nil, "\(name) is referenced and defined")
            }
        }
    }

    @Test("OpenAPI: the query parameters a route reads, with their bounds, and the intake's body as the union it validates")
    func openAPIParameters() async throws {
        try await withAPI(.sqlite) { h in
            let document = await h.get("/openapi.json")
            func parameters(_ method: String, _ path: String) -> [String: JSONValue] {
                let list = document["paths"]?[path]?[method]?["parameters"]?.arrayValue ?? []
                return Dictionary(list.compactMap { p in p["name"]?.stringValue.map { ($0, p) } }) { first, _ in first }
            }
            let issues = parameters("get", "/cwom/issues")
            #expect(Set(issues.keys) == ["repo_id", "status", "type", "priority", "limit", "offset"])
            #expect(issues["limit"]?["schema"]?["minimum"] == 1 && issues["limit"]?["schema"]?["maximum"] == 1000)
            #expect(issues["status"]?["schema"]?["enum"] == nil, "an unknown value matches nothing: not refused, so not an enum")
            #expect(issues["status"]?["description"]?.stringValue?.contains("planned, ready, running") == true, "the values are listed")
            let status = parameters("patch", "/tasks/{task_id}/status")
            #expect(status["status"]?["required"] == true)
            #expect(status["status"]?["schema"]?["enum"]?.arrayValue?.count == 6, "checked: a 422 otherwise")
            #expect(parameters("get", "/tasks")["limit"]?["schema"]?["minimum"] == 0)
            #expect(parameters("get", "/cwom/issues/{issue_id}")["issue_id"]?["in"] == "path")
            #expect(parameters("post", "/tasks/enqueue")["X-Trace-Id"]?["in"] == "header")
            #expect(parameters("post", "/cwom/runs")["X-Trace-Id"]?["schema"]?["pattern"] == nil, "a CWOM write ignores a bad one")

            let body = document["paths"]?["/tasks/enqueue"]?["post"]?["requestBody"]?["content"]?["application/json"]?["schema"]
            #expect(body?["anyOf"]?.arrayValue?.count == 2)
            let schemas = document["components"]?["schemas"]
            let legacy = schemas?["TaskCreateLegacyV1"]
            #expect(legacy?["additionalProperties"] == nil, "the legacy schema ignores unknown keys")
            #expect(schemas?["TaskCreateV1"]?["additionalProperties"] == false, "the canonical one refuses them")
            #expect(legacy?["anyOf"]?.arrayValue?.count == 2, "either operation or type")
            #expect(schemas?["TaskTarget"]?["anyOf"]?.arrayValue?.count == 2, "either repo or repository")
            #expect(schemas?["TaskConstraints"]?["properties"]?["time_budget_seconds"]?["minimum"] == 30)
            #expect(schemas?["Constraints"]?["title"] == "Constraints", "the CWOM model keeps its name")

            func answer(_ method: String, _ path: String, _ status: String) -> JSONValue? {
                document["paths"]?[path]?[method]?["responses"]?[status]?["content"]?["application/json"]?["schema"]
            }
            #expect(answer("get", "/cwom/runs", "200")?["items"]?["$ref"] == "#/components/schemas/Run")
            #expect(answer("get", "/cwom/runs/{run_id}", "200")?["$ref"] == "#/components/schemas/Run")
            #expect(answer("post", "/cwom/repos", "201")?["properties"]?["repo"]?["$ref"] == "#/components/schemas/Repo")
            #expect(answer("patch", "/cwom/issues/{issue_id}/status", "202") != nil, "202 when it cancels the task")
            #expect(answer("get", "/tasks", "default")?["required"] == ["detail"], "errors are {\"detail\": …}")
            #expect(document["paths"]?["/cwom/runs/{run_id}/trace/{path}"]?["get"]?["responses"]?["200"]?["content"]?["*/*"] != nil, "a trace file in its own media type")
        }
    }
}
