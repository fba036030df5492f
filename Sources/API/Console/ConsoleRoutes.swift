import CWOM
import Foundation
import LegacyTasks
import Storage
import TowerJSON

/// The review console at `/ui`: server-rendered pages over the same repositories as the API,
/// acting only through engine operations. The router lets `/ui` through (`.open`): the console
/// admits browsers itself, by a session cookie opened with a key, and checks a CSRF token on
/// every form. Without any key configured, it is open like the API.
struct ConsoleRoutes: Sendable {
    let database: Database
    let engine: LifecycleEngine
    let access: AccessControl
    let sessions: ConsoleSessions

    static let cookie = "tower_session"
    static let loginCookie = "tower_login_csrf"

    /// Who is looking: the session's key, or anyone when no key is configured.
    struct Viewer: Sendable {
        let principal: Principal?
        let csrf: String?
        var name: String { principal?.name ?? "open access" }
        /// Read-only keys see no action buttons.
        func may(_ scope: Scope) -> Bool { principal.map { $0.holds(any: [scope, .admin]) } ?? true }
    }

    func register(on router: inout Router) {
        router.add("GET", "/ui/login", summary: "Console: sign in with a key", tag: "Console", access: .open) { request in
            loginPage(message: nil)
        }
        router.add("POST", "/ui/login", summary: "Console: open a session with a key", tag: "Console", access: .open) { request in
            try await login(request)
        }
        router.add("POST", "/ui/logout", summary: "Console: end the session", tag: "Console", access: .open) { request in
            try await logout(request)
        }
        router.add("GET", "/ui", summary: "Console: overview", tag: "Console", access: .open) { request in
            try await page(request) { viewer in try await overview(viewer) }
        }
        router.add("GET", "/ui/tasks", summary: "Console: tasks, filtered and paged", tag: "Console", access: .open) { request in
            try await page(request) { viewer in try await tasks(viewer, request) }
        }
        router.add("GET", "/ui/tasks/{task_id}", summary: "Console: a task, its context, Runs, Artifacts and timeline", tag: "Console", access: .open) {
            request in
            let id = request.parameter("task_id")
            guard let viewer = await viewer(request) else { return Self.redirect("/ui/login") }
            guard let html = try await task(viewer, id: id, message: request.queryValue("done")) else {
                return HTML.response(404, HTML.layout(title: "Not found", viewer: viewer, body: "<h1>Task not found</h1>"))
            }
            return HTML.response(200, html)
        }
        for action in ["cancel", "retry"] {
            router.add("POST", "/ui/tasks/{task_id}/\(action)", summary: "Console: \(action) a task", tag: "Console", access: .open) { request in
                try await act(action, on: request.parameter("task_id"), request)
            }
        }
        router.add("GET", "/ui/reviews", summary: "Console: runs waiting for a review", tag: "Console", access: .open) { request in
            try await page(request) { viewer in try await reviews(viewer, message: request.queryValue("done").map { "Decision recorded: \($0)." }) }
        }
        router.add("POST", "/ui/reviews", summary: "Console: decide on an evidence pack", tag: "Console", access: .open) { request in
            try await decide(request)
        }
    }

    // MARK: - Sessions

    /// Renders a page for a signed-in viewer, or sends the browser to sign in.
    func page(_ request: APIRequest, _ body: (Viewer) async throws -> String) async throws -> APIResponse {
        guard let viewer = await viewer(request) else { return Self.redirect("/ui/login") }
        return HTML.response(200, try await body(viewer))
    }

    func viewer(_ request: APIRequest) async -> Viewer? {
        guard access.isEnabled else { return Viewer(principal: nil, csrf: nil) }
        guard let token = Self.cookie(Self.cookie, in: request),
            let session = await sessions.session(token, stillValid: { access.isCurrent($0) })
        else { return nil }
        return Viewer(principal: session.principal, csrf: session.csrf)
    }

