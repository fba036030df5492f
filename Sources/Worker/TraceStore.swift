import CWOM
import Crypto
import Foundation
import Synchronization
import TowerJSON

#if canImport(Glibc)
    import Glibc
#endif

/// Where trace folders live, with the root's path and `file://` URI worked out once: a run's
/// folder and the URIs of its files are then joined as strings. Foundation's `URL` parses and
/// normalizes on every `appendingPathComponent` and `absoluteString`; per file of a stub run that
/// came to a tenth of the worker's time in a burn-down.
public struct TraceRoot: Sendable {
    public let url: URL
    /// The root's path, without a trailing slash ("" for `/`).
    let path: String
    /// The root's URI, with a trailing slash.
    let uri: String

    public init(_ url: URL) {
        self.url = url
        let path = url.path
        self.path = path.hasSuffix("/") ? String(path.dropLast()) : path
        let uri = url.absoluteURL.absoluteString
        self.uri = uri.hasSuffix("/") ? uri : uri + "/"
    }

    /// A run's folder: `<root>/<run_id>`.
    public func folderPath(_ runId: String) -> String {
        Self.isPlain(runId) ? path + "/" + runId : url.appendingPathComponent(runId, isDirectory: true).path
    }

    /// A run's folder as `Run.artifact_root_uri` spells it: `file:///…/<run_id>/`.
    public func folderURI(_ runId: String) -> String {
        guard Self.isPlain(runId) else {
            let uri = url.appendingPathComponent(runId, isDirectory: true).absoluteURL.absoluteString
            return uri.hasSuffix("/") ? uri : uri + "/"
        }
        return uri + runId + "/"
    }

    /// A relative path that needs no percent-encoding in a URI and no normalizing in a path
    /// (letters, digits, `-`, `_`, `.`, `/`; no empty, `.` or `..` component): joined as it is.
    /// Anything else takes Foundation's way, so that both spell it the same.
    static func isPlain(_ relative: String) -> Bool {
        guard !relative.isEmpty else { return false }
        let plainBytes = relative.utf8.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "/"):
                return true
            default: return false
            }
        }
        return plainBytes && relative.split(separator: "/", omittingEmptySubsequences: false).allSatisfy { !$0.isEmpty && $0 != "." && $0 != ".." }
    }
}

/// One run's trace folder: `manifest.json`, `events.jsonl`, `trace.log`, `context.json`,
/// `constraints.json` and `artifacts/` (reference §6.3, written the same way: JSON files
/// pretty-printed with ASCII escapes, events one JSON object per line).
public final class TraceStore: Sendable {
    /// The folder's path (no trailing slash).
    public let path: String
    /// `file:///…/<run_id>/` (with the trailing slash, as `Run.artifact_root_uri`).
    public let rootURI: String
    private let lock = Mutex(())
    /// Subfolders known to exist, so that a write does not ask the file system again.
    private let folders = Mutex<Set<String>>(["", "artifacts"])

    public convenience init(root: URL, runId: String) throws {
        try self.init(root: TraceRoot(root), runId: runId)
    }

    public init(root: TraceRoot, runId: String) throws {
        path = root.folderPath(runId)
        rootURI = root.folderURI(runId)
        // Plain `mkdir` for the run's two folders; Foundation's `createDirectory` checks every
        // component of the path first. Only a missing trace root takes the long way.
        if mkdir(path, 0o755) != 0 && errno != EEXIST {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        }
        try Self.mkdirIfNeeded(path + "/artifacts")
    }

