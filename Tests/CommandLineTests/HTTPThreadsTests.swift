import Foundation
import NIOCore
import Spawn
import Testing
import TowerTestSupport

/// `TOWER_WORKER_THREADS` and `TOWER_API_THREADS`: how many event loops a worker process and an
/// api or serve process run Swift concurrency on (`tower api` its HTTP server too);
/// `TOWER_HTTP_THREADS`: loops of its own for the HTTP server (docs/operations.md).
extension CommandLineTests {
    /// The event loops of process `pid` in groups it made itself (NIO names their threads
    /// `NIO-ELT-<group>-#<n>`; its shared default group's are `NIO-SGLTN-…`, which PostgresNIO
    /// uses, and on which a worker process runs). Counted by distinct name: a thread a loop starts
    /// without naming it (Dispatch's) carries the loop's name too.
    func eventLoopThreads(of pid: pid_t, prefix: String = "NIO-ELT-") throws -> Int {
        let tasks = try FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")
        return try Set(tasks.map { try String(contentsOfFile: "/proc/\(pid)/task/\($0)/comm", encoding: .utf8) }).filter {
            $0.hasPrefix(prefix)
        }.count
    }

    @Test("TOWER_WORKER_THREADS sets the event loops a worker process runs on, one when unset", arguments: [nil, "2"])
    func workerThreads(_ setting: String?) async throws {
        let expected = setting.flatMap { Int($0) } ?? 1
        try await withSetup(.sqlite) { setup in
            #expect(try await tower(setup, "migrate").status == 0)
            let log = try logFile(setup, "worker")
            defer { try? FileManager.default.removeItem(at: log.url) }
            var environment = ["LOG_FORMAT": "json"]
            environment["TOWER_WORKER_THREADS"] = setting
            let worker = try start(setup, ["worker", "--poll-interval", "0.2"], environment: environment, log: log)
            try await log.require("the start-up line names them") {
                $0.contains(#""concurrency":"event loops""#) && $0.contains(#""threads":"\#(expected)""#)
            }
            try await log.require("the worker runs") { $0.contains(#""message":"worker started""#) }
            #expect(try eventLoopThreads(of: worker.pid, prefix: "NIO-SGLTN-") == expected)
            #expect(try await stop(worker), "SIGTERM ends the worker cleanly")
        }
    }

    @Test("TOWER_API_THREADS sets the event loops `tower api` runs Swift concurrency and its HTTP server on (one fewer than the cores when unset) and `tower serve` runs Swift concurrency on (one when unset), and an enqueue goes through them",
        arguments: [("api", Dialect.sqlite, nil), ("api", .postgres, nil), ("api", .postgres, "2"), ("serve", .sqlite, nil)])
    func apiThreads(_ command: String, _ dialect: Dialect, _ setting: String?) async throws {
        let apiOnly = command == "api"
        let expected = setting.flatMap { Int($0) } ?? (apiOnly ? max(1, System.coreCount - 1) : 1)
        var environment: [String: String] = [:]
        environment["TOWER_API_THREADS"] = setting
        try await withSetup(dialect) { setup in
            #expect(try await tower(setup, "migrate").status == 0)
            try await withAPIProcess(setup, command: command, environment: environment) { port, log, api in
                try await log.require("the start-up line names them") {
                    $0.contains("serving") && $0.contains("concurrency=event loops") && $0.contains("api_threads=\(expected)")
                        && $0.contains(apiOnly ? "http_loops=shared with concurrency" : "http_loops=own")
                }
                #expect(try eventLoopThreads(of: api.pid, prefix: "NIO-SGLTN-") == expected)
                // `tower api` makes no loops for its HTTP server; `tower serve` does, beside its worker.
                #expect(try eventLoopThreads(of: api.pid) == (apiOnly ? 0 : max(1, System.coreCount - 1)))
                let body = #"{"requested_by":{"kind":"system","id":"t"},"objective":"Through the loops","operation":"docs","target":{"repo":"myorg/app"}}"#
                let answer = try await RawConnection.request(
                    port: port, "POST", "/tasks/enqueue", headers: [("Content-Type", "application/json")], body: body)
                #expect(answer.status == 200 || answer.status == 201, "\(answer)")
            }
        }
    }

    @Test("a wrong TOWER_API_THREADS stops `tower api` and `tower serve` with a message that names it",
        arguments: [("api", "0"), ("serve", "many")])
    func badAPIThreads(_ command: String, _ value: String) async throws {
        try await withSetup(.sqlite) { setup in
            var environment = setup.environment
            environment["TOWER_API_THREADS"] = value
            let outcome = try await TowerBinary.run([command, "--port", "0"], environment: environment, timeout: 30)
            #expect(!outcome.timedOut && !outcome.signalled, "\(outcome)")
            #expect(outcome.status != 0, "\(outcome)")
            #expect(outcome.stderr.contains("TOWER_API_THREADS"), "\(outcome)")
        }
    }

    /// Under SWIFTNIO_STRICT a use of a loop after it was shut down crashes the process, which
    /// `withAPIProcess` reports as an unclean stop (the server's loops outlive it for that reason,
    /// `ServeCommand.serve`).
    @Test("TOWER_HTTP_THREADS gives the HTTP server event loops of its own, in `tower serve` one fewer than the cores when unset",
        arguments: [("api", "3"), ("serve", nil), ("serve", "3")])
    func httpThreads(_ command: String, _ setting: String?) async throws {
        let expected = setting.flatMap { Int($0) } ?? max(1, System.coreCount - 1)
        var environment = ["SWIFTNIO_STRICT": "1"]
        environment["TOWER_HTTP_THREADS"] = setting
        try await withSetup(.sqlite) { setup in
            #expect(try await tower(setup, "migrate").status == 0)
            try await withAPIProcess(setup, command: command, environment: environment) { port, log, api in
                try await log.require("the start-up line names them") {
                    // Swift concurrency keeps its one loop then, in `tower api` as in `tower serve`.
                    $0.contains("serving") && $0.contains("http_threads=\(expected)") && $0.contains("http_loops=own")
                        && $0.contains("api_threads=1")
                }
                #expect(try eventLoopThreads(of: api.pid) == expected)
                // Four connections at once, all answered.
                try await withThrowingTaskGroup(of: Int.self) { group in
                    for _ in 0..<4 { group.addTask { try await RawConnection.request(port: port, "GET", "/health").status } }
                    for try await status in group { #expect(status == 200) }
                }
            }
        }
    }
}
