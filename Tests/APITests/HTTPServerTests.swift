import API
import Foundation
import Hummingbird
import Logging
import NIOCore
import Testing
import TowerTestSupport

/// Where the API's handlers run: on their connection's event loop (`HTTPServer`), except the
/// routes that touch files (`Route.blocking`), which run on Swift's global pool. Over a real
/// socket against the server `tower serve` runs, with a responder that reports what it sees.
@Suite("HTTP server threads")
struct HTTPServerTests {
    /// Hummingbird's basic context plus the connection's channel.
    struct ChannelContext: RequestContext {
        var coreContext: CoreRequestContextStorage
        let channel: any Channel
        init(source: ApplicationRequestContextSource) {
            coreContext = .init(source: source)
            channel = source.channel
        }
    }

    /// Serves `router` with the API's HTTP server and answers `GET path` with its body.
    func answer(_ router: Hummingbird.Router<ChannelContext>, _ path: String) async throws -> String {
        let logger = quietLogger("tower.http")
        let (ports, continuation) = AsyncStream<Int>.makeStream()
        let app = Application(
            router: router, server: HTTPServer.builder(HTTPLimits(), logger: logger),
            configuration: .init(address: .hostname("127.0.0.1", port: 0), serverName: "tower"),
            onServerRunning: { channel in continuation.yield(channel.localAddress?.port ?? 0) }, logger: logger)
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await app.run() }
            var iterator = ports.makeAsyncIterator()
            let port = try #require(await iterator.next())
            let answer = try await RawConnection.request(port: port, "GET", path)
            group.cancelAll()
            #expect(answer.status == 200, "\(answer.text)")
            return String(answer.text.split(separator: "\r\n\r\n", maxSplits: 1).last ?? "")
        }
    }

    @Test("a handler runs on its connection's event loop, and comes back to it after work on another thread")
    func handlerOnItsLoop() async throws {
        let router = Hummingbird.Router(context: ChannelContext.self)
        router.get("/where") { _, context -> String in
            let before = context.channel.eventLoop.inEventLoop
            // Resumed from a thread of its own, as SQLite's writer resumes an enqueue.
            await withCheckedContinuation { (resumed: CheckedContinuation<Void, Never>) in Thread.detachNewThread { resumed.resume() } }
            return "before: \(before), after: \(context.channel.eventLoop.inEventLoop)"
        }
        #expect(try await answer(router, "/where") == "before: true, after: true")
    }

    /// What the `blocking` rule leans on: work a handler starts in a task of its own (the MCP
    /// routes' sessions, the console's log follower) does not inherit the loop (SE-0417: an
    /// unstructured task takes no executor preference from its creator), while a child task does.
    @Test("a task a handler starts runs off the event loop; a child task stays on it")
    func startedTasksOffTheLoop() async throws {
        let router = Hummingbird.Router(context: ChannelContext.self)
        router.get("/where") { _, context -> String in
            let loop = context.channel.eventLoop
            let unstructured = await Task { loop.inEventLoop }.value
            let child = await withTaskGroup(of: Bool.self) { group in
                group.addTask { loop.inEventLoop }
                return await group.next() ?? false
            }
            return "task on the loop: \(unstructured), child on the loop: \(child)"
        }
        #expect(try await answer(router, "/where") == "task on the loop: false, child on the loop: true")
    }

    @Test("a route that touches files runs off the event loop; the others on it")
    func blockingRoutesOffTheLoop() async throws {
        let router = Hummingbird.Router(context: ChannelContext.self)
        router.get("/where") { _, context -> String in
            let loop = context.channel.eventLoop
            var api = API.Router()
            api.add("GET", "/files", summary: "reads files", tag: "test", access: .open, blocking: true) { _ in
                APIResponse(status: 200, body: Array("\(loop.inEventLoop)".utf8))
            }
            api.add("GET", "/rows", summary: "reads rows", tag: "test", access: .open) { _ in
                APIResponse(status: 200, body: Array("\(loop.inEventLoop)".utf8))
            }
            var results: [String] = []
            for path in ["/files", "/rows"] {
                var pattern = ""
                let response = try await api.respond(
                    to: APIRequest(method: "GET", path: path, query: nil, headers: [], body: []), host: nil, pattern: &pattern)
                results.append("\(path) on the loop: \(String(decoding: response.body, as: UTF8.self))")
            }
            return results.joined(separator: ", ")
        }
        #expect(try await answer(router, "/where") == "/files on the loop: false, /rows on the loop: true")
    }
}
