import Foundation
import Storage
import Testing
import TowerJSON
import TowerTestSupport

/// `tower` run as a separate process, the way an operator and a script use it: one task followed
/// from `tower enqueue` to `tower trace` with the command line alone, and the exit codes scripts
/// rely on (0 success, 2 invalid input, 3 not found, 4 conflict).
@Suite("The tower command line")
struct CommandLineTests {
    struct Setup {
        let environment: [String: String]
        let traceRoot: URL
    }

    func withSetup(_ dialect: Dialect, _ body: (Setup) async throws -> Void) async throws {
        try #require(TowerBinary.isBuilt, "build tower first (scripts/test does)")
        let test = try await TestDatabase.make(dialect)
        let traceRoot = FileManager.default.temporaryDirectory.appendingPathComponent("tower-cli-runs-\(UUID().uuidString)")
        let url: String
        switch test.location {
        case .sqlite(let path): url = path
        case .postgres(let postgres): url = postgres
        }
        let setup = Setup(
            environment: [
                "DATABASE_URL": url, "JCT_ALLOWED_REPO_PREFIXES": "myorg/", "JCT_TRACE_ROOT": traceRoot.path,
                "LOG_LEVEL": "warning", "JCT_API_KEY": "",
            ],
            traceRoot: traceRoot)
        do { try await body(setup) } catch {
            await test.drop()
            try? FileManager.default.removeItem(at: traceRoot)
            throw error
        }
        await test.drop()
        try? FileManager.default.removeItem(at: traceRoot)
    }

    func tower(_ setup: Setup, _ arguments: String..., stdin: String? = nil) async throws -> TowerBinary.Outcome {
        let outcome = try await TowerBinary.run(arguments, environment: setup.environment, stdin: stdin.map { Data($0.utf8) })
        #expect(!outcome.signalled, "tower \(arguments.joined(separator: " ")) crashed: \(outcome)")
        return outcome
    }

    func json(_ text: String) throws -> JSONValue { try JSONParser.parse(bytes: Array(text.utf8)) }

    @Test("a worker process on event loops runs a command off them, to the end (its debug build stops on a run misplaced)",
        arguments: Dialect.allCases)
    func commandRunOffTheLoop(_ dialect: Dialect) async throws {
        try await withSetup(dialect) { setup in
            #expect(try await tower(setup, "migrate").status == 0)
            let created = try await tower(setup, "enqueue", "--objective", "Run a command", "--operation", "ops", "--repo", "myorg/x")
            #expect(created.status == 0, "\(created)")
            let taskId = created.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            let log = try logFile(setup, "worker")
            defer { try? FileManager.default.removeItem(at: log.url) }
            let worker = try start(
                setup, ["worker", "--concurrency", "2", "--poll-interval", "0.2"],
                environment: ["TOWER_EXECUTOR": "command", "TOWER_EXECUTOR_COMMAND": "true"], log: log)
            try await log.require("the command's run finished") { $0.contains("run finished") && $0.contains(taskId) }
            #expect(try await stop(worker), "SIGTERM ends the worker cleanly")
            let task = try json(await tower(setup, "tasks", "show", taskId, "--json").stdout)
            #expect(task["status"] == "completed", "\(task)")
        }
    }

