import CWOM
import Foundation
import Testing
import TowerJSON
import Worker

@Suite("Trace folders")
struct TraceStoreTests {
    @Test("a file's extension is read as NSString.pathExtension reads it, lowercased")
    func pathExtensions() {
        let names = [
            "output.md", "artifacts/changes.PATCH", "a.tar.gz", "run.log", "noextension", ".bashrc", "artifacts/.hidden",
            "dir.d/file", "dir.d/file.txt", "file.", "..", ".", "", "a/b/", "a/b.json/", "x/..", "résumé.Txt", "a..b",
            "/abs/path/file.jsonl", "a/.b.c",
        ]
        for name in names {
            #expect(TraceFile.pathExtension(name) == (name as NSString).pathExtension.lowercased(), "\(name)")
        }
    }

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

    @Test("a file's hash and the folder's digest are SHA-256 in lowercase hex, the digest over one path-hash-size line per file")
    func digestFormat() {
        #expect(TraceFile.sha256(of: Data()) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        let files = [TraceFile(path: "a.txt", sha256: "abc", size: 3), TraceFile(path: "logs/b.log", sha256: "def", size: 12)]
        // sha256("a.txt\tabc\t3\nlogs/b.log\tdef\t12\n")
        #expect(TraceFile.digest(files) == "sha256:a11c96ac05a8452fc4c052f4e2cd083b61ee65974ab7f0628a7f61f8b23ba2ed")
        #expect(Hex.encode([0x00, 0x0f, 0xa0, 0xff]) == "000fa0ff")
    }

