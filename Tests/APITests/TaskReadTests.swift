import API
import CWOM
import Foundation
import LegacyTasks
import Logging
import Storage
import Testing
import TowerJSON
import TowerTestSupport

@Suite("Reading and updating tasks, health, routing, auth")
struct TaskReadTests {
    @Test("GET /tasks/{id}: every UUID spelling Python accepts; 404 otherwise", arguments: Dialect.allCases)
    func getById(_ dialect: Dialect) async throws {
        try await withAPI(dialect) { h in
            let id = try #require(await h.enqueue(validTask())["task_id"]?.stringValue)
            let hex = id.replacingOccurrences(of: "-", with: "")
            // As long as the canonical form, hyphens elsewhere: Python drops hyphens wherever they are.
            let moved = [hex.prefix(4), hex.dropFirst(4).prefix(8), hex.dropFirst(12).prefix(6), hex.dropFirst(18).prefix(5), hex.dropFirst(23)]
                .joined(separator: "-")
            // Percent-encoded: a path segment is decoded before it is matched and read.
            let encoded = id.replacingOccurrences(of: "-", with: "%2D")
            let spellings = [id, id.uppercased(), hex, "{\(id)}", "urn:uuid:\(id)", moved, encoded, "%7B\(id)%7D"]
            for spelling in spellings {
                let answer = await h.get("/tasks/\(spelling)")
                #expect(answer.status == 200, "\(spelling)")
                #expect(answer["task_id"] == .string(id))
            }
            // An empty segment, a non-ASCII one and a decoded slash are parts of no route; a
            // trailing slash is redirected to the path without it, as FastAPI does.
            for path in ["/tasks//\(id)", "/tâches/\(id)", "/tasks/\(id)%2F", "/tasks/\(id)/x"] {
                #expect(await h.get(path).status == 404, "\(path)")
            }
            let slashed = await h.get("/tasks/\(id)/")
            #expect(slashed.status == 307 && slashed.header("location")?.hasSuffix("/tasks/\(id)") == true)
            for missing in ["not-a-uuid", UUID().uuidString, "enqueue"] {
                let answer = await h.get("/tasks/\(missing)")
                #expect(answer.status == 404)
                #expect(answer.json == ["detail": "Task not found"])
            }
        }
    }

