import CWOM
import LegacyTasks
import TowerJSON

/// The statements of `tower backfill`: tasks without (or with a dangling) CWOM issue, and the
/// fenced update that attaches the new issues.
public struct BackfillRepository: Sendable {
    let session: any DatabaseSession

    static let missingIssue = "(t.cwom_issue_id IS NULL OR NOT EXISTS (SELECT 1 FROM cwom_issues i WHERE i.id = t.cwom_issue_id))"

    /// How many tasks still need CWOM objects.
    public func remaining() async throws(StorageError) -> Int {
        try await session.query("SELECT COUNT(*) AS n FROM tasks t WHERE \(Self.missingIssue)", []).first?.int("n") ?? 0
    }

    /// The next tasks (by id, after `cursor`) without CWOM objects, each decoded or with the reason
    /// it cannot be. PostgreSQL locks them (skipping rows a worker holds).
    public func candidates(after cursor: String, limit: Int) async throws(StorageError) -> [(id: String, task: Result<TaskRecord, StorageError>)] {
        let lock = session.dialect == .postgres ? " FOR UPDATE OF t SKIP LOCKED" : ""
        let rows = try await session.query(
            "SELECT t.* FROM tasks t WHERE t.id > $1 AND \(Self.missingIssue) ORDER BY t.id LIMIT $2\(lock)",
            [.text(cursor), .int(limit)])
        return try rows.map { row throws(StorageError) in
            let id = try row.string("id")
            do throws(StorageError) { return (id, .success(try TaskRepository.decode(row))) } catch { return (id, .failure(error)) }
        }
    }

    /// The trace paths of the finished tasks among the next `candidates` (the same tasks, read
    /// without locking them), so that a backfill can read their folders before its transaction.
    public func tracePaths(after cursor: String, limit: Int) async throws(StorageError) -> [(taskId: String, path: String)] {
        let rows = try await session.query(
            "SELECT t.id, t.status, t.trace_path FROM tasks t WHERE t.id > $1 AND \(Self.missingIssue) ORDER BY t.id LIMIT $2",
            [.text(cursor), .int(limit)])
        var paths: [(taskId: String, path: String)] = []
        for row in rows where TaskStatus(rawValue: try row.string("status"))?.isFinished == true {
            if let path = try row.optionalString("trace_path") { paths.append((try row.string("id"), path)) }
        }
        return paths
    }

    /// Sets `cwom_issue_id` for many tasks in one statement, only where it is still missing.
    /// Returns the ids updated.
    public func attach(_ pairs: [(taskId: String, issueId: String)]) async throws(StorageError) -> Set<String> {
        guard !pairs.isEmpty else { return [] }
        var updated: Set<String> = []
        for chunk in stride(from: 0, to: pairs.count, by: 10_000).map({ Array(pairs[$0..<min(pairs.count, $0 + 10_000)]) }) {
            let values = chunk.indices.map { "($\($0 * 2 + 1), $\($0 * 2 + 2))" }.joined(separator: ", ")
            let binds = chunk.flatMap { [SQLValue.text($0.taskId), .text($0.issueId)] }
            let sql =
                session.dialect == .postgres
                ? """
                UPDATE tasks AS t SET cwom_issue_id = v.issue FROM (VALUES \(values)) AS v(id, issue)
                WHERE t.id = v.id AND \(Self.missingIssue) RETURNING t.id
                """
                : """
                WITH v(id, issue) AS (VALUES \(values))
                UPDATE tasks AS t SET cwom_issue_id = (SELECT issue FROM v WHERE v.id = t.id)
                WHERE t.id IN (SELECT id FROM v) AND \(Self.missingIssue) RETURNING id
                """
            for row in try await session.query(sql, binds) { updated.insert(try row.string("id")) }
        }
        return updated
    }

    /// Existing repos by slug.
    public func repos(slugs: [String]) async throws(StorageError) -> [String: Repo] {
        guard !slugs.isEmpty else { return [:] }
        var found: [String: Repo] = [:]
        let (list, binds) = SQL.oneOf("slug", slugs, dialect: session.dialect)
        for row in try await session.query("SELECT * FROM cwom_repos WHERE \(list)", binds) {
            let repo = try RepoRepository.decode(row)
            found[repo.slug] = repo
        }
        return found
    }
}

extension Store {
    public var backfill: BackfillRepository { BackfillRepository(session: session) }
}
