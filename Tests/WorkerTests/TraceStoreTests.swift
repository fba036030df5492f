import Foundation
import Testing
import Worker

@Suite("Trace folders")
struct TraceStoreTests {
    @Test("a scan lists every regular file below the folder, sorted, with its size and SHA-256; links are not followed")
    func scan() throws {
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("tower-trace-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let outside = scratch.appendingPathComponent("outside")
        try FileManager.default.createDirectory(at: outside, withIntermediateDirectories: true)
        try Data("secret".utf8).write(to: outside.appendingPathComponent("secret.txt"))

        let trace = try TraceStore(root: scratch.appendingPathComponent("runs"), runId: "run-1")
        try trace.write("manifest.json", "{}")
        try trace.write("evidence/criteria/criterion_0.json", "[1]")
        try trace.write(".hidden", "")
        let big = String(repeating: "0123456789abcdef", count: 10_000)  // more than one read buffer
        try trace.write("artifacts/output.md", big)
        try FileManager.default.createSymbolicLink(at: trace.url("linked-folder"), withDestinationURL: outside)
        try FileManager.default.createSymbolicLink(
            at: trace.url("linked-file"), withDestinationURL: outside.appendingPathComponent("secret.txt"))

        let files = try TraceFile.scan(trace.folder)
        #expect(files.map(\.path) == [".hidden", "artifacts/output.md", "evidence/criteria/criterion_0.json", "manifest.json"])
        #expect(files.map(\.size) == [0, big.utf8.count, 3, 2])
        #expect(files[1].sha256 == TraceFile.sha256(of: Data(big.utf8)))
        #expect(files[0].sha256 == TraceFile.sha256(of: Data()))
        #expect(try TraceFile.sha256(trace.url("manifest.json").path) == TraceFile.sha256(of: Data("{}".utf8)))

        // A second store on the same run folder (an agent's next call) finds its folders there.
        let again = try TraceStore(root: scratch.appendingPathComponent("runs"), runId: "run-1")
        try again.write("evidence/verdict.json", "{}")
        #expect(try TraceFile.scan(again.folder).count == 5)
    }
}
