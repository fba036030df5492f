import API
import CWOM
import Foundation
import LegacyTasks
import Storage
import Testing
import TowerJSON
import TowerTestSupport

/// The access model: with keys configured, every route but liveness and version needs a key
/// holding a scope the route accepts; the key's name is the audit actor of what it does.
@Suite("Access: keys and scopes")
struct AccessTests {
    static let legacySecret = "legacy-secret"
    static func secret(_ scope: Scope) -> String { "secret-for-\(scope.rawValue)" }
    static func name(_ scope: Scope) -> String { "key-\(scope.rawValue)" }

    /// One key per scope, plus the legacy `JCT_API_KEY`.
    static func access(metricsPublic: Bool = false, defaultRate: RateLimit? = nil, extra: [KeyEntry] = []) -> AccessConfiguration {
        AccessConfiguration(
            legacyKey: legacySecret,
            keys: Scope.allCases.map { KeyEntry(name: name($0), scopes: [$0], secret: secret($0)) } + extra,
            metricsPublic: metricsPublic, defaultRate: defaultRate)
    }

    func withKeyedAPI(_ dialect: Dialect, access: AccessConfiguration = AccessTests.access(),
        _ body: (Harness) async throws -> Void) async throws
    {
        let configuration = APIConfiguration(access: access, policy: testConfiguration.policy)
        try await withDatabase(dialect) { database, _ in
            let api = TowerAPI(database: database, configuration: configuration, logger: quietLogger("tower.api"), metrics: { "" })
            try await body(Harness(api: api, database: database, dialect: dialect))
        }
    }

    static func bearer(_ secret: String) -> [(String, String)] { [("Authorization", "Bearer \(secret)")] }

    /// What this test expects of a route, written independently of the route table: liveness and
    /// version are open, MCP takes any key, every GET reads, reviews need `review`, the agents' reports take `write`
    /// or `agent`, every other write needs `write`. A new route that fits none of these fails here
    /// until this rule says what it needs.
    static func expectedScopes(_ method: String, _ path: String, metricsPublic: Bool) -> Set<Scope>? {
        if ["/health", "/healthz", "/version"].contains(path) { return nil }
        if path == "/metrics" { return metricsPublic ? nil : [.read] }
        // The console admits browsers itself, by a session cookie (ConsoleTests).
        if path.hasPrefix("/ui") { return nil }
        // MCP: any key reaches the transport; each tool checks its own scope (AgentToolsTests).
        if path.hasPrefix("/mcp") { return Set(Scope.allCases) }
        if method == "GET" { return [.read] }
        switch "\(method) \(path)" {
        case "POST /cwom/reviews": return [.review]
        case "PATCH /tasks/{task_id}/status", "PATCH /cwom/runs/{run_id}", "POST /cwom/artifacts": return [.write, .agent]
        default: return [.write]
        }
    }

    /// The gate's own refusals (a route may refuse for its own reasons, as the console's sign-in
    /// form does without its token): the legacy 401, or the 403 naming a missing scope.
    static func isGateRefusal(_ answer: Answer) -> Bool {
        (answer.status == 401 && answer.json == ["detail": "Invalid or missing API key"])
            || (answer.status == 403 && answer["detail"]?.stringValue?.contains("lacks the scope") == true)
    }

    /// Every operation of the OpenAPI document, read with the admin key.
    func operations(_ h: Harness) async throws -> [(method: String, path: String)] {
        let document = await h.get("/openapi.json", headers: Self.bearer(Self.secret(.admin)))
        let paths = try #require(document["paths"]?.objectValue)
        var operations: [(method: String, path: String)] = []
        for (path, item) in paths {
            for (method, _) in item.objectValue ?? [:] { operations.append((method.uppercased(), path)) }
        }
        return operations
    }

    /// A concrete path for a pattern, with the ids of a real task, its Issue and a file name.
    func concrete(_ path: String, task: String, issue: String) -> String {
        path.replacingOccurrences(of: "{task_id}", with: task).replacingOccurrences(of: "{issue_id}", with: issue)
            .replacingOccurrences(of: "{path}", with: "stdout.log")
            .replacingOccurrences(of: "{run_id}", with: "01JBAKQ2X6T7XAV6R2Y1N4RM0Z")
            .replacingOccurrences(of: "{evidence_pack_id}", with: "01JBAKQ2X6T7XAV6R2Y1N4RM0Z")
            .replacingOccurrences(of: "{packet_id}", with: "01JBAKQ2X6T7XAV6R2Y1N4RM0Z")
            .replacingOccurrences(of: "{snapshot_id}", with: "01JBAKQ2X6T7XAV6R2Y1N4RM0Z")
    }

