import Foundation
import Spawn
import Storage
import Testing
import TowerJSON
import TowerTestSupport

/// `tower keys` and a running `tower api` that re-reads the keys file on SIGHUP: the operator's
/// way to add, rotate and revoke keys.
extension CommandLineTests {
    /// Starts `tower ARGUMENTS` in the background, its log (level info) in `log`.
    func start(_ setup: Setup, _ arguments: [String], environment: [String: String] = [:], log: LogFile) throws -> ChildProcess {
        try TowerBinary.start(
            arguments, environment: setup.environment.merging(["LOG_LEVEL": "info"]) { _, new in new }.merging(environment) { _, new in new },
            stderr: log.url)
    }

    /// A new log file for a `tower` process, beside the setup's trace root.
    func logFile(_ setup: Setup, _ name: String) throws -> LogFile {
        try LogFile(setup.traceRoot.deletingLastPathComponent().appendingPathComponent("\(name)-\(UUID().uuidString).log"))
    }

    /// SIGTERM, then up to 30 s for a clean exit; a process still running then is killed and the
    /// answer is false (a hang fails the test instead of stopping the suite).
    func stop(_ process: ChildProcess) async throws -> Bool {
        process.send(SIGTERM)
        let status = await process.wait(timeout: 30)
        if status == nil {
            process.send(SIGKILL)
            _ = await process.wait()
        }
        return status == .exited(0)
    }

    /// `tower api` (or `command`) on a free port while `body` runs (its port, log and process); then SIGTERM
    /// must stop it cleanly.
    func withAPIProcess(_ setup: Setup, command: String = "api", options: [String] = [], environment: [String: String] = [:],
        _ body: (_ port: Int, _ log: LogFile, _ api: ChildProcess) async throws -> Void) async throws
    {
        let (fd, port) = try occupiedPort()
        close(fd)
        let log = try logFile(setup, "api")
        defer { try? FileManager.default.removeItem(at: log.url) }
        let api = try start(setup, [command] + options + ["--port", String(port)], environment: environment, log: log)
        do {
            try await log.require("the API says it serves") { $0.contains("serving") && $0.contains(":\(port)") }
            try await body(port, log, api)
        } catch {
            api.send(SIGKILL)
            throw error
        }
        #expect(try await stop(api), "SIGTERM stops the API cleanly")
    }

    @Test("a worker's /metrics takes the same keys: a read key, or none with TOWER_METRICS_PUBLIC=true", arguments: [false, true])
    func workerMetrics(_ metricsPublic: Bool) async throws {
        try await withSetup(.sqlite) { setup in
            let folder = setup.traceRoot.deletingLastPathComponent()
            let keysFile = folder.appendingPathComponent("keys-\(UUID().uuidString)")
            let log = try logFile(setup, "worker")
            defer {
                try? FileManager.default.removeItem(at: keysFile)
                try? FileManager.default.removeItem(at: log.url)
            }
            let setup = Setup(
                environment: setup.environment.merging(["TOWER_API_KEYS_FILE": keysFile.path, "TOWER_METRICS_PUBLIC": "\(metricsPublic)"]) { _, new in new },
                traceRoot: setup.traceRoot)
            let reader = try await tower(setup, "keys", "add", "scraper", "--scope", "read").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(try await tower(setup, "migrate").status == 0)
            let (fd, port) = try occupiedPort()
            close(fd)
            let worker = try start(setup, ["worker", "--metrics-port", String(port)], log: log)
            defer { worker.send(SIGKILL) }
            try await log.require("the worker serves /metrics") { $0.contains("Server started and listening on 0.0.0.0:\(port)") }
            let open = try await RawConnection.request(port: port, "GET", "/metrics")
            #expect(open.status == (metricsPublic ? 200 : 401), "\(open.text)")
            let keyed = try await RawConnection.request(port: port, "GET", "/metrics", headers: [("Authorization", "Bearer \(reader)")])
            #expect(keyed.status == 200 && keyed.text.lowercased().contains("content-type: text/plain; version=0.0.4"), "\(keyed.text.prefix(300))")
            #expect(try await stop(worker))
        }
    }

