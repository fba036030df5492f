import CWOM
import Foundation
import LegacyTasks
import Logging
import Storage
import TowerJSON

/// The review console at `/ui`: server-rendered pages over the same repositories as the API,
/// acting only through engine operations. The router lets `/ui` through (`.open`): the console
/// admits browsers itself, by a session cookie opened with a key, and checks a CSRF token on
/// every form. Without any key configured, it is open like the API.
///
/// Pages are in `ConsolePages.swift` (overview, tasks, reviews) and `ConsoleRunPages.swift`
/// (a task, a Run, its trace files and live log); `HTML.swift` escapes and lays them out.
struct ConsoleRoutes: Sendable {
    let database: Database
    let engine: LifecycleEngine
    let access: AccessControl
    let sessions: ConsoleSessions
    let configuration: APIConfiguration
    let logger: Logger

    static let cookie = "tower_session"
    static let loginCookie = "tower_login_csrf"
    /// The task list's filters and page (`tasks(_:_:)`).
    static let taskFilters: [Parameter] = [
        .filter("status", TaskStatus.self, "The task's status"), .filter("operation", TaskOperation.self, "The task's operation"),
        Parameter("repo", "The target repository."), Parameter("q", "Text the objective contains."),
        Parameter("page", schema: ["type": "integer"], "The page, from 1 (50 tasks a page; anything but a number is page 1)."),
    ]
    /// What a page says was just done (a redirect after a form sets it).
    static let done = Parameter("done", "What was just done, shown on the page.")

    /// Who is looking: the session's key, or anyone when no key is configured.
    struct Viewer: Sendable {
        let principal: Principal?
        let csrf: String?
        var name: String { principal?.name ?? "open access" }
        /// Read-only keys see no action buttons.
        func may(_ scope: Scope) -> Bool { principal.map { $0.holds(any: [scope, .admin]) } ?? true }
        /// Who the engine records for this viewer's actions: the key's name.
        var actor: Actor { principal?.actor ?? Actor(kind: .human, id: "console") }
    }

