import Foundation

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
        timeout: Double = 120, executable: URL = TowerBinary.url) throws -> Outcome
    {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("tower-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let out = folder.appendingPathComponent("stdout")
        let err = folder.appendingPathComponent("stderr")
        _ = FileManager.default.createFile(atPath: out.path, contents: nil)
        _ = FileManager.default.createFile(atPath: err.path, contents: nil)
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
        process.standardOutput = try FileHandle(forWritingTo: out)
        process.standardError = try FileHandle(forWritingTo: err)
        if let stdin {
            let input = folder.appendingPathComponent("stdin")
            try stdin.write(to: input)
            process.standardInput = try FileHandle(forReadingFrom: input)
        } else {
            process.standardInput = FileHandle.nullDevice
        }
        try process.run()
        let deadline = Date().addingTimeInterval(timeout)
        var timedOut = false
        while process.isRunning {
            if Date() > deadline {
                timedOut = true
                kill(process.processIdentifier, SIGKILL)
                break
            }
            usleep(20_000)
        }
        process.waitUntilExit()
        return Outcome(
            status: process.terminationStatus,
            stdout: (try? String(contentsOf: out, encoding: .utf8)) ?? "",
            stderr: (try? String(contentsOf: err, encoding: .utf8)) ?? "",
            signalled: process.terminationReason == .uncaughtSignal, timedOut: timedOut)
    }
}
