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
        // A native string's bytes in place: the `UTF8View` checks every step, 40 instructions a
        // byte, and this runs for every file and folder of every run (25 times a run).
        relative.utf8.withContiguousStorageIfAvailable(isPlain) ?? isPlain(relative.utf8)
    }

    private static func isPlain<Bytes: Sequence<UInt8>>(_ bytes: Bytes) -> Bool {
        // One pass over the bytes, no allocation.
        var length = 0  // of the current component
        var onlyDots = true
        for byte in bytes {
            switch byte {
            case UInt8(ascii: "/"):
                if length == 0 || (onlyDots && length <= 2) { return false }
                length = 0
                onlyDots = true
            case UInt8(ascii: "."):
                length += 1
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "-"), UInt8(ascii: "_"):
                length += 1
                onlyDots = false
            default:
                return false
            }
        }
        return length > 0 && !(onlyDots && length <= 2)
    }
}

/// One run's trace folder: `manifest.json`, `events.jsonl`, `trace.log`, `context.json`,
/// `constraints.json` and `artifacts/` (reference §6.3, written the same way: JSON files
/// pretty-printed with ASCII escapes, events one JSON object per line).
///
/// A folder is written through to disk as it goes, or, for an executor that runs in this process
/// and ends within moments (`TaskExecutor.keepsTraceInMemory`), kept in memory and written once
/// by `flush()` when the Run ends: the same files with the same bytes, each created once, none
/// appended to and none read back for the digest: a SQLite burn-down of stub runs drains a
/// fifth faster so (docs/benchmarks.md).
public final class TraceStore: Sendable {
    /// The folder's path (no trailing slash).
    public let path: String
    /// `file:///…/<run_id>/` (with the trailing slash, as `Run.artifact_root_uri`).
    public let rootURI: String
    /// `file:///…/<run_id>` (no trailing slash, as `tasks.trace_path`). Made once: `dropLast` of a
    /// `String` walked it from the start, twice a run (8,000 instructions each).
    public let uri: String
    private let state: Mutex<State>

    private struct State {
        /// The folder while it is kept in memory: its files (paths inside it → bytes) and
        /// subfolders. nil once it is on disk.
        var pending: Pending?
        /// Subfolders known to exist on disk, so that a write does not ask the file system again.
        var folders: Set<String> = ["", "artifacts"]
    }

    private struct Pending {
        var files: [String: [UInt8]] = [:]
        var folders: Set<String> = ["artifacts"]
    }

    public convenience init(root: URL, runId: String, inMemory: Bool = false) throws {
        try self.init(root: TraceRoot(root), runId: runId, inMemory: inMemory)
    }

    /// `inMemory`: nothing reaches the disk until `flush()`.
    public init(root: TraceRoot, runId: String, inMemory: Bool = false) throws {
        path = root.folderPath(runId)
        rootURI = root.folderURI(runId)
        uri = String(decoding: rootURI.utf8.dropLast(), as: UTF8.self)  // its last byte is "/"
        state = Mutex(State(pending: inMemory ? Pending() : nil))
        if !inMemory { try Self.makeRunFolder(path) }
    }

    /// Plain `mkdir` for the run's two folders; Foundation's `createDirectory` checks every
    /// component of the path first. Only a missing trace root takes the long way.
    static func makeRunFolder(_ path: String) throws {
        try makeFolder(atPath: path)
        try mkdirIfNeeded(path + "/artifacts")
    }