    func register(on router: inout Router) {
        router.add("GET", "/ui/assets/console.js", summary: "Console: its script", tag: "Console", access: .open) { _ in
            APIResponse(
                status: 200,
                headers: [("content-type", "text/javascript; charset=utf-8"), ("cache-control", "max-age=3600"), ("x-content-type-options", "nosniff")],
                body: Array(HTML.script.utf8))
        }
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
        router.add("GET", "/ui/tasks", summary: "Console: tasks, filtered and paged", tag: "Console", access: .open, parameters: Self.taskFilters) {
            request in
            try await page(request) { viewer in try await tasks(viewer, request) }
        }
        // A refused enqueue answers with the list again, as its query had it.
        router.add("POST", "/ui/tasks", summary: "Console: enqueue a task", tag: "Console", access: .open, parameters: Self.taskFilters) {
            request in
            try await enqueue(request)
        }
        router.add(
            "GET", "/ui/tasks/{task_id}", summary: "Console: a task, its context, Runs and timeline", tag: "Console", access: .open,
            parameters: [Self.done]
        ) {
            request in
            try await found(request) { viewer in try await task(viewer, id: request.parameter("task_id"), message: request.queryValue("done")) }
        }
        for action in ["cancel", "retry"] {
            router.add("POST", "/ui/tasks/{task_id}/\(action)", summary: "Console: \(action) a task", tag: "Console", access: .open) { request in
                try await act(action, on: request.parameter("task_id"), request)
            }
        }
        router.add(
            "GET", "/ui/runs/{run_id}", summary: "Console: a Run, its pinned context, evidence, Artifacts and trace", tag: "Console", access: .open,
            blocking: true, parameters: [Self.done]
        ) {
            request in
            try await found(request) { viewer in try await run(viewer, id: request.parameter("run_id"), message: request.queryValue("done")) }
        }
        router.add("GET", "/ui/runs/{run_id}/files/{path...}", summary: "Console: one file of a Run's trace folder", tag: "Console", access: .open, blocking: true) {
            request in
            try await found(request) { viewer in try await traceFile(viewer, runId: request.parameter("run_id"), path: request.parameter("path")) }
        }
        router.add(
            "GET", "/ui/runs/{run_id}/log", summary: "Console: a Run's trace log as it grows (server-sent events)", tag: "Console", access: .open,
            blocking: true,
            parameters: [
                Parameter(
                    "from", schema: ["type": "integer"],
                    "The byte offset to start from (Last-Event-ID wins when sent; anything but a number starts at 0).")
            ]
        ) {
            request in
            guard let viewer = await viewer(request) else { return .detail(401, "Sign in at /ui/login") }
            return try await follow(runId: request.parameter("run_id"), request, viewer: viewer)
        }
        router.add("GET", "/ui/reviews", summary: "Console: runs waiting for a review", tag: "Console", access: .open, parameters: [Self.done]) { request in
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

    /// As `page`, for a page about one object: 404 when it does not exist.
    func found(_ request: APIRequest, _ body: (Viewer) async throws -> String?) async throws -> APIResponse {
        guard let viewer = await viewer(request) else { return Self.redirect("/ui/login") }
        let html: String?
        do {
            html = try await body(viewer)
        } catch let error as StorageError where error.kind == .invalidValue {
            // An id no object can have (U+0000 in it): not found, on a page, not the API's JSON.
            html = nil
        }
        guard let html else {
            return HTML.response(404, HTML.layout(title: "Not found", viewer: viewer, body: "<h1>Not found</h1><p>Nothing has that id.</p>"))
        }
        return HTML.response(200, html)
    }

    func viewer(_ request: APIRequest) async -> Viewer? {
        guard access.isEnabled else { return Viewer(principal: nil, csrf: nil) }
        guard let token = Self.cookie(Self.cookie, in: request),
            let session = await sessions.session(token, stillValid: { access.isCurrent($0) })
        else { return nil }
        return Viewer(principal: session.principal, csrf: session.csrf)
    }

    /// The viewer of a form post: signed in, the form's CSRF token that of the session, and the
    /// key holding `scope`. Otherwise the response that refuses it.
    func poster(_ request: APIRequest, needs scope: Scope?) async -> Result<(Viewer, [String: String]), Refusal> {
        guard let viewer = await viewer(request) else { return .failure(Refusal(response: Self.redirect("/ui/login"))) }
        // Without keys there is no session and so no CSRF token: the browser's word on where the
        // form comes from is then the guard (with keys, the token is, whatever a proxy does to Host).
        guard viewer.csrf != nil || Self.sameOrigin(request) else {
            return .failure(Refusal(response: HTML.refused(viewer, "The form was posted from another site.")))
        }
        let form = Self.form(request)
        guard viewer.csrf == nil || form["csrf"] == viewer.csrf else {
            return .failure(Refusal(response: HTML.refused(viewer, "The form carried no valid CSRF token: reload the page and try again.")))
        }
        if let scope, !viewer.may(scope) {
            return .failure(Refusal(response: HTML.refused(viewer, "Your key \(viewer.name) has no \(scope.rawValue) scope.")))
        }
        return .success((viewer, form))
    }

    struct Refusal: Error {
        let response: APIResponse
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
        let viewer: Viewer
        switch await poster(request, needs: nil) {
        case .failure(let refusal): return refusal.response
        case .success(let (signedIn, _)): viewer = signedIn
        }
        if viewer.csrf == nil { return Self.redirect("/ui") }
        if let token = Self.cookie(Self.cookie, in: request) { await sessions.close(token) }
        var response = Self.redirect("/ui/login")
        response.headers.append(("set-cookie", "\(Self.cookie)=; Path=/ui; Max-Age=0; HttpOnly; SameSite=Strict"))
        return response
    }

    // MARK: - Actions (every one through the engine)

    /// A new task from the tasks page's form: the same checks and policy as `POST /tasks/enqueue`.
    func enqueue(_ request: APIRequest) async throws -> APIResponse {
        let (viewer, form): (Viewer, [String: String])
        switch await poster(request, needs: .write) {
        case .failure(let refusal): return refusal.response
        case .success(let posted): (viewer, form) = posted
        }
        let criteria = (form["criteria"] ?? "").split(whereSeparator: \.isNewline)
            .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        let traceId = TaskRecord.newTraceId()
        let taskRequest: TaskRequest
        do throws(TaskRoutes.Refusal) {
            taskRequest = try TaskRoutes.admit(
                objective: form["objective"] ?? "", operation: form["operation"] ?? "", repo: form["repo"] ?? "",
                ref: form["ref"].flatMap { $0.isEmpty ? nil : $0 } ?? "main", criteria: .array(criteria.map { .string($0) }),
                requestedBy: ["kind": .string(viewer.actor.actorKind.rawValue), "id": .string(viewer.actor.actorId), "label": "console"],
                policy: configuration.policy, logger: logger, traceId: traceId)
        } catch {
            return HTML.response(422, try await tasks(viewer, request, refused: (error.message, form)))
        }
        let outcome = try await engine.enqueue(taskRequest, id: TaskRecord.newId(), traceId: traceId, createCWOM: true, actor: viewer.actor)
        guard case .created(let created) = outcome else {
            return HTML.response(409, try await tasks(viewer, request, refused: ("That task exists already.", form)))
        }
        let task = created.task
        logger.info("task enqueued", metadata: ["task_id": "\(task.id)", "trace_id": "\(traceId)", "by": "\(viewer.name) (console)"])
        return Self.redirect("/ui/tasks/\(HTML.segment(task.id))")
    }

    /// Cancel or retry from the task page, through the engine; the state machine decides.
    func act(_ action: String, on taskId: String, _ request: APIRequest) async throws -> APIResponse {
        let viewer: Viewer
        switch await poster(request, needs: .write) {
        case .failure(let refusal): return refusal.response
        case .success(let (signedIn, _)): viewer = signedIn
        }
        let outcome: String
        do {
            if action == "cancel" {
                switch try await engine.cancel(taskId, by: viewer.actor) {
                case .cancelled: outcome = "Cancelled."
                case .requested: outcome = "Cancel requested: the worker stops it within a heartbeat."
                }
            } else {
                _ = try await engine.retry(taskId, by: viewer.actor)
                outcome = "Queued again: the next attempt gets a new Run."
            }
        } catch let error as LifecycleError {
            outcome = error.description
        }
        return Self.redirect("/ui/tasks/\(HTML.segment(taskId))?done=\(Self.queryEncoded(outcome))")
    }

    /// A decision from the reviews page or a Run's page: the session's key needs `review`, the
    /// form its CSRF token; the engine's review operation records it (and moves the Issue and Run).
    func decide(_ request: APIRequest) async throws -> APIResponse {
        let (viewer, form): (Viewer, [String: String])
        switch await poster(request, needs: .review) {
        case .failure(let refusal): return refusal.response
        case .success(let posted): (viewer, form) = posted
        }
        // Back to the Run's page when the decision was taken there.
        let runPage = form["run_id"].map { "/ui/runs/\(HTML.segment($0))" }
        func again(_ status: Int, _ message: String) async throws -> APIResponse {
            if let runId = form["run_id"], let html = try await run(viewer, id: runId, message: message) { return HTML.response(status, html) }
            return HTML.response(status, try await reviews(viewer, message: message))
        }
        guard let packId = form["evidence_pack_id"], let decision = form["decision"].flatMap(ReviewDecisionStatus.init(rawValue:)),
            let reason = form["reason"]?.trimmingCharacters(in: .whitespacesAndNewlines), !reason.isEmpty
        else {
            return try await again(422, "Choose a decision and give a reason.")
        }
        guard let pack = try await database.read({ try await $0.evidencePacks.get(packId) }) else {
            return try await again(404, "That evidence pack does not exist.")
        }
        do {
            try await engine.review(
                ReviewDecision(
                    forEvidencePack: pack.ref, forRun: pack.forRun, forIssue: pack.forIssue, reviewer: viewer.actor, decision: decision,
                    decisionReason: reason, tags: ["console"]))
        } catch let error as LifecycleError {
            return try await again(409, error.description)
        }
        return Self.redirect("\(runPage ?? "/ui/reviews")?done=\(decision.rawValue)")
    }

    // MARK: - HTTP helpers

    static func redirect(_ location: String) -> APIResponse {
        APIResponse(status: 303, headers: [("location", location), ("cache-control", "no-store")])
    }

    /// False when a browser says the request comes from another site (`Sec-Fetch-Site`, or an
    /// `Origin` that is neither this host nor the host a proxy says it forwarded for).
    static func sameOrigin(_ request: APIRequest) -> Bool {
        if let site = request.header("sec-fetch-site")?.lowercased(), site == "cross-site" || site == "same-site" { return false }
        guard let origin = request.header("origin")?.lowercased() else { return true }
        let hosts = [request.header("host"), request.header("x-forwarded-host")].compactMap { $0?.lowercased() }
        return hosts.contains { origin == "http://\($0)" || origin == "https://\($0)" }
    }

    static func queryEncoded(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? ""
    }

    /// `; Secure` when the browser reached us over TLS (directly or through a proxy that says so).
    static func secure(_ request: APIRequest) -> String {
        request.header("x-forwarded-proto")?.lowercased() == "https" ? "; Secure" : ""
    }

    static func cookie(_ name: String, in request: APIRequest) -> String? {
        for header in request.headers where FieldName.equal(header.name, "cookie") {
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