    /// LISTEN holds its connection for as long as it listens: from the pool, a pool of one had
    /// none left, and the worker claimed nothing and did not stop on SIGTERM either.
    @Test("a worker on PostgreSQL with DATABASE_POOL_SIZE=1 works its tasks and stops cleanly (LISTEN has a connection of its own)")
    func workerWithPoolOfOne() async throws {
        try await withSetup(.postgres) { setup in
            #expect(try await tower(setup, "migrate").status == 0)
            var taskIds: [String] = []
            for number in 1...2 {
                let created = try await tower(setup, "enqueue", "--objective", "Task number \(number)", "--operation", "ops", "--repo", "myorg/x")
                #expect(created.status == 0, "\(created)")
                taskIds.append(created.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
            }
            let log = try logFile(setup, "worker")
            defer { try? FileManager.default.removeItem(at: log.url) }
            let worker = try start(
                setup, ["worker", "--concurrency", "2", "--poll-interval", "0.2"], environment: ["DATABASE_POOL_SIZE": "1"], log: log)
            for taskId in taskIds {
                try await log.require("task \(taskId) finished") { $0.contains("run finished") && $0.contains(taskId) }
            }
            #expect(try await stop(worker), "SIGTERM ends the worker cleanly")
            for taskId in taskIds {
                let task = try json(await tower(setup, "tasks", "show", taskId, "--json").stdout)
                #expect(task["status"] == "completed", "\(task)")
            }
        }
    }

    @Test("migrate, enqueue, list, show, cancel, a worker, runs show and trace: one task followed with tower alone",
        arguments: Dialect.allCases)
    func followOneTask(_ dialect: Dialect) async throws {
        try await withSetup(dialect) { setup in
            let pending = try await tower(setup, "migrate", "--status")
            #expect(pending.status == 0, "\(pending)")
            #expect(pending.stdout.contains("pending"), "\(pending)")
            let before = try await tower(setup, "tasks", "list")
            #expect(before.status != 0, "a database that was never migrated is refused")
            #expect(before.stderr.contains("tower migrate"), "and the error says what to do: \(before)")
            let migrated = try await TowerBinary.run(["migrate"], environment: setup.environment.merging(["LOG_LEVEL": "info"]) { _, info in info })
            #expect(migrated.status == 0, "\(migrated)")
            let migrateLog = migrated.stderr.split(separator: "\n")
            let applying = migrateLog.firstIndex { $0.contains("migration=0007_json_columns.sql") && $0.contains("applying migration") }
            let applied = migrateLog.firstIndex { $0.contains("migration=0007_json_columns.sql") && $0.contains("migration applied") }
            #expect(applying != nil && applied != nil && applying! < applied!, "each migration is announced before it runs: \(migrated.stderr)")
            #expect(try await tower(setup, "migrate").stdout.contains("up to date"))

            // enqueue: same validation and policy as POST /tasks/enqueue, with exit codes.
            let created = try await tower(
                setup, "enqueue", "--objective", "Update the README", "--operation", "docs", "--repo", "MyOrg/Docs.git",
                "--idempotency-key", "cli-1")
            #expect(created.status == 0, "\(created)")
            let taskId = created.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(UUID(uuidString: taskId) != nil, "prints the task id: \(created)")
            let duplicate = try await tower(
                setup, "enqueue", "--objective", "Something else", "--operation", "ops", "--repo", "myorg/x",
                "--idempotency-key", "cli-1")
            #expect(duplicate.status == 4, "\(duplicate)")
            #expect(duplicate.stderr.contains(taskId), "the conflict names the first task")
            let denied = try await tower(setup, "enqueue", "--objective", "Not ours", "--operation", "docs", "--repo", "other/x")
            #expect(denied.status == 2, "\(denied)")
            #expect(denied.stderr.contains("REPO_NOT_ALLOWED"))
            let invalid = try await tower(setup, "enqueue", "--objective", "abc", "--operation", "docs", "--repo", "myorg/x")
            #expect(invalid.status == 2, "\(invalid)")
            #expect(invalid.stderr.contains("string_too_short"))
            let fromFile = try await tower(
                setup, "enqueue", "--file", "-",
                stdin: #"{"requested_by":{"kind":"agent","id":"bot"},"objective":"Tidy the docs","type":"docs","target":{"repository":"myorg/docs"}}"#)
            #expect(fromFile.status == 0, "\(fromFile)")
            let secondId = fromFile.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            let missing = try await tower(setup, "enqueue", "--file", "/nonexistent/task.json")
            #expect(missing.status == 1, "\(missing)")
            #expect(missing.stderr.contains("cannot read /nonexistent/task.json: No such file or directory"), "\(missing)")

            // list and show
            let table = try await tower(setup, "tasks", "list")
            #expect(table.status == 0, "\(table)")
            #expect(table.stdout.contains(taskId) && table.stdout.contains(secondId))
            #expect(table.stdout.contains("myorg/docs"), "the normalised repo")
            let lines = try await tower(setup, "tasks", "list", "--json").stdout.split(separator: "\n")
            #expect(lines.count == 2)
            for line in lines { #expect(try json(String(line))["status"] == "queued") }
            let shown = try await tower(setup, "tasks", "show", taskId.uppercased())
            #expect(shown.status == 0, "\(shown)")
            #expect(shown.stdout.contains("queued") && shown.stdout.contains("Update the README"))
            #expect(try await tower(setup, "tasks", "show", "00000000-0000-0000-0000-000000000000").status == 3)

            // cancel the second one: once succeeds, twice is a conflict
            let cancelled = try await tower(setup, "tasks", "cancel", secondId)
            #expect(cancelled.status == 0, "\(cancelled)")
            #expect(try json(await tower(setup, "tasks", "show", secondId, "--json").stdout)["status"] == "cancelled")
            #expect(try await tower(setup, "tasks", "cancel", secondId).status == 4)
            #expect(try await tower(setup, "tasks", "cancel", "00000000-0000-0000-0000-000000000000").status == 3)

            // retry the cancelled one: it is queued again; a queued task cannot be retried (conflict)
            let retried = try await tower(setup, "tasks", "retry", secondId)
            #expect(retried.status == 0, "\(retried)")
            #expect(retried.stdout.contains("queued \(secondId)"), "\(retried)")
            #expect(try json(await tower(setup, "tasks", "show", secondId, "--json").stdout)["status"] == "queued")
            let twice = try await tower(setup, "tasks", "retry", secondId)
            #expect(twice.status == 4, "\(twice)")
            #expect(twice.stderr.contains("cannot go from queued to queued"), "\(twice)")
            #expect(try await tower(setup, "tasks", "retry", "00000000-0000-0000-0000-000000000000").status == 3)
            #expect(try await tower(setup, "tasks", "cancel", secondId).status == 0, "and cancelled again")

            // a worker process runs the first task, logging JSON lines; SIGTERM stops it cleanly
            let log = try logFile(setup, "worker")
            defer { try? FileManager.default.removeItem(at: log.url) }
            let worker = try start(
                setup, ["worker", "--concurrency", "1", "--poll-interval", "0.2"], environment: ["LOG_FORMAT": "json"], log: log)
            // The worker is another process: its log says when the run's completion is committed.
            try await log.require("the task's run finished") { $0.contains(#""message":"run finished""#) && $0.contains(taskId) }
            let task = try json(await tower(setup, "tasks", "show", taskId, "--json").stdout)
            #expect(try await stop(worker), "SIGTERM ends the worker cleanly")
            #expect(task["status"] == "completed", "\(task)")
            let runId = try #require(task["runs"]?.arrayValue?.first?["id"]?.stringValue)

            // LOG_FORMAT=json: one object per line; every line about the task names task, run and trace.
            let logLines = try log.text.split(separator: "\n").map { try json(String($0)) }
            #expect(logLines.contains { $0["message"] == "worker started" })
            #expect(
                logLines.contains { $0["message"]?.stringValue?.hasPrefix("worker for") == true && $0["concurrency"] == "event loops" },
                "a worker process runs Swift concurrency on NIO's event loops")
            let about = logLines.filter { $0["task_id"]?.stringValue == taskId }
            let messages = Set(about.compactMap { $0["message"]?.stringValue })
            #expect(messages.isSuperset(of: ["run started", "run finished"]), "\(about)")
            for line in about {
                #expect(line["run_id"]?.stringValue == runId, "\(line)")
                #expect(line["trace_id"] == task["trace_id"], "\(line)")
                #expect(line["level"] != nil && line["ts"] != nil)
            }

            let run = try await tower(setup, "runs", "show", runId)
            #expect(run.status == 0, "\(run)")
            #expect(run.stdout.contains("pinned context packet") && run.stdout.contains("pinned constraint snapshot"))
            #expect(run.stdout.contains("artifacts/output.md") && run.stdout.contains("trace.log"))
            let runJSON = try json(await tower(setup, "runs", "show", runId, "--json").stdout)
            #expect(runJSON["run"]?["status"] == "under_review")
            #expect(runJSON["context_packet"]?["id"] == runJSON["run"]?["inputs"]?["context_packets"]?.arrayValue?.first?["id"])
            #expect(try await tower(setup, "runs", "show", "01NOSUCHRUN0000000000000000").status == 3)

            let trace = try await tower(setup, "trace", taskId)
            #expect(trace.status == 0, "\(trace)")
            #expect(trace.stdout.contains("Execution started") && trace.stdout.contains(taskId))
            #expect(try await tower(setup, "trace", runId).stdout == trace.stdout, "by run id or by task id")
            let followed = try await tower(setup, "trace", runId, "--follow")
            #expect(followed.status == 0 && followed.stdout == trace.stdout, "--follow ends when the run has ended")
            #expect(try await tower(setup, "trace", "nothing-here").status == 3)

            let completed = try await tower(setup, "tasks", "list", "--status", "completed", "--json").stdout.split(separator: "\n")
            #expect(completed.count == 1)
        }
    }

    /// A socket listening on a free loopback port, to make that port busy.
    func occupiedPort() throws -> (socket: Int32, port: Int) { try loopbackSocket(listening: true) }

    @Test("serve on a port that is taken stops at once with an error that says so (and the worker stops too)")
    func portTaken() async throws {
        try await withSetup(.sqlite) { setup in
            let (fd, port) = try occupiedPort()
            defer { close(fd) }
            let outcome = try await TowerBinary.run(["serve", "--port", String(port)], environment: setup.environment, timeout: 60)
            #expect(!outcome.timedOut, "serve hung instead of stopping: \(outcome)")
            #expect(outcome.status == 1, "\(outcome)")
            #expect(outcome.stderr.contains("cannot serve on 127.0.0.1:\(port)"), "\(outcome)")
            #expect(outcome.stderr.contains("Address already in use"), "\(outcome)")
        }
    }

    /// The worker is cancelled while its first claim may be in flight; on its event loop a wait
    /// for that claim once spun without sleeping and kept the loop from finishing the claim (the
    /// process hung in most runs).
    @Test("a worker whose metrics port is taken stops at once with an error that says so")
    func metricsPortTaken() async throws {
        try await withSetup(.sqlite) { setup in
            #expect(try await tower(setup, "migrate").status == 0)
            let (fd, port) = try occupiedPort()
            defer { close(fd) }
            let outcome = try await TowerBinary.run(
                ["worker", "--metrics-port", String(port)], environment: setup.environment, timeout: 60)
            #expect(!outcome.timedOut, "the worker hung instead of stopping: \(outcome)")
            #expect(outcome.status == 1, "\(outcome)")
            #expect(outcome.stderr.contains("cannot serve on 0.0.0.0:\(port) (metrics)"), "\(outcome)")
        }
    }

    @Test("a worker whose trace root cannot be made does not start, and says where and why")
    func traceRootCannotBeMade() async throws {
        try await withSetup(.sqlite) { setup in
            #expect(try await tower(setup, "migrate").status == 0)
            let file = setup.traceRoot.deletingLastPathComponent().appendingPathComponent("a-file")
            try Data("not a folder".utf8).write(to: file)
            var environment = setup.environment
            environment["JCT_TRACE_ROOT"] = file.path + "/runs"
            let outcome = try await TowerBinary.run(["worker"], environment: environment, timeout: 30)
            #expect(!outcome.timedOut && !outcome.signalled, "\(outcome)")
            #expect(outcome.status == 1, "\(outcome)")
            #expect(outcome.stderr.contains("trace folder: cannot create the folder \(file.path)/runs: Not a directory"), "\(outcome)")
        }
    }

    @Test("configuration is read once at start: a wrong value stops the command with a message that names it",
        arguments: [
            ("WORKER_CONCURRENCY", "abc"), ("WORKER_POLL_INTERVAL", "-1"), ("WORKER_LEASE_SECONDS", "0"), ("WORKER_LEASE_SECONDS", "1.5"),
            ("WORKER_LEASE_SECONDS", "inf"),
            ("WORKER_GRACE_PERIOD", "soon"), ("JCT_TRACE_ROOT", "s3://bucket/runs"), ("TOWER_EXECUTOR", "bogus"),
            ("JCT_REVIEW_AUTO_APPROVE", "maybe"), ("JCT_REVIEW_AUTO_APPROVE_VERDICTS", "pass,great"), ("LOG_LEVEL", "loud"),
            ("LOG_FORMAT", "xml"), ("DATABASE_POOL_SIZE", "0"), ("DATABASE_URL", "mysql://localhost/tower"),
            ("TOWER_SANDBOX", "maybe"), ("WORKER_METRICS_PORT", "http"), ("TOWER_CLAIM_GATHER_MS", "soon"),
            ("TOWER_COMPLETION_LINGER_MS", "5000"), ("TOWER_WORKER_THREADS", "0"), ("TOWER_WORKER_THREADS", "many"),
            ("DATABASE_URL", "postgres://tower@127.0.0.1:1/tower?prepare_threshold=-1"),
            ("TOWER_EXECUTOR_OUTPUT_LIMIT_MB", "lots"), ("TOWER_EXECUTOR_OUTPUT_LIMIT_MB", "-1"), ("TOWER_ARTIFACT_LIMIT", "many"), ("TOWER_ARTIFACT_LIMIT", "-1"),
            // Past what a timer or a timestamp holds: each trapped in the worker's first poll or claim.
            ("WORKER_POLL_INTERVAL", "1e300"), ("WORKER_LEASE_SECONDS", "1e300"), ("WORKER_GRACE_PERIOD", "1e300"),
            ("TOWER_RETENTION_DAYS", "1e300"), ("WORKER_CONCURRENCY", "1e300"), ("WORKER_CONCURRENCY", "1.5"), ("WORKER_CONCURRENCY", "5000"),
            ("DATABASE_POOL_SIZE", "100000"),
        ])
    func badConfiguration(_ name: String, _ value: String) async throws {
        try await withSetup(.sqlite) { setup in
            var environment = setup.environment
            environment[name] = value
            let outcome = try await TowerBinary.run(["worker"], environment: environment, timeout: 30)
            #expect(!outcome.timedOut && !outcome.signalled, "\(outcome)")
            #expect(outcome.status != 0, "\(outcome)")
            #expect(outcome.stderr.contains(name) || outcome.stderr.contains(value), "the message names the setting: \(outcome)")
        }
    }

    @Test("a worker whose executor command no task could start does not start, and names the setting",
        arguments: [
            ("TOWER_EXECUTOR_COMMAND", "/nonexistent/agent --fast", "TOWER_EXECUTOR_COMMAND: /nonexistent/agent is not an executable file"),
            ("TOWER_EXECUTOR_COMMAND_DOCS", "no-such-agent", "TOWER_EXECUTOR_COMMAND_DOCS: no-such-agent is not found in PATH"),
            ("TOWER_EXECUTOR_COMMAND", "/tmp", "TOWER_EXECUTOR_COMMAND: /tmp is not an executable file"),
        ])
    func executorCommandMissing(_ name: String, _ value: String, _ message: String) async throws {
        try await withSetup(.sqlite) { setup in
            #expect(try await tower(setup, "migrate").status == 0)
            let environment = setup.environment.merging(["TOWER_EXECUTOR": "command", name: value]) { _, new in new }
            let outcome = try await TowerBinary.run(["worker"], environment: environment, timeout: 30)
            #expect(!outcome.timedOut && !outcome.signalled, "\(outcome)")
            #expect(outcome.status == 1, "\(outcome)")
            #expect(outcome.stderr.contains(message), "\(outcome)")
        }
    }

    @Test("a filter or a count that would list or do nothing by mistake is refused with the values it takes",
        arguments: [
            (["tasks", "list", "--status", "done"], "--status takes pending, queued, running, completed, failed, cancelled, not 'done'"),
            (["tasks", "list", "--operation", "doc"], "--operation takes code_change, docs, analysis, ops, not 'doc'"),
            (["tasks", "list", "--limit", "0"], "--limit must be at least 1"),
            (["backfill", "--batch-size", "0"], "--batch-size must be at least 1"),
            (["prune", "--older-than", "1e300d"], "--older-than must be a number and a unit (d, h, m or s), such as 30d, up to 36500d, not '1e300d'"),
            (["worker", "--concurrency", "0"], "must be from 1 to 1024 slots, not 0"),
            (["worker", "--poll-interval", "1e300"], "--poll-interval must be a positive number of seconds up to 3600"),
        ])
    func refusedArguments(_ arguments: [String], _ message: String) async throws {
        try await withSetup(.sqlite) { setup in
            #expect(try await tower(setup, "migrate").status == 0)
            let outcome = try await TowerBinary.run(arguments, environment: setup.environment)
            #expect(outcome.status != 0, "\(outcome)")
            #expect(outcome.stderr.contains(message), "\(outcome)")
        }
    }

    @Test("LOG_LEVEL and LOG_FORMAT hold for every command that logs (tower enqueue wrote swift-log's default info lines), and help answers whatever they say")
    func loggingSettingsForEveryCommand() async throws {
        try await withSetup(.sqlite) { setup in
            #expect(try await tower(setup, "migrate").status == 0)
            let enqueue = ["enqueue", "--objective", "Log or not", "--operation", "docs", "--repo", "myorg/x"]
            let quiet = try await TowerBinary.run(enqueue, environment: setup.environment.merging(["LOG_LEVEL": "warning"]) { _, new in new })
            #expect(quiet.status == 0, "\(quiet)")
            #expect(!quiet.stderr.contains("task enqueued"), "no info line at LOG_LEVEL=warning: \(quiet.stderr)")

            let json = try await TowerBinary.run(
                enqueue, environment: setup.environment.merging(["LOG_LEVEL": "info", "LOG_FORMAT": "json"]) { _, new in new })
            #expect(json.status == 0, "\(json)")
            let line = try #require(json.stderr.split(separator: "\n").first { $0.contains("task enqueued") }, "\(json.stderr)")
            let object = try self.json(String(line))
            #expect(object["message"]?.stringValue == "task enqueued" && object["level"]?.stringValue == "info", "\(line)")
            #expect(object["task_id"]?.stringValue == json.stdout.trimmingCharacters(in: .whitespacesAndNewlines), "\(line)")

            let wrong = setup.environment.merging(["LOG_LEVEL": "loud"]) { _, new in new }
            let refused = try await TowerBinary.run(["tasks", "list"], environment: wrong)
            #expect(refused.status != 0 && refused.stderr.contains("LOG_LEVEL must be one of"), "\(refused)")
            let help = try await TowerBinary.run(["tasks", "list", "--help"], environment: wrong)
            #expect(help.status == 0 && help.stdout.contains("List tasks"), "\(help)")
        }
    }

    @Test("a port out of range, from a flag or the environment, stops the command with a message that names it (NIO bound 70000 as 4464)",
        arguments: [
            (["api", "--port", "70000"], [String: String](), "--port must be a port number (0-65535), not 70000"),
            (["serve", "--port", "65536"], [:], "--port must be a port number (0-65535), not 65536"),
            (["api"], ["API_PORT": "70000"], "API_PORT must be a port number (0-65535), not 70000"),
            (["worker", "--metrics-port", "0"], [:], "--metrics-port must be a port number (1-65535), not 0"),
            (["worker"], ["WORKER_METRICS_PORT": "99999"], "WORKER_METRICS_PORT must be a port number (1-65535), not 99999"),
        ])
    func portOutOfRange(_ arguments: [String], _ settings: [String: String], _ message: String) async throws {
        try await withSetup(.sqlite) { setup in
            #expect(try await tower(setup, "migrate").status == 0)
            let environment = setup.environment.merging(settings) { _, new in new }
            let outcome = try await TowerBinary.run(arguments, environment: environment, timeout: 30)
            #expect(!outcome.timedOut && !outcome.signalled, "\(outcome)")
            #expect(outcome.status != 0, "\(outcome)")
            #expect(outcome.stderr.contains(message), "\(outcome)")
        }
    }

    @Test("`tower api` and `tower serve` read TOWER_ARTIFACT_LIMIT for the runs of agents over MCP: a wrong one stops them with a message that names it",
        arguments: [["api"], ["serve", "--no-worker"]])
    func artifactLimitForAgents(_ arguments: [String]) async throws {
        try await withSetup(.sqlite) { setup in
            #expect(try await tower(setup, "migrate").status == 0)
            let environment = setup.environment.merging(["TOWER_ARTIFACT_LIMIT": "many"]) { _, new in new }
            let outcome = try await TowerBinary.run(arguments + ["--port", "0"], environment: environment, timeout: 30)
            #expect(!outcome.timedOut && !outcome.signalled, "\(outcome)")
            #expect(outcome.status != 0, "\(outcome)")
            #expect(outcome.stderr.contains("TOWER_ARTIFACT_LIMIT must be a whole number of files (0: no limit), not 'many'"), "\(outcome)")
        }
    }

    @Test("backfill: a dry run, progress lines with rate and ETA, a report by status and repo, then nothing to do",
        arguments: Dialect.allCases)
    func backfill(_ dialect: Dialect) async throws {
        try await withSetup(dialect) { setup in
            #expect(try await tower(setup, "migrate").status == 0)
            for repo in ["MyOrg/App.git", "myorg/app", "myorg/docs"] {
                let created = try await tower(
                    setup, "enqueue", "--objective", "A legacy task for \(repo)", "--operation", "docs", "--repo", repo, "--no-cwom")
                #expect(created.status == 0, "\(created)")
            }
            let dry = try await tower(setup, "backfill", "--dry-run")
            #expect(dry.status == 0, "\(dry)")
            #expect(dry.stdout.contains("Dry run: would migrate 3 tasks") && dry.stdout.contains("Would migrate 3 tasks."), "\(dry)")

            let run = try await tower(setup, "backfill", "--batch-size", "2")
            #expect(run.status == 0, "\(run)")
            #expect(run.stdout.contains("Migrating 3 tasks in batches of 2"), "\(run)")
            #expect(run.stdout.contains("progress: 3/3 (100%)") && run.stdout.contains("tasks/s  ETA"), "plain progress lines: \(run)")
            #expect(run.stdout.contains("Migrated 3 tasks."))
            #expect(run.stdout.contains("queued: 3") && run.stdout.contains("myorg/app: 2") && run.stdout.contains("myorg/docs: 1"))
            #expect(run.stdout.contains("Issue 3") && run.stdout.contains("Repo 2"), "one Repo per normalised slug: \(run)")

            let again = try await tower(setup, "backfill")
            #expect(again.status == 0 && again.stdout.contains("Nothing to do"), "\(again)")
            #expect(try json(await tower(setup, "backfill", "--json").stdout)["migrated"] == 0)
            for line in try await tower(setup, "tasks", "list", "--json").stdout.split(separator: "\n") {
                #expect(try json(String(line))["cwom_issue_id"]?.stringValue != nil)
            }
        }
    }

    @Test("backfill on a terminal draws a progress bar")
    func backfillProgressBar() async throws {
        try await withSetup(.sqlite) { setup in
            #expect(try await tower(setup, "migrate").status == 0)
            #expect(
                try await tower(setup, "enqueue", "--objective", "A legacy task", "--operation", "docs", "--repo", "myorg/app", "--no-cwom")
                    .status == 0)
            // `script` (util-linux) gives the command a pseudo-terminal.
            let script = try await TowerBinary.run(
                ["-qec", "'\(TowerBinary.url.path)' backfill", "/dev/null"], environment: setup.environment,
                executable: URL(fileURLWithPath: "/usr/bin/script"))
            let text = script.stdout
            #expect(script.status == 0, "\(script)")
            #expect(text.contains("\r[##############################] 1/1 (100%)"), "\(text)")
            #expect(!text.contains("progress: "), "no plain lines on a terminal")
        }
    }
}