    @Test("every route of the OpenAPI document × {no key, wrong key, each scope, JCT_API_KEY}", arguments: Dialect.allCases)
    func routeTable(_ dialect: Dialect) async throws {
        try await withKeyedAPI(dialect) { h in
            let operations = try await operations(h)
            #expect(operations.count == h.api.router.routes.count, "the document lists every route")
            #expect(operations.count >= 40)
            // A task with its CWOM objects, so that reads have something to find.
            let created = await h.enqueue(validTask(), headers: Self.bearer(Self.secret(.write)))
            try #require(created.status == 201)
            let task = try #require(created["task_id"]?.stringValue)
            let issue = try #require(created["cwom"]?["issue_id"]?.stringValue)
            let before = (await h.count("audit_log"), await h.count("tasks"), await h.count("cwom_issues"))

            struct Case {
                let credential: String
                let headers: [(String, String)]
                let scope: Scope?
            }
            var credentials = [
                Case(credential: "no key", headers: [], scope: nil),
                Case(credential: "a wrong key", headers: Self.bearer("not-a-key"), scope: nil),
                Case(credential: "a key in the wrong scheme", headers: [("Authorization", "Basic \(Self.secret(.admin))")], scope: nil),
            ]
            credentials += Scope.allCases.map { Case(credential: Self.name($0), headers: Self.bearer(Self.secret($0)), scope: $0) }

            // First every request that must be refused: nothing may change.
            var admitted: [(method: String, path: String, headers: [(String, String)], label: String)] = []
            for (method, pattern) in operations {
                let path = concrete(pattern, task: task, issue: issue)
                let needed = Self.expectedScopes(method, pattern, metricsPublic: false)
                for credential in credentials {
                    let label = "\(method) \(pattern) with \(credential.credential)"
                    guard let needed else {
                        admitted.append((method, path, credential.headers, label))
                        continue
                    }
                    guard let scope = credential.scope else {
                        let answer = await h.send(method, path, json: [:], headers: credential.headers)
                        #expect(answer.status == 401, "\(label): \(answer.status) \(answer.text)")
                        #expect(answer.json == ["detail": "Invalid or missing API key"], "\(label)")
                        #expect(answer.header("www-authenticate") == "Bearer", "\(label)")
                        continue
                    }
                    if needed.contains(scope) || scope == .admin {
                        admitted.append((method, path, credential.headers, label))
                    } else {
                        let answer = await h.send(method, path, json: [:], headers: credential.headers)
                        #expect(answer.status == 403, "\(label): \(answer.status) \(answer.text)")
                        let detail = answer["detail"]?.stringValue ?? ""
                        #expect(needed.allSatisfy { detail.contains($0.rawValue) }, "\(label): the 403 names the scope: \(detail)")
                        #expect(detail.contains(Self.name(scope)), "\(label): the 403 names the key: \(detail)")
                    }
                }
            }
            let after = (await h.count("audit_log"), await h.count("tasks"), await h.count("cwom_issues"))
            #expect(before == after, "a refused request changed nothing")

            // Then every request that must pass the gate: the route itself answers.
            for request in admitted {
                let answer = await h.send(request.method, request.path, json: [:], headers: request.headers)
                #expect(!Self.isGateRefusal(answer) && answer.status < 500, "\(request.label): \(answer.status) \(answer.text)")
            }
            // The legacy key opens every route.
            for (method, pattern) in operations {
                let answer = await h.send(method, concrete(pattern, task: task, issue: issue), json: [:], headers: Self.bearer(Self.legacySecret))
                #expect(!Self.isGateRefusal(answer) && answer.status < 500, "\(method) \(pattern) with JCT_API_KEY: \(answer.status)")
            }
        }
    }

    @Test("header names match in any ASCII case: Authorization, authorization and AUTHORIZATION are one header")
    func headerNamesIgnoreCase() async throws {
        try await withKeyedAPI(.sqlite) { h in
            for name in ["Authorization", "authorization", "AUTHORIZATION", "aUtHoRiZaTiOn"] {
                #expect(await h.get("/cwom/audit", headers: [(name, "Bearer \(Self.secret(.read))")]).status == 200, "\(name)")
            }
            #expect(await h.get("/cwom/audit", headers: [("Authorisation", "Bearer \(Self.secret(.read))")]).status == 401)
        }
    }

