import Foundation
import NIOCore
import Spawn
import Testing
import TowerTestSupport

/// `TOWER_HTTP_THREADS`: how many event loops the API's HTTP server runs (one fewer than the
/// cores by default, docs/operations.md).
extension CommandLineTests {
    /// The threads of process `pid` whose name says they are an event loop of a group the process
    /// made itself (NIO names them `NIO-ELT-<group>-#<n>`; its shared default group's are
    /// `NIO-SGLTN-…`, which PostgresNIO uses).
    func eventLoopThreads(of pid: pid_t) throws -> Int {
        let tasks = try FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")
        return try tasks.filter { task in
            try String(contentsOfFile: "/proc/\(pid)/task/\(task)/comm", encoding: .utf8).hasPrefix("NIO-ELT-")
        }.count
    }

    /// Under SWIFTNIO_STRICT a use of a loop after it was shut down crashes the process, which
    /// `withAPIProcess` reports as an unclean stop (the server's loops outlive it for that reason,
    /// `ServeCommand.serve`).
    @Test("TOWER_HTTP_THREADS sets the API's event loops, one fewer than the cores (at least one) when unset",
        arguments: [nil, "3"])
    func httpThreads(_ setting: String?) async throws {
        let expected = setting.flatMap { Int($0) } ?? max(1, System.coreCount - 1)
        var environment = ["SWIFTNIO_STRICT": "1"]
        environment["TOWER_HTTP_THREADS"] = setting
        try await withSetup(.sqlite) { setup in
            #expect(try await tower(setup, "migrate").status == 0)
            try await withAPIProcess(setup, environment: environment) { port, log, api in
                try await log.require("the start-up line names them") { $0.contains("serving") && $0.contains("http_threads=\(expected)") }
                #expect(try eventLoopThreads(of: api.pid) == expected)
                // Four connections at once, all answered (one loop serves them all by default here).
                try await withThrowingTaskGroup(of: Int.self) { group in
                    for _ in 0..<4 { group.addTask { try await RawConnection.request(port: port, "GET", "/health").status } }
                    for try await status in group { #expect(status == 200) }
                }
            }
        }
    }
}