    @Test("GET /tasks: filters, newest first, limit and offset", arguments: Dialect.allCases)
    func listTasks(_ dialect: Dialect) async throws {
        try await withAPI(dialect) { h in
            var ids: [String] = []
            for (n, operation) in ["docs", "ops", "docs"].enumerated() {
                let body = validTask(objective: "Objective number \(n)", repo: "testorg/r\(n)").with("operation", .string(operation))
                ids.append(try #require(await h.enqueue(body)["task_id"]?.stringValue))
            }
            let all = await h.get("/tasks")
            #expect(all.json.arrayValue?.compactMap { $0["task_id"]?.stringValue } == ids.reversed())
            #expect(await h.get("/tasks?operation=docs").json.arrayValue?.count == 2)
            #expect(await h.get("/tasks?status=queued&requester_kind=human").json.arrayValue?.count == 3)
            #expect(await h.get("/tasks?target_repo=testorg/r1").json.arrayValue?.count == 1)
            #expect(await h.get("/tasks?target_repo=TestOrg/R1").json.arrayValue?.count == 0, "filters are not normalised")
            #expect(await h.get("/tasks?status=bogus").json == [])
            #expect(await h.get("/tasks?limit=0").json == [])
            #expect(await h.get("/tasks?limit=1&offset=1").json.arrayValue?.first?["task_id"] == .string(ids[1]))
            let bad = await h.get("/tasks?limit=ten")
            #expect(bad.errorTypes == ["int_parsing"])
            #expect(bad.errorLocs == [["query", "limit"]])
            #expect(bad["detail"]?.arrayValue?.first?["msg"] == "Input should be a valid integer, unable to parse string as an integer")
            let negative = await h.get("/tasks?limit=-1&offset=-1")
            #expect(negative.status == 422)
            #expect(negative.errorTypes == ["greater_than_equal", "greater_than_equal"])
        }
    }

    @Test("PATCH /tasks/{id}/status: sets timestamps and fields, never clears, validates", arguments: Dialect.allCases)
    func patchStatus(_ dialect: Dialect) async throws {
        try await withAPI(dialect) { h in
            let id = try #require(await h.enqueue(validTask())["task_id"]?.stringValue)
            let running = await h.send("PATCH", "/tasks/\(id)/status?status=running&assigned_to=claude-code")
            #expect(running.status == 200)
            #expect(running["status"] == "success")
            #expect(running["task"]?["started_at"] != .null)
            #expect(running["task"]?["assigned_to"] == "claude-code")
            let failed = await h.send(
                "PATCH", "/tasks/\(id)/status?status=failed&error=boom&trace_path=file:///tmp/t", json: ["out": 1])
            #expect(failed["task"]?["completed_at"] != .null)
            #expect(failed["task"]?["result"] == ["out": 1])
            #expect(failed["task"]?["error"] == "boom")
            let requeued = await h.send("PATCH", "/tasks/\(id)/status?status=queued", json: [:])
            #expect(requeued["task"]?["status"] == "queued")
            #expect(requeued["task"]?["error"] == "boom", "nothing is cleared")
            #expect(requeued["task"]?["result"] == ["out": 1], "{} leaves the result")
            let weird = await h.send("PATCH", "/tasks/\(id)/status?status=weird-state")
            #expect(weird.status == 422)
            #expect(weird.errorTypes == ["literal_error"])
            #expect(await h.get("/tasks/\(id)").status == 200, "the row is not poisoned")
            let missing = await h.send("PATCH", "/tasks/\(id)/status")
            #expect(missing.errorTypes == ["missing"])
            #expect(missing.errorLocs == [["query", "status"]])
            let array = await h.send("PATCH", "/tasks/\(id)/status?status=done", json: [1, 2])
            #expect(array.errorTypes == ["literal_error", "dict_type"])
            #expect(await h.send("PATCH", "/tasks/\(UUID().uuidString)/status?status=queued").status == 404)
            let audit = try await h.database.read { store in try await store.audit.list(.init(entityKind: "Task", entityId: id)) }
            #expect(audit.first?.note == "Status changed: failed -> queued")
            // Past the legacy columns' lengths: a 422 on both databases (PostgreSQL answered 500).
            let long = await h.send(
                "PATCH", "/tasks/\(id)/status?status=running&assigned_to=\(String(repeating: "w", count: 101))&trace_path=file:///\(String(repeating: "t", count: 505))")
            #expect(long.status == 422 && long.errorTypes == ["string_too_long", "string_too_long"], "\(long.text)")
            #expect(long.errorLocs == [["query", "assigned_to"], ["query", "trace_path"]])
            let fits = await h.send("PATCH", "/tasks/\(id)/status?status=running&assigned_to=\(String(repeating: "w", count: 100))")
            #expect(fits.status == 200, "\(fits.text)")
        }
    }

    @Test("concurrent retries of one failed task make one new attempt; concurrent cancels one cancel", arguments: Dialect.allCases)
    func concurrentRetriesAndCancels(_ dialect: Dialect) async throws {
        try await withAPI(dialect) { h in
            let id = try #require(await h.enqueue(validTask())["task_id"]?.stringValue)
            #expect(await h.send("PATCH", "/tasks/\(id)/status?status=running&assigned_to=legacy-agent").status == 200)
            #expect(await h.send("PATCH", "/tasks/\(id)/status?status=failed&error=boom", json: [:]).status == 200)
            let statuses = await withTaskGroup(of: Int.self) { group in
                for _ in 0..<6 { group.addTask { await h.send("POST", "/tasks/\(id)/retry").status } }
                return await group.reduce(into: [Int]()) { $0.append($1) }
            }
            #expect(statuses.filter { $0 == 200 || $0 == 202 }.count == 1, "\(statuses)")
            let cancels = await withTaskGroup(of: Int.self) { group in
                for _ in 0..<6 { group.addTask { await h.send("POST", "/tasks/\(id)/cancel").status } }
                return await group.reduce(into: [Int]()) { $0.append($1) }
            }
            #expect(cancels.filter { $0 == 200 }.count == 1, "\(cancels)")
            let audit = try await h.database.read { store in try await store.audit.list(.init(entityKind: "Task", entityId: id)) }
            // pending → queued → running → failed → queued → cancelled: one row per transition, none twice.
            #expect(audit.filter { $0.action == .statusChanged }.count == 5, "\(audit.map { $0.note ?? "" })")
        }
    }

    @Test("bearer auth with JCT_API_KEY: 401 shape, order of checks, open routes", arguments: Dialect.allCases)
    func auth(_ dialect: Dialect) async throws {
        let configuration = APIConfiguration(apiKey: "s3cret", policy: PolicyConfig(allowedRepoPrefixes: ["testorg/"]))
        try await withAPI(dialect, configuration: configuration) { h in
            let denied = await h.enqueue(validTask())
            #expect(denied.status == 401)
            #expect(denied.json == ["detail": "Invalid or missing API key"])
            #expect(denied.header("www-authenticate") == "Bearer")
            for header in ["Basic s3cret", "Bearer wrong", "Bearer  s3cret", "s3cret"] {
                #expect(await h.enqueue(validTask(), headers: [("Authorization", header)]).status == 401, "\(header)")
            }
            #expect(await h.enqueue(validTask(), headers: [("Authorization", "Bearer s3cret")]).status == 201)
            #expect(await h.enqueue(validTask(), headers: [("authorization", "bearer s3cret")]).status == 201)
            // The key is checked before the body is read (the legacy service parsed the body first).
            #expect(await h.send("POST", "/tasks/enqueue", body: Array("{not json".utf8)).status == 401)
            #expect(await h.send("POST", "/tasks/enqueue", body: [0xFF]).status == 401)
            #expect(await h.enqueue(validTask().with("objective", nil)).status == 401)
            #expect(await h.enqueue(validTask(), query: "?create_cwom=maybe").status == 401)
            #expect(await h.get("/tasks").status == 401)
            #expect(await h.get("/tasks/not-a-uuid").status == 401)
            #expect(await h.send("PATCH", "/tasks/x/status?status=queued").status == 401, "the PATCH needs the key now")
            #expect(await h.get("/health").status == 200)
            #expect(await h.get("/healthz").status == 200)
            #expect(await h.get("/version").status == 200)
        }
    }

    @Test("health, version, unknown paths, wrong methods and trailing slashes", arguments: Dialect.allCases)
    func routing(_ dialect: Dialect) async throws {
        try await withAPI(dialect) { h in
            #expect(await h.get("/health").json == ["status": "ok"])
            #expect(await h.get("/healthz").json == ["ok": true, "db": true])
            #expect(await h.get("/version").json == ["version": "0.1.0"])
            #expect(await h.get("/nowhere").json == ["detail": "Not Found"])
            let put = await h.send("PUT", "/tasks/enqueue")
            #expect(put.status == 405)
            #expect(put.json == ["detail": "Method Not Allowed"])
            #expect(put.header("allow") == "POST", "the methods of /tasks/enqueue, not of /tasks/{task_id} that matches it too")
            #expect(await h.send("POST", "/health").header("allow") == "GET")
            #expect(await h.send("DELETE", "/cwom/runs").header("allow") == "POST, GET", "every method of the path")
            let slash = await h.get("/tasks/")
            #expect(slash.status == 307)
            #expect(slash.header("location") == "http://testserver/tasks")
            #expect(slash.text.isEmpty)
            let post = await h.send("POST", "/tasks/enqueue/", json: validTask())
            #expect(post.status == 307)
            #expect(await h.count("tasks") == 0, "a redirected POST enqueues nothing")
        }
    }

    @Test("with the database down every request answers 503, and the log says so once, not once a request", arguments: Dialect.allCases)
    func unreachableLoggedOnce(_ dialect: Dialect) async throws {
        let log = CapturedLog()
        try await withAPI(dialect, logger: log.logger("tower.api", level: .debug)) { h in
            await h.database.close()
            for _ in 0..<5 { #expect(await h.get("/tasks").status == 503) }
            let lines = log.entries.filter { $0.message.hasPrefix("database") }
            #expect(lines.map(\.level) == [.error, .debug, .debug, .debug, .debug], "\(lines.map(\.message))")
            #expect(lines.last?.metadata["requests"] == "5", "the quiet ones count the requests")
        }
    }

    @Test("/healthz answers 503 with the same body when the database is down", arguments: Dialect.allCases)
    func healthzDown(_ dialect: Dialect) async throws {
        try await withAPI(dialect) { h in
            await h.database.close()
            let answer = await h.get("/healthz")
            #expect(answer.status == 503)
            #expect(answer.json == ["ok": false, "db": false])
            #expect(await h.get("/health").status == 200)
        }
    }
}
