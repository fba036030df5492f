import Foundation
import Spawn
import Storage
import Testing
import TowerTestSupport

/// `TOWER_SQLITE_WRITER_CPU`: SQLite's writer thread on a CPU of its own, the event loops on the
/// others (docs/operations.md). Read from `/proc/<pid>/task/<tid>/status`, where the kernel
/// writes each thread's mask, not through the code that sets it.
extension CommandLineTests {
    struct ThreadPlacement {
        let tid: Int
        let name: String
        let cpus: String
    }

    /// Every thread of process `pid`, oldest first (thread ids grow).
    func threads(of pid: pid_t) throws -> [ThreadPlacement] {
        try FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task").compactMap { entry -> ThreadPlacement? in
            guard let tid = Int(entry) else { return nil }
            let folder = "/proc/\(pid)/task/\(entry)"
            let name = try String(contentsOfFile: "\(folder)/comm", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
            let status = try String(contentsOfFile: "\(folder)/status", encoding: .utf8)
            let line = status.split(separator: "\n").first { $0.hasPrefix("Cpus_allowed_list:") } ?? ""
            let cpus = line.dropFirst("Cpus_allowed_list:".count).trimmingCharacters(in: .whitespaces)
            return ThreadPlacement(tid: tid, name: name, cpus: cpus)
        }.sorted { $0.tid < $1.tid }
    }

    /// The event loops themselves: the oldest thread of each loop name (a thread a loop starts
    /// without naming it, Dispatch's, carries the loop's name too, and is younger).
    func eventLoops(of pid: pid_t) throws -> [ThreadPlacement] {
        var seen: Set<String> = []
        return try threads(of: pid).filter { ($0.name.hasPrefix("NIO-SGLTN-") || $0.name.hasPrefix("NIO-ELT-")) && seen.insert($0.name).inserted }
    }

    @Test("TOWER_SQLITE_WRITER_CPU runs SQLite's writer on that CPU alone and every event loop on the others, in `tower api` and `tower serve --no-worker`, and enqueues go through",
        arguments: [(["api"], nil), (["serve", "--no-worker"], nil), (["serve", "--no-worker"], "2")] as [([String], String?)])
    func writerOnItsOwnCPU(_ command: [String], _ httpThreads: String?) async throws {
        let allowed = try CPUSet.ofCurrentThread()
        guard let writer = allowed.cpus.last, allowed.cpus.count >= 2 else {
            // A machine of one CPU: nothing to give the writer alone, and `tower` says so.
            try await withSetup(.sqlite) { setup in
                var environment = setup.environment
                environment["TOWER_SQLITE_WRITER_CPU"] = "\(allowed.cpus.first ?? 0)"
                let outcome = try await TowerBinary.run(command + ["--port", "0"], environment: environment, timeout: 30)
                #expect(outcome.status != 0 && outcome.stderr.contains("needs two CPUs or more"), "\(outcome)")
            }
            return
        }
        let others = CPUSet(allowed.cpus.filter { $0 != writer })
        var environment = ["TOWER_SQLITE_WRITER_CPU": "\(writer)"]
        environment["TOWER_HTTP_THREADS"] = httpThreads
        try await withSetup(.sqlite) { setup in
            #expect(try await tower(setup, "migrate").status == 0)
            try await withAPIProcess(setup, command: command[0], options: Array(command.dropFirst()), environment: environment) { port, log, api in
                try await log.require("the start-up line names the placement") {
                    $0.contains("serving") && $0.contains("sqlite_writer_cpu=\(writer) (event loops on \(others))")
                }
                let threads = try threads(of: api.pid)
                let writers = threads.filter { $0.name == "sqlite-writer" }
                #expect(writers.count == 1 && writers.first?.cpus == "\(writer)", "\(threads)")
                let loops = try eventLoops(of: api.pid)
                // One shared group; with TOWER_HTTP_THREADS the HTTP server's own loops beside it.
                #expect(loops.contains { $0.name.hasPrefix("NIO-SGLTN-") }, "\(threads)")
                #expect(loops.contains { $0.name.hasPrefix("NIO-ELT-") } == (httpThreads != nil), "\(threads)")
                for loop in loops { #expect(loop.cpus == "\(others)", "\(loop.name) runs on \(loop.cpus): \(threads)") }
                // The readers keep every CPU: only the loops and the writer are placed.
                #expect(threads.filter { $0.name == "sqlite-reader" }.allSatisfy { $0.cpus == "\(allowed)" }, "\(threads)")
                let body = #"{"requested_by":{"kind":"system","id":"t"},"objective":"Placed","operation":"docs","target":{"repo":"myorg/app"}}"#
                for _ in 0..<3 {
                    let answer = try await RawConnection.request(
                        port: port, "POST", "/tasks/enqueue", headers: [("Content-Type", "application/json")], body: body)
                    #expect(answer.status == 200 || answer.status == 201, "\(answer)")
                }
            }
        }
    }

    @Test("a TOWER_SQLITE_WRITER_CPU that is not a CPU of the process, set for PostgreSQL, or set for a process with a worker, stops it with a message that names it",
        arguments: [
            (["api"], Dialect.sqlite, "x", "not 'x'"), (["serve", "--no-worker"], .sqlite, "4096", "not '4096'"),
            (["api"], .sqlite, "-1", "not '-1'"), (["api"], .postgres, "0", "the database is PostgreSQL"),
            (["serve"], .sqlite, "0", "only serves the API"),
        ])
    func badWriterCPU(_ command: [String], _ dialect: Dialect, _ value: String, _ says: String) async throws {
        try await withSetup(dialect) { setup in
            var environment = setup.environment
            environment["TOWER_SQLITE_WRITER_CPU"] = value
            let outcome = try await TowerBinary.run(command + ["--port", "0"], environment: environment, timeout: 30)
            #expect(!outcome.timedOut && !outcome.signalled, "\(outcome)")
            #expect(outcome.status != 0, "\(outcome)")
            #expect(outcome.stderr.contains("TOWER_SQLITE_WRITER_CPU") && outcome.stderr.contains(says), "\(outcome)")
        }
    }
}
