import Foundation

/// A blocking TCP client on a thread of its own (so it never holds a thread of the concurrency
/// pool the server answers on): sends bytes, then reads until the server closes or `giveUpAfter`.
public enum RawConnection {
    public struct Answer: Sendable {
        public var text: String
        /// The server closed the connection (end of stream or reset) before `giveUpAfter`.
        public var closed: Bool
        /// The status code of the first response, 0 when none came.
        public var status: Int {
            let parts = text.split(separator: " ", maxSplits: 2)
            return parts.count > 1 ? Int(parts[1]) ?? 0 : 0
        }
    }

    /// One request on a connection of its own (`Connection: close`), answered in full.
    public static func request(port: Int, _ method: String, _ path: String, headers: [(String, String)] = [], body: String = "")
        async throws -> Answer
    {
        var head = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: \(body.utf8.count)\r\n"
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        return try await exchange(port: port, Array((head + "\r\n" + body).utf8))
    }

    public static func exchange(port: Int, _ bytes: [UInt8], giveUpAfter seconds: Int = 30) async throws -> Answer {
        try await onThread(port: port, [(bytes, nil)], seconds: seconds)
    }

    /// Sends `first`, reads until the answer so far holds `marker` (the end of a first response on
    /// a keep-alive connection, say), sends `second`, then reads until the server closes or
    /// `giveUpAfter`. The answer holds everything read.
    public static func exchange(port: Int, _ first: [UInt8], until marker: String, then second: [UInt8], giveUpAfter seconds: Int = 30)
        async throws -> Answer
    {
        try await onThread(port: port, [(first, marker), (second, nil)], seconds: seconds)
    }

    public struct SocketError: Error { public let message: String }

    private static func onThread(port: Int, _ steps: [(bytes: [UInt8], until: String?)], seconds: Int) async throws -> Answer {
        try await withCheckedThrowingContinuation { continuation in
            Thread.detachNewThread {
                continuation.resume(with: Result { try blockingExchange(port: port, steps, seconds: seconds) })
            }
        }
    }

    /// Each step's bytes sent in turn; after a step with a marker, the answer is read until it holds
    /// the marker (or the server closes first, which ends the exchange); after the last step, until
    /// the server closes or `seconds` pass without a byte.
    static func blockingExchange(port: Int, _ steps: [(bytes: [UInt8], until: String?)], seconds: Int) throws -> Answer {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw SocketError(message: "socket") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw SocketError(message: "connect: \(String(cString: strerror(errno)))") }
        var timeout = timeval(tv_sec: seconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        for step in steps {
            if !step.bytes.isEmpty {
                let sent = step.bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                guard sent == step.bytes.count else { throw SocketError(message: "send: \(String(cString: strerror(errno)))") }
            }
            while step.until.map({ !String(decoding: received, as: UTF8.self).contains($0) }) ?? true {
                let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                if count > 0 {
                    received += buffer[0..<count]
                    continue
                }
                let closed = count == 0 || errno == ECONNRESET
                return Answer(text: String(decoding: received, as: UTF8.self), closed: closed)
            }
        }
        return Answer(text: String(decoding: received, as: UTF8.self), closed: false)
    }
}