    @Test("tower keys add, list and revoke; a running API picks the file up on SIGHUP and keeps its keys when the file is wrong")
    func keysAndReload() async throws {
        try await withSetup(.sqlite) { setup in
            let keysFile = setup.traceRoot.deletingLastPathComponent().appendingPathComponent("keys-\(UUID().uuidString)")
            defer { try? FileManager.default.removeItem(at: keysFile) }
            var setup = setup
            setup = Setup(environment: setup.environment.merging(["TOWER_API_KEYS_FILE": keysFile.path]) { _, new in new }, traceRoot: setup.traceRoot)

            let none = try await tower(setup, "keys", "list")
            #expect(none.status == 0 && none.stdout.isEmpty, "\(none)")
            #expect(none.stderr.contains("no keys: \(keysFile.path) does not exist yet"), "a missing file is named: \(none)")

            let added = try await tower(setup, "keys", "add", "reader", "--scope", "read")
            #expect(added.status == 0, "\(added)")
            let reader = added.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(reader.hasPrefix("tower_"), "the key is printed once on stdout: \(added)")
            #expect(added.stderr.contains("shown only this once"))
            let stored = try String(contentsOf: keysFile, encoding: .utf8)
            #expect(!stored.contains(reader), "only the digest is stored")
            #expect(stored.contains("reader read sha256:"))
            let mode = try FileManager.default.attributesOfItem(atPath: keysFile.path)[.posixPermissions] as? Int
            #expect(mode == 0o600, "readable by its owner only")

            #expect(try await tower(setup, "keys", "add", "reader", "--scope", "read").status == 4, "a name is used once")
            let badScope = try await tower(setup, "keys", "add", "x", "--scope", "everything")
            #expect(badScope.status != 0 && badScope.stderr.contains("unknown scope 'everything'"), "\(badScope)")
            #expect(try await tower(setup, "keys", "add", "y").status != 0, "a key needs a scope")
            let listed = try await tower(setup, "keys", "list")
            #expect(listed.stdout == "reader\tread\t\n", "\(listed)")

            #expect(try await tower(setup, "migrate").status == 0)
            try await withAPIProcess(setup) { port, log, api in
                @Sendable func get(_ key: String?) async throws -> Int {
                    let headers = key.map { [("Authorization", "Bearer \($0)")] } ?? []
                    return try await RawConnection.request(port: port, "GET", "/tasks", headers: headers).status
                }
                #expect(try await get(reader) == 200)
                #expect(try await get(nil) == 401)

                // Rotate: a new key for the same client, the old one revoked; SIGHUP applies both.
                let rotated = try await tower(setup, "keys", "add", "reader-2", "--scope", "read", "--scope", "write")
                let newReader = rotated.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
                #expect(try await tower(setup, "keys", "revoke", "reader").status == 0)
                #expect(try await tower(setup, "keys", "revoke", "reader").status == 3, "gone already")
                api.send(SIGHUP)
                try await log.require("the keys are reloaded") { $0.contains("API keys reloaded") }
                #expect(try await get(reader) == 401, "the revoked key is refused")
                #expect(try await get(newReader) == 200)

                // A file that no longer parses leaves the keys in force.
                try (try String(contentsOf: keysFile, encoding: .utf8) + "broken line\n").write(to: keysFile, atomically: true, encoding: .utf8)
                api.send(SIGHUP)
                let failed = try await log.require("the failed reload is logged") { $0.contains("API keys not reloaded") }
                #expect(failed.contains("line 4: expected NAME SCOPES"), "the log names the line: \(failed)")
                #expect(try await get(newReader) == 200)
            }
        }
    }

    @Test(
        "a wrong access or limit setting stops the API at start, naming it",
        arguments: [
            ("TOWER_API_KEYS_FILE", "/nonexistent/keys"), ("TOWER_RATE_LIMIT", "fast"), ("TOWER_METRICS_PUBLIC", "maybe"),
            ("TOWER_MAX_BODY_BYTES", "-1"), ("TOWER_MAX_HEADER_BYTES", "big"), ("TOWER_READ_TIMEOUT", "0"), ("TOWER_IDLE_TIMEOUT", "1m"),
            ("TOWER_READ_TIMEOUT", "9223372036854775807"), ("TOWER_MAX_BODY_BYTES", "9223372036854775807"),
            ("TOWER_CORS_ORIGINS", "dash.example.com/app"), ("TOWER_HTTP_THREADS", "0"), ("TOWER_HTTP_THREADS", "two"),
        ])
    func badAccessConfiguration(_ name: String, _ value: String) async throws {
        try await withSetup(.sqlite) { setup in
            var environment = setup.environment
            environment[name] = value
            let outcome = try await TowerBinary.run(["api", "--port", "1"], environment: environment, timeout: 30)
            #expect(!outcome.timedOut && !outcome.signalled, "\(outcome)")
            #expect(outcome.status == 1, "\(outcome)")
            #expect(outcome.stderr.contains(name), "the message names the setting: \(outcome)")
        }
    }

    @Test("a keys file with a wrong line stops the API at start with the file and line")
    func badKeysFile() async throws {
        try await withSetup(.sqlite) { setup in
            let keysFile = setup.traceRoot.deletingLastPathComponent().appendingPathComponent("keys-\(UUID().uuidString)")
            defer { try? FileManager.default.removeItem(at: keysFile) }
            try "# keys\nalice reed sha256:\(String(repeating: "0", count: 64))\n".write(to: keysFile, atomically: true, encoding: .utf8)
            var environment = setup.environment
            environment["TOWER_API_KEYS_FILE"] = keysFile.path
            let outcome = try await TowerBinary.run(["serve", "--port", "1"], environment: environment, timeout: 30)
            #expect(outcome.status == 1, "\(outcome)")
            #expect(outcome.stderr.contains("\(keysFile.path) line 2: unknown scope 'reed'"), "\(outcome)")
        }
    }
}