    /// Makes the folder at `path` and any missing parent (a trace root, a run's folder); an
    /// existing one is fine.
    public static func makeFolder(atPath path: String) throws {
        guard mkdir(path, 0o755) != 0 && errno != EEXIST else { return }
        guard errno == ENOENT else { throw TraceFolderError(path: path, operation: "create the folder") }
        // A parent is missing: made with its parents. Should that fail, one more `mkdir` says why
        // in the system's words.
        if (try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)) == nil,
            mkdir(path, 0o755) != 0 && errno != EEXIST
        {
            throw TraceFolderError(path: path, operation: "create the folder")
        }
    }

    static func mkdirIfNeeded(_ path: String) throws {
        guard mkdir(path, 0o755) == 0 || errno == EEXIST else { throw TraceFolderError(path: path, operation: "create the folder") }
    }

    /// Makes the subfolder `name` (and its parents) inside the trace folder, asking the file
    /// system only about folders this store has not made yet.
    public func makeFolder(_ name: String) throws {
        try state.withLock { try makeFolder(name, &$0) }
    }

    private func makeFolder(_ name: String, _ state: inout State) throws {
        guard !name.isEmpty else { return }
        if state.pending != nil, TraceRoot.isPlain(name) {
            // A folder already known has its parents known too.
            var folder = name
            while !folder.isEmpty, state.pending?.folders.insert(folder).inserted == true { folder = Self.parent(folder) }
            return
        }
        try writeThrough(&state)
        guard !state.folders.contains(name) else { return }
        try makeFolder(Self.parent(name), &state)
        try Self.mkdirIfNeeded(filePath(name))
        state.folders.insert(name)
    }

    /// Writes a folder kept in memory to disk; from then on every write goes there. Does nothing
    /// for a folder already on disk.
    public func flush() throws {
        try state.withLock { try writeThrough(&$0) }
    }

    /// Every name of a folder kept in memory is plain (`TraceRoot.isPlain`): its folders and files
    /// are made relative to the run folder's descriptor, so the kernel walks the trace root's path
    /// once per run instead of once per file (a tenth of what the folder costs the kernel,
    /// docs/benchmarks.md).
    private func writeThrough(_ state: inout State) throws {
        guard let pending = state.pending else { return }
        state.pending = nil
        try Self.makeFolder(atPath: path)
        let folder = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard folder >= 0 else { throw TraceFolderError(path: path, operation: "open the folder") }
        defer { close(folder) }
        // Sorted, a folder comes before its subfolders; the pending set holds every parent.
        for name in pending.folders.sorted() {
            guard mkdirat(folder, name, 0o755) == 0 || errno == EEXIST else {
                throw TraceFolderError(path: filePath(name), operation: "create the folder")
            }
            state.folders.insert(name)
        }
        for (name, bytes) in pending.files {
            let file = filePath(name)
            try Self.put(openat(folder, name, Self.createFlags | O_TRUNC, 0o644), bytes, path: file)
        }
    }

    /// The folder as a URL. For a folder kept in memory, paths name where its files will be once
    /// flushed.
    public var folder: URL { URL(fileURLWithPath: path, isDirectory: true) }
    public var artifactsFolder: URL { URL(fileURLWithPath: path + "/artifacts", isDirectory: true) }

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
        try state.withLock { state in
            try makeFolder(Self.parent(name), &state)
            if state.pending != nil, TraceRoot.isPlain(name) {
                state.pending?.files[name] = Array(text.utf8)
                return
            }
            try writeThrough(&state)
            try Self.put(filePath(name), Array(text.utf8), flags: O_TRUNC)
        }
    }

    /// Writes (or appends) the file with plain `open`/`write`/`close`. Foundation's
    /// `String.write(to:atomically:)` also calls `fsync` on every file, which cost a trace folder
    /// most of its time; a trace survives a crash of its worker only as far as its Run does (a
    /// rescued task runs again on a new Run and a new folder), so the page cache is enough.
    static func put(_ path: String, _ bytes: [UInt8], flags: Int32) throws {
        try put(open(path, createFlags | flags, 0o644), bytes, path: path)
    }

    static let createFlags = O_WRONLY | O_CREAT | O_CLOEXEC

    /// Writes `bytes` to the file just opened as `fd` (closed afterwards), `path` its name for
    /// errors.
    static func put(_ fd: Int32, _ bytes: [UInt8], path: String) throws {
        guard fd >= 0 else { throw TraceFolderError(path: path, operation: "open the file") }
        defer { close(fd) }
        try bytes.withUnsafeBytes { buffer in
            guard let base = buffer.baseAddress else { return }
            var offset = 0
            while offset < buffer.count {
                let count = Glibc.write(fd, base + offset, buffer.count - offset)
                if count < 0 && errno == EINTR { continue }
                guard count > 0 else { throw TraceFolderError(path: path, operation: "write the file") }
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
        state.withLock { state in
            if state.pending != nil {
                state.pending?.files[name, default: []].append(contentsOf: text.utf8)
                return
            }
            try? Self.put(path + "/" + name, Array(text.utf8), flags: O_APPEND)
        }
    }

    /// Every regular file below `folder` (a path inside the trace folder; "" for all of it) as
    /// (path relative to `folder`, sha256, size), sorted by path. `known` are files (same
    /// relative paths) the caller has just hashed: one of the same path and size is not read again.
    public func files(in folder: String = "", known: [TraceFile] = []) throws -> [TraceFile] {
        let known = Dictionary(known.map { ($0.path, $0) }) { first, _ in first }
        func reuse(_ relative: String, _ size: Int) -> String? { known[relative].flatMap { $0.size == size ? $0.sha256 : nil } }
        if let memory = state.withLock({ $0.pending?.files }) {
            let prefix = folder.isEmpty ? "" : folder + "/"
            return memory.compactMap { name, bytes -> TraceFile? in
                guard name.hasPrefix(prefix) else { return nil }
                let relative = String(name.dropFirst(prefix.count))
                return TraceFile(path: relative, sha256: reuse(relative, bytes.count) ?? TraceFile.sha256(of: bytes), size: bytes.count)
            }.sorted { $0.path < $1.path }
        }
        return try TraceFile.scan(path: folder.isEmpty ? path : filePath(folder)) { relative, absolute, size, buffer in
            try reuse(relative, size) ?? TraceFile.sha256(absolute, buffer: &buffer)
        }
    }

    /// The regular file `name` (a path inside the folder) as (name, sha256, size); nil when there
    /// is none.
    public func file(_ name: String) throws -> TraceFile? {
        if let memory = state.withLock({ $0.pending?.files }) {
            return memory[name].map { TraceFile(path: name, sha256: TraceFile.sha256(of: $0), size: $0.count) }
        }
        let path = filePath(name)
        guard let size = TraceFile.regularFileSize(path) else { return nil }
        return TraceFile(path: name, sha256: size == 0 ? TraceFile.sha256(of: [UInt8]()) : try TraceFile.sha256(path), size: size)
    }

    /// Every file in the folder as (path, sha256, size), sorted by path, and the digest of that
    /// manifest (`TraceFile.digest`): the trace artifact's digest.
    ///
    /// `hashed` are files of the folder (paths inside it) that the caller has just read and hashed,
    /// the run's output files as its Artifacts record them: one of the same path and size is not
    /// read a second time, so that the folder's digest and the Artifacts' digests come from the
    /// same reading of each file, and a large output is read once.
    public func manifestDigest(hashed: [TraceFile] = []) throws -> (files: [TraceFile], digest: String) {
        let files = try files(known: hashed)
        return (files, TraceFile.digest(files))
    }
}

/// A trace folder or one of its files could not be made, written or read: what, where and why
/// (the system's reason), as a worker's log and a failed Run's error say it.
public struct TraceFolderError: Error, CustomStringConvertible {
    public let path: String
    public let operation: String
    public let reason: String

    /// `reason` defaults to the system's text for the current `errno`.
    init(path: String, operation: String, reason: String = String(cString: strerror(errno))) {
        self.path = path
        self.operation = operation
        self.reason = reason
    }

    public var description: String { "trace folder: cannot \(operation) \(path): \(reason)" }
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
            if count < 0 { throw TraceFolderError(path: path, operation: "read the file") }
            if count == 0 { break }
            buffer.withUnsafeBytes { hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: $0.prefix(count))) }
        }
        return hasher.finalize().withUnsafeBytes { Hex.encode($0) }
    }

    public static func sha256(of bytes: some DataProtocol) -> String {
        SHA256.hash(data: bytes).withUnsafeBytes { Hex.encode($0) }
    }

    /// A folder's digest: the SHA-256 of its manifest, one `path\tsha256\tsize` line per file
    /// in the order of `files` (a scan's: sorted by path).
    public static func digest(_ files: [TraceFile]) -> String {
        var manifest: [UInt8] = []
        manifest.reserveCapacity(files.count * 112)
        for file in files {
            manifest += file.path.utf8
            manifest.append(UInt8(ascii: "\t"))
            manifest += file.sha256.utf8
            manifest.append(UInt8(ascii: "\t"))
            manifest += String(file.size).utf8
            manifest.append(UInt8(ascii: "\n"))
        }
        return "sha256:" + manifest.withUnsafeBytes { SHA256.hash(data: $0).withUnsafeBytes { Hex.encode($0) } }
    }

    /// The extension of `name`'s last component, lowercased: what follows its last dot, "" when
    /// there is none or the dot begins the component (a hidden name: `.bashrc`). The same as
    /// `(name as NSString).pathExtension.lowercased()` for a file's name, without the bridge to
    /// `NSString` and back (9,000 instructions a call, two calls a stub run).
    public static func pathExtension(_ name: String) -> String {
        let bytes = name.utf8
        var end = bytes.endIndex
        while end > bytes.startIndex, bytes[bytes.index(before: end)] == UInt8(ascii: "/") { end = bytes.index(before: end) }
        var position = end
        while position > bytes.startIndex {
            let previous = bytes.index(before: position)
            switch bytes[previous] {
            case UInt8(ascii: "/"): return ""
            case UInt8(ascii: "."):
                let startsComponent = previous == bytes.startIndex || bytes[bytes.index(before: previous)] == UInt8(ascii: "/")
                return startsComponent ? "" : name[position..<end].lowercased()
            default: position = previous
            }
        }
        return ""
    }

    static func mediaType(_ name: String) -> String {
        switch pathExtension(name) {
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
