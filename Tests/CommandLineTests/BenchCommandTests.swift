import Foundation
import Spawn
import Testing
import TowerTestSupport

/// `tower bench` as docs/benchmarks.md runs it, small: it prints figures (never asserted as times).
/// A debug build on a machine the whole suite shares runs it many times slower than alone (the
/// PostgreSQL case once went past two minutes in CI): its timeout is for a hang, not a slow run.
extension CommandLineTests {
    static let benchTimeout: Double = 400

    /// The lines that start with `prefix`. A function rather than a closure written beside the
    /// expectations' closures of the same type: Swift 6.3 can give both one symbol, and the test
    /// then runs an expectation's closure in its place (scripts/check-closures, docs/testing.md).
    static func lines(_ lines: [String], startingWith prefix: String) -> [String] { lines.filter { $0.hasPrefix(prefix) } }

    @Test("tower bench --mode burn-down --ceiling drains a backlog with worker processes and prints its figures beside the ceiling",
        arguments: Dialect.allCases)
    func benchBurnDown(_ dialect: Dialect) async throws {
        try await withSetup(dialect) { setup in
            var arguments = ["bench", "--mode", "burn-down", "--tasks", "40", "--workers", "2", "--concurrency", "2", "--path", "storage", "--ceiling",
                "--idle-samples", "5", "--trace-samples", "20", "--trace-root", setup.traceRoot.path]
            if dialect == .postgres, let url = setup.environment["DATABASE_URL"] { arguments += ["--database-url", url] }
            let outcome = try await TowerBinary.run(arguments, environment: setup.environment, timeout: Self.benchTimeout)
            #expect(outcome.status == 0, "\(outcome)")
            let lines = outcome.stdout.split(separator: "\n").map(String.init)
            #expect(lines.contains { $0.hasPrefix("burn-down:") && $0.contains("2 workers × 2 slots") }, "\(outcome.stdout)")
            #expect(lines.contains { $0.hasPrefix("workers' CPU per task:") && $0.contains("ms") }, "\(outcome.stdout)")
            #expect(lines.contains { $0.hasPrefix("statements per task:") && $0.contains("claim") && $0.contains("complete") })
            #expect(lines.contains { $0.hasPrefix("enqueue-to-start, idle:") && $0.hasSuffix("(5 samples)") }, "\(outcome.stdout)")
            if dialect == .postgres {
                // 40 enqueues give the audit log 280 rows and the tasks table 40: autovacuum's first
                // pass (50 rows) analyzes the one and not the other, nor the empty Runs table.
                let analyzed = Self.lines(lines, startingWith: "analyzed after the load:").first
                #expect(analyzed?.contains("audit_log") == true, "\(outcome.stdout)")
                #expect(analyzed?.contains("tasks") == false && analyzed?.contains("cwom_runs") == false, "\(outcome.stdout)")
            }
            let writers = dialect == .postgres ? "4 writer(s)" : "1 writer(s)"
            #expect(lines.contains { $0.hasPrefix("ceiling (plain multi-row SQL, batches of 32, \(writers))") }, "\(outcome.stdout)")
            #expect(lines.contains { $0.contains("burn-down at") && $0.contains("% of the claim + complete ceiling") })
            #expect(lines.contains { $0.hasPrefix("trace folder per run:") && $0.contains("20 samples each") && $0.contains(setup.traceRoot.path) }, "\(outcome.stdout)")
            // Linux, where the tests run, has /proc/stat: the drain's and the ceiling's share of
            // the machine's time that the host gave to other guests, beside their figures.
            let steal = Self.lines(lines, startingWith: "host steal:")
            #expect(
                steal.count == 2 && steal[0].contains("% of the machine's CPU time during the drain")
                    && steal[1].contains("% of the machine's CPU time during the ceiling"), "\(outcome.stdout)")
            let left = try FileManager.default.contentsOfDirectory(atPath: setup.traceRoot.path)
            #expect(left.isEmpty, "the bench removes its trace folders: \(left)")
        }
    }
}

extension CommandLineTests {
    @Test("tower bench --worker-schema lets the worker binary migrate the database, then its workers drain the backlog",
        arguments: Dialect.allCases)
    func benchWorkerSchema(_ dialect: Dialect) async throws {
        try await withSetup(dialect) { setup in
            // A worker binary that notes how it is called, then runs this build's tower.
            let folder = setup.traceRoot.deletingLastPathComponent().appendingPathComponent("tower-bench-wrapper-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: folder) }
            let calls = folder.appendingPathComponent("calls")
            let wrapper = folder.appendingPathComponent("tower")
            try "#!/bin/sh\necho \"$*\" >> '\(calls.path)'\nexec '\(TowerBinary.url.path)' \"$@\"\n".write(to: wrapper, atomically: true, encoding: .utf8)
            try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: wrapper.path)

            var arguments = ["bench", "--mode", "burn-down", "--tasks", "20", "--workers", "2", "--concurrency", "2", "--path", "storage",
                "--idle-samples", "0", "--worker-binary", wrapper.path, "--worker-schema", "--trace-root", setup.traceRoot.path]
            if dialect == .postgres, let url = setup.environment["DATABASE_URL"] { arguments += ["--database-url", url] }
            let outcome = try await TowerBinary.run(arguments, environment: setup.environment, timeout: Self.benchTimeout)
            #expect(outcome.status == 0, "\(outcome)")
            #expect(outcome.stdout.split(separator: "\n").contains { $0.hasPrefix("burn-down:") && $0.contains("2 workers × 2 slots") }, "\(outcome.stdout)")
            let lines = try String(contentsOf: calls, encoding: .utf8).split(separator: "\n").map(String.init)
            #expect(lines == ["migrate", "worker --concurrency 2", "worker --concurrency 2"], "the worker binary migrated the database first: \(lines)")
        }
    }

