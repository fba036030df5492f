import CWOM
import Foundation
import Storage
import TowerJSON
import Worker

/// A run's trace folder over HTTP. No path can leave the folder: `..` segments, encoded slashes
/// and symbolic links that point outside are refused.
struct TraceRoutes: Sendable {
    let context: CWOMContext

    func register(on router: inout Router) {
        router.add(
            "GET", "/cwom/runs/{run_id}/trace", summary: "The files of a Run's trace folder with size and sha256", tag: "CWOM", access: .read,
            blocking: true,
            answers: .json(
                [200], schema: ["type": "object", "required": ["run_id", "root", "files"], "properties": ["files": ["type": "array"]]],
                "`{\"run_id\", \"root\", \"files\": [{\"path\", \"size\", \"sha256\", …}]}`; 410 once pruned.")
        ) { request in
            let root = try await traceRoot(request.parameter("run_id"))
            let files = try TraceFolder.files(in: root)
            return .json(200, ["run_id": .string(request.parameter("run_id")), "root": .string(root.path), "files": .array(files)])
        }
        router.add(
            "GET", "/cwom/runs/{run_id}/trace/{path...}", summary: "One file of a Run's trace folder", tag: "CWOM", access: .read, blocking: true,
            answers: Answer([200], contentType: "*/*", "The file, with its media type (sandboxed: `content-security-policy: sandbox`).")
        ) { request in
            if request.path.lowercased().contains("%2f") || request.path.contains("%5C") || request.path.contains("%5c") {
                throw APIError.detail(404, "Trace file not found")
            }
            let root = try await traceRoot(request.parameter("run_id"))
            guard let file = TraceFolder.resolve(request.parameter("path"), in: root),
                let data = FileManager.default.contents(atPath: file.path)
            else { throw APIError.detail(404, "Trace file not found") }
            // A trace file is written by an executor or an agent: a browser must not run it as a
            // page of this origin (where the console's session lives), so it is sandboxed.
            return APIResponse(
                status: 200,
                headers: [
                    ("content-type", TraceFolder.mediaType(for: file.lastPathComponent)), ("content-security-policy", "sandbox"),
                    ("x-content-type-options", "nosniff"),
                ], body: Array(data))
        }
    }

    func traceRoot(_ runId: String) async throws -> URL {
        let (found, prunedAt) = try await context.database.read { store in
            (try await store.runs.get(runId), try await store.retention.tracePrunedAt(runId))
        }
        guard let run = found else { throw CWOMContext.notFound("Run") }
        if let prunedAt {
            throw APIError.detail(410, .string("The trace folder of Run '\(runId)' was pruned at \(prunedAt.iso8601) (retention)"))
        }
        guard let folder = run.localTraceFolder else { throw APIError.detail(404, .string("Run '\(runId)' has no local trace folder")) }
        return folder
    }
}

/// Listing, resolving and typing files of a trace folder.
public enum TraceFolder {
    /// Every regular file below `root` (links are not followed), sorted by path, with size and
    /// sha256: `[{"path","size","sha256"}]`.
    public static func files(in root: URL) throws -> [JSONValue] {
        try TraceFile.scan(root).map { ["path": .string($0.path), "size": .int($0.size), "sha256": .string($0.sha256)] }
    }

    /// The file at `relative` inside `root`, or nil when it does not exist or would leave the
    /// folder (after resolving `..` and symbolic links).
    public static func resolve(_ relative: String, in root: URL) -> URL? {
        let parts = relative.split(separator: "/")
        guard !parts.isEmpty, !parts.contains(where: { $0 == ".." || $0 == "." }), !relative.hasPrefix("/") else {
            return nil
        }
        let base = root.resolvingSymlinksInPath().path
        let candidate = URL(fileURLWithPath: base + "/" + relative).resolvingSymlinksInPath()
        guard candidate.path.hasPrefix(base + "/") else { return nil }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: candidate.path, isDirectory: &isDirectory), !isDirectory.boolValue
        else { return nil }
        return candidate
    }

    public static func mediaType(for name: String) -> String {
        switch TraceFile.pathExtension(name) {
        case "json": return "application/json"
        case "jsonl": return "application/x-ndjson"
        case "md": return "text/markdown; charset=utf-8"
        case "log", "txt", "out", "err": return "text/plain; charset=utf-8"
        case "diff", "patch": return "text/x-diff; charset=utf-8"
        case "html": return "text/html; charset=utf-8"
        case "png": return "image/png"
        case "jpg", "jpeg": return "image/jpeg"
        default: return "application/octet-stream"
        }
    }
}
