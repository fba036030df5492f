import API
import Storage
import Testing
import TowerJSON
import TowerTestSupport

/// Input that no database can store must never become a 500: the NUL character (U+0000) makes
/// PostgreSQL refuse a statement and SQLite cut text short. Found by fuzzing the OpenAPI
/// document with schemathesis.
@Suite("Hostile input")
struct HostileInputTests {
    @Test("the NUL character in bodies, paths and queries is a 422 on both databases, and nothing is stored",
        arguments: Dialect.allCases)
    func nul(_ dialect: Dialect) async throws {
        try await withAPI(dialect) { h in
            var task = validTask().objectValue ?? [:]
            task["objective"] = "Update the\u{0}README"
            let enqueue = await h.enqueue(.object(task))
            #expect(enqueue.status == 422, "\(enqueue.text)")
            #expect(enqueue.errorTypes == ["value_error"])
            #expect(enqueue.errorLocs == [["body", "objective"]])
            #expect(enqueue.json["detail"]?.arrayValue?.first?["input"] == "Update the\u{0}README")

            task["objective"] = "Update the README"
            task["metadata"] = ["labels": ["ok", "not\u{0}ok"]]
            #expect(await h.enqueue(.object(task)).errorLocs == [["body", "metadata", "labels", 1]])
            task["metadata"] = ["a\u{0}b": 1]
            #expect(await h.enqueue(.object(task)).errorLocs == [["body", "metadata", "a\u{0}b"]])
            #expect(await h.count("tasks") == 0)

            let repo = await h.send(
                "POST", "/cwom/repos",
                json: ["name": "app", "slug": "org/app", "source": ["system": "github"], "owners": [["actor_kind": "human", "actor_id": "f\u{0}o"]]])
            #expect(repo.status == 422, "\(repo.text)")
            #expect(repo.errorLocs == [["body", "owners", 0, "actor_id"]])
            #expect(await h.count("cwom_repos") == 0)

            for path in [
                "/cwom/issues/a%00b", "/cwom/runs/x%00/trace", "/tasks?target_repo=a%00b", "/cwom/audit?entity_id=a%00",
                "/cwom/issues?repo_id=x%00",
            ] {
                let answer = await h.get(path)
                #expect(answer.status == 422, "\(path): \(answer.status) \(answer.text)")
                #expect(answer["detail"]?.stringValue?.contains("NUL") == true, "\(path): \(answer.text)")
            }
            #expect(await h.get("/tasks/a%00b").status == 404, "not a UUID: the legacy 404")
        }
    }

    @Test("NaN and infinities in a body are a 422 finite_number on both databases (PostgreSQL answered a 500), and nothing is stored",
        arguments: Dialect.allCases)
    func nonFiniteNumbers(_ dialect: Dialect) async throws {
        try await withAPI(dialect) { h in
            for (number, value) in [("NaN", JSONValue.double(.nan)), ("Infinity", .double(.infinity)), ("-Infinity", .double(-.infinity)), ("1e400", .double(.infinity))] {
                let body = #"{"requested_by": {"kind": "human", "id": "a"}, "objective": "Update the README", "operation": "docs", "#
                    + #""target": {"repo": "testorg/docs"}, "metadata": {"scores": [1, "# + number + "]}}"
                let answer = await h.send("POST", "/tasks/enqueue", body: Array(body.utf8), headers: [("content-type", "application/json")])
                #expect(answer.status == 422, "\(number): \(answer.text)")
                #expect(answer.errorTypes == ["finite_number"], "\(number): \(answer.text)")
                #expect(answer.errorLocs == [["body", "metadata", "scores", 1]], "\(number): \(answer.text)")
                let input = answer.json["detail"]?.arrayValue?.first?["input"]
                #expect(input?.doubleValue.map { $0.isNaN ? value.doubleValue?.isNaN == true : $0 == value.doubleValue } == true, "\(number): \(answer.text)")
            }
            #expect(await h.count("tasks") == 0)
        }
    }

    @Test("the storage layer refuses text with NUL in both dialects instead of storing or cutting it, and stores look-alikes whole",
        arguments: Dialect.allCases)
    func storage(_ dialect: Dialect) async throws {
        try await withDatabase(dialect) { database, _ in
            let refused: [[SQLValue]] = [
                [.text("a\u{0}b")], [.json(["k": "v\u{0}"])], [.json(["a\u{0}": 1])], [.json([["deep": ["\\", "\u{0}"]]])],
            ]
            for binds in refused {
                let error = await #expect(throws: StorageError.self) {
                    try await database.write { store in try await store.session.query("SELECT $1 AS v", binds) }
                }
                #expect(error?.kind == .invalidValue)
                #expect(error?.message.contains("NUL") == true)
            }
            // The six characters `\u0000` are text like any other, alone or after an escaped backslash.
            let lookAlike: JSONValue = ["text": "\\u0000", "after": "\\\\u0000", "quote": "\"\\"]
            let stored = try await database.write { store in try await store.session.query("SELECT $1 AS v", [.json(lookAlike)]) }
            #expect(try stored.first?.json("v") == lookAlike)
        }
    }
}