    @Test("tower bench --worker-schema measures a burn-down only, and says so when asked for more")
    func benchWorkerSchemaNeedsABurnDown() async throws {
        try await withSetup(.sqlite) { setup in
            let outcome = try await TowerBinary.run(
                ["bench", "--mode", "burn-down", "--worker-binary", TowerBinary.url.path, "--worker-schema", "--ceiling"], environment: setup.environment)
            #expect(outcome.status != 0, "\(outcome)")
            #expect(outcome.stderr.contains("--worker-schema measures a burn-down only"), "\(outcome)")
        }
    }
}

extension CommandLineTests {
    @Test("tower bench --ceiling-batch writes the ceiling's rows in transactions of that many tasks, and refuses fewer than one")
    func benchCeilingBatch() async throws {
        try await withSetup(.sqlite) { setup in
            let outcome = try await TowerBinary.run(
                ["bench", "--tasks", "20", "--clients", "2", "--concurrency", "2", "--idle-samples", "0", "--trace-samples", "0", "--ceiling",
                    "--ceiling-batch", "4", "--trace-root", setup.traceRoot.path], environment: setup.environment, timeout: Self.benchTimeout)
            #expect(outcome.status == 0, "\(outcome)")
            let lines = outcome.stdout.split(separator: "\n").map(String.init)
            #expect(lines.contains { $0.hasPrefix("ceiling (plain multi-row SQL, batches of 4, 1 writer(s))") }, "\(outcome.stdout)")
            #expect(lines.contains { $0.contains("enqueue at") && $0.contains("% of the intake ceiling") }, "\(outcome.stdout)")
            #expect(!lines.contains { $0.hasPrefix("trace folder per run:") }, "--trace-samples 0 measures no trace folder: \(outcome.stdout)")

            let refused = try await TowerBinary.run(["bench", "--ceiling", "--ceiling-batch", "0"], environment: setup.environment)
            #expect(refused.status != 0, "\(refused)")
            #expect(refused.stderr.contains("--ceiling-batch must be at least 1"), "\(refused)")
        }
    }
}

extension CommandLineTests {
    @Test("tower bench --backlog drains --tasks tasks off a deeper queue and leaves the rest queued")
    func benchBacklog() async throws {
        try await withSetup(.sqlite) { setup in
            let outcome = try await TowerBinary.run(
                ["bench", "--mode", "burn-down", "--tasks", "5", "--backlog", "1500", "--workers", "1", "--concurrency", "1", "--path", "storage",
                    "--idle-samples", "0", "--trace-samples", "0", "--trace-root", setup.traceRoot.path], environment: setup.environment,
                timeout: Self.benchTimeout)
            #expect(outcome.status == 0, "\(outcome)")
            let lines = outcome.stdout.split(separator: "\n").map(String.init)
            #expect(lines.contains { $0.hasPrefix("burn-down:") && $0.contains("first start to completion 5,") }, "\(outcome.stdout)")
            // "backlog: 1505 tasks enqueued, F finished by the workers, Q left queued"
            let backlog = try #require(lines.first { $0.hasPrefix("backlog:") }, "\(outcome.stdout)")
            let numbers = backlog.split(whereSeparator: { !$0.isNumber }).compactMap { Int($0) }
            #expect(numbers.count == 3, "\(backlog)")
            if numbers.count == 3 {
                #expect(numbers[0] == 1505)
                #expect(numbers[1] >= 5, "the workers finished the drained tasks: \(backlog)")
                #expect(numbers[2] > 0 && numbers[1] + numbers[2] == 1505, "the workers stopped with the backlog still queued: \(backlog)")
            }

            let refused = try await TowerBinary.run(["bench", "--backlog", "10"], environment: setup.environment)
            #expect(refused.status != 0, "\(refused)")
            #expect(refused.stderr.contains("--backlog measures a burn-down only"), "\(refused)")
        }
    }
}

