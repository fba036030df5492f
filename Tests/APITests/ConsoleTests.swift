import API
import CWOM
import LegacyTasks
import Foundation
import Storage
import Testing
import TowerJSON
import TowerTestSupport

/// The console's door: a key opens a session cookie, every form carries a CSRF token, and a
/// session ends at sign-out or when its key goes.
@Suite("Console sessions")
struct ConsoleTests {
    func withConsole(_ access: AccessConfiguration = AccessTests.access(), _ body: (Harness) async throws -> Void) async throws {
        try await withDatabase(.sqlite) { database, _ in
            let api = TowerAPI(
                database: database, configuration: APIConfiguration(access: access, policy: testConfiguration.policy),
                logger: quietLogger("tower.api"))
            try await body(Harness(api: api, database: database, dialect: .sqlite))
        }
    }

    /// The value a `Set-Cookie` header of `answer` gives `name`, with its attributes.
    func setCookie(_ answer: Answer, _ name: String) -> String? {
        answer.headers.first { $0.name.lowercased() == "set-cookie" && $0.value.hasPrefix(name + "=") }?.value
    }

    func hidden(_ name: String, in html: String) -> String? {
        guard let range = html.range(of: #"name="\#(name)" value=""#) else { return nil }
        return String(html[range.upperBound...].prefix { $0 != "\"" })
    }

    func form(_ fields: [String: String]) -> [UInt8] {
        Array(fields.map { "\($0.key)=\($0.value.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? $0.value)" }.joined(separator: "&").utf8)
    }

    /// Signs in with `secret`: the session cookie (`name=value`) and the page's CSRF token.
    func signIn(_ h: Harness, _ secret: String) async throws -> (cookie: String, csrf: String) {
        let login = await h.get("/ui/login")
        let loginCSRF = try #require(hidden("csrf", in: login.text))
        let signedIn = await h.send(
            "POST", "/ui/login", body: form(["key": secret, "csrf": loginCSRF]),
            headers: [("content-type", "application/x-www-form-urlencoded"), ("cookie", "tower_login_csrf=\(loginCSRF)")])
        #expect(signedIn.status == 303 && signedIn.header("location") == "/ui")
        let cookie = try #require(setCookie(signedIn, "tower_session")?.split(separator: ";").first.map(String.init))
        let overview = await h.get("/ui", headers: [("cookie", cookie)])
        return (cookie, try #require(hidden("csrf", in: overview.text)))
    }

    @Test("a key opens a session: HttpOnly, SameSite=Strict cookie; the overview shows; sign-out ends it")
    func signInAndOut() async throws {
        try await withConsole { h in
            let anonymous = await h.get("/ui")
            #expect(anonymous.status == 303 && anonymous.header("location") == "/ui/login")
            let login = await h.get("/ui/login")
            #expect(login.status == 200 && login.text.contains(#"<label for="key">API key</label>"#))
            #expect(setCookie(login, "tower_login_csrf")?.contains("HttpOnly; SameSite=Strict") == true)

            let (cookie, csrf) = try await signIn(h, AccessTests.secret(.read))
            let overview = await h.get("/ui", headers: [("cookie", cookie)])
            #expect(overview.status == 200 && overview.text.contains("<h1>Overview</h1>"))
            #expect(overview.text.contains("Signed in as key-read"))
            #expect(overview.header("content-security-policy")?.contains("frame-ancestors 'none'") == true)

            let noToken = await h.send("POST", "/ui/logout", body: [], headers: [("cookie", cookie)])
            #expect(noToken.status == 403, "a form without its CSRF token is refused")
            #expect(await h.get("/ui", headers: [("cookie", cookie)]).status == 200, "and the session stays")
            let out = await h.send(
                "POST", "/ui/logout", body: form(["csrf": csrf]),
                headers: [("cookie", cookie), ("content-type", "application/x-www-form-urlencoded")])
            #expect(out.status == 303 && out.header("location") == "/ui/login")
            #expect(await h.get("/ui", headers: [("cookie", cookie)]).status == 303, "the session is gone")
        }
    }

    @Test("a wrong key, a login form without its token, and a revoked key are refused")
    func refusals() async throws {
        try await withConsole { h in
            let login = await h.get("/ui/login")
            let csrf = try #require(hidden("csrf", in: login.text))
            let wrong = await h.send(
                "POST", "/ui/login", body: form(["key": "nope", "csrf": csrf]),
                headers: [("content-type", "application/x-www-form-urlencoded"), ("cookie", "tower_login_csrf=\(csrf)")])
            #expect(wrong.status == 401 && wrong.text.contains("That key is not valid."))
            #expect(setCookie(wrong, "tower_session") == nil)
            let forged = await h.send(
                "POST", "/ui/login", body: form(["key": AccessTests.secret(.admin), "csrf": "guess"]),
                headers: [("content-type", "application/x-www-form-urlencoded"), ("cookie", "tower_login_csrf=\(csrf)")])
            #expect(forged.status == 403 && setCookie(forged, "tower_session") == nil, "login CSRF")

            let (cookie, _) = try await signIn(h, AccessTests.secret(.review))
            #expect(await h.get("/ui", headers: [("cookie", cookie)]).status == 200)
            h.api.access.replaceKeys([])
            #expect(await h.get("/ui", headers: [("cookie", cookie)]).status == 303, "a revoked key's session ends")
            #expect(await h.get("/ui", headers: [("cookie", "tower_session=forged")]).status == 303)
        }
    }

    @Test("behind TLS the session cookie is Secure; without keys the console is open")
    func secureAndOpen() async throws {
        try await withConsole { h in
            let login = await h.get("/ui/login")
            let csrf = try #require(hidden("csrf", in: login.text))
            let signedIn = await h.send(
                "POST", "/ui/login", body: form(["key": AccessTests.secret(.read), "csrf": csrf]),
                headers: [
                    ("content-type", "application/x-www-form-urlencoded"), ("cookie", "tower_login_csrf=\(csrf)"), ("x-forwarded-proto", "https"),
                ])
            #expect(setCookie(signedIn, "tower_session")?.hasSuffix("; Path=/ui; HttpOnly; SameSite=Strict; Secure") == true)
        }
        try await withConsole(AccessConfiguration()) { h in
            let overview = await h.get("/ui")
            #expect(overview.status == 200 && overview.text.contains("<h1>Overview</h1>"))
        }
    }

    @Test("tasks: newest first, filtered by status, operation, repository and text (taken literally), escaped, paged",
        arguments: Dialect.allCases)
    func tasks(_ dialect: Dialect) async throws {
        try await withDatabase(dialect) { database, _ in
            let api = TowerAPI(database: database, configuration: testConfiguration, logger: quietLogger("tower.api"))
            let h = Harness(api: api, database: database, dialect: dialect)
            for index in 0..<52 { #expect(await h.enqueue(validTask(objective: "Routine chore number \(index)")).status == 201) }
            #expect(await h.enqueue(validTask(objective: "Fix <script>alert(1)</script> 100% of_it", repo: "testorg/web")).status == 201)

            let first = await h.get("/ui/tasks")
            #expect(first.status == 200)
            #expect(first.text.contains("Fix &lt;script&gt;alert(1)&lt;/script&gt; 100% of_it"), "escaped")
            #expect(!first.text.contains("<script>alert"))
            #expect(first.text.components(separatedBy: "<tr><td>").count - 1 == 50, "50 a page")
            #expect(first.text.contains(#"rel="next""#) && !first.text.contains(#"rel="prev""#))
            let second = await h.get("/ui/tasks?page=2")
            #expect(second.text.components(separatedBy: "<tr><td>").count - 1 == 3)
            #expect(second.text.contains("Routine chore number 0<"), "the oldest last")

            let found = await h.get("/ui/tasks?q=SCRIPT")
            #expect(found.text.components(separatedBy: "<tr><td>").count - 1 == 1, "text search, any case")
            #expect(await h.get("/ui/tasks?q=100%25").text.components(separatedBy: "<tr><td>").count - 1 == 1, "% is literal")
            #expect(await h.get("/ui/tasks?q=chore_number").text.contains("No task matches."), "_ is literal, not any character")
            #expect(await h.get("/ui/tasks?repo=testorg/web").text.components(separatedBy: "<tr><td>").count - 1 == 1)
            #expect(await h.get("/ui/tasks?status=completed").text.contains("No task matches."))
            let queued = await h.get("/ui/tasks?status=queued&operation=docs&q=chore")
            #expect(queued.text.contains(#"<option value="queued" selected>"#), "the filter is kept")
            #expect(queued.text.contains(#"href="/ui/tasks?status=queued&amp;operation=docs&amp;q=chore&amp;page=2""#), "paging keeps the filter")
        }
    }

    /// An agent, through the MCP tools, claims a new task, reports `report` (title, content) and
    /// completes it: its Run waits for a review. The task's id and its evidence pack's.
    func finishedByAgent(_ h: Harness, _ configuration: APIConfiguration, objective: String, report: (String, String)? = nil)
        async throws -> (task: String, pack: String)
    {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("tower-console-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        let tools = AgentTools(database: h.database, engine: h.api.engine, configuration: configuration, traceRoot: root, logger: quietLogger("mcp"))
        let agent = AgentTools.Caller(principal: Principal(name: "agent", scopes: [.agent, .write, .read]))
        let task = try #require(
            await tools.call("jct_enqueue_task", arguments: ["objective": .string(objective), "operation": "docs", "target_repo": "testorg/x"], caller: agent)[
                "task_id"])
        _ = await tools.call("jct_claim_task", arguments: ["task_id": task], caller: agent)
        if let (title, content) = report {
            _ = await tools.call(
                "jct_report_artifact", arguments: ["task_id": task, "title": .string(title), "artifact_type": "doc", "content": .string(content)],
                caller: agent)
        }
        let done = await tools.call("jct_complete_task", arguments: ["task_id": task, "success": true, "summary": "done"], caller: agent)
        return (try #require(task.stringValue), try #require(done["evidence_pack"]?["id"]?.stringValue))
    }

    @Test("reviews: a review key approves with a reason through the engine; a read key sees no buttons and cannot post",
        arguments: Dialect.allCases)
    func reviews(_ dialect: Dialect) async throws {
        try await withDatabase(dialect) { database, _ in
            let configuration = APIConfiguration(access: AccessTests.access(), policy: testConfiguration.policy)
            let api = TowerAPI(database: database, configuration: configuration, logger: quietLogger("tower.api"))
            let h = Harness(api: api, database: database, dialect: dialect)
            let (taskId, pack) = try await finishedByAgent(h, configuration, objective: "Document <b>it</b>")

            let reader = try await signIn(h, AccessTests.secret(.read))
            let readView = await h.get("/ui/reviews", headers: [("cookie", reader.cookie)])
            #expect(readView.text.contains("Document &lt;b&gt;it&lt;/b&gt;") && readView.text.contains("Verdict <strong>"))
            #expect(!readView.text.contains("Approve"), "a read-only key sees no action buttons")
            let form: [String: String] = ["evidence_pack_id": pack, "decision": "approved", "reason": "Looks right"]
            let readPost = await h.send(
                "POST", "/ui/reviews", body: self.form(form.merging(["csrf": reader.csrf]) { $1 }),
                headers: [("cookie", reader.cookie), ("content-type", "application/x-www-form-urlencoded")])
            #expect(readPost.status == 403)

            let reviewer = try await signIn(h, AccessTests.secret(.review))
            let reviewView = await h.get("/ui/reviews", headers: [("cookie", reviewer.cookie)])
            #expect(reviewView.text.contains(#"<button type="submit" name="decision" value="approved">Approve</button>"#))
            let forged = await h.send(
                "POST", "/ui/reviews", body: self.form(form),
                headers: [("cookie", reviewer.cookie), ("content-type", "application/x-www-form-urlencoded")])
            #expect(forged.status == 403, "no CSRF token, no decision")
            let approved = await h.send(
                "POST", "/ui/reviews", body: self.form(form.merging(["csrf": reviewer.csrf]) { $1 }),
                headers: [("cookie", reviewer.cookie), ("content-type", "application/x-www-form-urlencoded")])
            #expect(approved.status == 303 && approved.header("location") == "/ui/reviews?done=approved", "\(approved.status) \(approved.text)")
            let issueId = try #require(try await database.read { try await $0.tasks.get(taskId) }?.cwomIssueId)
            #expect(try await database.read { try await $0.issues.get(issueId) }?.status == .done)
            let reviews = try await database.read { try await $0.reviews.list(evidencePackId: pack) }
            #expect(reviews.count == 1 && reviews.first?.reviewer.actorId == "key-review", "the key's name is the reviewer")
            #expect(await h.get("/ui/reviews", headers: [("cookie", reviewer.cookie)]).text.contains("Nothing waits for a review."))
        }
    }

    @Test("overview: queue depth and the oldest task's wait, the last hour's completions, workers with their heartbeats")
    func overview() async throws {
        try await withDatabase(.sqlite) { database, _ in
            let api = TowerAPI(database: database, configuration: testConfiguration, logger: quietLogger("tower.api"))
            let h = Harness(api: api, database: database, dialect: .sqlite)
            #expect(await h.enqueue(validTask()).status == 201)
            _ = try await finishedByAgent(h, testConfiguration, objective: "Finish this")
            try await database.write { try await $0.queue.upsertWorker(id: "worker-a", host: "box-1", pid: 42, concurrency: 4, now: .now()) }

            let page = await h.get("/ui").text
            #expect(page.contains("<dt>Queued</dt><dd>1</dd>"), "\(page)")
            #expect(page.contains("<dt>Completed in the last hour</dt><dd>1</dd>"))
            #expect(page.contains("<dt>Failed in the last hour</dt><dd>0</dd>"))
            #expect(!page.contains("none waiting"), "a task waits")
            #expect(page.contains("<td>worker-a</td><td>box-1 (pid 42)</td><td>4</td><td>beat "))
        }
    }

    @Test("a task's page: fields, Runs with Artifacts, context, timeline; cancel and retry through the engine for write keys only",
        arguments: Dialect.allCases)
    func taskPage(_ dialect: Dialect) async throws {
        try await withDatabase(dialect) { database, _ in
            let configuration = APIConfiguration(access: AccessTests.access(), policy: testConfiguration.policy)
            let api = TowerAPI(database: database, configuration: configuration, logger: quietLogger("tower.api"))
            let h = Harness(api: api, database: database, dialect: dialect)
            let (finished, _) = try await finishedByAgent(h, configuration, objective: "Write <docs> now", report: ("notes.md", "hello"))
            let queued = try #require(await h.enqueue(validTask(), headers: AccessTests.bearer(AccessTests.secret(.write)))["task_id"]?.stringValue)

            let reader = try await signIn(h, AccessTests.secret(.read))
            let page = await h.get("/ui/tasks/\(finished)", headers: [("cookie", reader.cookie)])
            #expect(page.status == 200)
            #expect(page.text.contains("<h1>Write &lt;docs&gt; now</h1>"))
            #expect(page.text.contains("<td>notes.md</td><td>doc</td><td>5</td><td><code>sha256:"), "the artifact with size and digest")
            #expect(page.text.contains("ContextPacket") && page.text.contains("ConstraintSnapshot"))
            #expect(page.text.contains("by agent"), "the timeline names the actors")
            #expect(!page.text.contains("Retry task"), "a read key sees no buttons")
            #expect(await h.get("/ui/tasks/00000000-0000-0000-0000-000000000000", headers: [("cookie", reader.cookie)]).status == 404)

            let writer = try await signIn(h, AccessTests.secret(.write))
            #expect(!(await h.get("/ui/tasks/\(finished)", headers: [("cookie", writer.cookie)]).text.contains("Retry task")),
                "no retry while its Issue is under review (the state machine would refuse)")
            #expect(await h.get("/ui/tasks/\(queued)", headers: [("cookie", writer.cookie)]).text.contains("Cancel task"))
            let headers = [("cookie", writer.cookie), ("content-type", "application/x-www-form-urlencoded")]
            #expect(await h.send("POST", "/ui/tasks/\(queued)/cancel", body: [], headers: headers).status == 403, "no CSRF token")
            let readCancel = await h.send("POST", "/ui/tasks/\(queued)/cancel", body: form(["csrf": reader.csrf]),
                headers: [("cookie", reader.cookie), ("content-type", "application/x-www-form-urlencoded")])
            #expect(readCancel.status == 403, "a read key cannot cancel")
            let cancelled = await h.send("POST", "/ui/tasks/\(queued)/cancel", body: form(["csrf": writer.csrf]), headers: headers)
            #expect(cancelled.status == 303 && cancelled.header("location")?.hasPrefix("/ui/tasks/\(queued)?done=Cancelled") == true)
            #expect(try await database.read { try await $0.tasks.get(queued) }?.status == .cancelled)
            let again = await h.send("POST", "/ui/tasks/\(queued)/cancel", body: form(["csrf": writer.csrf]), headers: headers)
            #expect(again.header("location")?.contains("cancelled") == true, "the state machine's refusal is shown")
            #expect(await h.get("/ui/tasks/\(queued)", headers: [("cookie", writer.cookie)]).text.contains("Retry task"), "a cancelled task can be retried")
            let retried = await h.send("POST", "/ui/tasks/\(queued)/retry", body: form(["csrf": writer.csrf]), headers: headers)
            #expect(retried.status == 303, "\(retried.header("location")?.removingPercentEncoding ?? "")")
            #expect(try await database.read { try await $0.tasks.get(queued) }?.status == .queued, "\(retried.header("location")?.removingPercentEncoding ?? "")")
        }
    }
}
