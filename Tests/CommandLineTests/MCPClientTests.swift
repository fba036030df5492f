import Foundation
import Storage
import Testing
import TowerJSON
import TowerTestSupport

/// The MCP server driven by the official Python MCP client (`mcp` from PyPI, installed by
/// scripts/test) through an agent's whole loop: Tests/MCPClient/agent_loop.py.
extension CommandLineTests {
    /// Runs the client script with `arguments`; the keys of an agent and a reviewer are in the
    /// environment. Returns its outcome.
    func runAgentLoop(_ setup: Setup, _ arguments: [String], keys: (agent: String, reviewer: String)) async throws -> TowerBinary.Outcome {
        try await TowerBinary.run(
            ["python3", repositoryRoot.appendingPathComponent("Tests/MCPClient/agent_loop.py").path] + arguments,
            environment: setup.environment.merging([
                "AGENT_KEY": keys.agent, "REVIEWER_KEY": keys.reviewer, "TOWER_BINARY": TowerBinary.url.path,
            ]) { _, new in new }, timeout: 300, executable: URL(fileURLWithPath: "/usr/bin/env"))
    }

    /// A keys file with the agent's key (agent, read, write) and a reviewer's (review, read).
    func agentKeys(_ setup: inout Setup) async throws -> (agent: String, reviewer: String, file: URL) {
        let file = setup.traceRoot.deletingLastPathComponent().appendingPathComponent("keys-\(UUID().uuidString)")
        setup = Setup(environment: setup.environment.merging(["TOWER_API_KEYS_FILE": file.path]) { _, new in new }, traceRoot: setup.traceRoot)
        let agent = try await tower(setup, "keys", "add", "mcp-agent-key", "--scope", "agent", "--scope", "read", "--scope", "write")
        let reviewer = try await tower(setup, "keys", "add", "mcp-reviewer", "--scope", "review", "--scope", "read")
        try #require(agent.status == 0 && reviewer.status == 0)
        return (agent.stdout.trimmingCharacters(in: .whitespacesAndNewlines), reviewer.stdout.trimmingCharacters(in: .whitespacesAndNewlines), file)
    }

    @Test("tower mcp over stdio: the official MCP client runs an agent's whole loop and meets every refusal", arguments: Dialect.allCases)
    func mcpOverStdio(_ dialect: Dialect) async throws {
        try await withSetup(dialect) { setup in
            var setup = setup
            let keys = try await agentKeys(&setup)
            defer { try? FileManager.default.removeItem(at: keys.file) }
            #expect(try await tower(setup, "migrate").status == 0)
            let outcome = try await runAgentLoop(setup, ["stdio"], keys: (keys.agent, keys.reviewer))
            #expect(outcome.status == 0, "\(outcome)")
            #expect(outcome.stdout.contains(#""ok": true"#), "\(outcome)")
            try expectTraceFolder(of: outcome, under: setup.traceRoot)
        }
    }

    /// The Run of the agent's loop (the script's last line names it) has its trace folder under
    /// `JCT_TRACE_ROOT`, closed by its completion.
    func expectTraceFolder(of outcome: TowerBinary.Outcome, under root: URL) throws {
        let last = try #require(outcome.stdout.split(separator: "\n").last, "\(outcome)")
        let runId = try #require(try json(String(last))["run_id"]?.stringValue, "\(last)")
        let manifest = root.appendingPathComponent(runId).appendingPathComponent("manifest.json")
        try #require(FileManager.default.fileExists(atPath: manifest.path), "run \(runId) has no trace folder under JCT_TRACE_ROOT (\(root.path))")
        let text = try String(contentsOf: manifest, encoding: .utf8)
        #expect(try json(text)["status"] == "completed", "\(text)")
    }

    @Test("MCP over HTTP on the API: the official client through Streamable HTTP at /mcp and the legacy SSE endpoints",
        arguments: Dialect.allCases)
    func mcpOverHTTP(_ dialect: Dialect) async throws {
        try await withSetup(dialect) { setup in
            var setup = setup
            let keys = try await agentKeys(&setup)
            defer { try? FileManager.default.removeItem(at: keys.file) }
            #expect(try await tower(setup, "migrate").status == 0)
            try await withAPIProcess(setup) { port, log, _ in
                #expect(try await RawConnection.request(port: port, "POST", "/mcp", body: "{}").status == 401, "a key is needed")
                #expect(try await RawConnection.request(port: port, "GET", "/mcp/sse").status == 401, "a key is needed")
                for (transport, path) in [("http", "/mcp"), ("sse", "/mcp/sse")] {
                    let outcome = try await runAgentLoop(setup, [transport, "http://127.0.0.1:\(port)\(path)"], keys: (keys.agent, keys.reviewer))
                    #expect(outcome.status == 0, "\(transport): \(outcome)\n\(log.text)")
                    #expect(outcome.stdout.contains(#""ok": true"#), "\(outcome)")
                    try expectTraceFolder(of: outcome, under: setup.traceRoot)
                }
            }
        }
    }

    @Test("an agent that vanishes: once its lease runs out a worker rescues the task, fails its Run and refuses its late completion")
    func mcpLeaseRunsOut() async throws {
        try await withSetup(.postgres) { setup in
            #expect(try await tower(setup, "migrate").status == 0)
            var setup = setup
            let keys = try await agentKeys(&setup)
            defer { try? FileManager.default.removeItem(at: keys.file) }
            try await withAPIProcess(setup) { port, log, _ in
                let outcome = try await runAgentLoop(setup, ["lease", "http", "http://127.0.0.1:\(port)/mcp"], keys: (keys.agent, keys.reviewer))
                #expect(outcome.status == 0, "\(outcome)\n\(log.text)")
            }
        }
    }

    @Test("tower mcp refuses to start without a configured key when keys are configured")
    func mcpNeedsAKey() async throws {
        try await withSetup(.sqlite) { setup in
            var setup = setup
            let keys = try await agentKeys(&setup)
            defer { try? FileManager.default.removeItem(at: keys.file) }
            let missing = try await TowerBinary.run(["mcp"], environment: setup.environment, timeout: 30)
            #expect(missing.status == 1 && missing.stderr.contains("TOWER_MCP_KEY is not set"), "\(missing)")
            let wrong = try await TowerBinary.run(["mcp"], environment: setup.environment.merging(["TOWER_MCP_KEY": "nope"]) { _, new in new }, timeout: 30)
            #expect(wrong.status == 1 && wrong.stderr.contains("TOWER_MCP_KEY is not a configured key"), "\(wrong)")
        }
    }
}
