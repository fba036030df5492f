import API
import CWOM
import Foundation
import LegacyTasks
import Storage
import Testing
import TowerJSON
import TowerTestSupport
import Worker

@Suite("The command executor enforces the constraints")
struct ExecutorTests {
    static func run(_ env: WorkerEnvironment, command: String, sandbox: Bool = false, budget: Int = 900,
        allowNetwork: Bool = false, allowSecrets: Bool = false, keepWorkspaces: Bool = false,
        parentEnvironment: [String: String]? = nil, outputLimit: Int? = CommandExecutor.defaultOutputLimit,
        artifactLimit: Int? = RunRecorder.defaultArtifactLimit) async throws -> (TaskRecord, Run?, URL)
    {
        var executor = try CommandExecutor(commandLine: command, sandbox: sandbox, outputLimit: outputLimit)
        if let parentEnvironment { executor.parentEnvironment = parentEnvironment }
        let task = try await env.enqueue(budget: budget, allowNetwork: allowNetwork, allowSecrets: allowSecrets)
        if budget < 30 {
            try await env.database.write { store in
                try await store.session.query("UPDATE tasks SET time_budget_seconds = $1 WHERE id = $2", [.int(budget), .text(task.id)])
            }
        }
        var configuration = env.configuration(executors: ExecutorRegistry(fallback: executor), keepWorkspaces: keepWorkspaces)
        configuration.artifactLimit = artifactLimit
        let running = env.start(configuration)
        let done = try await env.finished(task.id, seconds: 60)
        try await running.stop()
        let run = try await env.database.read { store in try await store.runs.get(done.currentRunId ?? "") }
        return (done, run, env.traceRoot.appendingPathComponent(done.currentRunId ?? ""))
    }

    /// An executable shell script named `name-<ULID>.sh` in the temporary folder (the caller removes it).
    static func script(_ name: String, _ text: String) throws -> URL {
        let script = FileManager.default.temporaryDirectory.appendingPathComponent("\(name)-\(ULID.make()).sh")
        try text.write(to: script, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: script.path)
        return script
    }

