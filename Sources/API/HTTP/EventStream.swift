/// Server-sent event streams: the MCP transports' and the console's live trace log.
enum EventStream {
    /// An event stream as sent: the events of `source`, and a comment every 15 seconds while it is
    /// quiet, so that a client that went away is noticed (the write fails) and its session ends.
    /// `closed` runs when the stream ends, whichever side ends it.
    static func keptAlive<S: AsyncSequence & Sendable>(_ source: S, closed: (@Sendable () async -> Void)? = nil)
        -> AsyncThrowingStream<[UInt8], any Error> where S.Element == [UInt8]
    {
        AsyncThrowingStream { continuation in
            let pump = Task {
                do {
                    for try await chunk in source { continuation.yield(chunk) }
                    continuation.finish()
                } catch { continuation.finish(throwing: error) }
            }
            let keepalive = Task {
                while !Task.isCancelled {
                    try await Task.sleep(for: .seconds(15))
                    continuation.yield(Array(": keepalive\r\n\r\n".utf8))
                }
            }
            continuation.onTermination = { _ in
                pump.cancel()
                keepalive.cancel()
                if let closed { Task { await closed() } }
            }
        }
    }

    /// An event stream response: not cached, not buffered by a proxy.
    static func response(_ stream: AsyncThrowingStream<[UInt8], any Error>) -> APIResponse {
        APIResponse(
            status: 200, headers: [("content-type", "text/event-stream"), ("cache-control", "no-store"), ("x-accel-buffering", "no")],
            stream: stream)
    }

    /// One event: its `event:` name, its `id:` and a `data:` line per line of `data`.
    static func event(_ name: String, id: String? = nil, data: String) -> [UInt8] {
        var text = "event: \(name)\n"
        if let id { text += "id: \(id)\n" }
        for line in data.split(separator: "\n", omittingEmptySubsequences: false) {
            text += "data: \(line.filter { $0 != "\r" })\n"
        }
        return Array((text + "\n").utf8)
    }
}
