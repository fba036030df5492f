import API
import CWOM
import Storage
import Testing
import TowerJSON
import TowerTestSupport

/// The number of statements an operation sends is fixed: it does not grow with the size of the
/// request or of the history it reads (no per-field or per-row round trips).
@Suite("Statements per request")
struct CostTests {
    func withCountingAPI(_ dialect: Dialect, _ body: (Harness, CountingDriver) async throws -> Void) async throws {
        try await withDatabase(dialect) { database, _ in
            let counting = CountingDriver(database.driver)
            let counted = Database(driver: counting, location: database.location)
            let harness = Harness(api: TowerAPI(database: counted, configuration: testConfiguration, logger: quietLogger("tower.api")), database: counted, dialect: dialect)
            try await body(harness, counting)
        }
    }

    @Test("one enqueue is one transaction with the same statements for a small and a large task", arguments: Dialect.allCases)
    func enqueue(_ dialect: Dialect) async throws {
        try await withCountingAPI(dialect) { h, counter in
            _ = counter.take()
            #expect(await h.enqueue(validTask()).status == 201)
            let small = counter.take()
            var large = validTask(objective: "Update every README\n" + String(repeating: "and more detail ", count: 200)).objectValue ?? [:]
            large["acceptance_criteria"] = .array((0..<50).map { .string("criterion \($0)") })
            large["evidence_requirements"] = .array((0..<50).map { .string("evidence \($0)") })
            large["inputs"] = .object(JSONObject((0..<100).map { ("key\($0)", .int($0)) }))
            large["metadata"] = ["labels": .array((0..<100).map { .string("l\($0)") })]
            large["idempotency_key"] = "cost-large"
            #expect(await h.enqueue(.object(large)).status == 201)
            let big = counter.take()
            #expect(small.transactions == 1, "one transaction per enqueue")
            #expect(big.transactions == 1)
            // The repo exists for the second task; everything else is the same work.
            #expect(big.statements <= small.statements + 1, "large: \(big.statements), small: \(small.statements)")
            #expect(small.statements <= 20, "bounded: \(small.statements)")
        }
    }

    @Test("GET /cwom/issues/{id}?expand=all reads a long history with the same statements as a short one",
        arguments: Dialect.allCases)
    func expandAll(_ dialect: Dialect) async throws {
        try await withCountingAPI(dialect) { h, counter in
            let c = try await Chain.build(h)
            _ = counter.take()
            #expect(await h.get("/cwom/issues/\(c.issue)?expand=all").status == 200)
            let short = counter.take()
            for n in 0..<5 {
                let version = await h.send(
                    "POST", "/cwom/context-packets",
                    json: ["for_issue": ["kind": "Issue", "id": .string(c.issue)], "version": .string("\(n + 2)"), "summary": "More"])
                #expect(version.status == 201)
                let run = await h.send(
                    "POST", "/cwom/runs",
                    json: [
                        "for_issue": ["kind": "Issue", "id": .string(c.issue)], "repo": ["kind": "Repo", "id": .string(c.repo)],
                        "mode": "agent", "executor": ["actor": ["actor_kind": "agent", "actor_id": "bot"], "runtime": "cli"],
                    ])
                let runId = try #require(run["run"]?["id"]?.stringValue)
                for a in 0..<3 {
                    #expect(
                        await h.send(
                            "POST", "/cwom/artifacts",
                            json: [
                                "produced_by": ["kind": "Run", "id": .string(runId)], "for_issue": ["kind": "Issue", "id": .string(c.issue)],
                                "type": "doc", "title": .string("Report \(a)"), "uri": .string("file:///tmp/\(runId)/\(a).md"),
                            ]).status == 201)
                }
            }
            _ = counter.take()
            let answer = await h.get("/cwom/issues/\(c.issue)?expand=all")
            let long = counter.take()
            #expect(answer.status == 200)
            #expect(answer["expanded"]?["runs"]?.arrayValue?.count == 6)
            #expect(answer["expanded"]?["context_packets"]?.arrayValue?.count == 6)
            #expect(long.statements == short.statements, "long: \(long.statements), short: \(short.statements)")
            #expect(long.transactions == 1)
        }
    }
}
