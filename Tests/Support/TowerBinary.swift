import Foundation
import Spawn

/// The `tower` executable that `scripts/test` builds, run as a separate process the way an
/// operator runs it.
public enum TowerBinary {
    public static let url = repositoryRoot.appendingPathComponent(".build/debug/tower")

    public static var isBuilt: Bool { FileManager.default.isExecutableFile(atPath: url.path) }

    /// What one invocation printed and how it ended.
    public struct Outcome: Sendable, CustomStringConvertible {
        public let status: Int32
        public let stdout: String
        public let stderr: String
        /// True when the process ended by a signal (a crash, or the kill after `timeout`).
        public let signalled: Bool
        /// True when the process was still running at the timeout and was killed.
        public let timedOut: Bool

        public var description: String { "exit \(status)\(signalled ? " (signal)" : "")\(timedOut ? " (killed at the timeout)" : "")\nstdout: \(stdout)\nstderr: \(stderr)" }
    }

    /// Runs `tower ARGUMENTS` to its end with the test process's environment plus `environment`.
    /// Output goes to files, so a large answer can never block the child on a full pipe.
    /// A process still running after `timeout` seconds is killed (a hang fails the test, it does
    /// not stop the suite).
    /// `executable` runs another program the same way (a test client).
    public static func run(_ arguments: [String], environment: [String: String] = [:], stdin: Data? = nil,
        timeout: Double = 120, executable: URL = TowerBinary.url) async throws -> Outcome
    {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("tower-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let out = folder.appendingPathComponent("stdout")
        let err = folder.appendingPathComponent("stderr")
        var input: URL?
        if let stdin {
            let file = folder.appendingPathComponent("stdin")
            try stdin.write(to: file)
            input = file
        }
        let child = try start(arguments, environment: environment, stdin: input, stdout: out, stderr: err, executable: executable)
        // Waits without holding a thread: the suite's async tests share a cooperative pool of
        // as many threads as cores, and a blocked one stalls every test waiting on its turn.
        var status = await child.wait(timeout: timeout)
        let timedOut = status == nil
        if timedOut {
            child.send(SIGKILL)
            status = await child.wait(timeout: 60)
        }
        let code: Int32
        switch status {
        case .exited(let exit): code = exit
        case .signaled(let signal): code = signal
        case nil: code = -1
        }
        return Outcome(
            status: code,
            stdout: (try? String(contentsOf: out, encoding: .utf8)) ?? "",
            stderr: (try? String(contentsOf: err, encoding: .utf8)) ?? "",
            signalled: status.map { if case .signaled = $0 { true } else { false } } ?? true, timedOut: timedOut)
    }

    /// Starts `tower ARGUMENTS` (or `executable`) in the background with the test process's
    /// environment plus `environment`; output to the given files, discarded when nil.
    /// Started by `ChildProcess` (posix_spawn), not Foundation's `Process`, which crashes a
    /// process holding ~1,350 descriptors, as the parallel suite can.
    public static func start(_ arguments: [String], environment: [String: String] = [:], stdin: URL? = nil,
        stdout: URL? = nil, stderr: URL? = nil, executable: URL = TowerBinary.url) throws -> ChildProcess
    {
        try ChildProcess(
            [executable.path] + arguments,
            environment: ProcessInfo.processInfo.environment.merging(environment) { _, new in new }, stdin: stdin,
            stdout: stdout.map { .file($0) } ?? .discard, stderr: stderr.map { .file($0) } ?? .discard)
    }
}
