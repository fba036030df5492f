import Foundation
import MCP
import TowerJSON

/// The MCP server agents connect to, on modelcontextprotocol/swift-sdk: a server named `jct`
/// (the legacy name, so client configurations keep working) whose tools are `AgentTools`. Each
/// reply is the legacy JSON envelope as text content, as FastMCP returned a tool's string; a
/// refusal is an envelope with `"success":false`, not an MCP error, as before.
public enum TowerMCP {
    public static let instructions = """
        Control Tower (JCT): claim tasks from the queue, read their context and constraints, do the work, \
        report artifacts and complete the task. Every call naming a task you claimed renews its lease \
        (jct_heartbeat does only that); a claim left alone past the task's time budget is rescued. \
        Everything is audited under your key's name.
        """

    /// A server for one connection, whose every call is made as `caller`.
    public static func server(tools: AgentTools, caller: AgentTools.Caller, version: String) async -> Server {
        let server = Server(
            name: "jct", version: version, title: "Control Tower", instructions: instructions,
            capabilities: .init(tools: .init(listChanged: false)))
        let listed = AgentTools.catalog.map { tool in
            Tool(name: tool.name, description: tool.description, inputSchema: value(tool.inputSchema))
        }
        await server.withMethodHandler(ListTools.self) { _ in .init(tools: listed) }
        await server.withMethodHandler(CallTool.self) { call in
            var arguments = JSONObject()
            for (name, argument) in call.arguments ?? [:] { arguments[name] = json(argument) }
            let reply = await tools.call(call.name, arguments: arguments, caller: caller)
            return .init(content: [.text(text: String(decoding: reply.bytes(), as: UTF8.self), annotations: nil, _meta: nil)], isError: false)
        }
        return server
    }

    /// The SDK's `Value` for one of ours (through JSON text: one definition of each format).
    static func value(_ json: JSONValue) -> Value {
        (try? JSONDecoder().decode(Value.self, from: Data(json.bytes()))) ?? .null
    }

    static func json(_ value: Value) -> JSONValue {
        guard let data = try? JSONEncoder().encode(value), let parsed = try? JSONParser.parse(bytes: Array(data)) else { return .null }
        return parsed
    }
}
