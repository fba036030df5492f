import Foundation
import Spawn
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// `ChildProcess`: how every program this project starts is started.
@Suite("Child processes")
struct ChildProcessTests {
    /// A folder of its own, removed after `body`.
    func withFolder(_ body: (URL) async throws -> Void) async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("child-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        try await body(folder)
    }

    @Test("a parent holding 2,000 open descriptors starts a child, which inherits none of them")
    func manyDescriptors() async throws {
        try await withFolder { folder in
            // Not close-on-exec, like a descriptor some library opened carelessly.
            let held = (0..<2_000).map { _ in open("/dev/null", O_RDONLY) }
            defer { for descriptor in held where descriptor >= 0 { close(descriptor) } }
            try #require(held.allSatisfy { $0 >= 0 }, "2,000 more descriptors open (raise ulimit -n)")
            let listing = folder.appendingPathComponent("fds")
            let child = try ChildProcess(
                ["/bin/sh", "-c", "ls /proc/self/fd"], environment: [:], stdout: .file(listing))
            #expect(await child.wait() == .exited(0))
            let descriptors = try String(contentsOf: listing, encoding: .utf8).split(separator: "\n").compactMap { Int($0) }
            // 0, 1, 2, and the one `ls` opened to read /proc/self/fd.
            #expect(descriptors.count == 4, "\(descriptors)")
        }
    }

    @Test("the child runs in the given folder with exactly the given environment, and its exit status is reported")
    func directoryEnvironmentAndStatus() async throws {
        try await withFolder { folder in
            let output = folder.appendingPathComponent("out")
            let child = try ChildProcess(
                ["/bin/sh", "-c", "pwd; echo \"$ONLY\"; env | wc -l; exit 3"], environment: ["ONLY": "this"],
                directory: folder, stdout: .file(output))
            #expect(await child.wait() == .exited(3))
            #expect(child.status == .exited(3))
            let lines = try String(contentsOf: output, encoding: .utf8).split(separator: "\n").map {
                $0.trimmingCharacters(in: .whitespaces)
            }
            #expect(lines.first.map { URL(fileURLWithPath: $0).resolvingSymlinksInPath().path } == folder.resolvingSymlinksInPath().path)
            #expect(lines.dropFirst().first == "this")
        }
    }

    @Test("a capped output keeps its first bytes, reads on past the limit so the child never blocks, and ends with what it dropped")
    func cappedOutput() async throws {
        try await withFolder { folder in
            let (out, err) = (folder.appendingPathComponent("out"), folder.appendingPathComponent("err"))
            // 300,000 bytes: far more than a pipe holds, so a copier that stopped reading at
            // its limit would leave the child blocked for ever.
            let child = try ChildProcess(
                ["/bin/sh", "-c", "head -c 300000 /dev/zero | tr '\\0' a; echo 'to stderr' >&2"], environment: [:],
                stdout: .capped(out, limit: 100_000), stderr: .capped(err, limit: 100_000))
            #expect(await child.wait() == .exited(0))
            let kept = try String(contentsOf: out, encoding: .utf8)
            #expect(kept.hasPrefix(String(repeating: "a", count: 100_000) + "\n[tower: output cut at 100000 bytes; 200000 more bytes were dropped]\n"))
            #expect(kept.utf8.count == 100_000 + "\n[tower: output cut at 100000 bytes; 200000 more bytes were dropped]\n".utf8.count)
            #expect(child.copiedOutput(1) == CopiedOutput(keptBytes: 100_000, droppedBytes: 200_000))
            #expect(try String(contentsOf: err, encoding: .utf8) == "to stderr\n", "under its limit: as written")
            #expect(child.copiedOutput(2) == CopiedOutput(keptBytes: 10, droppedBytes: 0))
        }
    }

