import API
import Foundation
import Hummingbird
import Logging
import Storage
import Testing
import TowerTestSupport

/// The limits of the HTTP server, over real sockets against the server `tower serve` runs:
/// headers over the limit (431), bodies over the limit (413), connections that stay idle or
/// whose request stalls are closed. The tests wait for the server's answer or its close, never
/// for a fixed time.
@Suite("HTTP limits")
struct HTTPLimitsTests {
    static let limits = HTTPLimits(maxBodyBytes: 1000, maxHeaderBytes: 2048, readTimeoutSeconds: 1, idleTimeoutSeconds: 1)

    func withServer(_ limits: HTTPLimits = HTTPLimitsTests.limits, _ body: @escaping @Sendable (Int) async throws -> Void) async throws {
        try await withDatabase(.sqlite) { database, _ in
            let logger = quietLogger("tower.http")
            let api = TowerAPI(
                database: database, configuration: APIConfiguration(policy: testConfiguration.policy, limits: limits), logger: logger)
            let (ports, continuation) = AsyncStream<Int>.makeStream()
            let app = Application(
                responder: api, server: HTTPServer.builder(limits, logger: logger),
                configuration: .init(address: .hostname("127.0.0.1", port: 0), serverName: "tower"),
                onServerRunning: { channel in continuation.yield(channel.localAddress?.port ?? 0) }, logger: logger)
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await app.run() }
                var iterator = ports.makeAsyncIterator()
                let port = try #require(await iterator.next())
                try await body(port)
                group.cancelAll()
            }
        }
    }

    @Test("a request within the limits is answered")
    func normal() async throws {
        try await withServer { port in
            let answer = try await RawConnection.exchange(port: port, Array("GET /health HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".utf8))
            #expect(answer.text.hasPrefix("HTTP/1.1 200"), "\(answer.text)")
        }
    }

    @Test("headers over TOWER_MAX_HEADER_BYTES: 431 and the connection closed")
    func headerTooLarge() async throws {
        try await withServer { port in
            let big = String(repeating: "a", count: 3000)
            let answer = try await RawConnection.exchange(port: port, Array("GET /health HTTP/1.1\r\nHost: t\r\nX-Big: \(big)\r\n\r\n".utf8))
            #expect(answer.text.hasPrefix("HTTP/1.1 431"), "\(answer.text)")
            #expect(answer.text.contains(#"{"detail":"Request header fields too large"}"#))
            #expect(answer.closed)
        }
    }

    @Test("a body over TOWER_MAX_BODY_BYTES: 413")
    func bodyTooLarge() async throws {
        try await withServer { port in
            let body = String(repeating: "x", count: 2000)
            let answer = try await RawConnection.exchange(
                port: port,
                Array("POST /tasks/enqueue HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 2000\r\nConnection: close\r\n\r\n\(body)".utf8))
            #expect(answer.text.hasPrefix("HTTP/1.1 413"), "\(answer.text)")
        }
    }

    @Test(
        "a connection is closed when it idles, when its headers stall, and when its body stalls",
        arguments: [
            ("idle", ""), ("keep-alive after an answer", "GET /health HTTP/1.1\r\nHost: t\r\n\r\n"),
            ("headers stall", "GET /health HTTP/1.1\r\nHost: t\r\nX-Slo"),
            ("body stalls", "POST /tasks/enqueue HTTP/1.1\r\nHost: t\r\nContent-Length: 500\r\n\r\n{\"requested_by\":"),
        ])
    func slowClients(_ label: String, _ sent: String) async throws {
        // The idle timeout is long here for the body case, so that only the read timeout can close it.
        var limits = Self.limits
        if label == "body stalls" { limits.idleTimeoutSeconds = 3600 }
        try await withServer(limits) { port in
            let answer = try await RawConnection.exchange(port: port, Array(sent.utf8), giveUpAfter: 60)
            #expect(answer.closed, "\(label): the server closed the connection (\(answer.text))")
            if label == "keep-alive after an answer" { #expect(answer.text.hasPrefix("HTTP/1.1 200")) }
        }
    }

    @Test("a keep-alive connection whose second request's body stalls is closed, after its first was answered")
    func bodyStallsAfterAnAnswer() async throws {
        // The connection's read timer, armed by the first request's head, fires while the second
        // request is under way with a later deadline: it must wait for that one, then close.
        var limits = Self.limits
        limits.idleTimeoutSeconds = 3600
        try await withServer(limits) { port in
            let answer = try await RawConnection.exchange(
                port: port, Array("GET /health HTTP/1.1\r\nHost: t\r\n\r\n".utf8), until: "}",
                then: Array("POST /tasks/enqueue HTTP/1.1\r\nHost: t\r\nContent-Length: 500\r\n\r\n{\"requested_by\":".utf8), giveUpAfter: 60)
            #expect(answer.text.hasPrefix("HTTP/1.1 200"), "\(answer.text)")
            #expect(answer.text.components(separatedBy: "HTTP/1.1 ").count == 2, "one answer only: \(answer.text)")
            #expect(answer.closed, "the server closed the connection (\(answer.text))")
        }
    }
}
