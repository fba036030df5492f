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
    /// A console over a fresh database of `dialect`, with the access tests' keys unless told
    /// otherwise (its configuration is `h.api.configuration`).
    func withConsole(_ dialect: Dialect = .sqlite, _ access: AccessConfiguration = AccessTests.access(), _ body: (Harness) async throws -> Void)
        async throws
    {
        try await withDatabase(dialect) { database, _ in
            let api = TowerAPI(
                database: database, configuration: APIConfiguration(access: access, policy: testConfiguration.policy),
                logger: quietLogger("tower.api"))
            try await body(Harness(api: api, database: database, dialect: dialect))
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
        let cookie = try #require(setCookie(signedIn, "tower_session")?.split(separator: ";").first.map { String($0) })
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

    @Test("a key holds at most 32 console sessions: signing in once more ends its least recently used; other keys keep theirs")
    func sessionsPerKey() async throws {
        try await withConsole { h in
            let other = try await signIn(h, AccessTests.secret(.review)).cookie
            var cookies: [String] = []
            for _ in 0..<32 { cookies.append(try await signIn(h, AccessTests.secret(.read)).cookie) }
            #expect(await h.get("/ui", headers: [("cookie", cookies[0])]).status == 200, "the first one used again")
            #expect(await h.api.consoleSessions.count == 33)
            let newest = try await signIn(h, AccessTests.secret(.read)).cookie
            #expect(await h.api.consoleSessions.count == 33, "still 32 for the key, and the other key's one")
            #expect(await h.get("/ui", headers: [("cookie", cookies[1])]).status == 303, "the least recently used one ended")
            for kept in [cookies[0], cookies[31], newest, other] { #expect(await h.get("/ui", headers: [("cookie", kept)]).status == 200) }
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
        try await withConsole(.sqlite, AccessConfiguration()) { h in
            let overview = await h.get("/ui")
            #expect(overview.status == 200 && overview.text.contains("<h1>Overview</h1>"))
            // No session, so no CSRF token: the browser's word on where a form comes from decides.
            let fields = form(["objective": "Open console task", "operation": "docs", "repo": "testorg/x"])
            let type = ("content-type", "application/x-www-form-urlencoded")
            for foreign in [[("origin", "https://evil.example"), ("host", "127.0.0.1:8000")], [("origin", "null"), ("host", "127.0.0.1:8000")],
                [("sec-fetch-site", "cross-site")]]
            {
                let refused = await h.send("POST", "/ui/tasks", body: fields, headers: foreign + [type])
                #expect(refused.status == 403 && refused.text.contains("posted from another site"), "\(foreign)")
            }
            let own = await h.send(
                "POST", "/ui/tasks", body: fields, headers: [("origin", "http://127.0.0.1:8000"), ("host", "127.0.0.1:8000"), ("sec-fetch-site", "same-origin"), type])
            #expect(own.status == 303, "the console's own page may post: \(own.text)")
            let proxied = await h.send(
                "POST", "/ui/tasks", body: fields,
                headers: [("origin", "https://tower.example.com"), ("host", "127.0.0.1:8000"), ("x-forwarded-host", "tower.example.com"), type])
            #expect(proxied.status == 303, "behind a proxy that forwards the host")
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
            for path in ["/ui/tasks/a%00b", "/ui/runs/a%00b", "/ui/runs/a%00b/files/trace.log"] {
                let nowhere = await h.get(path)
                #expect(nowhere.status == 404 && nowhere.text.contains("<h1>Not found</h1>"), "an id no object can have: \(path) \(nowhere.text.prefix(200))")
            }
            for page in ["999999999999999999", "9223372036854775807"] {
                let far = await h.get("/ui/tasks?page=\(page)")
                #expect(far.status == 200 && far.text.contains("No task matches."), "a page past the end is empty, whatever its number: \(far.status)")
            }
        }
    }

    /// An agent working through the MCP tools, its Runs' trace folders under `root`.
    struct Agent {
        let tools: AgentTools
        let caller = AgentTools.Caller(principal: Principal(name: "agent", scopes: [.agent, .write, .read]))

        /// Enqueues a task and claims it: its id.
        func claimNew(_ objective: String, criteria: [String] = []) async throws -> String {
            let task = await tools.call(
                "jct_enqueue_task",
                arguments: [
                    "objective": .string(objective), "operation": "docs", "target_repo": "testorg/x",
                    "acceptance_criteria": .array(criteria.map { .string($0) }),
                ], caller: caller)["task_id"]
            let id = try #require(task?.stringValue)
            #expect(await tools.call("jct_claim_task", arguments: ["task_id": .string(id)], caller: caller)["run_id"] != nil)
            return id
        }

        func report(_ task: String, _ title: String, type: String = "doc", _ content: String) async {
            let reply = await tools.call(
                "jct_report_artifact",
                arguments: ["task_id": .string(task), "title": .string(title), "artifact_type": .string(type), "content": .string(content)],
                caller: caller)
            #expect(reply["error"] == nil, "\(reply)")
        }

        /// Completes the task: its evidence pack's id.
        func complete(_ task: String) async throws -> String {
            let done = await tools.call("jct_complete_task", arguments: ["task_id": .string(task), "success": true, "summary": "done"], caller: caller)
            return try #require(done["evidence_pack"]?["id"]?.stringValue, "\(done)")
        }
    }

    func agent(_ h: Harness, _ configuration: APIConfiguration, root: URL) -> Agent {
        var configuration = configuration
        configuration.traceRoot = root
        return Agent(tools: AgentTools(database: h.database, engine: h.api.engine, configuration: configuration, logger: quietLogger("mcp")))
    }

    /// A fresh folder for trace folders, removed after `body`.
    func withTraceRoot(_ body: (URL) async throws -> Void) async throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("tower-console-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        try await body(root)
    }

    /// An agent, through the MCP tools, claims a new task, reports `report` (title, content) and
    /// completes it: its Run waits for a review. The task's id and its evidence pack's.
    func finishedByAgent(_ h: Harness, _ configuration: APIConfiguration, objective: String, report: (String, String)? = nil)
        async throws -> (task: String, pack: String)
    {
        var result: (String, String)?
        try await withTraceRoot { root in
            let agent = agent(h, configuration, root: root)
            let task = try await agent.claimNew(objective)
            if let (title, content) = report { await agent.report(task, title, content) }
            result = (task, try await agent.complete(task))
        }
        return try #require(result)
    }

    @Test("reviews: a review key approves with a reason through the engine; a read key sees no buttons and cannot post",
        arguments: Dialect.allCases)
    func reviews(_ dialect: Dialect) async throws {
        try await withConsole(dialect) { h in
            let (configuration, database) = (h.api.configuration, h.database)
            let (taskId, pack) = try await finishedByAgent(h, configuration, objective: "Document <b>it</b>")

            let reader = try await signIn(h, AccessTests.secret(.read))
            let readView = await h.get("/ui/reviews", headers: [("cookie", reader.cookie)])
            #expect(readView.text.contains("Document &lt;b&gt;it&lt;/b&gt;") && readView.text.contains("Verdict <strong"))
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
        try await withConsole(dialect) { h in
            let (configuration, database) = (h.api.configuration, h.database)
            let (finished, _) = try await finishedByAgent(h, configuration, objective: "Write <docs> now", report: ("notes.md", "hello"))
            let queued = try #require(await h.enqueue(validTask(), headers: AccessTests.bearer(AccessTests.secret(.write)))["task_id"]?.stringValue)

            let reader = try await signIn(h, AccessTests.secret(.read))
            let page = await h.get("/ui/tasks/\(finished)", headers: [("cookie", reader.cookie)])
            #expect(page.status == 200)
            #expect(page.text.contains("<h1>Write &lt;docs&gt; now</h1>"))
            #expect(page.text.contains(#"<a href="/ui/runs/"#) && page.text.contains("<td>agent</td><td>agent</td>"), "its Run, linked, with mode and executor")
            #expect(page.text.contains("ContextPacket"))
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

    static let patch = """
        diff --git a/README.md b/README.md
        --- a/README.md
        +++ b/README.md
        @@ -1,2 +1,2 @@
         # Docs
        -old <line>
        +new <line>
        """

    @Test("a Run's page: the context version it was pinned to, evidence, Artifacts, the patch as a diff, the trace file by file; a review decided there",
        arguments: Dialect.allCases)
    func runPage(_ dialect: Dialect) async throws {
        try await withConsole(dialect) { h in
            let (configuration, database) = (h.api.configuration, h.database)
            try await withTraceRoot { root in
                let agent = agent(h, configuration, root: root)
                let task = try await agent.claimNew("Fix the README", criteria: ["The README says new"])
                await agent.report(task, "changes.patch", type: "code_patch", Self.patch)
                await agent.report(task, "notes.md", "<b>bold</b>")
                let pack = try await agent.complete(task)
                let record = try #require(try await database.read { try await $0.tasks.get(task) })
                let issue = try #require(record.cwomIssueId)
                let run = try #require(try await database.read { try await $0.runs.list(RunRepository.Filter(issueId: issue)) }.first)
                let pinned = try #require(run.inputs.contextPackets.first?.id)
                // A newer version of the context after the Run: the Run's page still shows the one it ran under.
                let v2 = await h.send(
                    "POST", "/cwom/context-packets", json: ["for_issue": ["kind": "Issue", "id": .string(issue)], "version": "2", "summary": "Later"],
                    headers: AccessTests.bearer(AccessTests.secret(.write)))
                #expect(v2.status == 201)
                let newest = try #require(v2["context_packet"]?["id"]?.stringValue)

                let reader = try await signIn(h, AccessTests.secret(.read))
                let taskPage = await h.get("/ui/tasks/\(task)", headers: [("cookie", reader.cookie)]).text
                #expect(taskPage.contains("ContextPacket \(newest) (version 2), the newest"))
                #expect(taskPage.contains("<li>The README says new</li>"), "the acceptance criteria")
                let page = await h.get("/ui/runs/\(run.id)", headers: [("cookie", reader.cookie)])
                #expect(page.status == 200)
                #expect(page.text.contains("ContextPacket \(pinned), version 1"), "the pinned version")
                #expect(!page.text.contains(newest), "not the newest")
                #expect(page.text.contains("ConstraintSnapshot "))
                #expect(page.text.contains(#"Attempt of task <a href="/ui/tasks/\#(task)">Fix the README</a>"#))
                #expect(page.text.contains("Verdict <strong") && page.text.contains("The README says new: <strong>"), "the evidence and its criteria")
                #expect(page.text.contains(#"<span class="add">+new &lt;line&gt;</span>"#), "the patch as a coloured diff, escaped")
                #expect(page.text.contains(#"<span class="del">-old &lt;line&gt;</span>"#))
                #expect(page.text.contains(#"<span class="hunk">@@ -1,2 +1,2 @@</span>"#))
                #expect(page.text.contains(#"<a href="/ui/runs/\#(run.id)/files/artifacts/notes.md">notes.md</a></td><td>doc</td><td>11</td>"#),
                    "an Artifact links to its file, with size")
                #expect(page.text.contains(#"/files/manifest.json">manifest.json</a>"#), "the trace folder, file by file")
                #expect(!page.text.contains("Approve"), "a read key sees no decision form")

                let file = await h.get("/ui/runs/\(run.id)/files/artifacts/notes.md", headers: [("cookie", reader.cookie)])
                #expect(file.status == 200 && file.text.contains("<pre>&lt;b&gt;bold&lt;/b&gt;</pre>"), "a file's text, escaped")
                let patchFile = await h.get("/ui/runs/\(run.id)/files/artifacts/changes.patch", headers: [("cookie", reader.cookie)])
                #expect(patchFile.text.contains(#"<span class="add">"#), "a patch file as a diff")
                for attack in ["../../etc/passwd", "artifacts/../../x", "artifacts%2F..%2F..%2Fetc%2Fpasswd", "%2e%2e/%2e%2e/etc/passwd", "artifacts", "ghost"] {
                    #expect(await h.get("/ui/runs/\(run.id)/files/\(attack)", headers: [("cookie", reader.cookie)]).status == 404, "\(attack)")
                }
                #expect(await h.get("/ui/runs/ghost", headers: [("cookie", reader.cookie)]).status == 404)
                #expect(await h.get("/ui/runs/\(run.id)").status == 303, "signed out: to the login page")

                let reviewer = try await signIn(h, AccessTests.secret(.review))
                let reviewPage = await h.get("/ui/runs/\(run.id)", headers: [("cookie", reviewer.cookie)]).text
                #expect(reviewPage.contains(#"name="run_id" value="\#(run.id)""#) && reviewPage.contains(">Approve</button>"))
                let approved = await h.send(
                    "POST", "/ui/reviews",
                    body: form(["csrf": reviewer.csrf, "evidence_pack_id": pack, "decision": "approved", "reason": "Right change", "run_id": run.id]),
                    headers: [("cookie", reviewer.cookie), ("content-type", "application/x-www-form-urlencoded")])
                #expect(approved.status == 303 && approved.header("location") == "/ui/runs/\(run.id)?done=approved")
                let after = await h.get("/ui/runs/\(run.id)?done=approved", headers: [("cookie", reviewer.cookie)]).text
                #expect(after.contains("Reviewed by key-review: <strong>approved</strong> (Right change)"))
                #expect(after.contains("(done)"), "the Issue is done")
                #expect(!after.contains(">Approve</button>"), "nothing left to decide")
            }
        }
    }

    /// Reads a stream until `enough` holds for what arrived (or it ends): the text so far.
    func read(_ stream: AsyncThrowingStream<[UInt8], any Error>.AsyncIterator, until enough: (String) -> Bool) async throws
        -> (String, AsyncThrowingStream<[UInt8], any Error>.AsyncIterator)
    {
        var iterator = stream
        var text = ""
        while !enough(text), let chunk = try await iterator.next() { text += String(decoding: chunk, as: UTF8.self) }
        return (text, iterator)
    }

    /// An agent's newly claimed task and its running Run, its trace folder under `root`.
    func claimed(_ h: Harness, root: URL, _ objective: String) async throws -> (agent: Agent, task: String, run: Run) {
        let agent = agent(h, h.api.configuration, root: root)
        let task = try await agent.claimNew(objective)
        let issue = try #require(try await h.database.read { try await $0.tasks.get(task) }?.cwomIssueId)
        let run = try #require(try await h.database.read { try await $0.runs.list(RunRepository.Filter(issueId: issue)) }.first)
        return (agent, task, run)
    }

    @Test("a key follows at most 16 live logs at once: a 17th ends its oldest")
    func liveLogsPerKey() async throws {
        try await withConsole { h in
            try await withTraceRoot { root in
                let (agent, task, run) = try await claimed(h, root: root, "Followed by many")
                let reader = try await signIn(h, AccessTests.secret(.read))
                func open() async throws -> AsyncThrowingStream<[UInt8], any Error> {
                    try #require(
                        await h.api.respond(
                            APIRequest(method: "GET", path: "/ui/runs/\(run.id)/log", query: nil, headers: [(name: "cookie", value: reader.cookie)], body: [])
                        ).stream)
                }
                var streams: [AsyncThrowingStream<[UInt8], any Error>] = []
                for _ in 0..<16 { streams.append(try await open()) }
                #expect(await h.api.consoleSessions.streamCount == 16)
                streams.append(try await open())
                #expect(await h.api.consoleSessions.streamCount == 16, "still 16")
                let first = streams[0]
                let ended = try await withDeadline(seconds: 30) {
                    var iterator = first.makeAsyncIterator()
                    while try await iterator.next() != nil {}
                    return true
                }
                #expect(ended == true, "the oldest stream ended while its Run still runs")
                _ = try await agent.complete(task)
                for stream in streams.dropFirst() {
                    let (text, _) = try await read(stream.makeAsyncIterator()) { $0.contains("event: end") }
                    #expect(text.contains("event: end"), "the others ran until the Run ended")
                }
            }
        }
    }

    @Test("a running Run's trace log follows live: each new line an event with its offset, then the end with the Run's status")
    func liveLog() async throws {
        try await withConsole { h in
            try await withTraceRoot { root in
                let (agent, task, run) = try await claimed(h, root: root, "Follow me")
                let log = root.appendingPathComponent(run.id).appendingPathComponent("trace.log")
                let reader = try await signIn(h, AccessTests.secret(.read))

                let page = await h.get("/ui/runs/\(run.id)", headers: [("cookie", reader.cookie)]).text
                let before = (try? Data(contentsOf: log).count) ?? 0
                #expect(page.contains(#"data-follow="/ui/runs/\#(run.id)/log?from=\#(before)""#), "the stream starts where the page ends")
                #expect(await h.get("/ui/runs/\(run.id)/log").status == 401, "no session, no stream")

                let answer = await h.api.respond(
                    APIRequest(method: "GET", path: "/ui/runs/\(run.id)/log", query: "from=\(before)", headers: [(name: "cookie", value: reader.cookie)], body: []))
                #expect(answer.headers.contains { $0.0 == "content-type" && $0.1 == "text/event-stream" })
                let stream = try #require(answer.stream)
                let handle = try FileHandle(forWritingTo: log)
                try handle.seekToEnd()
                try handle.write(contentsOf: Data("first line\nsecond line\n".utf8))
                var (text, iterator) = try await read(stream.makeAsyncIterator()) { $0.contains("second line") }
                #expect(text.contains("event: line\nid: \(before + 11)\ndata: first line\n\n"), "\(text)")
                #expect(text.contains("event: line\nid: \(before + 23)\ndata: second line\n\n"))
                try handle.write(contentsOf: Data("half a li".utf8))
                try handle.close()

                _ = try await agent.complete(task)
                (text, iterator) = try await read(iterator) { $0.contains("event: end") }
                #expect(!text.contains("half a li"), "a line is sent once it is whole")
                #expect(text.contains("event: end\ndata: under_review\n"), "the Run waits for its review: \(text)")
                #expect(try await iterator.next() == nil, "the stream ends with the Run")

                let resumed = await h.api.respond(
                    APIRequest(method: "GET", path: "/ui/runs/\(run.id)/log", query: "from=0",
                        headers: [(name: "cookie", value: reader.cookie), (name: "last-event-id", value: String(before + 11))], body: []))
                let (again, _) = try await read(try #require(resumed.stream).makeAsyncIterator()) { $0.contains("event: end") }
                #expect(!again.contains("data: first line") && again.contains("data: second line"), "a reconnecting browser resumes after Last-Event-ID")

                for forged in [Int.max, Int.max - 1, before + 1_000_000] {
                    let past = await h.api.respond(
                        APIRequest(method: "GET", path: "/ui/runs/\(run.id)/log", query: "",
                            headers: [(name: "cookie", value: reader.cookie), (name: "last-event-id", value: String(forged))], body: []))
                    let (whole, _) = try await read(try #require(past.stream).makeAsyncIterator()) { $0.contains("event: end") }
                    #expect(whole.contains("data: first line") && whole.contains("data: second line"), "an offset the log never gave starts it over: \(forged)")
                }
            }
        }
    }

    @Test("a write key enqueues a task from the tasks page through the intake's checks; a read key cannot", arguments: Dialect.allCases)
    func newTask(_ dialect: Dialect) async throws {
        try await withConsole(dialect) { h in
            let database = h.database
            let writer = try await signIn(h, AccessTests.secret(.write))
            #expect(await h.get("/ui/tasks", headers: [("cookie", writer.cookie)]).text.contains(#"<label for="new-objective">Objective</label>"#))
            let headers = [("cookie", writer.cookie), ("content-type", "application/x-www-form-urlencoded")]
            let fields = ["objective": "Write the changelog", "operation": "docs", "repo": "testorg/docs", "criteria": "Lists 1.2\n\nDated"]

            let created = await h.send("POST", "/ui/tasks", body: form(fields.merging(["csrf": writer.csrf]) { $1 }), headers: headers)
            #expect(created.status == 303)
            let id = try #require(created.header("location")?.split(separator: "/").last.map { String($0) })
            let task = try #require(try await database.read { try await $0.tasks.get(id) })
            #expect(task.objective == "Write the changelog" && task.status == .queued && task.target.ref == "main")
            #expect(task.requestedBy.id == "key-write", "the key is the requester")
            let issue = try await database.read { try await $0.issues.get(task.cwomIssueId ?? "") }
            #expect(issue?.acceptance.criteria == ["Lists 1.2", "Dated"], "with its CWOM Issue, one criterion a line")

            let denied = await h.send(
                "POST", "/ui/tasks", body: form(fields.merging(["csrf": writer.csrf, "repo": "elsewhere/x"]) { $1 }), headers: headers)
            #expect(denied.status == 422 && denied.text.contains("The task was not enqueued:"), "the repository policy")
            #expect(denied.text.contains(#"value="elsewhere/x""#) && denied.text.contains("<details open>"), "what was typed stays")
            let short = await h.send("POST", "/ui/tasks", body: form(fields.merging(["csrf": writer.csrf, "objective": "  ab  "]) { $1 }), headers: headers)
            #expect(short.status == 422, "the objective's length, as the HTTP intake checks it")
            let nul = await h.send(
                "POST", "/ui/tasks", body: form(fields.merging(["csrf": writer.csrf, "objective": "Write \u{0} the log"]) { $1 }), headers: headers)
            #expect(nul.status == 422 && nul.text.contains("The task was not enqueued: objective holds text with the NUL character (U+0000), which cannot be stored"), "the page, not the storage error's JSON: \(nul.text.prefix(300))")
            #expect(await h.send("POST", "/ui/tasks", body: form(fields), headers: headers).status == 403, "no CSRF token")

            let reader = try await signIn(h, AccessTests.secret(.read))
            #expect(!(await h.get("/ui/tasks", headers: [("cookie", reader.cookie)]).text.contains("New task")))
            let readPost = await h.send(
                "POST", "/ui/tasks", body: form(fields.merging(["csrf": reader.csrf]) { $1 }),
                headers: [("cookie", reader.cookie), ("content-type", "application/x-www-form-urlencoded")])
            #expect(readPost.status == 403 && readPost.text.contains("has no write scope"))
            #expect(try await database.read { try await $0.tasks.list() }.count == 1)
        }
    }

    @Test("a task waiting for its retry shows its attempts, the last failure and when the next attempt may start")
    func retryShown() async throws {
        try await withDatabase(.sqlite) { database, _ in
            // An hour's backoff: the page is read long before the next attempt may start, however
            // slowly a loaded machine runs the test (the default 7.5–12.5 s once ran out).
            var configuration = testConfiguration
            configuration.retry = RetryPolicy(baseDelay: 3600)
            let api = TowerAPI(database: database, configuration: configuration, logger: quietLogger("tower.api"))
            let h = Harness(api: api, database: database, dialect: .sqlite)
            try await withTraceRoot { root in
                let agent = agent(h, configuration, root: root)
                let task = try await agent.claimNew("Ask a busy model")
                let failed = await agent.tools.call(
                    "jct_complete_task", arguments: ["task_id": .string(task), "success": false, "summary": "429 Too Many Requests", "retryable": true],
                    caller: agent.caller)
                #expect(failed["task_status"] == "queued", "\(failed)")
                let page = await h.get("/ui/tasks/\(task)").text
                #expect(page.contains("<dt>Attempt</dt><dd>1 of 3</dd>"))
                #expect(page.contains("The last attempt failed; it will be tried again: 429 Too Many Requests"))
                #expect(page.contains("Next attempt not before "))
                #expect(page.contains("<td>failed</td>"), "the failed attempt's Run is listed")
            }
        }
    }
}