    static func mkdirIfNeeded(_ path: String) throws {
        guard mkdir(path, 0o755) == 0 || errno == EEXIST else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: path, NSUnderlyingErrorKey: POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO)])
        }
    }

    /// Makes the subfolder `name` (and its parents) inside the trace folder, asking the file
    /// system only about folders this store has not made yet.
    public func makeFolder(_ name: String) throws {
        guard !name.isEmpty, !folders.withLock({ $0.contains(name) }) else { return }
        try makeFolder(Self.parent(name))
        try Self.mkdirIfNeeded(filePath(name))
        _ = folders.withLock { $0.insert(name) }
    }

    public var folder: URL { URL(fileURLWithPath: path, isDirectory: true) }
    public var artifactsFolder: URL { URL(fileURLWithPath: path + "/artifacts", isDirectory: true) }
    /// `file:///…/<run_id>` (no trailing slash, as `tasks.trace_path`).
    public var uri: String { String(rootURI.dropLast()) }

    public func url(_ name: String) -> URL { URL(fileURLWithPath: filePath(name)) }

    /// The path of `name` inside the folder.
    func filePath(_ name: String) -> String {
        TraceRoot.isPlain(name) ? path + "/" + name : folder.appendingPathComponent(name).path
    }

    /// The `file://` URI of `name` inside the folder.
    public func fileURI(_ name: String) -> String {
        TraceRoot.isPlain(name) ? rootURI + name : folder.appendingPathComponent(name).absoluteURL.absoluteString
    }

    /// `a/b/c` → `a/b`, `c` → "".
    static func parent(_ name: String) -> String {
        guard let slash = name.lastIndex(of: "/") else { return "" }
        return String(name[..<slash])
    }

    public func write(_ name: String, _ text: String) throws {
        try makeFolder(Self.parent(name))
        try Self.put(filePath(name), text, flags: O_TRUNC)
    }

    /// Writes (or appends) the file with plain `open`/`write`/`close`. Foundation's
    /// `String.write(to:atomically:)` also calls `fsync` on every file, which cost a trace folder
    /// most of its time; a trace survives a crash of its worker only as far as its Run does (a
    /// rescued task runs again on a new Run and a new folder), so the page cache is enough.
    static func put(_ path: String, _ text: String, flags: Int32) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | flags, 0o644)
        guard fd >= 0 else { throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: path]) }
        defer { close(fd) }
        try Array(text.utf8).withUnsafeBytes { buffer in
            guard let base = buffer.baseAddress else { return }
            var offset = 0
            while offset < buffer.count {
                let count = Glibc.write(fd, base + offset, buffer.count - offset)
                if count < 0 && errno == EINTR { continue }
                guard count > 0 else { throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: path]) }
                offset += count
            }
        }
    }

    public func writeJSON(_ name: String, _ value: JSONValue) throws {
        try write(name, value.serialized(.prettyASCII))
    }

    /// Appends an event to `events.jsonl`, with `timestamp` added when absent.
    public func event(_ type: String, _ fields: JSONObject = [:]) {
        var object: JSONObject = ["event": .string(type)]
        for (key, value) in fields { object[key] = value }
        if object["timestamp"] == nil { object["timestamp"] = .string(Timestamp.now().iso8601) }
        append("events.jsonl", JSONValue.object(object).serialized(.pythonLine) + "\n")
    }

    /// Appends `[<iso>] <line>` to `trace.log`; indented detail lines follow as given.
    public func log(_ line: String, details: [String] = []) {
        let text = "[\(Timestamp.now().iso8601)] \(line)\n" + details.map { "  \($0)\n" }.joined()
        append("trace.log", text)
    }

    private func append(_ name: String, _ text: String) {
        lock.withLock { _ in try? Self.put(path + "/" + name, text, flags: O_APPEND) }
    }

    /// Every file in the folder as (path, sha256, size), sorted by path, and the digest of that
    /// manifest (`TraceFile.digest`): the trace artifact's digest.
    ///
    /// `hashed` are files of the folder (paths inside it) that the caller has just read and hashed,
    /// the run's output files as its Artifacts record them: one of the same path and size is not
    /// read a second time, so that the folder's digest and the Artifacts' digests come from the
    /// same reading of each file, and a large output is read once.
    public func manifestDigest(hashed: [TraceFile] = []) throws -> (files: [TraceFile], digest: String) {
        let known = Dictionary(hashed.map { ($0.path, $0) }) { first, _ in first }
        let files = try TraceFile.scan(path: path) { relative, absolute, size, buffer in
            if let file = known[relative], file.size == size { return file.sha256 }
            return try TraceFile.sha256(absolute, buffer: &buffer)
        }
        return (files, TraceFile.digest(files))
    }
}

/// A file of a trace folder.
public struct TraceFile: Sendable, Hashable {
    public var path: String
    public var sha256: String
    public var size: Int

    public init(path: String, sha256: String, size: Int) {
        self.path = path
        self.sha256 = sha256
        self.size = size
    }

