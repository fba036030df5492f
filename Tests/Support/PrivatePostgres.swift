import Foundation
import Spawn

/// A PostgreSQL server of one test's own, for the tests that stop, restart or freeze it: the
/// shared server of scripts/test serves every other test at the same time. Started by
/// scripts/postgres (the same server and settings) on a free port, its data in a folder of its
/// own, destroyed afterwards.
public struct PrivatePostgres: Sendable {
    /// `postgres://tower:tower@127.0.0.1:PORT/tower`.
    public let url: String
    public let port: Int
    let root: String

    /// Starts the server (again, after `stop`).
    public func start() async throws { try await script("start") }

    /// A fast shutdown: the server ends every connection and refuses new ones.
    public func stop() async throws { try await script("stop") }

    /// Freezes the server (SIGSTOP to its postmaster): its kernel still completes a TCP
    /// connection, but nothing answers on it. Connections open before stay served by their
    /// backends, which are other processes.
    public func freeze() throws { kill(try postmaster(), SIGSTOP) }

    /// Undoes `freeze`.
    public func thaw() throws { kill(try postmaster(), SIGCONT) }

    private func postmaster() throws -> pid_t {
        let text = try String(contentsOfFile: root + "/data/postmaster.pid", encoding: .utf8)
        guard let line = text.split(separator: "\n").first, let pid = pid_t(line) else {
            throw PrivatePostgresFailure(message: "no postmaster pid in \(root)/data/postmaster.pid")
        }
        return pid
    }

    func script(_ action: String) async throws {
        let log = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("tower-private-pg-\(port)-\(action).log")
        let environment = ProcessInfo.processInfo.environment.merging(
            ["TOWER_PG_PORT": String(port), "TOWER_PG_ROOT": root]) { _, new in new }
        let process = try ChildProcess(
            [repositoryRoot.appendingPathComponent("scripts/postgres").path, action], environment: environment,
            stdout: .discard, stderr: .file(log))
        let status = await process.wait()
        defer { try? FileManager.default.removeItem(at: log) }
        guard status == .exited(0) else {
            let said = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
            throw PrivatePostgresFailure(message: "scripts/postgres \(action) ended with \(status): \(said)")
        }
    }
}

public struct PrivatePostgresFailure: Error, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}

/// Runs `body` with a PostgreSQL server of its own, started, and destroys it afterwards (a
/// frozen one is thawed first).
public func withPrivatePostgres(_ body: (PrivatePostgres) async throws -> Void) async throws {
    let port = try freeLoopbackPort()
    let server = PrivatePostgres(
        url: "postgres://tower:tower@127.0.0.1:\(port)/tower", port: port,
        root: NSTemporaryDirectory() + "tower-private-pg-\(port)")
    do {
        try await server.start()
        try await body(server)
    } catch {
        try? server.thaw()
        try? await server.script("destroy")
        throw error
    }
    try? server.thaw()
    try await server.script("destroy")
}

/// A TCP port nothing listens on now (the kernel's pick for a socket bound to port 0).
func freeLoopbackPort() throws -> Int {
    let (fd, port) = try loopbackSocket(listening: false)
    close(fd)
    return port
}

/// A socket bound to a free loopback port (the kernel's pick), listening if asked.
public func loopbackSocket(listening: Bool) throws -> (socket: Int32, port: Int) {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw PrivatePostgresFailure(message: "socket: \(String(cString: strerror(errno)))") }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { socketAddress in
            bind(fd, socketAddress, length) == 0 && (!listening || listen(fd, 1) == 0) && getsockname(fd, socketAddress, &length) == 0
        }
    }
    guard bound else {
        let reason = String(cString: strerror(errno))
        close(fd)
        throw PrivatePostgresFailure(message: "cannot bind a loopback socket: \(reason)")
    }
    return (fd, Int(UInt16(bigEndian: address.sin_port)))
}