    @Test("the folder's digest takes the hashes of the files just read for the Artifacts, and reads any other file")
    func digestReusesHashedFiles() throws {
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("tower-trace-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let trace = try TraceStore(root: scratch.appendingPathComponent("runs"), runId: "run-1")
        try trace.write("artifacts/output.md", "first")
        try trace.write("manifest.json", "{}")
        let fresh = try TraceFile.scan(trace.folder)
        #expect(try trace.manifestDigest().digest == TraceFile.digest(fresh), "nothing given: every file read")

        // A hash given for a file of that path and size is taken as it is (a marker shows it).
        let given = TraceFile(path: "artifacts/output.md", sha256: String(repeating: "a", count: 64), size: 5)
        let (files, digest) = try trace.manifestDigest(hashed: [given])
        #expect(files.first { $0.path == "artifacts/output.md" }?.sha256 == given.sha256)
        #expect(files.first { $0.path == "manifest.json" }?.sha256 == TraceFile.sha256(of: Data("{}".utf8)), "the others read")
        #expect(digest == TraceFile.digest(files))

        // One whose size no longer matches is read again.
        try trace.write("artifacts/output.md", "second, longer")
        let (again, _) = try trace.manifestDigest(hashed: [given])
        #expect(again.first { $0.path == "artifacts/output.md" }?.sha256 == TraceFile.sha256(of: Data("second, longer".utf8)))
    }

    @Test("a folder kept in memory reaches the disk only when flushed, with the very files, bytes and digest of one written through")
    func inMemoryFolder() throws {
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("tower-trace-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let root = scratch.appendingPathComponent("runs")
        // What a stub run does to its folder: files written, one rewritten, appends, nested folders.
        func run(_ trace: TraceStore) throws {
            try trace.writeJSON("manifest.json", ["status": "running"])
            try trace.write("context.json", "{}")
            trace.log("Execution started", details: ["Executor: stub"])
            trace.event("execution_started", ["executor": "stub", "timestamp": "2026-12-03T00:00:00Z"])
            try trace.write("artifacts/output.md", "# Stub Execution Report\n")
            trace.event("execution_completed", ["status": "succeeded", "timestamp": "2026-12-03T00:00:01Z"])
            try trace.makeFolder("evidence/criteria")
            try trace.write("evidence/criteria/criterion_0.json", "[1]")
            try trace.makeFolder("empty")
            try trace.writeJSON("manifest.json", ["status": "completed"])
        }
        let through = try TraceStore(root: root, runId: "through")
        try run(through)
        let memory = try TraceStore(root: root, runId: "memory", inMemory: true)
        try run(memory)
        #expect(!FileManager.default.fileExists(atPath: memory.path), "nothing on disk before the flush")

        // The log lines carry the time of writing; everything else is the same byte for byte.
        let logged = try String(contentsOf: through.url("trace.log"), encoding: .utf8)
        let onDisk = try through.files().filter { $0.path != "trace.log" }
        let (inMemory, digest) = try memory.manifestDigest()
        #expect(inMemory.filter { $0.path != "trace.log" } == onDisk)
        let scanned = try TraceFile.scan(through.folder)
        #expect(inMemory.map(\.path) == scanned.map(\.path))
        #expect(try memory.files(in: "artifacts") == [TraceFile(path: "output.md", sha256: TraceFile.sha256(of: Data("# Stub Execution Report\n".utf8)), size: 24)])
        #expect(try memory.file("stdout.log") == nil)
        #expect(try memory.file("context.json")?.size == 2)

        try memory.flush()
        #expect(try TraceFile.scan(memory.folder) == inMemory, "the files flushed are those digested")
        #expect(TraceFile.digest(try TraceFile.scan(memory.folder)) == digest)
        #expect(try String(contentsOf: memory.url("trace.log"), encoding: .utf8).hasSuffix("] Execution started\n  Executor: stub\n"))
        #expect(logged.hasSuffix("] Execution started\n  Executor: stub\n"))
        var isFolder: ObjCBool = false
        #expect(FileManager.default.fileExists(atPath: memory.url("empty").path, isDirectory: &isFolder) && isFolder.boolValue)

        // From then on it writes through.
        memory.log("Execution stopped")
        try memory.write("artifacts/later.md", "later")
        #expect(try String(contentsOf: memory.url("trace.log"), encoding: .utf8).hasSuffix("] Execution stopped\n"))
        #expect(try TraceFile.scan(memory.folder).count == inMemory.count + 1)
        try memory.flush()  // a second flush changes nothing
        #expect(try TraceFile.scan(memory.folder).count == inMemory.count + 1)
    }

    @Test("a trace folder's paths and URIs are spelled as Foundation spells them, plain names joined, others percent-encoded")
    func spelling() throws {
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("tower-trace-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: scratch) }
        for rootPath in [scratch.path + "/runs", scratch.path + "/runs/", scratch.path + "/with space"] {
            let rootURL = URL(fileURLWithPath: rootPath, isDirectory: true)
            let root = TraceRoot(rootURL)
            for runId in ["01JD7W3YV3Q6K8T2P9M4N5B6C7", "run 1", "é"] {
                let expected = rootURL.appendingPathComponent(runId, isDirectory: true)
                #expect(root.folderPath(runId) == expected.path)
                #expect(root.folderURI(runId) == expected.absoluteURL.absoluteString)
                let trace = try TraceStore(root: root, runId: runId)
                #expect(trace.rootURI == expected.absoluteURL.absoluteString)
                #expect(trace.uri + "/" == trace.rootURI && !trace.uri.hasSuffix("/"), "the trace path: the folder's URI without its slash")
                for name in [
                    "artifacts/output.md", "stdout.log", "artifacts/a b.txt", "artifacts/%41", "artifacts/ü.md", "artifacts/.../x.md",
                    "artifacts/./y.md", "artifacts//z.md", ".hidden",
                ] {
                    #expect(trace.fileURI(name) == expected.appendingPathComponent(name).absoluteURL.absoluteString, "\(name)")
                    try trace.write(name, "x")
                    #expect(FileManager.default.fileExists(atPath: expected.appendingPathComponent(name).path), "\(name)")
                }
            }
        }
    }
}