    func loginPage(message: String?, status: Int = 200) -> APIResponse {
        let csrf = ConsoleSessions.randomToken()
        var body = "<h1>Sign in</h1>"
        if let message { body += #"<p class="error" role="alert">\#(HTML.escape(message))</p>"# }
        body += """
            <form method="post" action="/ui/login">
            <input type="hidden" name="csrf" value="\(csrf)">
            <label for="key">API key</label>
            <input id="key" name="key" type="password" autocomplete="current-password" required autofocus>
            <button type="submit">Sign in</button>
            </form>
            <p>Any key of <code>TOWER_API_KEYS_FILE</code> (or <code>JCT_API_KEY</code>) signs in; its scopes decide what you may do.</p>
            """
        var response = HTML.response(status, HTML.layout(title: "Sign in", viewer: nil, body: body))
        response.headers.append(("set-cookie", "\(Self.loginCookie)=\(csrf); Path=/ui; HttpOnly; SameSite=Strict"))
        return response
    }

    func login(_ request: APIRequest) async throws -> APIResponse {
        let form = Self.form(request)
        // Double-submit: the form's token must match the cookie set with the form.
        guard let sent = form["csrf"], let expected = Self.cookie(Self.loginCookie, in: request), sent == expected else {
            return loginPage(message: "The form expired: sign in again.", status: 403)
        }
        guard let key = form["key"], !key.isEmpty, let principal = access.principal(forKey: key) else {
            return loginPage(message: "That key is not valid.", status: 401)
        }
        let (token, _) = await sessions.open(principal)
        var response = Self.redirect("/ui")
        response.headers.append(("set-cookie", "\(Self.cookie)=\(token); Path=/ui; HttpOnly; SameSite=Strict\(Self.secure(request))"))
        response.headers.append(("set-cookie", "\(Self.loginCookie)=; Path=/ui; Max-Age=0"))
        return response
    }

    func logout(_ request: APIRequest) async throws -> APIResponse {
        guard let viewer = await viewer(request) else { return Self.redirect("/ui/login") }
        guard Self.form(request)["csrf"] == viewer.csrf else {
            return HTML.response(403, HTML.layout(title: "Refused", viewer: viewer, body: "<h1>Refused</h1><p>The form carried no valid CSRF token.</p>"))
        }
        if let token = Self.cookie(Self.cookie, in: request) { await sessions.close(token) }
        var response = Self.redirect("/ui/login")
        response.headers.append(("set-cookie", "\(Self.cookie)=; Path=/ui; Max-Age=0; HttpOnly; SameSite=Strict"))
        return response
    }

    // MARK: - Pages

    /// Tasks by status, the last hour's completions and failures, the queue's depth and the age of
    /// its oldest task, and the workers seen in the last ten minutes with their heartbeats.
    func overview(_ viewer: Viewer) async throws -> String {
        let now = Timestamp.now()
        let (counts, lastHour, oldest, workers) = try await database.read { store in
            (
                try await store.tasks.countByStatus(), try await store.queue.finished(since: now.adding(seconds: -3600)),
                try await store.queue.oldestQueued(), try await store.queue.workers(since: now.adding(seconds: -600))
            )
        }
        var rows = ""
        for status in TaskStatus.allCases {
            rows += "<tr><th scope=\"row\">\(HTML.escape(status.rawValue))</th><td>\(counts[status.rawValue] ?? 0)</td></tr>"
        }
        let age = oldest.map { Self.duration(now.seconds(since: $0)) } ?? "none waiting"
        var workerRows = ""
        for worker in workers {
            let state = worker.stoppedAt == nil ? "beat \(Self.duration(now.seconds(since: worker.heartbeatAt))) ago" : "stopped"
            workerRows += """
                <tr><td>\(HTML.escape(worker.id))</td><td>\(HTML.escape(worker.host)) (pid \(worker.pid))</td>\
                <td>\(worker.concurrency)</td><td>\(state)</td></tr>
                """
        }
        if workerRows.isEmpty { workerRows = #"<tr><td colspan="4">No worker seen in the last ten minutes.</td></tr>"# }
        let body = """
            <h1>Overview</h1>
            <dl class="figures">
            <div><dt>Queued</dt><dd>\(counts["queued"] ?? 0)</dd></div>
            <div><dt>Oldest queued task waits</dt><dd>\(age)</dd></div>
            <div><dt>Completed in the last hour</dt><dd>\(lastHour["completed"] ?? 0)</dd></div>
            <div><dt>Failed in the last hour</dt><dd>\(lastHour["failed"] ?? 0)</dd></div>
            </dl>
            <h2>Tasks by status</h2>
            <table aria-label="Tasks by status"><thead><tr><th scope="col">Status</th><th scope="col">Tasks</th></tr></thead>
            <tbody>\(rows)</tbody></table>
            <h2>Workers</h2>
            <table aria-label="Workers"><thead><tr><th scope="col">Worker</th><th scope="col">Process</th>\
            <th scope="col">Slots</th><th scope="col">Heartbeat</th></tr></thead><tbody>\(workerRows)</tbody></table>
            """
        return HTML.layout(title: "Overview", viewer: viewer, body: body)
    }

    /// `42 s`, `3 min`, `2 h 5 min`.
    static func duration(_ seconds: Double) -> String {
        let whole = max(0, Int(seconds.rounded()))
        if whole < 60 { return "\(whole) s" }
        if whole < 3600 { return "\(whole / 60) min" }
        return "\(whole / 3600) h \(whole % 3600 / 60) min"
    }

    /// One task: its fields, the context it ran under, every attempt's Run with its Artifacts,
    /// the audit timeline of the task and its Issue, and cancel/retry where the state machine
    /// allows them and the key may write.
    func task(_ viewer: Viewer, id: String, message: String?) async throws -> String? {
        let loaded = try await database.read { store -> (TaskRecord, Issue?, ContextPacket?, ConstraintSnapshot?, [Run], [Artifact], [AuditEntry])? in
            guard let task = try await store.tasks.get(id) else { return nil }
            var issue: Issue?
            var packet: ContextPacket?
            var snapshot: ConstraintSnapshot?
            var runs: [Run] = []
            var artifacts: [Artifact] = []
            var audit = try await store.audit.list(AuditLog.Filter(entityId: task.id), page: Page(limit: 200))
            if let issueId = task.cwomIssueId {
                issue = try await store.issues.get(issueId)
                packet = try await store.contextPackets.latest(forIssue: issueId)
                if let ref = packet?.constraintSnapshot { snapshot = try await store.constraintSnapshots.get(ref.id) }
                runs = try await store.runs.list(RunRepository.Filter(issueId: issueId), page: Page(limit: 100))
                artifacts = try await store.artifacts.list(forRuns: runs.map(\.id))
                audit += try await store.audit.list(AuditLog.Filter(entityId: issueId), page: Page(limit: 200))
            }
            return (task, issue, packet, snapshot, runs, artifacts, audit)
        }
        guard let (task, issue, packet, snapshot, runs, artifacts, audit) = loaded else { return nil }
        func field(_ name: String, _ value: String?) -> String {
            "<div><dt>\(HTML.escape(name))</dt><dd>\(HTML.escape(value ?? "—"))</dd></div>"
        }
        var body = "<h1>\(HTML.escape(task.objective))</h1>"
        if let message { body += #"<p role="status">\#(HTML.escape(message))</p>"# }
        body += "<dl class=\"figures\">"
            + field("Status", task.status.rawValue) + field("Operation", task.operation.rawValue)
            + field("Repository", "\(task.target.repo)@\(task.target.ref)") + field("Attempt", String(task.attempt))
            + field("Created", task.createdAt?.iso8601) + field("Started", task.startedAt?.iso8601)
            + field("Completed", task.completedAt?.iso8601) + field("Worker", task.assignedTo) + field("Issue", issue.map { "\($0.title) (\($0.status.rawValue))" })
            + "</dl>"
        if let error = task.error { body += #"<p class="error">\#(HTML.escape(error))</p>"# }
        if viewer.may(.write) {
            let csrf = viewer.csrf ?? ""
            let escapedId = HTML.escape(task.id)
            if task.status == .queued || task.status == .running {
                body += #"<form method="post" action="/ui/tasks/\#(escapedId)/cancel"><input type="hidden" name="csrf" value="\#(csrf)"><button type="submit">Cancel task</button></form>"#
            }
            if LifecycleEngine.allowsRetry(task.status, issueStatus: issue?.status) {
                body += #"<form method="post" action="/ui/tasks/\#(escapedId)/retry"><input type="hidden" name="csrf" value="\#(csrf)"><button type="submit">Retry task</button></form>"#
            }
        }
        body += "<h2>Runs</h2>"
        if runs.isEmpty { body += "<p>No run yet.</p>" }
        for run in runs {
            body += "<section aria-label=\"Run \(HTML.escape(run.id))\"><h3>Run \(HTML.escape(run.id)): \(HTML.escape(run.status.rawValue))</h3>"
            body += "<p>Mode \(HTML.escape(run.mode.rawValue)), executor \(HTML.escape(run.executor.actor.actorId)), started \(HTML.escape(run.telemetry.startedAt?.iso8601 ?? "—"))</p>"
            let own = artifacts.filter { $0.producedBy.id == run.id }
            if !own.isEmpty {
                body += #"<table aria-label="Artifacts"><thead><tr><th scope="col">Artifact</th><th scope="col">Type</th><th scope="col">Size</th><th scope="col">Digest</th></tr></thead><tbody>"#
                for artifact in own {
                    body += "<tr><td>\(HTML.escape(artifact.title))</td><td>\(HTML.escape(artifact.type.rawValue))</td>"
                        + "<td>\(artifact.sizeBytes.map(String.init) ?? "—")</td><td><code>\(HTML.escape(artifact.digest ?? "—"))</code></td></tr>"
                }
                body += "</tbody></table>"
            }
            body += "</section>"
        }
        body += "<h2>Context</h2>"
        if let packet {
            body += "<h3>ContextPacket \(HTML.escape(packet.id)) (version \(packet.version))</h3><pre>\(HTML.escape(packet.json.serialized(.init(pretty: true))))</pre>"
        }
        if let snapshot {
            body += "<h3>ConstraintSnapshot \(HTML.escape(snapshot.id))</h3><pre>\(HTML.escape(snapshot.json.serialized(.init(pretty: true))))</pre>"
        }
        body += #"<h2>Timeline</h2><ol class="timeline">"#
        for entry in audit.sorted(by: { $0.id < $1.id }) {
            body += "<li><time>\(HTML.escape(entry.ts.iso8601))</time> \(HTML.escape(entry.entityKind)) \(HTML.escape(entry.action.rawValue))"
                + " by \(HTML.escape(entry.actor.actorId))\(entry.note.map { ": " + HTML.escape($0) } ?? "")</li>"
        }
        body += "</ol>"
        return HTML.layout(title: task.objective, viewer: viewer, body: body)
    }

    /// Cancel or retry from the task page, through the engine; the state machine decides.
    func act(_ action: String, on taskId: String, _ request: APIRequest) async throws -> APIResponse {
        guard let viewer = await viewer(request) else { return Self.redirect("/ui/login") }
        guard viewer.csrf == nil || Self.form(request)["csrf"] == viewer.csrf else {
            return HTML.response(403, HTML.layout(title: "Refused", viewer: viewer, body: "<h1>Refused</h1><p>The form carried no valid CSRF token.</p>"))
        }
        guard viewer.may(.write) else {
            return HTML.response(403, HTML.layout(title: "Refused", viewer: viewer, body: "<h1>Refused</h1><p>Your key has no write scope.</p>"))
        }
        let actor = viewer.principal?.actor ?? Actor(kind: .human, id: "console")
        let outcome: String
        do {
            if action == "cancel" {
                switch try await engine.cancel(taskId, by: actor) {
                case .cancelled: outcome = "Cancelled."
                case .requested: outcome = "Cancel requested: the worker stops it within a heartbeat."
                }
            } else {
                _ = try await engine.retry(taskId, by: actor)
                outcome = "Queued again: the next attempt gets a new Run."
            }
        } catch let error as LifecycleError {
            outcome = error.description
        }
        let encoded = outcome.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? ""
        return Self.redirect("/ui/tasks/\(taskId.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(["-"])) ?? "")?done=\(encoded)")
    }

    /// Issues under review with their newest evidence pack, and a decision form for `review` keys.
    func reviews(_ viewer: Viewer, message: String? = nil) async throws -> String {
        let pending = try await database.read { store -> [(Issue, EvidencePack?)] in
            var pending: [(Issue, EvidencePack?)] = []
            for issue in try await store.issues.list(IssueRepository.Filter(status: "under_review"), page: Page(limit: 100)) {
                pending.append((issue, try await store.evidencePacks.list(issueId: issue.id, page: Page(limit: 1)).first))
            }
            return pending
        }
        var body = "<h1>Reviews</h1>"
        if let message { body += #"<p role="status">\#(HTML.escape(message))</p>"# }
        if pending.isEmpty { body += "<p>Nothing waits for a review.</p>" }
        for (issue, pack) in pending {
            body += "<section aria-label=\"\(HTML.escape(issue.title))\"><h2>\(HTML.escape(issue.title))</h2>"
            guard let pack else {
                body += "<p>No evidence pack yet.</p></section>"
                continue
            }
            body += "<p>Verdict <strong>\(HTML.escape(pack.verdict.rawValue))</strong>: \(HTML.escape(pack.verdictReason))</p><ul>"
            for criterion in pack.criteriaResults {
                body += "<li>\(HTML.escape(criterion.criterion)): \(HTML.escape(criterion.status.rawValue))</li>"
            }
            body += "</ul>"
            if viewer.may(.review) {
                let field = "reason-\(HTML.escape(pack.id))"
                body += """
                    <form method="post" action="/ui/reviews">
                    <input type="hidden" name="csrf" value="\(viewer.csrf ?? "")">
                    <input type="hidden" name="evidence_pack_id" value="\(HTML.escape(pack.id))">
                    <label for="\(field)">Reason</label><textarea id="\(field)" name="reason" required rows="2"></textarea>
                    <button type="submit" name="decision" value="approved">Approve</button>
                    <button type="submit" name="decision" value="needs_changes">Request changes</button>
                    <button type="submit" name="decision" value="rejected">Reject</button>
                    </form>
                    """
            }
            body += "</section>"
        }
        return HTML.layout(title: "Reviews", viewer: viewer, body: body)
    }

    /// A decision from the reviews page: the session's key needs `review`, the form its CSRF
    /// token; the engine's review operation records it (and moves the Issue and Run).
    func decide(_ request: APIRequest) async throws -> APIResponse {
        guard let viewer = await viewer(request) else { return Self.redirect("/ui/login") }
        let form = Self.form(request)
        guard viewer.csrf == nil || form["csrf"] == viewer.csrf else {
            return HTML.response(403, HTML.layout(title: "Refused", viewer: viewer, body: "<h1>Refused</h1><p>The form carried no valid CSRF token.</p>"))
        }
        guard viewer.may(.review) else {
            return HTML.response(403, HTML.layout(title: "Refused", viewer: viewer, body: "<h1>Refused</h1><p>Your key has no review scope.</p>"))
        }
        guard let packId = form["evidence_pack_id"], let decision = form["decision"].flatMap(ReviewDecisionStatus.init(rawValue:)),
            let reason = form["reason"]?.trimmingCharacters(in: .whitespacesAndNewlines), !reason.isEmpty
        else {
            return HTML.response(422, try await reviews(viewer, message: "Choose a decision and give a reason."))
        }
        guard let pack = try await database.read({ try await $0.evidencePacks.get(packId) }) else {
            return HTML.response(404, try await reviews(viewer, message: "That evidence pack does not exist."))
        }
        let reviewer = viewer.principal?.actor ?? Actor(kind: .human, id: "console")
        do {
            try await engine.review(
                ReviewDecision(
                    forEvidencePack: pack.ref, forRun: pack.forRun, forIssue: pack.forIssue, reviewer: reviewer, decision: decision,
                    decisionReason: reason, tags: ["console"]))
        } catch let error as LifecycleError {
            return HTML.response(409, try await reviews(viewer, message: error.description))
        }
        return Self.redirect("/ui/reviews?done=\(decision.rawValue)")
    }

    static let pageSize = 50

    /// Tasks newest first, filtered by status, operation, repository and text, 50 a page.
    func tasks(_ viewer: Viewer, _ request: APIRequest) async throws -> String {
        func value(_ name: String) -> String? {
            guard let text = request.queryValue(name)?.trimmingCharacters(in: .whitespaces), !text.isEmpty else { return nil }
            return text
        }
        let page = max(1, Int(request.queryValue("page") ?? "") ?? 1)
        let filter = TaskRepository.Filter(status: value("status"), operation: value("operation"), targetRepo: value("repo"), text: value("q"))
        // One more than a page tells whether there is a next one.
        let found = try await database.read {
            try await $0.tasks.list(filter, page: Page(limit: Self.pageSize + 1, offset: (page - 1) * Self.pageSize))
        }
        func options(_ name: String, _ values: [String]) -> String {
            (["" ] + values).map { option in
                let selected = option == (value(name) ?? "") ? " selected" : ""
                return #"<option value="\#(HTML.escape(option))"\#(selected)>\#(option.isEmpty ? "any" : HTML.escape(option))</option>"#
            }.joined()
        }
        var rows = ""
        for task in found.prefix(Self.pageSize) {
            rows += """
                <tr><td>\(HTML.escape(task.createdAt?.iso8601 ?? ""))</td><td>\(HTML.escape(task.status.rawValue))</td>                <td>\(HTML.escape(task.operation.rawValue))</td><td>\(HTML.escape(task.target.repo))</td>                <td><a href="/ui/tasks/\(HTML.escape(task.id))">\(HTML.escape(task.objective))</a></td></tr>
                """
        }
        if rows.isEmpty { rows = #"<tr><td colspan="5">No task matches.</td></tr>"# }
        var query: [(String, String)] = []
        for name in ["status", "operation", "repo", "q"] { if let text = value(name) { query.append((name, text)) } }
        func link(_ target: Int) -> String {
            let parts = (query + [("page", String(target))]).map { "\($0.0)=\($0.1.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")" }
            return "/ui/tasks?" + parts.joined(separator: "&")
        }
        var paging = ""
        if page > 1 { paging += #"<a href="\#(HTML.escape(link(page - 1)))" rel="prev">Newer</a> "# }
        if found.count > Self.pageSize { paging += #"<a href="\#(HTML.escape(link(page + 1)))" rel="next">Older</a>"# }
        let body = """
            <h1>Tasks</h1>
            <form method="get" action="/ui/tasks" class="filters" role="search">
            <label for="q">Text</label><input id="q" name="q" type="search" value="\(HTML.escape(value("q") ?? ""))">
            <label for="status">Status</label><select id="status" name="status">\(options("status", TaskStatus.allCases.map(\.rawValue)))</select>
            <label for="operation">Operation</label><select id="operation" name="operation">\(options("operation", TaskOperation.allCases.map(\.rawValue)))</select>
            <label for="repo">Repository</label><input id="repo" name="repo" value="\(HTML.escape(value("repo") ?? ""))">
            <button type="submit">Filter</button>
            </form>
            <table aria-label="Tasks, newest first"><thead><tr><th scope="col">Created</th><th scope="col">Status</th>            <th scope="col">Operation</th><th scope="col">Repository</th><th scope="col">Objective</th></tr></thead>
            <tbody>\(rows)</tbody></table>
            <nav aria-label="Pages" class="paging">Page \(page) \(paging)</nav>
            """
        return HTML.layout(title: "Tasks", viewer: viewer, body: body)
    }

    // MARK: - HTTP helpers

    static func redirect(_ location: String) -> APIResponse {
        APIResponse(status: 303, headers: [("location", location), ("cache-control", "no-store")])
    }

    /// `; Secure` when the browser reached us over TLS (directly or through a proxy that says so).
    static func secure(_ request: APIRequest) -> String {
        request.header("x-forwarded-proto")?.lowercased() == "https" ? "; Secure" : ""
    }

    static func cookie(_ name: String, in request: APIRequest) -> String? {
        for header in request.headers where header.name.caseInsensitiveCompare("cookie") == .orderedSame {
            for pair in header.value.split(separator: ";") {
                let parts = pair.trimmingCharacters(in: .whitespaces).split(separator: "=", maxSplits: 1)
                if parts.count == 2, parts[0] == name { return String(parts[1]) }
            }
        }
        return nil
    }

    /// An `application/x-www-form-urlencoded` body, the last value of each name.
    static func form(_ request: APIRequest) -> [String: String] {
        var fields: [String: String] = [:]
        for (name, value) in APIRequest.parseQuery(String(decoding: request.body, as: UTF8.self)) { fields[name] = value }
        return fields
    }
}

/// Escaping and the page layout of the console.
enum HTML {
    static func escape(_ text: String) -> String {
        var escaped = ""
        escaped.reserveCapacity(text.count)
        for character in text {
            switch character {
            case "&": escaped += "&amp;"
            case "<": escaped += "&lt;"
            case ">": escaped += "&gt;"
            case "\"": escaped += "&quot;"
            case "'": escaped += "&#39;"
            default: escaped.append(character)
            }
        }
        return escaped
    }

    static func response(_ status: Int, _ html: String) -> APIResponse {
        APIResponse(
            status: status,
            headers: [
                ("content-type", "text/html; charset=utf-8"), ("cache-control", "no-store"), ("x-frame-options", "DENY"),
                ("content-security-policy", "default-src 'self'; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'"),
                ("referrer-policy", "same-origin"),
            ],
            body: Array(html.utf8))
    }

    static func layout(title: String, viewer: ConsoleRoutes.Viewer?, body: String) -> String {
        var navigation = ""
        if let viewer {
            navigation = #"<nav aria-label="Console"><a href="/ui">Overview</a><a href="/ui/tasks">Tasks</a><a href="/ui/reviews">Reviews</a>"#
            if let csrf = viewer.csrf {
                navigation += """
                    <span class="who">Signed in as \(escape(viewer.name))</span>\
                    <form method="post" action="/ui/logout" class="inline"><input type="hidden" name="csrf" value="\(csrf)">\
                    <button type="submit">Sign out</button></form>
                    """
            }
            navigation += "</nav>"
        }
        return """
            <!doctype html>
            <html lang="en"><head><meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <title>\(escape(title)) · Control Tower</title>
            <style>\(style)</style></head>
            <body><header><strong>Control Tower</strong>\(navigation)</header>
            <main>\(body)</main></body></html>
            """
    }

    static let style = """
        body{font-family:system-ui,sans-serif;margin:0;color:#1b1f24;background:#fff}
        header{display:flex;flex-wrap:wrap;gap:1rem;align-items:center;padding:.75rem 1rem;background:#0b3d5c;color:#fff}
        header a,header button{color:#fff}nav{display:flex;gap:1rem;align-items:center;flex-wrap:wrap}
        main{max-width:1200px;margin:0 auto;padding:1rem}table{border-collapse:collapse;width:100%}
        th,td{text-align:left;padding:.4rem .6rem;border-bottom:1px solid #d0d7de}
        label{display:block;margin:.5rem 0 .25rem}input,button,select{font:inherit;padding:.4rem .6rem}
        .error{color:#a40e26}.inline{display:inline}
        .figures{display:flex;flex-wrap:wrap;gap:1.5rem}.figures dd{font-size:1.6rem;margin:0}
        a:focus,button:focus,input:focus{outline:3px solid #f0b400;outline-offset:2px}
        """
}
