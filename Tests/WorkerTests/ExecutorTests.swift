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
        allowNetwork: Bool = false, allowSecrets: Bool = false) async throws -> (TaskRecord, Run?, URL)
    {
        let executor = try CommandExecutor(commandLine: command, sandbox: sandbox)
        let task = try await env.enqueue(budget: budget, allowNetwork: allowNetwork, allowSecrets: allowSecrets)
        if budget < 30 {
            try await env.database.write { store in
                try await store.session.query("UPDATE tasks SET time_budget_seconds = $1 WHERE id = $2", [.int(budget), .text(task.id)])
            }
        }
        let running = env.start(env.configuration(executors: ExecutorRegistry(fallback: executor)))
        let done = try await env.finished(task.id, seconds: 60)
        try await running.stop()
        let run = try await env.database.read { store in try await store.runs.get(done.currentRunId ?? "") }
        return (done, run, env.traceRoot.appendingPathComponent(done.currentRunId ?? ""))
    }

    @Test("the time budget is a hard deadline: the whole process group is killed and the run fails as timed out")
    func timeout() async throws {
        try await withWorkerEnvironment(.sqlite) { env in
            let marker = FileManager.default.temporaryDirectory.appendingPathComponent("child-\(ULID.make()).pid")
            let wrapper = FileManager.default.temporaryDirectory.appendingPathComponent("spawn-\(ULID.make()).sh")
            try "#!/bin/sh\nsleep 300 &\necho $! > \(marker.path)\nwait\n".write(to: wrapper, atomically: true, encoding: .utf8)
            try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: wrapper.path)
            defer { try? FileManager.default.removeItem(at: wrapper); try? FileManager.default.removeItem(at: marker) }
            let (task, run, _) = try await Self.run(env, command: wrapper.path, budget: 1)
            #expect(task.status == .failed)
            #expect(run?.status == .failed)
            #expect(run?.failure?.category == .runtime)
            #expect(run?.failure?.message.contains("timed out after 1s") == true)
            // The grandchild was killed with its group.
            let pid = try String(contentsOf: marker, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
            try await Task.sleep(for: .seconds(2.5))
            let stat = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)) ?? ""
            #expect(stat.isEmpty || stat.contains(") Z "), "the grandchild \(pid) is gone (or a zombie)")
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
        setenv("TOWER_TEST_SECRET_TOKEN", "hunter2", 1)
        try await withWorkerEnvironment(.sqlite) { env in
            let command = "/bin/sh -c env>$TOWER_ARTIFACTS_DIR/env.txt"
            let (task, _, folder) = try await Self.run(env, command: command)
            #expect(task.status == .completed)
            let seen = try String(contentsOf: folder.appendingPathComponent("artifacts/env.txt"), encoding: .utf8)
            #expect(!seen.contains("hunter2"))
            #expect(seen.contains("TOWER_TASK_ID=\(task.id)"))
            #expect(seen.contains("PATH="))
            let (secretTask, _, secretFolder) = try await Self.run(env, command: command, allowSecrets: true)
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
            let script = FileManager.default.temporaryDirectory.appendingPathComponent("agent-\(ULID.make()).sh")
            try """
            #!/bin/sh
            echo working
            echo '{"summary":"did it","decision_log":["chose A"],"cost":{"usd":0.5,"tokens":42}}' > "$TOWER_RESULT_FILE"
            echo report > "$TOWER_ARTIFACTS_DIR/report.md"
            test -f "$TOWER_TASK_FILE"
            """.write(to: script, atomically: true, encoding: .utf8)
            try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: script.path)
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

            let failing = FileManager.default.temporaryDirectory.appendingPathComponent("fail-\(ULID.make()).sh")
            try "#!/bin/sh\necho broken >&2\nexit 3\n".write(to: failing, atomically: true, encoding: .utf8)
            try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: failing.path)
            defer { try? FileManager.default.removeItem(at: failing) }
            let (failed, failedRun, _) = try await Self.run(env, command: failing.path)
            #expect(failed.status == .failed)
            #expect(failed.error?.contains("exited with status 3") == true)
            #expect(failedRun?.status == .failed)
            #expect(failedRun?.failure?.category == .runtime)
        }
    }
}