    @Test("a capped output whose file cannot take it (a full disk) says why, and the child still runs to its end")
    func cappedOutputFullDisk() async throws {
        // /dev/full answers every write with ENOSPC, as a full file system does.
        let child = try ChildProcess(
            ["/bin/sh", "-c", "head -c 300000 /dev/zero; exit 7"], environment: [:], stdout: .capped(URL(fileURLWithPath: "/dev/full"), limit: 1 << 20))
        #expect(await child.wait() == .exited(7), "not blocked on its pipe, not killed by a broken one")
        let copied = try #require(child.copiedOutput(1))
        #expect(copied.keptBytes == 0 && copied.writeFailure == "No space left on device", "\(copied)")
        #expect(child.copiedOutput(2) == nil, "not a capped output")
    }

    @Test("a capped output ends when the child has ended, even while a process it left behind holds the pipe")
    func cappedOutputOutlived() async throws {
        try await withFolder { folder in
            let out = folder.appendingPathComponent("out")
            let child = try ChildProcess(
                ["/bin/sh", "-c", "sleep 60 & echo started"], environment: [:], stdout: .capped(out, limit: 1_000), newProcessGroup: true)
            defer { child.send(SIGKILL) }
            #expect(await child.wait() == .exited(0))
            #expect(try String(contentsOf: out, encoding: .utf8) == "started\n")
        }
    }

    @Test("a child's CPU time, user and system, is known once it has ended")
    func cpuTime() async throws {
        // A shell loop that computes for a while: its CPU time is its own, and more than none.
        let child = try ChildProcess(["/bin/sh", "-c", "i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done"], environment: [:])
        #expect(await child.wait() == .exited(0))
        let seconds = try #require(child.cpuSeconds)
        #expect(seconds > 0)

        let sleeper = try ChildProcess(["/bin/sleep", "30"], environment: [:])
        #expect(sleeper.cpuSeconds == nil, "nothing is known while the child runs")
        sleeper.send(SIGKILL)
        #expect(await sleeper.wait() == .signaled(SIGKILL))
        #expect(sleeper.cpuSeconds != nil)
    }

    @Test("a child started from a thread that blocks and ignores signals has none blocked or ignored")
    func signalMaskReset() async throws {
        try await withFolder { folder in
            // Block SIGTERM on this thread, as a Swift server's threads do, and ignore SIGHUP.
            var blocked = sigset_t()
            sigemptyset(&blocked)
            sigaddset(&blocked, SIGTERM)
            var previous = sigset_t()
            pthread_sigmask(SIG_BLOCK, &blocked, &previous)
            let hangUp = signal(SIGHUP, SIG_IGN)
            defer {
                pthread_sigmask(SIG_SETMASK, &previous, nil)
                signal(SIGHUP, hangUp)
            }
            let output = folder.appendingPathComponent("status")
            let child = try ChildProcess(["/bin/grep", "-E", "^Sig(Blk|Ign)", "/proc/self/status"], environment: [:], stdout: .file(output))
            #expect(await child.wait() == .exited(0))
            let masks = try String(contentsOf: output, encoding: .utf8)
            let values = masks.split(separator: "\n").compactMap { UInt64($0.split(separator: "\t").last ?? "", radix: 16) }
            // The standard signals 1–31; glibc keeps 32 and 33 for itself (its threads' cancellation).
            #expect(values.count == 2 && values.allSatisfy { $0 & 0x7fff_ffff == 0 }, "\(masks)")
        }
    }

    @Test("a wait with a timeout answers nil while the child runs; SIGKILL then ends it")
    func waitTimeout() async throws {
        let child = try ChildProcess(["/bin/sleep", "30"], environment: [:])
        #expect(await child.wait(timeout: 0.1) == nil)
        #expect(child.status == nil)
        child.send(SIGKILL)
        #expect(await child.wait() == .signaled(SIGKILL))
        #expect(child.waitBlocking(timeout: 1) == .signaled(SIGKILL), "the status stays known")
    }

    @Test("a program that does not exist is an error naming it")
    func missingProgram() {
        #expect(throws: SpawnError.self) {
            try ChildProcess(["/nonexistent/tool"], environment: [:])
        }
        do {
            _ = try ChildProcess(["/nonexistent/tool"], environment: [:])
        } catch {
            #expect("\(error)".contains("/nonexistent/tool"))
        }
    }
}