    @Test("reads of tasks, CWOM objects, trace files and the audit log need a read key", arguments: Dialect.allCases)
    func readsNeedTheReadScope(_ dialect: Dialect) async throws {
        try await withKeyedAPI(dialect) { h in
            let created = await h.enqueue(validTask(), headers: Self.bearer(Self.secret(.write)))
            let task = try #require(created["task_id"]?.stringValue)
            let issue = try #require(created["cwom"]?["issue_id"]?.stringValue)
            let packet = try #require(created["cwom"]?["context_packet_id"]?.stringValue)
            for path in ["/tasks/\(task)", "/cwom/issues/\(issue)", "/cwom/context-packets/\(packet)", "/cwom/audit", "/cwom/runs/x/trace/stdout.log"] {
                #expect(await h.get(path).status == 401, "\(path)")
                #expect(await h.get(path, headers: Self.bearer(Self.secret(.write))).status == 403, "\(path)")
            }
            #expect(await h.get("/tasks/\(task)", headers: Self.bearer(Self.secret(.read)))["task_id"]?.stringValue == task)
            #expect(await h.get("/cwom/issues/\(issue)", headers: Self.bearer(Self.secret(.read))).status == 200)
            #expect(await h.get("/cwom/context-packets/\(packet)", headers: Self.bearer(Self.secret(.read))).status == 200)
            #expect(await h.get("/cwom/audit", headers: Self.bearer(Self.secret(.read))).status == 200)
        }
    }

    @Test("/metrics needs a read key unless TOWER_METRICS_PUBLIC=true", arguments: [false, true])
    func metrics(_ metricsPublic: Bool) async throws {
        try await withKeyedAPI(.sqlite, access: Self.access(metricsPublic: metricsPublic)) { h in
            #expect(await h.get("/metrics").status == (metricsPublic ? 200 : 401))
            #expect(await h.get("/metrics", headers: Self.bearer(Self.secret(.read))).status == 200)
            #expect(await h.get("/tasks").status == 401, "only /metrics opens")
        }
    }

    @Test("the key's name is the actor of the audit rows of what it did; JCT_API_KEY keeps the legacy actors",
        arguments: Dialect.allCases)
    func auditActor(_ dialect: Dialect) async throws {
        try await withKeyedAPI(dialect) { h in
            let write = Self.bearer(Self.secret(.write))
            let created = await h.enqueue(validTask(), headers: write)
            let task = try #require(created["task_id"]?.stringValue)
            #expect(await h.send("POST", "/tasks/\(task)/cancel", headers: write).status == 200)
            let rows = try await h.database.read { try await $0.audit.list(AuditLog.Filter(entityId: task)) }
            let created_ = try #require(rows.first { $0.action == .created })
            #expect(created_.actor.actorId == Self.name(.write))
            #expect(created_.actor.actorKind == .system)
            let cancelled = try #require(rows.first { $0.action == .statusChanged }, "newest first: the cancel")
            #expect(cancelled.actor.actorId == Self.name(.write))

            let legacy = await h.enqueue(validTask(), headers: Self.bearer(Self.legacySecret))
            let legacyTask = try #require(legacy["task_id"]?.stringValue)
            let legacyRows = try await h.database.read { try await $0.audit.list(AuditLog.Filter(entityId: legacyTask)) }
            #expect(legacyRows.first { $0.action == .created }?.actor.actorId == "alice", "the requester, as before keys")

            // An agent key reports as an agent.
            let agentRepo = await h.send(
                "POST", "/cwom/repos", json: ["name": "x", "slug": "s", "source": ["system": "g"]], headers: Self.bearer(Self.secret(.agent)))
            #expect(agentRepo.status == 403, "repos are written with write, not agent")
            let repo = await h.send(
                "POST", "/cwom/repos", json: ["name": "x", "slug": "s", "source": ["system": "g"]], headers: Self.bearer(Self.secret(.admin)))
            let repoId = try #require(repo["repo"]?["id"]?.stringValue)
            let repoRows = try await h.database.read { try await $0.audit.list(AuditLog.Filter(entityId: repoId)) }
            #expect(repoRows.first?.actor.actorId == Self.name(.admin))
        }
    }

