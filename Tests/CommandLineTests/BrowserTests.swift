import Foundation
import Storage
import Testing
import TowerTestSupport

/// The console in a real browser: headless Chromium driven by selenium (Debian's `chromium`
/// and `chromium-driver`, PyPI's `selenium`, installed by scripts/test) through one reviewer's
/// day, Tests/Browser/reviewer_day.py. Its screenshots go to `TOWER_UI_SCREENSHOTS` when set
/// (`TOWER_UI_SCREENSHOTS=$PWD/docs/ui scripts/test --filter Browser` refreshes the README's),
/// else to a temporary folder.
extension CommandLineTests {
    @Test("a reviewer's day in headless Chromium: sign in, enqueue, find the task, open its Run, see the diff and evidence, approve; refusals")
    func reviewerDayInABrowser() async throws {
        try await withSetup(.sqlite) { setup in
            let folder = setup.traceRoot.deletingLastPathComponent()
            let keysFile = folder.appendingPathComponent("keys-\(UUID().uuidString)")
            let scratch = folder.appendingPathComponent("screens-\(UUID().uuidString)")
            let environmentShots = ProcessInfo.processInfo.environment["TOWER_UI_SCREENSHOTS"].flatMap { $0.isEmpty ? nil : URL(fileURLWithPath: $0) }
            let screenshots = environmentShots ?? scratch
            try FileManager.default.createDirectory(at: screenshots, withIntermediateDirectories: true)
            defer {
                try? FileManager.default.removeItem(at: keysFile)
                try? FileManager.default.removeItem(at: scratch)
            }
            let setup = Setup(environment: setup.environment.merging(["TOWER_API_KEYS_FILE": keysFile.path]) { _, new in new }, traceRoot: setup.traceRoot)
            let reviewer = try await tower(setup, "keys", "add", "alice", "--scope", "write", "--scope", "review", "--scope", "read")
            let reader = try await tower(setup, "keys", "add", "viewer", "--scope", "read")
            try #require(reviewer.status == 0 && reader.status == 0)
            #expect(try await tower(setup, "migrate").status == 0)
            let agent = repositoryRoot.appendingPathComponent("Tests/Browser/fake_agent.sh").path
            let worker = ["TOWER_EXECUTOR": "command", "TOWER_EXECUTOR_COMMAND": "/bin/sh \(agent)"]
            try await withAPIProcess(setup, command: "serve", environment: worker) { port, log, _ in
                let outcome = try await TowerBinary.run(
                    ["python3", repositoryRoot.appendingPathComponent("Tests/Browser/reviewer_day.py").path, "http://127.0.0.1:\(port)", screenshots.path],
                    environment: [
                        "REVIEWER_KEY": reviewer.stdout.trimmingCharacters(in: .whitespacesAndNewlines),
                        "READER_KEY": reader.stdout.trimmingCharacters(in: .whitespacesAndNewlines),
                    ], timeout: 300, executable: URL(fileURLWithPath: "/usr/bin/env"))
                #expect(outcome.status == 0 && outcome.stdout.contains(#""ok": true"#),
                    "\(outcome)\n\(log.text)")
                let saved = try FileManager.default.contentsOfDirectory(atPath: screenshots.path).filter { $0.hasSuffix(".png") }
                #expect(saved.count >= 8, "a screenshot of each page: \(saved.sorted())")
            }
        }
    }
}
