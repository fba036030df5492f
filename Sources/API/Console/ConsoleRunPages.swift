import CWOM
import Foundation
import LegacyTasks
import Storage
import TowerJSON
import Worker

/// The console's pages about one piece of work: a task with its attempts, a Run with the context
/// it was pinned to, its evidence, Artifacts (a `code_patch` as a coloured diff) and trace
/// folder, one trace file, and the trace log following live while the Run runs.
extension ConsoleRoutes {
    /// How much of a trace file a page shows; the rest is cut with a note.
    static let shownBytes = 1 << 20

    /// One task: its fields, every attempt's Run, the context it would run under now, the audit
    /// timeline of the task and its Issue, and cancel/retry where the state machine allows them
    /// and the key may write. While the task waits or runs, the page reloads itself.
    func task(_ viewer: Viewer, id: String, message: String?) async throws -> String? {
        let loaded = try await database.read { store -> (TaskRecord, Issue?, ContextPacket?, [Run], [AuditEntry])? in
            guard let task = try await store.tasks.get(id) else { return nil }
            var issue: Issue?
            var packet: ContextPacket?
            var runs: [Run] = []
            var audit = try await store.audit.list(AuditLog.Filter(entityId: task.id), page: Page(limit: 200))
            if let issueId = task.cwomIssueId {
                issue = try await store.issues.get(issueId)
                packet = try await store.contextPackets.latest(forIssue: issueId)
                runs = try await store.runs.list(RunRepository.Filter(issueId: issueId), page: Page(limit: 100))
                audit += try await store.audit.list(AuditLog.Filter(entityId: issueId), page: Page(limit: 200))
            }
            return (task, issue, packet, runs, audit)
        }
        guard let (task, issue, packet, runs, audit) = loaded else { return nil }
        var body = "<h1>\(HTML.escape(task.objective))</h1>"
        if let message { body += #"<p role="status">\#(HTML.escape(message))</p>"# }
        body += "<dl class=\"figures\">"
            + Self.field("Status", task.status.rawValue) + Self.field("Operation", task.operation.rawValue)
            + Self.field("Repository", "\(task.target.repo)@\(task.target.ref)") + Self.field("Attempt", "\(task.attempt) of \(task.maxAttempts)")
            + Self.field("Created", task.createdAt?.iso8601) + Self.field("Started", task.startedAt?.iso8601)
            + Self.field("Completed", task.completedAt?.iso8601) + Self.field("Worker", task.assignedTo)
            + Self.field("Issue", issue.map { "\($0.title) (\($0.status.rawValue))" }) + "</dl>"
        if let error = task.error {
            let label = task.status == .queued ? "The last attempt failed; it will be tried again" : "Error"
            body += #"<p class="error">\#(label): \#(HTML.escape(error))</p>"#
        }
        if task.status == .queued, let runAfter = task.runAfter, runAfter > Timestamp.now() {
            body += "<p>Next attempt not before \(HTML.escape(runAfter.iso8601)).</p>"
        }
        if let issue, !issue.acceptance.criteria.isEmpty {
            body += #"<h2>Acceptance criteria</h2><ul>"# + issue.acceptance.criteria.map { "<li>\(HTML.escape($0))</li>" }.joined() + "</ul>"
        }
        if viewer.may(.write) {
            var buttons = ""
            let escapedId = HTML.segment(task.id)
            if task.status == .queued || task.status == .running {
                buttons += #"<form method="post" action="/ui/tasks/\#(escapedId)/cancel">\#(HTML.csrfField(viewer))<button type="submit">Cancel task</button></form>"#
            }
            if LifecycleEngine.allowsRetry(task.status, issueStatus: issue?.status) {
                buttons += #"<form method="post" action="/ui/tasks/\#(escapedId)/retry">\#(HTML.csrfField(viewer))<button type="submit">Retry task</button></form>"#
            }
            if !buttons.isEmpty { body += #"<div class="actions">\#(buttons)</div>"# }
        }
        body += "<h2>Runs</h2>"
        if runs.isEmpty { body += task.status == .queued ? "<p>Waiting for a worker.</p>" : "<p>No run.</p>" }
        if !runs.isEmpty {
            body += #"<div class="scroll"><table aria-label="Runs, newest first"><thead><tr><th scope="col">Run</th><th scope="col">Status</th>"#
                + #"<th scope="col">Mode</th><th scope="col">Executor</th><th scope="col">Started</th></tr></thead><tbody>"#
            for run in runs {
                body += "<tr><td><a href=\"/ui/runs/\(HTML.segment(run.id))\">Run \(HTML.escape(run.id))</a></td><td>\(HTML.escape(run.status.rawValue))</td>"
                    + "<td>\(HTML.escape(run.mode.rawValue))</td><td>\(HTML.escape(run.executor.actor.actorId))</td>"
                    + "<td>\(HTML.escape(run.telemetry.startedAt?.iso8601 ?? "—"))</td></tr>"
            }
            body += "</tbody></table></div>"
        }
        if let packet {
            body += "<h2>Context</h2><details><summary>ContextPacket \(HTML.escape(packet.id)) (version \(packet.version)), the newest</summary>"
                + HTML.json(packet.json) + "</details><p>Each Run's page shows the version it was pinned to.</p>"
        }
        body += #"<h2>Timeline</h2><ol class="timeline">"#
        for entry in audit.sorted(by: { $0.id < $1.id }) {
            body += "<li><time>\(HTML.escape(entry.ts.iso8601))</time> \(HTML.escape(entry.entityKind)) \(HTML.escape(entry.action.rawValue))"
                + " by \(HTML.escape(entry.actor.actorId))\(entry.note.map { ": " + HTML.escape($0) } ?? "")</li>"
        }
        body += "</ol>"
        let underWay = task.status == .queued || task.status == .running
        return HTML.layout(title: task.objective, viewer: viewer, body: body, refresh: underWay ? 3 : nil)
    }

    static func field(_ name: String, _ value: String?) -> String {
        "<div><dt>\(HTML.escape(name))</dt><dd>\(HTML.escape(value ?? "—"))</dd></div>"
    }

    /// One Run: its task and Issue, the ContextPacket version and ConstraintSnapshot it was pinned
    /// to, its evidence packs and their decisions (with the decision form while its Issue waits for
    /// a review), its Artifacts with a `code_patch` shown as a diff, its trace folder file by file,
    /// and its trace log, followed live while it runs.
    func run(_ viewer: Viewer, id: String, message: String?) async throws -> String? {
        typealias Loaded = (Run, Issue?, TaskRecord?, [ContextPacket], ConstraintSnapshot?, [EvidencePack], [ReviewDecision], [Artifact], Timestamp?)
        let loaded = try await database.read { store -> Loaded? in
            guard let run = try await store.runs.get(id) else { return nil }
            var packets: [ContextPacket] = []
            for ref in run.inputs.contextPackets { if let packet = try await store.contextPackets.get(ref.id) { packets.append(packet) } }
            var snapshot: ConstraintSnapshot?
            if let ref = run.inputs.constraintSnapshot { snapshot = try await store.constraintSnapshots.get(ref.id) }
            return (
                run, try await store.issues.get(run.forIssue.id),
                try await store.tasks.list(TaskRepository.Filter(issueId: run.forIssue.id), page: Page(limit: 1)).first,
                packets, snapshot, try await store.evidencePacks.list(runId: run.id, page: Page(limit: 20)),
                try await store.reviews.list(issueId: run.forIssue.id, page: Page(limit: 100)),
                try await store.artifacts.list(forRuns: [run.id]), try await store.retention.tracePrunedAt(run.id)
            )
        }
        guard let (run, issue, task, packets, snapshot, packs, decisions, artifacts, prunedAt) = loaded else { return nil }
        let root = run.localTraceFolder
        var body = "<h1>Run \(HTML.escape(run.id)): \(HTML.escape(run.status.rawValue))</h1>"
        if let message { body += #"<p role="status">Decision recorded: \#(HTML.escape(message)).</p>"# }
        if let task { body += "<p>Attempt of task <a href=\"/ui/tasks/\(HTML.segment(task.id))\">\(HTML.escape(task.objective))</a></p>" }
        body += "<dl class=\"figures\">" + Self.field("Issue", issue.map { "\($0.title) (\($0.status.rawValue))" })
            + Self.field("Mode", run.mode.rawValue) + Self.field("Executor", run.executor.actor.actorId)
            + Self.field("Started", run.telemetry.startedAt?.iso8601) + Self.field("Ended", run.telemetry.endedAt?.iso8601)
            + Self.field("Duration", run.telemetry.durationS.map { Self.duration($0) }) + "</dl>"
        if let failure = run.failure {
            body += #"<p class="error">Failed (\#(HTML.escape(failure.category.rawValue))): \#(HTML.escape(failure.message))</p>"#
        }

        body += "<h2>Evidence</h2>"
        if packs.isEmpty { body += "<p>No evidence pack: the Run has not finished, or it was not evaluated.</p>" }
        for pack in packs {
            body += "<section aria-label=\"Evidence pack \(HTML.escape(pack.id))\">" + evidence(pack)
            for decision in decisions where decision.forEvidencePack.id == pack.id {
                body += "<p>Reviewed by \(HTML.escape(decision.reviewer.actorId)): <strong>\(HTML.escape(decision.decision.rawValue))</strong>"
                    + " (\(HTML.escape(decision.decisionReason)))</p>"
            }
            if issue?.status == .underReview && pack.id == packs.first?.id { body += reviewForm(pack, viewer, runId: run.id) }
            body += "</section>"
        }

        body += "<h2>Artifacts</h2>"
        if artifacts.isEmpty { body += "<p>None.</p>" }
        if !artifacts.isEmpty {
            body += #"<div class="scroll"><table aria-label="Artifacts"><thead><tr><th scope="col">Artifact</th><th scope="col">Type</th>"#
                + #"<th scope="col">Size</th><th scope="col">Digest</th></tr></thead><tbody>"#
            for artifact in artifacts {
                let title = Self.traceFile(of: artifact, in: root, runId: run.id).map {
                    "<a href=\"\(HTML.escape($0.link))\">\(HTML.escape(artifact.title))</a>"
                } ?? HTML.escape(artifact.title)
                body += "<tr><td>\(title)</td><td>\(HTML.escape(artifact.type.rawValue))</td>"
                    + "<td>\(artifact.sizeBytes.map(String.init) ?? "—")</td><td><code>\(HTML.escape(artifact.digest ?? "—"))</code></td></tr>"
            }
            body += "</tbody></table></div>"
        }
        for artifact in artifacts where artifact.type == .codePatch {
            body += "<h3>Changes: \(HTML.escape(artifact.title))</h3>"
            if let file = Self.traceFile(of: artifact, in: root, runId: run.id), let (text, cut) = Self.read(file.url) {
                body += HTML.diff(text) + (cut ? "<p>Only the first MiB is shown.</p>" : "")
            } else {
                body += "<p>The patch is not in this Run's trace folder (<code>\(HTML.escape(artifact.uri))</code>).</p>"
            }
        }

        body += "<h2>Pinned context</h2>"
        for packet in packets {
            body += "<details><summary>ContextPacket \(HTML.escape(packet.id)), version \(packet.version)</summary>\(HTML.json(packet.json))</details>"
        }
        if let snapshot {
            body += "<details><summary>ConstraintSnapshot \(HTML.escape(snapshot.id))</summary>\(HTML.json(snapshot.json))</details>"
        }
        if packets.isEmpty && snapshot == nil { body += "<p>The Run names no context.</p>" }

        body += "<h2>Trace folder</h2>"
        let files = root.flatMap { try? TraceFile.scan($0) } ?? []
        if let prunedAt {
            body += "<p>Pruned by retention at \(HTML.escape(prunedAt.iso8601)); the Artifacts' records remain.</p>"
        } else if files.isEmpty {
            body += "<p>No local trace folder.</p>"
        }
        if !files.isEmpty {
            body += #"<ul aria-label="Trace files">"#
            for file in files {
                body += "<li><a href=\"\(HTML.escape(Self.fileLink(runId: run.id, path: file.path)))\">\(HTML.escape(file.path))</a> (\(file.size) bytes)</li>"
            }
            body += "</ul>"
        }

        body += "<h2>Trace log</h2>"
        let log = root.flatMap { TraceFolder.resolve("trace.log", in: $0) }
        let (text, _) = log.flatMap { Self.read($0, tail: true) } ?? ("", false)
        let running = run.status == .running || run.status == .planned
        if running {
            // The stream starts where the page's copy ends, so no line shows twice.
            let offset = log.flatMap { TraceFile.regularFileSize($0.path) } ?? 0
            body += #"<p id="follow-status" role="status">Running: reload to see more, or enable JavaScript to follow live.</p>"#
                + #"<pre id="trace-log" aria-live="polite" data-follow="/ui/runs/\#(HTML.segment(run.id))/log?from=\#(offset)">\#(HTML.escape(text))</pre>"#
        } else {
            body += text.isEmpty ? "<p>No trace log.</p>" : #"<pre id="trace-log">\#(HTML.escape(text))</pre>"#
        }
        return HTML.layout(title: "Run \(run.id)", viewer: viewer, body: body)
    }

    /// One file of a Run's trace folder as text (a patch as a diff, JSON as it is), or a note that
    /// it is binary. Paths never leave the folder (`TraceFolder.resolve`).
    func traceFile(_ viewer: Viewer, runId: String, path: String) async throws -> String? {
        guard let run = try await database.read({ try await $0.runs.get(runId) }), let root = run.localTraceFolder,
            let url = TraceFolder.resolve(path, in: root), let (text, cut) = Self.read(url)
        else { return nil }
        var body = "<p><a href=\"/ui/runs/\(HTML.segment(run.id))\">Run \(HTML.escape(run.id))</a></p><h1>\(HTML.escape(path))</h1>"
        let size = TraceFile.regularFileSize(url.path) ?? 0
        body += "<p>\(size) bytes, \(HTML.escape(TraceFolder.mediaType(for: url.lastPathComponent)))\(cut ? "; only the first MiB is shown" : "").</p>"
        if text.utf8.contains(0) {
            body += "<p>A binary file: not shown.</p>"
        } else if ["diff", "patch"].contains(url.pathExtension.lowercased()) {
            body += HTML.diff(text)
        } else {
            body += "<pre>\(HTML.escape(text))</pre>"
        }
        return HTML.layout(title: path, viewer: viewer, body: body)
    }

    /// The trace log from byte `from` (or the browser's `Last-Event-ID` when it reconnects) as
    /// server-sent events: a `line` event per line, its `id` the offset after it; an `end` event
    /// with the Run's status when the Run has ended and the log is read to its end.
    func follow(runId: String, _ request: APIRequest, viewer: Viewer) async throws -> APIResponse {
        guard let run = try await database.read({ try await $0.runs.get(runId) }), let root = run.localTraceFolder else {
            return .detail(404, "No such Run with a local trace folder")
        }
        let start = Int(request.header("last-event-id") ?? "") ?? Int(request.queryValue("from") ?? "") ?? 0
        let path = root.appendingPathComponent("trace.log").path
        let database = self.database
        let sessions = self.sessions
        let (events, continuation) = AsyncThrowingStream<[UInt8], any Error>.makeStream()
        let id = UUID()
        // It reads the file: off the event loops, which in `tower api` run every task that has
        // no executor of its own (docs/api.md).
        let pump = Task(executorPreference: BlockingExecutor.shared) {
            var offset = max(0, start)
            var lastStatusCheck = ContinuousClock.now - .seconds(10)
            while !Task.isCancelled {
                // Complete lines only: a line being written is sent once its newline is there.
                if let handle = FileHandle(forReadingAtPath: path) {
                    defer { try? handle.close() }
                    // The log only grows, so an offset past its end is not one it gave (a forged
                    // `Last-Event-ID`): the stream starts over. Seeking there failed, the log was
                    // read from its start, and the offsets after its lines overflowed.
                    if let size = try? handle.seekToEnd(), UInt64(offset) > size { offset = 0 }
                    try? handle.seek(toOffset: UInt64(offset))
                    if let data = try? handle.read(upToCount: Self.shownBytes), let end = data.lastIndex(of: UInt8(ascii: "\n")) {
                        var position = offset
                        for line in data[data.startIndex...end].split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).dropLast() {
                            position += line.count + 1
                            continuation.yield(EventStream.event("line", id: String(position), data: String(decoding: line, as: UTF8.self)))
                        }
                        offset = position
                        continue
                    }
                }
                if ContinuousClock.now - lastStatusCheck >= .seconds(1) {
                    lastStatusCheck = .now
                    let status = try? await database.read { try await $0.runs.get(runId) }?.status
                    if let status, status != .running, status != .planned {
                        continuation.yield(EventStream.event("end", data: status.rawValue))
                        break
                    }
                }
                try? await Task.sleep(for: .milliseconds(250))
            }
            continuation.finish()
        }
        continuation.onTermination = { _ in
            pump.cancel()
            Task { await sessions.closed(id) }
        }
        if await !sessions.opened(id, owner: viewer.principal?.name, end: { continuation.finish() }) { continuation.finish() }
        return EventStream.response(EventStream.keptAlive(events))
    }

    // MARK: - Trace files

    static func fileLink(runId: String, path: String) -> String {
        "/ui/runs/\(HTML.segment(runId))/files/" + path.split(separator: "/").map { HTML.segment(String($0)) }.joined(separator: "/")
    }

    /// The file of an Artifact when it lies inside the Run's trace folder (an Artifact's uri is
    /// never followed anywhere else), with the console's link to it.
    static func traceFile(of artifact: Artifact, in root: URL?, runId: String) -> (url: URL, link: String)? {
        guard let root, let url = URL(string: artifact.uri), url.isFileURL else { return nil }
        let base = root.path.hasSuffix("/") ? root.path : root.path + "/"
        let path = url.standardizedFileURL.path
        guard path.hasPrefix(base) else { return nil }
        let relative = String(path.dropFirst(base.count))
        guard let resolved = TraceFolder.resolve(relative, in: root) else { return nil }
        return (resolved, fileLink(runId: runId, path: relative))
    }

    /// The first (or, with `tail`, the last) MiB of a file as text, and whether it was cut.
    static func read(_ url: URL, tail: Bool = false) -> (String, Bool)? {
        guard let handle = FileHandle(forReadingAtPath: url.path) else { return nil }
        defer { try? handle.close() }
        let size = TraceFile.regularFileSize(url.path) ?? 0
        if tail && size > shownBytes { try? handle.seek(toOffset: UInt64(size - shownBytes)) }
        guard let data = try? handle.read(upToCount: shownBytes) else { return ("", false) }
        return (String(decoding: data, as: UTF8.self), size > shownBytes)
    }
}
