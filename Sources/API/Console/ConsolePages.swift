import CWOM
import Foundation
import LegacyTasks
import Storage
import TowerJSON

/// The console's list pages: the overview, the tasks (with the form that enqueues one) and the
/// reviews waiting for a decision.
extension ConsoleRoutes {

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

    /// Issues under review with their newest evidence pack, and a decision form for `review` keys.
    func reviews(_ viewer: Viewer, message: String? = nil) async throws -> String {
        let pending = try await database.read { store -> [(Issue, EvidencePack?, TaskRecord?)] in
            var pending: [(Issue, EvidencePack?, TaskRecord?)] = []
            for issue in try await store.issues.list(IssueRepository.Filter(status: "under_review"), page: Page(limit: 100)) {
                pending.append(
                    (
                        issue, try await store.evidencePacks.list(issueId: issue.id, page: Page(limit: 1)).first,
                        try await store.tasks.list(TaskRepository.Filter(issueId: issue.id), page: Page(limit: 1)).first
                    ))
            }
            return pending
        }
        var body = "<h1>Reviews</h1>"
        if let message { body += #"<p role="status">\#(HTML.escape(message))</p>"# }
        if pending.isEmpty { body += "<p>Nothing waits for a review.</p>" }
        for (issue, pack, task) in pending {
            body += "<section aria-label=\"\(HTML.escape(issue.title))\"><h2>\(HTML.escape(issue.title))</h2>"
            if let task { body += "<p>Task <a href=\"/ui/tasks/\(HTML.segment(task.id))\">\(HTML.escape(task.objective))</a></p>" }
            guard let pack else {
                body += "<p>No evidence pack yet.</p></section>"
                continue
            }
            body += #"<p><a href="/ui/runs/\#(HTML.segment(pack.forRun.id))">Open Run \#(HTML.escape(pack.forRun.id))</a> to see its changes and trace.</p>"#
            body += evidence(pack) + reviewForm(pack, viewer)
            body += "</section>"
        }
        return HTML.layout(title: "Reviews", viewer: viewer, body: body)
    }

    /// An evidence pack: the verdict, each criterion with its status, the evidence found and
    /// missing, and the checks' counts.
    func evidence(_ pack: EvidencePack) -> String {
        let verdictClass = pack.verdict == .pass ? "verdict-pass" : pack.verdict == .fail ? "verdict-fail" : ""
        var html = "<p>Verdict <strong class=\"\(verdictClass)\">\(HTML.escape(pack.verdict.rawValue))</strong>: \(HTML.escape(pack.verdictReason))</p>"
        html += "<p>Checks: \(pack.checksPassed) passed, \(pack.checksFailed) failed, \(pack.checksSkipped) skipped.</p>"
        if !pack.criteriaResults.isEmpty {
            html += #"<h4>Criteria</h4><ul aria-label="Criteria">"#
            for criterion in pack.criteriaResults {
                html += "<li>\(HTML.escape(criterion.criterion)): <strong>\(HTML.escape(criterion.status.rawValue))</strong>"
                    + "\(criterion.reason.map { " (" + HTML.escape($0) + ")" } ?? "")</li>"
            }
            html += "</ul>"
        }
        if !pack.evidenceCollected.isEmpty || !pack.evidenceMissing.isEmpty {
            html += #"<h4>Evidence</h4><ul aria-label="Evidence">"#
            for item in pack.evidenceCollected {
                html += "<li>\(HTML.escape(item.requirement)): \(item.found ? "found" : "not found")"
                    + "\(item.artifactType.map { " (" + HTML.escape($0) + ")" } ?? "")\(item.notes.map { ": " + HTML.escape($0) } ?? "")</li>"
            }
            for missing in pack.evidenceMissing { html += "<li>\(HTML.escape(missing)): missing</li>" }
            html += "</ul>"
        }
        return html
    }

    /// Approve, request changes or reject, with a reason: for keys with the `review` scope. From
    /// a Run's page (`runId`) the decision returns there.
    func reviewForm(_ pack: EvidencePack, _ viewer: Viewer, runId: String? = nil) -> String {
        guard viewer.may(.review) else { return "" }
        let field = "reason-\(HTML.escape(pack.id))"
        let back = runId.map { #"<input type="hidden" name="run_id" value="\#(HTML.escape($0))">"# } ?? ""
        return """
            <form method="post" action="/ui/reviews" aria-label="Decide on this evidence">
            \(HTML.csrfField(viewer))\(back)
            <input type="hidden" name="evidence_pack_id" value="\(HTML.escape(pack.id))">
            <label for="\(field)">Reason</label><textarea id="\(field)" name="reason" required rows="2"></textarea>
            <div class="actions">
            <button type="submit" name="decision" value="approved">Approve</button>
            <button type="submit" name="decision" value="needs_changes">Request changes</button>
            <button type="submit" name="decision" value="rejected">Reject</button>
            </div>
            </form>
            """
    }

    static let pageSize = 50

    /// Tasks newest first, filtered by status, operation, repository and text, 50 a page; for
    /// write keys, the form that enqueues a task (open again with the refusal and what was typed
    /// when the intake refused it).
    func tasks(_ viewer: Viewer, _ request: APIRequest, refused: (message: String, form: [String: String])? = nil) async throws -> String {
        func value(_ name: String) -> String? {
            guard let text = request.queryValue(name)?.trimmingCharacters(in: .whitespaces), !text.isEmpty else { return nil }
            return text
        }
        // Bounded so that its offset, (page - 1) × 50, is an Int: `?page=999999999999999999`
        // overflowed that product and the trap took the whole process down.
        let page = min(max(1, Int(request.queryValue("page") ?? "") ?? 1), Int.max / Self.pageSize)
        let filter = TaskRepository.Filter(status: value("status"), operation: value("operation"), targetRepo: value("repo"), text: value("q"))
        // One more than a page tells whether there is a next one.
        let found = try await database.read {
            try await $0.tasks.list(filter, page: Page(limit: Self.pageSize + 1, offset: (page - 1) * Self.pageSize))
        }
        func options(_ values: [String], selected chosen: String?, any: Bool = true) -> String {
            ((any ? [""] : []) + values).map { option in
                let selected = option == (chosen ?? "") ? " selected" : ""
                return #"<option value="\#(HTML.escape(option))"\#(selected)>\#(option.isEmpty ? "any" : HTML.escape(option))</option>"#
            }.joined()
        }
        var rows = ""
        for task in found.prefix(Self.pageSize) {
            rows += """
                <tr><td>\(HTML.escape(task.createdAt?.iso8601 ?? ""))</td><td>\(HTML.escape(task.status.rawValue))</td>                <td>\(HTML.escape(task.operation.rawValue))</td><td>\(HTML.escape(task.target.repo))</td>                <td><a href="/ui/tasks/\(HTML.segment(task.id))">\(HTML.escape(task.objective))</a></td></tr>
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
        var body = "<h1>Tasks</h1>"
        if viewer.may(.write) {
            let typed = refused?.form ?? [:]
            if let refused { body += #"<p class="error" role="alert">The task was not enqueued: \#(HTML.escape(refused.message))</p>"# }
            body += """
                <details\(refused == nil ? "" : " open")><summary>New task</summary>
                <form method="post" action="/ui/tasks" aria-label="New task">
                \(HTML.csrfField(viewer))
                <label for="new-objective">Objective</label>
                <textarea id="new-objective" name="objective" required minlength="5" rows="2">\(HTML.escape(typed["objective"] ?? ""))</textarea>
                <label for="new-operation">Operation</label>
                <select id="new-operation" name="operation">\(options(TaskOperation.allCases.map(\.rawValue), selected: typed["operation"] ?? "docs", any: false))</select>
                <label for="new-repo">Repository</label>
                <input id="new-repo" name="repo" type="text" required placeholder="owner/name" value="\(HTML.escape(typed["repo"] ?? ""))">
                <label for="new-ref">Ref</label>
                <input id="new-ref" name="ref" type="text" value="\(HTML.escape(typed["ref"] ?? "main"))">
                <label for="new-criteria">Acceptance criteria, one a line</label>
                <textarea id="new-criteria" name="criteria" rows="3">\(HTML.escape(typed["criteria"] ?? ""))</textarea>
                <div class="actions"><button type="submit">Enqueue</button></div>
                </form></details>
                """
        }
        body += """
            <form method="get" action="/ui/tasks" class="filters" role="search" aria-label="Filter tasks">
            <div><label for="q">Text</label><input id="q" name="q" type="search" value="\(HTML.escape(value("q") ?? ""))"></div>
            <div><label for="status">Status</label><select id="status" name="status">\(options(TaskStatus.allCases.map(\.rawValue), selected: value("status")))</select></div>
            <div><label for="operation">Operation</label><select id="operation" name="operation">\(options(TaskOperation.allCases.map(\.rawValue), selected: value("operation")))</select></div>
            <div><label for="repo">Repository</label><input id="repo" name="repo" value="\(HTML.escape(value("repo") ?? ""))"></div>
            <button type="submit">Filter</button>
            </form>
            <div class="scroll"><table aria-label="Tasks, newest first"><thead><tr><th scope="col">Created</th><th scope="col">Status</th>\
            <th scope="col">Operation</th><th scope="col">Repository</th><th scope="col">Objective</th></tr></thead>
            <tbody>\(rows)</tbody></table></div>
            <nav aria-label="Pages" class="paging">Page \(page) \(paging)</nav>
            """
        return HTML.layout(title: "Tasks", viewer: viewer, body: body)
    }
}
