import API
import ArgumentParser
import Foundation
import LegacyTasks
import Logging
import MCP
import Storage
import Worker

/// `tower mcp`: the MCP server over stdio, for an agent that starts it as a subprocess
/// (`claude mcp add jct -- tower mcp`). Logs go to stderr; stdout carries only MCP messages.
struct MCPCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mcp",
        abstract: "Serve the MCP tools (jct_list_tasks, jct_claim_task, …) over stdio for an agent (docs/mcp.md).",
        discussion: """
            Settings as for `tower worker` (DATABASE_URL, JCT_TRACE_ROOT, JCT_ALLOWED_REPO_PREFIXES, \
            JCT_REVIEW_AUTO_APPROVE, …). With keys configured (JCT_API_KEY or TOWER_API_KEYS_FILE), the \
            agent's key is TOWER_MCP_KEY: its scopes decide which tools it may call and its name is the \
            actor of what it does. Without keys, every tool is open.
            """
    )

    @OptionGroup var database: DatabaseOptions
    @OptionGroup var worker: WorkerOptions

    func run() async throws {
        let logger = Logger(label: "tower")
        let environment = ProcessInfo.processInfo.environment
        let workerConfiguration = try worker.configuration(environment: environment)
        let accessConfiguration = try APIOptions.access(environment)
        let access = AccessControl(accessConfiguration)
        var caller = AgentTools.Caller(principal: nil)
        if access.isEnabled {
            guard let key = environment["TOWER_MCP_KEY"], !key.isEmpty else {
                throw CommandError("TOWER_MCP_KEY is not set: with keys configured, the agent needs its key (tower keys add NAME --scope agent --scope read)")
            }
            guard let principal = access.principal(forKey: key) else {
                throw CommandError("TOWER_MCP_KEY is not a configured key (JCT_API_KEY or a key of TOWER_API_KEYS_FILE)")
            }
            caller = AgentTools.Caller(principal: principal)
        }
        let configuration = APIConfiguration(
            access: accessConfiguration,
            policy: PolicyConfig(environmentValue: environment["JCT_ALLOWED_REPO_PREFIXES"]), version: Tower.version,
            traceRoot: workerConfiguration.traceRoot,
            reviewPolicy: ReviewPolicy(autoApprove: workerConfiguration.reviewAutoApprove, verdicts: workerConfiguration.autoApproveVerdicts),
            retry: workerConfiguration.retry, artifactLimit: workerConfiguration.artifactLimit)
        try await database.withDatabase(poolSize: try database.resolvedPoolSize(), logger: logger) { db in
            let tools = AgentTools(
                database: db, engine: LifecycleEngine(database: db, retry: workerConfiguration.retry), configuration: configuration,
                logger: logger)
            let server = await TowerMCP.server(tools: tools, caller: caller, version: Tower.version)
            logger.info("MCP server on stdio", metadata: ["agent": "\(caller.principal?.name ?? "open access")"])
            try await server.start(transport: StdioTransport(logger: logger))
            await server.waitUntilCompleted()
        }
    }
}