    @Test("the time budget is a hard deadline: the whole process group is killed and the run fails as timed out")
    func timeout() async throws {
        try await withWorkerEnvironment(.sqlite) { env in
            let marker = FileManager.default.temporaryDirectory.appendingPathComponent("child-\(ULID.make()).pid")
            let wrapper = try Self.script("spawn", "#!/bin/sh\nsleep 300 &\necho $! > \(marker.path)\nwait\n")
            defer { try? FileManager.default.removeItem(at: wrapper); try? FileManager.default.removeItem(at: marker) }
            let (task, run, _) = try await Self.run(env, command: wrapper.path, budget: 1)
            #expect(task.status == .failed)
            #expect(run?.status == .failed)
            #expect(run?.failure?.category == .runtime)
            #expect(run?.failure?.message.contains("timed out after 1s") == true)
            // The grandchild was killed with its group.
            let pid = try String(contentsOf: marker, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
            let grandchild = try #require(pid_t(pid))
            #expect(try await processEnded(grandchild, seconds: 10), "the grandchild \(pid) is gone (or a zombie)")
        }
    }

    @Test("a cancelled executor is sent SIGTERM first, and may clean up before it exits")
    func gracefulStop() async throws {
        try await withWorkerEnvironment(.sqlite) { env in
            let marker = FileManager.default.temporaryDirectory.appendingPathComponent("terminated-\(ULID.make())")
            let fifo = FileManager.default.temporaryDirectory.appendingPathComponent("ready-\(ULID.make())")
            #expect(mkfifo(fifo.path, 0o600) == 0)
            defer { for file in [marker, fifo] { try? FileManager.default.removeItem(at: file) } }
            // The threads of a Swift process block SIGTERM; a child that inherited that mask would
            // never see it and could only be killed. The script says it is ready (its trap is set)
            // through a FIFO, which the test reads: no waiting on time.
            let script = "trap 'touch \(marker.path); exit 143' TERM; echo ready > \(fifo.path); sleep 60 & wait"
            let executor = CommandExecutor(executable: "/bin/sh", arguments: ["-c", script])
            let running = env.start(env.configuration(executors: ExecutorRegistry(fallback: executor)))
            let task = try await env.enqueue()
            let ready = await withCheckedContinuation { (continuation: CheckedContinuation<String, Never>) in
                Thread.detachNewThread {
                    let data = FileHandle(forReadingAtPath: fifo.path)?.readDataToEndOfFile() ?? Data()
                    continuation.resume(returning: String(decoding: data, as: UTF8.self))
                }
            }
            #expect(ready == "ready\n")
            _ = try await env.engine.cancel(task.id, by: Actor(kind: .human, id: "carol"))
            let done = try await env.finished(task.id, seconds: 30)
            try await running.stop()
            #expect(done.status == .cancelled)
            #expect(FileManager.default.fileExists(atPath: marker.path), "the executor's TERM trap ran")
        }
    }

    @Test("the child's environment is an allow-list unless the task allows secrets")
    func environmentScrub() async throws {
        // The worker's environment with a secret in it (given to the executor: `setenv` would race
        // with the processes other tests start meanwhile).
        let worker = ProcessInfo.processInfo.environment.merging(["TOWER_TEST_SECRET_TOKEN": "hunter2"]) { $1 }
        try await withWorkerEnvironment(.sqlite) { env in
            let command = "/bin/sh -c env>$TOWER_ARTIFACTS_DIR/env.txt"
            let (task, _, folder) = try await Self.run(env, command: command, parentEnvironment: worker)
            #expect(task.status == .completed)
            let seen = try String(contentsOf: folder.appendingPathComponent("artifacts/env.txt"), encoding: .utf8)
            #expect(!seen.contains("hunter2"))
            #expect(seen.contains("TOWER_TASK_ID=\(task.id)"))
            #expect(seen.contains("PATH="))
            let (secretTask, _, secretFolder) = try await Self.run(env, command: command, allowSecrets: true, parentEnvironment: worker)
            #expect(secretTask.status == .completed)
            let withSecrets = try String(contentsOf: secretFolder.appendingPathComponent("artifacts/env.txt"), encoding: .utf8)
            #expect(withSecrets.contains("TOWER_TEST_SECRET_TOKEN=hunter2"))
        }
    }

    @Test("sandboxed without network: the child sees only loopback", .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/unshare")))
    func networkIsolation() async throws {
        try await withWorkerEnvironment(.sqlite) { env in
            let command = "/bin/sh -c cat</proc/net/dev>$TOWER_ARTIFACTS_DIR/net.txt"
            let (task, _, folder) = try await Self.run(env, command: command, sandbox: true)
            #expect(task.status == .completed, "\(task.error ?? "")")
            let interfaces = try String(contentsOf: folder.appendingPathComponent("artifacts/net.txt"), encoding: .utf8)
                .split(separator: "\n").dropFirst(2).compactMap { $0.split(separator: ":").first?.trimmingCharacters(in: .whitespaces) }
            #expect(interfaces == ["lo"])
            let host = try String(contentsOfFile: "/proc/net/dev", encoding: .utf8)
            #expect(host.split(separator: "\n").count > 3, "the host has more than loopback, so the check means something")
        }
    }

    @Test("a failing command fails the run; result.json gives summary, decision log and cost")
    func resultFile() async throws {
        try await withWorkerEnvironment(.sqlite) { env in
            let script = try Self.script("agent", """
            #!/bin/sh
            echo working
            echo '{"summary":"did it","decision_log":["chose A"],"cost":{"usd":0.5,"tokens":42}}' > "$TOWER_RESULT_FILE"
            echo report > "$TOWER_ARTIFACTS_DIR/report.md"
            test -f "$TOWER_TASK_FILE"
            """)
            defer { try? FileManager.default.removeItem(at: script) }
            let (task, run, folder) = try await Self.run(env, command: script.path)
            #expect(task.status == .completed)
            #expect(run?.outputs.resultSummary == "did it")
            #expect(run?.outputs.decisionLog == ["chose A"])
            #expect(run?.cost == Cost(usd: 0.5, tokens: 42))
            #expect(try String(contentsOf: folder.appendingPathComponent("stdout.log"), encoding: .utf8) == "working\n")
            let artifacts = try await env.database.read { store in try await store.artifacts.list(forRun: run?.id ?? "") }
            #expect(artifacts.contains { $0.title == "report.md" && $0.type == .doc })
            #expect(artifacts.contains { $0.title == "stdout.log" && $0.type == .log })

            let failing = try Self.script("fail", "#!/bin/sh\necho broken >&2\nexit 3\n")
            defer { try? FileManager.default.removeItem(at: failing) }
            let (failed, failedRun, _) = try await Self.run(env, command: failing.path)
            #expect(failed.status == .failed)
            #expect(failed.error?.contains("exited with status 3") == true)
            #expect(failedRun?.status == .failed)
            #expect(failedRun?.failure?.category == .runtime)
        }
    }

    @Test("a runaway command's logs keep their first bytes: the rest is dropped, the logs and the trace say how much, the run goes on")
    func outputLimit() async throws {
        try await withWorkerEnvironment(.sqlite) { env in
            let script = try Self.script("chatty", "#!/bin/sh\nhead -c 3000000 /dev/zero | tr '\\0' x\necho fine >&2\necho '{\"summary\":\"said a lot\"}' > \"$TOWER_RESULT_FILE\"\n")
            defer { try? FileManager.default.removeItem(at: script) }
            let (task, run, folder) = try await Self.run(env, command: script.path, outputLimit: 1 << 20)
            #expect(task.status == .completed, "\(task.error ?? "")")
            #expect(run?.outputs.resultSummary == "said a lot", "the command ran to its end")
            let stdout = try Data(contentsOf: folder.appendingPathComponent("stdout.log"))
            let note = "\n[tower: output cut at 1048576 bytes; 1951424 more bytes were dropped]\n"
            #expect(stdout.count == (1 << 20) + note.utf8.count)
            #expect(String(decoding: stdout.suffix(note.utf8.count), as: UTF8.self) == note)
            #expect(try String(contentsOf: folder.appendingPathComponent("stderr.log"), encoding: .utf8) == "fine\n")
            let traceLog = try String(contentsOf: folder.appendingPathComponent("trace.log"), encoding: .utf8)
            #expect(traceLog.contains("stdout.log cut at its limit") && traceLog.contains("dropped: 1951424 bytes"), "\(traceLog)")
            #expect(!traceLog.contains("stderr.log cut"))
            let events = try String(contentsOf: folder.appendingPathComponent("events.jsonl"), encoding: .utf8)
            #expect(events.contains(#""output_cut""#) && events.contains(#""dropped_bytes": 1951424"#), "\(events)")
            let artifacts = try await env.database.read { store in try await store.artifacts.list(forRun: run?.id ?? "") }
            #expect(artifacts.first { $0.title == "stdout.log" }?.sizeBytes == stdout.count, "the artifact records the log as kept")
        }
    }

    @Test("past TOWER_ARTIFACT_LIMIT the output files stay in the folder, under its digest, without Artifacts of their own; the trace says how many")
    func artifactLimit() async throws {
        try await withWorkerEnvironment(.sqlite) { env in
            let script = try Self.script("build", "#!/bin/sh\nfor f in e d c b a; do echo $f > \"$TOWER_ARTIFACTS_DIR/$f.txt\"; done\necho built\n")
            defer { try? FileManager.default.removeItem(at: script) }
            let (task, run, folder) = try await Self.run(env, command: script.path, artifactLimit: 3)
            #expect(task.status == .completed, "\(task.error ?? "")")
            let artifacts = try await env.database.read { store in try await store.artifacts.list(forRun: run?.id ?? "") }
            #expect(Set(artifacts.map(\.title)) == ["a.txt", "b.txt", "c.txt", "stdout.log", "Trace folder"], "the first by path, and the log")
            let files = try FileManager.default.contentsOfDirectory(atPath: folder.appendingPathComponent("artifacts").path)
            #expect(files.sorted() == ["a.txt", "b.txt", "c.txt", "d.txt", "e.txt"], "nothing is deleted")
            let listed = artifacts.first { $0.type == .trace }?.meta["files"]?.intValue
            let onDisk = try TraceFile.scan(folder).count
            #expect(listed == onDisk, "the folder's digest covers every file")
            let events = try String(contentsOf: folder.appendingPathComponent("events.jsonl"), encoding: .utf8)
            #expect(events.contains(#""artifacts_over_limit""#) && events.contains(#""not_recorded": 2"#), "\(events)")
            let traceLog = try String(contentsOf: folder.appendingPathComponent("trace.log"), encoding: .utf8)
            #expect(traceLog.contains("5 files in artifacts/: the first 3 by path recorded as Artifacts"), "\(traceLog)")

            let (_, unlimited, _) = try await Self.run(env, command: script.path, artifactLimit: nil)
            let all = try await env.database.read { store in try await store.artifacts.list(forRun: unlimited?.id ?? "") }
            #expect(all.count == 7, "without a limit every file: \(all.map(\.title))")
        }
    }

    @Test("a result file holding NaN or text with NUL fails the run with what the command wrote, the same on both databases",
        arguments: Dialect.allCases)
    func unstorableResultFile(_ dialect: Dialect) async throws {
        try await withWorkerEnvironment(dialect) { env in
            for (written, message) in [
                (#"{"summary": "done", "outputs": {"scores": [1, NaN]}}"#, "outputs.scores[1] holds NaN, which JSON has no number for"),
                (#"{"summary": "a\u0000b"}"#, "summary holds text with the NUL character (U+0000)"),
            ] {
                let script = try Self.script("agent", "#!/bin/sh\ncat > \"$TOWER_RESULT_FILE\" <<'EOF'\n\(written)\nEOF\n")
                defer { try? FileManager.default.removeItem(at: script) }
                let (task, run, _) = try await Self.run(env, command: script.path)
                // On PostgreSQL the completion itself failed ("invalid input syntax for type json"), on SQLite it passed.
                #expect(task.status == .failed, "\(written): \(task.error ?? "")")
                #expect(task.error == "the result file cannot be stored: \(message)", "\(written)")
                #expect(run?.status == .failed)
            }
        }
    }

    @Test("a result file over 10 MiB fails the run, read no further: a worker holds every run's result in its memory")
    func oversizedResultFile() async throws {
        try await withWorkerEnvironment(.sqlite) { env in
            let script = try Self.script("agent", "#!/bin/sh\n{ printf '{\"summary\": \"'; head -c 11000000 /dev/zero | tr '\\0' s; printf '\"}'; } > \"$TOWER_RESULT_FILE\"\n")
            defer { try? FileManager.default.removeItem(at: script) }
            let (task, run, _) = try await Self.run(env, command: script.path)
            #expect(task.status == .failed)
            #expect(task.error == "the result file is 11000015 bytes, over the 10 MiB a result file may hold", "\(task.error ?? "")")
            #expect(run?.status == .failed)
        }
    }

    /// A git repository with one commit, in a folder of its own (removed by the caller).
    static func localRepository() async throws -> URL {
        let repository = FileManager.default.temporaryDirectory.appendingPathComponent("repo-\(ULID.make())")
        try FileManager.default.createDirectory(at: repository, withIntermediateDirectories: true)
        try "# Project\n\nRun setup.py install.\n".write(to: repository.appendingPathComponent("README.md"), atomically: true, encoding: .utf8)
        try Data(repeating: 7, count: 256 << 10).write(to: repository.appendingPathComponent("data.bin"))
        for arguments in [["init", "-q"], ["add", "."], ["-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "first"]] {
            let git = try await TowerBinary.run(
                ["-C", repository.path] + arguments, executable: URL(fileURLWithPath: "/usr/bin/git"))
            try #require(git.status == 0, "git \(arguments): \(git)")
        }
        return repository
    }

    @Test("the workspace lives outside the trace folder: a clone leaves a small trace, its diff is collected, the workspace is removed")
    func workspaceOutsideTrace() async throws {
        try await withWorkerEnvironment(.sqlite) { env in
            let repository = try await Self.localRepository()
            let script = try Self.script("clone", """
            #!/bin/sh
            set -e
            git clone -q "\(repository.path)" .
            echo "pwd=$(pwd)"
            printf 'Install with pip.\n' >> README.md
            """)
            defer {
                try? FileManager.default.removeItem(at: script)
                try? FileManager.default.removeItem(at: repository)
            }
            let (task, run, folder) = try await Self.run(env, command: script.path)
            #expect(task.status == .completed, "\(task.error ?? "")")
            let runId = try #require(run?.id)
            let stdout = try String(contentsOf: folder.appendingPathComponent("stdout.log"), encoding: .utf8)
            #expect(stdout == "pwd=\(env.workspaceRoot.appendingPathComponent(runId).path)\n", "the program ran in its workspace")
            #expect(!FileManager.default.fileExists(atPath: env.workspaceRoot.appendingPathComponent(runId).path), "the workspace is gone")
            let files = try TraceFile.scan(folder)
            #expect(!files.contains { $0.path.hasPrefix("workspace") || $0.path.contains(".git/") }, "no checkout in the trace: \(files.map(\.path))")
            #expect(files.reduce(0) { $0 + $1.size } < 64 << 10, "the trace stays small (the clone holds 256 KiB)")
            let patch = try String(contentsOf: folder.appendingPathComponent("artifacts/changes.patch"), encoding: .utf8)
            #expect(patch.contains("+Install with pip."), "the diff is still collected")
            let artifacts = try await env.database.read { store in try await store.artifacts.list(forRun: runId) }
            #expect(artifacts.contains { $0.title == "changes.patch" && $0.type == .codePatch })
            #expect(files.contains { $0.path == "task.json" }, "task.json is kept in the trace")

            let (_, kept, _) = try await Self.run(env, command: script.path, keepWorkspaces: true)
            let keptFolder = env.workspaceRoot.appendingPathComponent(try #require(kept?.id))
            #expect(FileManager.default.fileExists(atPath: keptFolder.appendingPathComponent("README.md").path), "--keep-workspaces keeps it")
        }
    }

    @Test("TOWER_WORKSPACE_ROOT may not lie inside the trace root")
    func workspaceRootOutsideTraces() throws {
        let traces = URL(fileURLWithPath: "/srv/tower/runs")
        #expect(throws: WorkerError.self) { try WorkerConfiguration.workspaceRoot(from: "/srv/tower/runs/ws", traceRoot: traces) }
        #expect(try WorkerConfiguration.workspaceRoot(from: "/srv/tower/runs-work", traceRoot: traces)?.path == "/srv/tower/runs-work")
        #expect(try WorkerConfiguration.workspaceRoot(from: nil, traceRoot: traces) == nil)
    }

    @Test("exit 75 twice then 0: completed with three Runs; always 75: failed after its attempts; \"retryable\": true in the result file retries too")
    func retries() async throws {
        try await withWorkerEnvironment(.sqlite) { env in
            let counters = FileManager.default.temporaryDirectory.appendingPathComponent("attempts-\(ULID.make())")
            try FileManager.default.createDirectory(at: counters, withIntermediateDirectories: true)
            let script = FileManager.default.temporaryDirectory.appendingPathComponent("flaky-\(ULID.make()).sh")
            // A rate-limited API, as an agent CLI would meet it: attempts counted per task.
            try """
            #!/bin/sh
            counter="\(counters.path)/$TOWER_TASK_ID"
            n=$(( $(cat "$counter" 2>/dev/null || echo 0) + 1 ))
            echo "$n" > "$counter"
            case "$TOWER_OBJECTIVE" in
              *always*) echo "429 Too Many Requests" >&2; exit 75 ;;
              *result*) [ "$n" -ge 2 ] && exit 0; echo '{"error": "clone timed out", "retryable": true}' > "$TOWER_RESULT_FILE"; exit 1 ;;
              *) [ "$n" -ge 3 ] && exit 0; exit 75 ;;
            esac
            """.write(to: script, atomically: true, encoding: .utf8)
            try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: script.path)
            defer {
                try? FileManager.default.removeItem(at: script)
                try? FileManager.default.removeItem(at: counters)
            }
            let flaky = try await env.enqueue(objective: "Succeeds on the third attempt")
            let doomed = try await env.enqueue(objective: "Fails always, transiently")
            let result = try await env.enqueue(objective: "Says so in its result file")
            let running = env.start(env.configuration(executors: ExecutorRegistry(fallback: try CommandExecutor(commandLine: script.path))))
            let done = try await env.finished(flaky.id, seconds: 60)
            let failed = try await env.finished(doomed.id, seconds: 60)
            let second = try await env.finished(result.id, seconds: 60)
            try await running.stop()

            func runs(_ task: TaskRecord) async throws -> [Run] {
                try await env.database.read { try await $0.runs.list(RunRepository.Filter(issueId: task.cwomIssueId)) }
            }
            #expect(done.status == .completed && done.attempt == 3)
            let flakyRuns = try await runs(done)
            #expect(flakyRuns.count == 3 && flakyRuns.filter { $0.status == .failed }.count == 2, "three attempts, three Runs")
            #expect(failed.status == .failed && failed.attempt == 3, "the allowance set at enqueue: \(failed.attempt)")
            #expect(failed.error?.contains("exited with status 75") == true)
            #expect(try await runs(failed).allSatisfy { $0.status == .failed })
            #expect(second.status == .completed && second.attempt == 2)
        }
    }
}