    @Test("a key over its rate gets 429 with Retry-After; other keys are not slowed")
    func rateLimit() async throws {
        let limited = KeyEntry(name: "slow", scopes: [.read], secret: "slow-secret", rate: RateLimit(requests: 2, seconds: 3600))
        try await withKeyedAPI(.sqlite, access: Self.access(extra: [limited])) { h in
            let headers = Self.bearer("slow-secret")
            #expect(await h.get("/tasks", headers: headers).status == 200)
            #expect(await h.get("/tasks", headers: headers).status == 200)
            let refused = await h.get("/tasks", headers: headers)
            #expect(refused.status == 429)
            let wait = try #require(refused.header("retry-after").flatMap { Int($0) })
            #expect(wait > 0 && wait <= 1800, "half an hour at most until the next of 2 tokens an hour: \(wait)")
            #expect(refused["detail"]?.stringValue?.contains("slow") == true)
            for _ in 0..<5 { #expect(await h.get("/tasks", headers: Self.bearer(Self.secret(.read))).status == 200) }
            #expect(await h.get("/health").status == 200, "open routes are not counted")
        }
        // The default rate applies to keys without their own.
        try await withKeyedAPI(.sqlite, access: Self.access(defaultRate: RateLimit(requests: 1, seconds: 60))) { h in
            #expect(await h.get("/tasks", headers: Self.bearer(Self.secret(.read))).status == 200)
            #expect(await h.get("/tasks", headers: Self.bearer(Self.secret(.read))).status == 429)
            #expect(await h.get("/tasks", headers: Self.bearer(Self.legacySecret)).status == 200)
        }
    }

    @Test("an MCP session answers only the key that opened it; its session_id alone opens nothing")
    func mcpSessionsBelongToTheirKey() async throws {
        try await withKeyedAPI(.sqlite) { h in
            let opened = await h.api.respond(
                APIRequest(method: "GET", path: "/mcp/sse", query: nil, headers: [("authorization", "Bearer \(Self.secret(.agent))")], body: []))
            #expect(opened.status == 200)
            var events = try #require(opened.stream).makeAsyncIterator()
            let first = String(decoding: try #require(try await events.next()), as: UTF8.self)
            #expect(first.hasPrefix("event: endpoint\r\ndata: /mcp/messages/?session_id="), "\(first)")
            let endpoint = try #require(first.split(separator: "\r\n").first { $0.hasPrefix("data: ") }).dropFirst(6)
            let ping: JSONValue = ["jsonrpc": "2.0", "id": 1, "method": "ping"]
            #expect(await h.send("POST", String(endpoint), json: ping).status == 401, "no key")
            #expect(await h.send("POST", String(endpoint), json: ping, headers: Self.bearer(Self.secret(.read))).status == 403, "another key")
            #expect(await h.send("POST", "/mcp/messages/?session_id=nothing", json: ping, headers: Self.bearer(Self.secret(.agent))).status == 404)
            #expect(await h.send("POST", String(endpoint), json: ping, headers: Self.bearer(Self.secret(.agent))).status == 202)
            // The next event; a keepalive comment comes first when the steps above took over 15 s
            // (seen in the full suite on a loaded machine), and clients skip comments.
            var answer = ": keepalive"
            while answer.hasPrefix(":") { answer = String(decoding: try #require(try await events.next()), as: UTF8.self) }
            #expect(answer.hasPrefix("event: message\r\ndata: ") && answer.contains(#""id":1"#), "the answer arrives on the stream: \(answer)")
        }
    }

    @Test("a key holds at most 64 Streamable HTTP sessions: one more ends its least recently used; other keys keep theirs")
    func mcpSessionsPerKey() async throws {
        try await withKeyedAPI(.sqlite) { h in
            let initialize: JSONValue = [
                "jsonrpc": "2.0", "id": 1, "method": "initialize",
                "params": ["protocolVersion": "2025-03-26", "capabilities": [:], "clientInfo": ["name": "loop", "version": "1"]],
            ]
            func open(_ scope: Scope) async throws -> String {
                let answer = await h.send(
                    "POST", "/mcp", json: initialize, headers: Self.bearer(Self.secret(scope)) + [("accept", "application/json, text/event-stream")])
                return try #require(answer.header("mcp-session-id"), "\(answer.status) \(answer.text)")
            }
            func ping(_ id: String, _ scope: Scope) async -> Int {
                await h.send(
                    "POST", "/mcp", json: ["jsonrpc": "2.0", "id": 2, "method": "ping"],
                    headers: Self.bearer(Self.secret(scope)) + [("accept", "application/json, text/event-stream"), ("mcp-session-id", id)]
                ).status
            }
            let other = try await open(.read)
            var sessions: [String] = []
            for _ in 0..<64 { sessions.append(try await open(.agent)) }
            #expect(await ping(sessions[0], .agent) == 200, "the first one used again: now the second is the least recently used")
            #expect(await h.api.mcpSessions.count == 65)
            let newest = try await open(.agent)
            #expect(await h.api.mcpSessions.count == 65, "still 64 for the key, and the other key's one")
            #expect(await ping(sessions[1], .agent) == 404, "the least recently used one ended")
            #expect(await ping(sessions[0], .agent) == 200)
            #expect(await ping(newest, .agent) == 200)
            #expect(await ping(other, .read) == 200, "another key's session is not touched")
        }
    }

    @Test("an empty keys file denies every keyed route; no keys at all leaves the API open")
    func emptyAndNone() async throws {
        try await withKeyedAPI(.sqlite, access: AccessConfiguration(keys: [])) { h in
            #expect(await h.get("/tasks").status == 401)
            #expect(await h.get("/health").status == 200)
        }
        try await withKeyedAPI(.sqlite, access: AccessConfiguration()) { h in
            #expect(await h.get("/tasks").status == 200)
        }
    }

    @Test("keys are replaced while serving: a revoked key is refused, a new one admitted")
    func replaceKeys() async throws {
        try await withKeyedAPI(.sqlite) { h in
            let headers = Self.bearer(Self.secret(.read))
            #expect(await h.get("/tasks", headers: headers).status == 200)
            h.api.access.replaceKeys([KeyEntry(name: "new", scopes: [.read], secret: "new-secret")])
            #expect(await h.get("/tasks", headers: headers).status == 401)
            #expect(await h.get("/tasks", headers: Self.bearer("new-secret")).status == 200)
            #expect(await h.get("/tasks", headers: Self.bearer(Self.legacySecret)).status == 200, "JCT_API_KEY is not in the file")
        }
    }
}

@Suite("The keys file")
struct KeyFileTests {
    @Test("a line per key: name, scopes, SHA-256, optional rate; comments and blank lines ignored")
    func parses() throws {
        let entry = KeyEntry(name: "ci@deploy", scopes: [.write, .read], secret: "s", rate: RateLimit("30/s"))
        #expect(entry.line.hasPrefix("ci@deploy read,write sha256:"))
        #expect(entry.line.hasSuffix(" rate=30/s"))
        #expect(!entry.line.contains(" s "), "the key itself is never written")
        let text = KeyFile.header + "\n  \n" + entry.line + "\n# reviewer\nbob review sha256:" + String(repeating: "ab", count: 32) + "\n"
        let entries = try KeyFile.parse(text, path: "keys")
        #expect(entries == [entry, KeyEntry(name: "bob", scopes: [.review], digest: [UInt8](repeating: 0xAB, count: 32))])
    }

    @Test(
        "a wrong line stops the start with its line number and what is wrong",
        arguments: [
            ("alice read", "expected NAME SCOPES"), ("al ice read sha256:00 rate=1/s extra", "expected NAME SCOPES"),
            ("alice reed sha256:" + String(repeating: "0", count: 64), "unknown scope 'reed'"),
            ("alice read 0123", "sha256:"), ("alice read sha256:zz", "sha256:"),
            ("alice read sha256:" + String(repeating: "0", count: 64) + " rate=fast", "unknown option"),
            ("al/ice read sha256:" + String(repeating: "0", count: 64), "invalid key name"),
        ])
    func refuses(_ line: String, _ message: String) {
        #expect {
            try KeyFile.parse("# keys\n" + line + "\n", path: "/etc/tower/keys")
        } throws: { error in
            let text = "\(error)"
            return text.contains("/etc/tower/keys line 2") && text.contains(message)
        }
    }

    @Test("a name used twice is refused")
    func duplicate() {
        let line = "alice read sha256:" + String(repeating: "0", count: 64) + "\n"
        #expect(throws: KeyFileError.self) { try KeyFile.parse(line + line, path: "k") }
    }

    @Test("new keys are long, random and url-safe")
    func secrets() {
        let keys = (0..<100).map { _ in KeyEntry.newSecret() }
        #expect(Set(keys).count == 100)
        for key in keys {
            #expect(key.hasPrefix("tower_") && key.count == 49)
            #expect(key.allSatisfy { $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" })
        }
    }
}
