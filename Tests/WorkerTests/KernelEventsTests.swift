import Foundation
import Spawn
import Testing
import TowerTestSupport

#if canImport(Glibc)
    import Glibc
#endif

/// The events the tests wait on for what another process does (`Tests/Support/KernelEvents.swift`):
/// they must wake when it happens and not before.
@Suite("Waiting on other processes")
struct KernelEventsTests {
    @Test("a log line written later by another process wakes the wait; a line never written is not found")
    func logLines() async throws {
        let log = try LogFile(FileManager.default.temporaryDirectory.appendingPathComponent("log-\(UUID().uuidString)"))
        defer { try? FileManager.default.removeItem(at: log.url) }
        let writer = try ChildProcess(
            ["/bin/sh", "-c", "echo first; sleep 0.3; printf 'second '; sleep 0.2; echo half; echo third"], environment: [:],
            stdout: .file(log.url))
        #expect(try await log.line { $0 == "second half" } == "second half", "a line written in two parts is read whole")
        #expect(try await log.line { $0.hasPrefix("first") } == "first", "every wait reads from the start")
        #expect(await writer.wait() == .exited(0))
        #expect(try await log.line(seconds: 0.3) { $0 == "fourth" } == nil)
        #expect(log.text == "first\nsecond half\nthird\n")
    }

    @Test("a process's end wakes the wait, whoever its parent is; a running one is not reported ended")
    func processEnd() async throws {
        let sleeper = try ChildProcess(["/bin/sleep", "60"], environment: [:])
        #expect(try await processEnded(sleeper.pid, seconds: 0.3) == false, "it still runs")
        sleeper.send(SIGKILL)
        #expect(try await processEnded(sleeper.pid, seconds: 10), "killed")
        _ = await sleeper.wait()
        #expect(try await processEnded(sleeper.pid, seconds: 10), "reaped: no such process any more")
    }
}