    private static let nameOffset = MemoryLayout<dirent>.offset(of: \dirent.d_name) ?? 19

    /// Every regular file below `folder` (links below it are not followed), sorted by path.
    public static func scan(_ folder: URL) throws -> [TraceFile] { try scan(path: folder.path) }

    /// Every regular file below the folder at `base` (links below it are not followed), sorted
    /// by path. A walk with `readdir` and `lstat` and a hash read through one buffer:
    /// Foundation's enumerator and `FileHandle` cost a completed run more than writing its folder
    /// did.
    public static func scan(path base: String) throws -> [TraceFile] {
        try scan(path: base) { _, absolute, _, buffer in try sha256(absolute, buffer: &buffer) }
    }

    /// `scan`, each file's SHA-256 given by `hash` (its path relative to `base`, its absolute
    /// path, its size and a read buffer).
    static func scan(path base: String, hash: (String, String, Int, inout [UInt8]) throws -> String) throws -> [TraceFile] {
        var files: [TraceFile] = []
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        func walk(_ relative: String) throws {
            guard let directory = opendir(relative.isEmpty ? base : base + "/" + relative) else { return }
            defer { closedir(directory) }
            while let entry = readdir(directory) {
                // The name is read in place up to its NUL: copying `d_name` (256 bytes) out of
                // the entry can read past the end of readdir's buffer (Foundation's Process.run
                // crashes that way with many descriptors open).
                let name = String(cString: UnsafeRawPointer(entry).advanced(by: Self.nameOffset).assumingMemoryBound(to: CChar.self))
                if name == "." || name == ".." { continue }
                let path = relative.isEmpty ? name : relative + "/" + name
                var info = stat()
                guard lstat(base + "/" + path, &info) == 0 else { continue }
                switch info.st_mode & S_IFMT {
                case S_IFDIR: try walk(path)
                case S_IFREG:
                    let size = Int(info.st_size)
                    files.append(TraceFile(path: path, sha256: try hash(path, base + "/" + path, size, &buffer), size: size))
                default: continue
                }
            }
        }
        try walk("")
        return files.sorted { $0.path < $1.path }
    }

    /// The size of a regular file (links are not followed), nil for anything else. `lstat`
    /// rather than `FileManager.attributesOfItem`, which also looks up the owner's and group's
    /// names in the account database for every file.
    public static func regularFileSize(_ path: String) -> Int? {
        var info = stat()
        guard lstat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { return nil }
        return Int(info.st_size)
    }

    /// The file's SHA-256 in hex; "" when it cannot be opened (it went away meanwhile).
    public static func sha256(_ path: String) throws -> String {
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        return try sha256(path, buffer: &buffer)
    }

    static func sha256(_ path: String, buffer: inout [UInt8]) throws -> String {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else { return "" }
        defer { close(fd) }
        var hasher = SHA256()
        while true {
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            if count < 0 { throw CocoaError(.fileReadUnknown, userInfo: [NSFilePathErrorKey: path]) }
            if count == 0 { break }
            buffer.withUnsafeBytes { hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: $0.prefix(count))) }
        }
        return Hex.encode(hasher.finalize())
    }

    public static func sha256(of data: Data) -> String {
        Hex.encode(SHA256.hash(data: data))
    }

    /// A folder's digest: the SHA-256 of its manifest, one `path\tsha256\tsize` line per file
    /// in the order of `files` (a scan's: sorted by path).
    public static func digest(_ files: [TraceFile]) -> String {
        "sha256:" + sha256(of: Data(files.map { "\($0.path)\t\($0.sha256)\t\($0.size)\n" }.joined().utf8))
    }

    static func mediaType(_ name: String) -> String {
        switch (name as NSString).pathExtension.lowercased() {
        case "md": return "text/markdown"
        case "json": return "application/json"
        case "jsonl": return "application/x-ndjson"
        case "txt", "log", "out", "err": return "text/plain"
        case "diff", "patch": return "text/x-diff"
        case "html": return "text/html"
        case "png": return "image/png"
        case "jpg", "jpeg": return "image/jpeg"
        case "zip": return "application/zip"
        default: return "application/octet-stream"
        }
    }
}
