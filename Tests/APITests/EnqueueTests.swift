import API
import CWOM
import Foundation
import LegacyTasks
import Storage
import Testing
import TowerJSON
import TowerTestSupport

@Suite("POST /tasks/enqueue")
struct EnqueueTests {
    @Test("a valid task: 201 with task (21 keys, queued) and cwom; GET returns it", arguments: Dialect.allCases)
    func success(_ dialect: Dialect) async throws {
        try await withAPI(dialect) { h in
            let answer = await h.enqueue(validTask())
            #expect(answer.status == 201)
            #expect(answer.json.objectValue?.keys == ["status", "task_id", "trace_id", "message", "task", "cwom"])
            #expect(answer["status"] == "success")
            #expect(answer["message"] == "Task enqueued successfully")
            let task = try #require(answer["task"]?.objectValue)
            #expect(task.keys == [
                "task_id", "version", "idempotency_key", "requested_by", "objective", "operation", "target",
                "constraints", "inputs", "metadata", "status", "created_at", "queued_at", "started_at", "completed_at",
                "assigned_to", "result", "error", "trace_path", "cwom_issue_id", "trace_id",
            ])
            #expect(task["status"] == "queued")
            #expect(task["queued_at"] != .null)
            #expect(task["trace_id"] == answer["trace_id"])
            #expect(task["cwom_issue_id"] == answer["cwom"]?["issue_id"])
            #expect(task["constraints"] == ["time_budget_seconds": 900, "allow_network": false, "allow_secrets": false])
            #expect(task["target"] == ["repo": "testorg/docs", "ref": "main", "path": ""])
            let id = try #require(answer["task_id"]?.stringValue)
            let fetched = await h.get("/tasks/\(id)")
            #expect(fetched.status == 200)
            #expect(fetched.json == .object(task))
        }
    }

    @Test("create_cwom: default true, lax booleans, 422 for nonsense", arguments: Dialect.allCases)
    func createCWOMFlag(_ dialect: Dialect) async throws {
        try await withAPI(dialect) { h in
            for (value, expectCWOM) in [("false", false), ("0", false), ("OFF", false), ("yes", true), ("t", true)] {
                let answer = await h.enqueue(validTask(), query: "?create_cwom=\(value)")
                #expect(answer.status == 201)
                #expect((answer["cwom"] != nil) == expectCWOM, "create_cwom=\(value)")
                #expect((answer["task"]?["cwom_issue_id"] != .null) == expectCWOM)
            }
            let bad = await h.enqueue(validTask(), query: "?create_cwom=maybe")
            #expect(bad.status == 422)
            #expect(bad.errorTypes == ["bool_parsing"])
            #expect(bad.errorLocs == [["query", "create_cwom"]])
            #expect(bad["detail"]?.arrayValue?.first?["msg"] == "Input should be a valid boolean, unable to interpret input")
        }
    }

    @Test("stored and returned values are normalised", arguments: Dialect.allCases)
    func normalisation(_ dialect: Dialect) async throws {
        try await withAPI(dialect) { h in
            let cases: [(String, String)] = [
                ("  TestOrg/Service.git  ", "testorg/service"), ("testorg/Thing.GIT", "testorg/thing.git"),
                ("testorg/x.git.git", "testorg/x.git"),
            ]
            for (raw, normalised) in cases {
                let answer = await h.enqueue(validTask(objective: "  \n\t Update the docs  \n ", repo: raw))
                #expect(answer.status == 201)
                #expect(answer["task"]?["target"]?["repo"] == .string(normalised))
                #expect(answer["task"]?["objective"] == "Update the docs")
            }
            let full = await h.enqueue(
                validTask().with("target.ref", "dev").with("target.path", "src/app").with("inputs", ["k": [1, 2]])
                    .with("metadata", ["m": "v"]))
            #expect(full["task"]?["target"] == ["repo": "testorg/docs", "ref": "dev", "path": "src/app"])
            #expect(full["task"]?["inputs"] == ["k": [1, 2]])
            #expect(full["task"]?["metadata"] == ["m": "v"])
        }
    }

    @Test("unknown fields are ignored when the request is otherwise valid", arguments: Dialect.allCases)
    func unknownFields(_ dialect: Dialect) async throws {
        try await withAPI(dialect) { h in
            let body = validTask().with("colour", "blue").with("target.branch", "x").with("requested_by.team", "a")
                .with("constraints.gpu", true)
            let answer = await h.enqueue(body)
            #expect(answer.status == 201)
            #expect(answer["task"]?["inputs"] == [:])
        }
    }

    @Test("legacy aliases: type, payload, target.repository, and their precedence", arguments: Dialect.allCases)
    func aliases(_ dialect: Dialect) async throws {
        try await withAPI(dialect) { h in
            let legacy: JSONValue = [
                "requested_by": ["kind": "agent", "id": "bot"], "objective": "Run the analysis", "type": "analysis",
                "payload": ["x": 1], "target": ["repository": "TestOrg/Legacy.git"],
            ]
            let a = await h.enqueue(legacy)
            #expect(a.status == 201)
            #expect(a["task"]?["operation"] == "analysis")
            #expect(a["task"]?["inputs"] == ["x": 1])
            #expect(a["task"]?["target"]?["repo"] == "testorg/legacy")
            // Canonical fields win; empty inputs let payload win.
            let mixed = legacy.with("operation", "ops").with("inputs", ["y": 2]).with("target.repo", "testorg/canonical")
            let b = await h.enqueue(mixed)
            #expect(b["task"]?["operation"] == "ops")
            #expect(b["task"]?["inputs"] == ["y": 2])
            #expect(b["task"]?["target"]?["repo"] == "testorg/canonical")
            let c = await h.enqueue(legacy.with("inputs", [:]))
            #expect(c["task"]?["inputs"] == ["x": 1])
            // An invalid type fails the legacy branch even with a valid operation.
            let d = await h.enqueue(validTask().with("type", "deploy"))
            #expect(d.status == 422)
            #expect(d.errorTypes == ["extra_forbidden", "literal_error"])
            #expect(d.errorLocs == [
                ["body", "TaskCreateV1", "type"],
                ["body", "function-after[resolve_legacy_aliases(), TaskCreateLegacyV1]", "type"],
            ])
            // Neither repo nor repository.
            let e = await h.enqueue(validTask().with("target", ["repository": nil]))
            #expect(e.errorTypes == ["missing", "extra_forbidden", "value_error"])
            #expect(e.errorLocs.last == ["body", "function-after[resolve_legacy_aliases(), TaskCreateLegacyV1]", "target"])
            #expect(e["detail"]?.arrayValue?.last?["msg"] == "Value error, Either 'repo' or 'repository' must be provided")
            #expect(e["detail"]?.arrayValue?.last?["ctx"] == ["error": [:]])
            // Neither operation nor type.
            let f = await h.enqueue(validTask().with("operation", nil))
            #expect(f.errorTypes == ["missing", "value_error"])
            #expect(f["detail"]?.arrayValue?.last?["msg"] == "Value error, Either 'operation' or 'type' must be provided")
            #expect(f.errorLocs.last == ["body", "function-after[resolve_legacy_aliases(), TaskCreateLegacyV1]"])
        }
    }

    /// One length bound: (path, minimum, maximum).
    static let bounds: [(String, Int, Int?)] = [
        ("objective", 5, 4000), ("requested_by.id", 1, 128), ("requested_by.label", 1, 256),
        ("idempotency_key", 1, 256), ("target.repo", 1, 256), ("target.ref", 1, 256), ("target.path", 0, 512),
    ]

    @Test("every length bound at and across its limit, counted in Unicode scalars", arguments: Dialect.allCases)
    func lengthBounds(_ dialect: Dialect) async throws {
        try await withAPI(dialect) { h in
            for (path, min, max) in Self.bounds {
                func value(_ n: Int) -> JSONValue {
                    // Keep repos inside the allowed namespace.
                    path == "target.repo"
                        ? .string("testorg/" + String(repeating: "r", count: Swift.max(n - 8, 0)))
                        : .string(String(repeating: "é", count: n))
                }
                if path != "target.repo" || min > 8 {
                    let atMin = await h.enqueue(validTask().with(path, value(min)))
                    #expect(atMin.status == 201, "\(path) at \(min)")
                }
                if let max {
                    let atMax = await h.enqueue(validTask().with(path, value(max)))
                    #expect(atMax.status == 201, "\(path) at \(max)")
                    let over = await h.enqueue(validTask().with(path, value(max + 1)))
                    #expect(over.status == 422, "\(path) at \(max + 1)")
                    #expect(over.errorTypes.first == "string_too_long")
                    let loc = JSONValue.array(["body", "TaskCreateV1"] + path.split(separator: ".").map { .string(String($0)) })
                    #expect(over.errorLocs.first == loc)
                    #expect(over["detail"]?.arrayValue?.first?["ctx"] == ["max_length": .int(max)])
                }
                if min > 0 && path != "target.repo" {
                    let under = await h.enqueue(validTask().with(path, value(min - 1)))
                    #expect(under.status == 422, "\(path) at \(min - 1)")
                    #expect(under.errorTypes.first == "string_too_short")
                }
            }
            let emptyRepo = await h.enqueue(validTask().with("target.repo", ""))
            #expect(emptyRepo.errorTypes.first == "string_too_short")
            // 5 scalars in 3 grapheme clusters is long enough; 4 scalars is not.
            let thumbs = "\u{1F44D}\u{1F3FD}\u{1F44D}\u{1F3FD}"
            #expect(await h.enqueue(validTask(objective: thumbs + "a")).status == 201)
            #expect(await h.enqueue(validTask(objective: thumbs)).errorTypes.first == "string_too_short")
        }
    }

    @Test("the time budget: 30..86400, lax integers, and the ge/le errors", arguments: Dialect.allCases)
    func timeBudget(_ dialect: Dialect) async throws {
        try await withAPI(dialect) { h in
            for ok: JSONValue in [30, 86400, "300", 300.0] {
                let answer = await h.enqueue(validTask().with("constraints", ["time_budget_seconds": ok]))
                #expect(answer.status == 201, "\(ok)")
            }
            let low = await h.enqueue(validTask().with("constraints", ["time_budget_seconds": 29]))
            #expect(low.errorTypes.first == "greater_than_equal")
            #expect(low["detail"]?.arrayValue?.first?["ctx"] == ["ge": 30])
            let high = await h.enqueue(validTask().with("constraints", ["time_budget_seconds": 86401]))
            #expect(high.errorTypes.first == "less_than_equal")
            #expect(high["detail"]?.arrayValue?.first?["msg"] == "Input should be less than or equal to 86400")
            let fractional = await h.enqueue(validTask().with("constraints", ["time_budget_seconds": 300.5]))
            #expect(fractional.errorTypes.first == "int_from_float")
        }
    }

    @Test("literal and type errors: version, kind, operation, strings, objects, lists", arguments: Dialect.allCases)
    func typeErrors(_ dialect: Dialect) async throws {
        try await withAPI(dialect) { h in
            let version = await h.enqueue(validTask().with("version", 1.0))
            #expect(version.errorTypes.first == "literal_error")
            #expect(version["detail"]?.arrayValue?.first?["msg"] == "Input should be '1.0'")
            #expect(await h.enqueue(validTask().with("version", "1.0")).status == 201)
            let kind = await h.enqueue(validTask().with("requested_by.kind", "robot"))
            #expect(kind["detail"]?.arrayValue?.first?["msg"] == "Input should be 'human', 'agent' or 'system'")
            let objective = await h.enqueue(validTask().with("objective", 12345))
            #expect(objective.errorTypes.first == "string_type")
            let constraints = await h.enqueue(validTask().with("constraints", .null))
            #expect(constraints.errorTypes.first == "model_attributes_type")
            let inputs = await h.enqueue(validTask().with("inputs", .null))
            #expect(inputs.errorTypes.first == "dict_type")
            let criteria = await h.enqueue(validTask().with("acceptance_criteria", "all"))
            #expect(criteria.errorTypes.first == "list_type")
            let item = await h.enqueue(validTask().with("acceptance_criteria", ["ok", 3]))
            #expect(item.errorLocs.first == ["body", "TaskCreateV1", "acceptance_criteria", 1])
            let network = await h.enqueue(validTask().with("constraints", ["allow_network": "maybe"]))
            #expect(network.errorTypes.first == "bool_parsing")
            let missing = await h.enqueue(validTask().with("requested_by", nil))
            #expect(missing.errorTypes.first == "missing")
            #expect(missing["detail"]?.arrayValue?.first?["input"] == validTask().with("requested_by", nil))
            #expect(missing["detail"]?.arrayValue?.first?["url"] == "https://errors.pydantic.dev/2.11/v/missing")
        }
    }

    @Test("bodies that are not objects: empty, null, arrays, text, malformed JSON, bad UTF-8", arguments: Dialect.allCases)
    func badBodies(_ dialect: Dialect) async throws {
        try await withAPI(dialect) { h in
            for body in ["", "null"] {
                let answer = await h.send("POST", "/tasks/enqueue", body: Array(body.utf8), headers: [("content-type", "application/json")])
                #expect(answer.status == 422)
                #expect(answer.json == ["detail": [["type": "missing", "loc": ["body"], "msg": "Field required", "input": nil, "url": "https://errors.pydantic.dev/2.11/v/missing"]]])
            }
            let array = await h.send("POST", "/tasks/enqueue", body: Array("[1]".utf8), headers: [("content-type", "application/json")])
            #expect(array.errorTypes == ["model_attributes_type", "model_attributes_type"])
            let text = await h.send("POST", "/tasks/enqueue", body: Array("hello".utf8), headers: [("content-type", "text/plain")])
            #expect(text.errorTypes == ["model_attributes_type", "model_attributes_type"])
            #expect(text["detail"]?.arrayValue?.first?["input"] == "hello")
            let noType = await h.send("POST", "/tasks/enqueue", body: validTask().bytes())
            #expect(noType.status == 201, "no content type means JSON")
            let malformed = await h.send("POST", "/tasks/enqueue", body: Array(#"{"objective": "abc",}"#.utf8))
            #expect(malformed.json == [
                "detail": [
                    [
                        "type": "json_invalid", "loc": ["body", 20], "msg": "JSON decode error", "input": [:],
                        "ctx": ["error": "Expecting property name enclosed in double quotes"],
                    ]
                ]
            ])
            let bytes = await h.send("POST", "/tasks/enqueue", body: [0x7B, 0xFF, 0x7D])
            #expect(bytes.status == 400)
            #expect(bytes.json == ["detail": "There was an error parsing the body"])
            // 200,000 nested arrays overflowed the parser's stack and took the process down.
            let deep = await h.send("POST", "/tasks/enqueue", body: Array(String(repeating: "[", count: 200_000).utf8))
            #expect(deep.status == 422)
            #expect(deep["detail"]?.arrayValue?.first?["ctx"]?["error"] == "Nested more than 512 levels deep", "\(deep.json)")
            #expect(await h.send("POST", "/tasks/enqueue", body: validTask().bytes()).status == 201, "and the API goes on")
        }
    }

    @Test("policy: repo, then network, then secrets, with the exact messages", arguments: Dialect.allCases)
    func policy(_ dialect: Dialect) async throws {
        try await withAPI(dialect) { h in
            let repo = await h.enqueue(validTask(repo: "  OtherOrg/Thing.git ").with("constraints", ["allow_network": true]))
            #expect(repo.status == 422)
            #expect(repo.json == [
                "detail": [
                    "error": "policy_violation", "code": "REPO_NOT_ALLOWED",
                    "message": "Repository '  OtherOrg/Thing.git ' is not in the allowed namespace. Allowed prefixes: testorg/",
                ]
            ])
            let network = await h.enqueue(validTask().with("constraints", ["allow_network": "yes", "allow_secrets": true]))
            #expect(network["detail"]?["code"] == "NETWORK_ACCESS_DENIED")
            #expect(network["detail"]?["message"] == "Network access is not allowed in V1. Set constraints.allow_network to false.")
            let secrets = await h.enqueue(validTask().with("constraints", ["allow_secrets": 1]))
            #expect(secrets["detail"]?["code"] == "SECRETS_ACCESS_DENIED")
            #expect(secrets["detail"]?["message"] == "Secrets access is not allowed in V1. Set constraints.allow_secrets to false.")
            #expect(await h.enqueue(validTask(repo: "TESTORG/Upper")).status == 201, "prefixes match case-insensitively")
            #expect(await h.count("tasks") == 1)
        }
        let closed = APIConfiguration(policy: PolicyConfig(environmentValue: " , "))
        try await withAPI(dialect, configuration: closed) { h in
            let answer = await h.enqueue(validTask())
            #expect(answer["detail"]?["message"] == "Repository 'testorg/docs' is not in the allowed namespace. Allowed prefixes: ")
        }
        let several = APIConfiguration(policy: PolicyConfig(environmentValue: "myorg/, example-org/"))
        try await withAPI(dialect, configuration: several) { h in
            #expect(await h.enqueue(validTask(repo: "example-org/site")).status == 201)
            let denied = await h.enqueue(validTask(repo: "other/x"))
            #expect(denied["detail"]?["message"] == "Repository 'other/x' is not in the allowed namespace. Allowed prefixes: myorg/, example-org/")
        }
    }

    @Test("idempotency: the same key gives 409 with the first task and its trace id; one row", arguments: Dialect.allCases)
    func idempotency(_ dialect: Dialect) async throws {
        try await withAPI(dialect) { h in
            let first = await h.enqueue(validTask().with("idempotency_key", "k-1"), headers: [("X-Trace-Id", "trace-a")])
            #expect(first.status == 201)
            let second = await h.enqueue(
                validTask(objective: "Something else entirely", repo: "testorg/other").with("idempotency_key", "k-1"),
                query: "?create_cwom=false", headers: [("X-Trace-Id", "trace-b")])
            #expect(second.status == 409)
            #expect(second.json.objectValue?.keys == ["status", "task_id", "trace_id", "message", "task"])
            #expect(second["status"] == "conflict")
            #expect(second["task_id"] == first["task_id"])
            #expect(second["trace_id"] == "trace-a")
            #expect(second["message"] == "Task with this idempotency_key already exists")
            #expect(second["task"] == first["task"])
            #expect(await h.enqueue(validTask().with("idempotency_key", "k-2")).status == 201)
            #expect(await h.enqueue(validTask()).status == 201)
            #expect(await h.enqueue(validTask()).status == 201)
            #expect(await h.count("tasks") == 4)
            // Policy comes first: a duplicate key with a now-disallowed repo is a 422.
            #expect(await h.enqueue(validTask(repo: "other/x").with("idempotency_key", "k-1")).status == 422)
        }
    }

    @Test("50 simultaneous enqueues with one key: one 201, 49 409, one row", arguments: Dialect.allCases)
    func concurrentIdempotency(_ dialect: Dialect) async throws {
        try await withAPI(dialect) { h in
            let statuses = await withTaskGroup(of: Int.self) { group in
                for _ in 0..<50 { group.addTask { await h.enqueue(validTask().with("idempotency_key", "same")).status } }
                var all: [Int] = []
                for await status in group { all.append(status) }
                return all
            }
            #expect(statuses.filter { $0 == 201 }.count == 1)
            #expect(statuses.filter { $0 == 409 }.count == 49)
            #expect(await h.count("tasks") == 1)
            #expect(await h.count("cwom_issues") == 1)
        }
    }

    @Test("X-Trace-Id: used verbatim, any header case, new UUID when empty, 422 when too long or not printable",
        arguments: Dialect.allCases)
    func traceIds(_ dialect: Dialect) async throws {
        try await withAPI(dialect) { h in
            let given = await h.enqueue(validTask(), headers: [("x-trace-id", "my-trace-1")])
            #expect(given["trace_id"] == "my-trace-1")
            #expect(given["task"]?["trace_id"] == "my-trace-1")
            let empty = await h.enqueue(validTask(), headers: [("X-Trace-Id", "")])
            let generated = try #require(empty["trace_id"]?.stringValue)
            #expect(UUID(uuidString: generated) != nil && generated == generated.lowercased())
            // Version 7, like task ids: ordered by time (TaskRecord.newTraceId).
            #expect(generated.split(separator: "-")[2].hasPrefix("7"), "\(generated)")
            let taskId = try #require(empty["task_id"]?.stringValue)
            let later = try #require(await h.enqueue(validTask())["task_id"]?.stringValue)
            #expect(taskId.split(separator: "-")[2].hasPrefix("7") && taskId.prefix(8) <= later.prefix(8), "\(taskId), then \(later)")
            #expect(await h.enqueue(validTask(), headers: [("X-Trace-Id", String(repeating: "t", count: 36))]).status == 201)
            let long = await h.enqueue(validTask(), headers: [("X-Trace-Id", String(repeating: "t", count: 37))])
            #expect(long.status == 422)
            #expect(long.errorLocs == [["header", "x-trace-id"]])
            let control = await h.enqueue(validTask(), headers: [("X-Trace-Id", "bad\u{7}id")])
            #expect(control.errorTypes == ["string_pattern_mismatch"])
        }
    }

    @Test("CWOM at intake: one transaction with every row and audit entry, trace id included", arguments: Dialect.allCases)
    func cwomAtIntake(_ dialect: Dialect) async throws {
        try await withAPI(dialect) { h in
            let answer = await h.enqueue(
                validTask(objective: "Fix the login page\nDetails follow", repo: "TestOrg/App.git")
                    .with("acceptance_criteria", ["login works"]).with("evidence_requirements", ["test log"])
                    .with("constraints", ["time_budget_seconds": 1200]),
                headers: [("X-Trace-Id", "trace-cwom")])
            #expect(answer.status == 201)
            let ids = try #require(answer["cwom"]?.objectValue)
            let issueId = try #require(ids["issue_id"]?.stringValue)
            let (issue, repo, packet, snapshot, audit) = try await h.database.read { store in
                (
                    try await store.issues.get(issueId), try await store.repos.get(ids["repo_id"]?.stringValue ?? ""),
                    try await store.contextPackets.get(ids["context_packet_id"]?.stringValue ?? ""),
                    try await store.constraintSnapshots.get(ids["constraint_snapshot_id"]?.stringValue ?? ""),
                    try await store.audit.list(.init(traceId: "trace-cwom"))
                )
            }
            #expect(repo?.slug == "testorg/app")
            #expect(repo?.name == "app")
            #expect(issue?.title == "Fix the login page")
            #expect(issue?.type == .doc)
            #expect(issue?.status == .planned)
            #expect(issue?.acceptance.criteria == ["login works"])
            #expect(issue?.header.traceId == "trace-cwom")
            #expect(issue?.contextPackets.map(\.id) == [packet?.id].compactMap { $0 })
            #expect(issue?.constraints.map(\.id) == [snapshot?.id].compactMap { $0 })
            #expect(packet?.meta["evidence_requirements"] == ["test log"])
            #expect(packet?.constraintSnapshot?.id == snapshot?.id)
            #expect(snapshot?.constraints.time?.availableMinutes == 20)
            #expect(snapshot?.constraints.risk?.notes == "allow_network=False, allow_secrets=False")
            #expect(audit.reversed().map { "\($0.entityKind) \($0.action.rawValue)" } == [
                "Task created", "Task status_changed", "Repo created", "ConstraintSnapshot created", "Issue created",
                "Issue linked", "ContextPacket created", "Issue linked",
            ])
            // A second task for the same repo spelled differently reuses the Repo.
            #expect(await h.enqueue(validTask(repo: "testorg/app")).status == 201)
            #expect(await h.count("cwom_repos") == 1)
        }
    }

    @Test("either everything is stored or nothing is", arguments: Dialect.allCases)
    func atomicIntake(_ dialect: Dialect) async throws {
        try await withAPI(dialect) { h in
            try await h.database.driver.withSession { session in
                try await session.query(
                    dialect == .postgres ? "DROP TABLE cwom_issue_context_packets CASCADE" : "DROP TABLE cwom_issue_context_packets", [])
            }
            let answer = await h.enqueue(validTask())
            #expect(answer.status == 500)
            #expect(await h.count("tasks") == 0)
            #expect(await h.count("cwom_repos") == 0)
            #expect(await h.count("cwom_issues") == 0)
            #expect(await h.count("audit_log") == 0)
            #expect(await h.enqueue(validTask(), query: "?create_cwom=false").status == 201)
        }
    }

    @Test("the legacy 500s are proper answers now (§12 items 3, 4, 5, 34)", arguments: Dialect.allCases)
    func fixedBugs(_ dialect: Dialect) async throws {
        try await withAPI(dialect) { h in
            let short = await h.enqueue(validTask(objective: "  abc  "))
            #expect(short.status == 422)
            #expect(short.errorLocs == [["body", "objective"]])
            let firstLineEmpty = await h.enqueue(validTask(objective: "\nUpdate the docs"))
            #expect(firstLineEmpty.status == 201)
            let longRef = await h.enqueue(validTask().with("target.ref", .string(String(repeating: "r", count: 200))))
            #expect(longRef.status == 201)
            let barePrefix = await h.enqueue(validTask(repo: "testorg/"))
            #expect(barePrefix.status == 201)
            #expect(await h.count("tasks") == 3)
        }
    }
}