extension CommandLineTests {
    @Test("tower bench refuses a database that already holds tasks, and says how to give it an empty one",
        arguments: Dialect.allCases)
    func benchNeedsAnEmptyDatabase(_ dialect: Dialect) async throws {
        try await withSetup(dialect) { setup in
            #expect(try await tower(setup, "migrate").status == 0)
            #expect(try await tower(setup, "enqueue", "--objective", "Left by an earlier run", "--operation", "docs", "--repo", "myorg/x").status == 0)
            let url = try #require(setup.environment["DATABASE_URL"])
            let refused = try await tower(
                setup, "bench", "--mode", "burn-down", "--tasks", "5", "--workers", "1", "--concurrency", "1", "--path", "storage",
                "--idle-samples", "0", "--trace-root", setup.traceRoot.path, "--database-url", url)
            #expect(refused.status != 0, "\(refused)")
            #expect(refused.stderr.contains("already holds 1 task ("), "\(refused)")
            #expect(refused.stderr.contains("give it a new schema"), "\(refused)")
            #expect(!refused.stdout.contains("burn-down:"), "no figure is printed: \(refused.stdout)")
        }
    }
}

extension CommandLineTests {
    @Test("tower bench refuses counts that would measure nothing or wait for ever", arguments: ["--tasks", "--clients", "--concurrency", "--workers"])
    func benchRefusesZero(_ flag: String) async throws {
        try await withSetup(.sqlite) { setup in
            let refused = try await tower(setup, "bench", "--mode", "burn-down", flag, "0", "--idle-samples", "0")
            #expect(refused.status != 0, "\(refused)")
            #expect(refused.stderr.contains("\(flag) must be at least 1"), "\(refused)")
        }
    }

    @Test("tower bench refuses a negative number of samples", arguments: ["--idle-samples", "--trace-samples"])
    func benchRefusesNegativeSamples(_ flag: String) async throws {
        try await withSetup(.sqlite) { setup in
            let refused = try await tower(setup, "bench", "\(flag)=-1")
            #expect(refused.status != 0, "\(refused)")
            #expect(refused.stderr.contains("\(flag) must be 0 or more"), "\(refused)")
        }
    }
}

extension CommandLineTests {
    @Test("tower bench stops with an error, instead of waiting for ever, when a worker process ends before the backlog is drained")
    func benchWorkerThatEnds() async throws {
        try await withSetup(.sqlite) { setup in
            // A worker binary that fails at once, as one with a wrong configuration would.
            let folder = setup.traceRoot.deletingLastPathComponent().appendingPathComponent("tower-bench-failing-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: folder) }
            let failing = folder.appendingPathComponent("tower")
            try "#!/bin/sh\necho 'worker: cannot start' >&2\nexit 3\n".write(to: failing, atomically: true, encoding: .utf8)
            try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: failing.path)

            let outcome = try await TowerBinary.run(
                ["bench", "--mode", "burn-down", "--tasks", "10", "--workers", "2", "--concurrency", "1", "--path", "storage", "--idle-samples", "0",
                    "--trace-samples", "0", "--worker-binary", failing.path, "--trace-root", setup.traceRoot.path],
                environment: setup.environment, timeout: Self.benchTimeout)
            #expect(!outcome.timedOut, "\(outcome)")
            #expect(outcome.status != 0, "\(outcome)")
            #expect(outcome.stderr.contains("worker: cannot start"), "the workers' own messages are passed on: \(outcome)")
            #expect(outcome.stderr.contains("worker processes ended (exit 3") && outcome.stderr.contains("with 0 of 10 tasks finished"), "\(outcome)")
            #expect(outcome.stdout.contains("enqueue rate:"), "what was measured before is printed: \(outcome)")
            #expect(!outcome.stdout.contains("burn-down:"), "\(outcome)")
        }
    }
}

extension CommandLineTests {
    @Test("tower bench writes each figure as it measures it: a run killed half-way has printed what it measured")
    func benchLinesAsMeasured() async throws {
        try await withSetup(.sqlite) { setup in
            // The bench's scratch folder (and its SQLite file) goes here, removed even though the bench is killed.
            let scratch = setup.traceRoot.appendingPathComponent("scratch")
            try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
            let output = try logFile(setup, "bench-stdout")
            defer { try? FileManager.default.removeItem(at: output.url) }
            // Far more idle samples than the test waits for: the bench is still taking them when it is killed.
            let bench = try TowerBinary.start(
                ["bench", "--tasks", "10", "--clients", "2", "--concurrency", "2", "--idle-samples", "1000000", "--trace-samples", "0",
                    "--trace-root", setup.traceRoot.path],
                environment: setup.environment.merging(["TMPDIR": scratch.path]) { $1 }, stdout: output.url)
            let throughput = try await output.line(seconds: Self.benchTimeout) { $0.hasPrefix("end to end throughput:") }
            bench.send(SIGKILL)
            _ = await bench.wait()
            #expect(throughput != nil, "the figures of the mixed run are out before the idle samples: \(output.text)")
            #expect(output.text.contains("\nenqueue rate:"), "\(output.text)")
        }
    }
}
