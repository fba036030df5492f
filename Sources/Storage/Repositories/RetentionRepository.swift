import CWOM
import LegacyTasks
import TowerJSON

/// The SQL of retention (`tower prune`, the maintenance loop): finding old finished Runs whose
/// trace folder is still there, marking them and their Artifacts pruned, deleting old finished
/// tasks. Every statement takes a bounded batch, so that a pass over a million rows is many
/// short transactions, never one long lock.
public struct RetentionRepository: Sendable {
    let session: any DatabaseSession

    /// A Run whose trace folder a pass may delete.
    public struct Candidate: Sendable {
        public let runId: String
        public let artifactRootUri: String?
        public let traceId: String?
        /// The legacy task a backfilled Run records (`meta.task_id`): its folder bears that name.
        public let taskId: String?
    }

    /// The maintenance lock for the current transaction: on PostgreSQL a transaction-scoped
    /// advisory lock, so that of many workers one prunes at a time and a crashed one holds nothing;
    /// SQLite's writer is already exclusive.
    public func tryLock() async throws(StorageError) -> Bool {
        guard session.dialect == .postgres else { return true }
        // One key per schema (advisory locks are per database, and deployments may share one in
        // separate schemas): 0x746f7772 is "towr", the second half the schema's hash.
        let rows = try await session.query("SELECT pg_try_advisory_xact_lock(1953462130, hashtext(current_schema())) AS locked", [])
        return try rows.first?.bool("locked") ?? false
    }

    /// Finished Runs (`statuses`) last changed before `cutoff` whose trace folder was not pruned,
    /// oldest first, locked for this transaction (others skip them) unless `peek` (a dry run's
    /// read, page by page from `offset`).
    public func unprunedRuns(before cutoff: Timestamp, statuses: [Status], limit: Int, peek: Bool = false, offset: Int = 0)
        async throws(StorageError) -> [Candidate]
    {
        guard !statuses.isEmpty else { return [] }
        let lock = session.dialect == .postgres && !peek ? " FOR UPDATE SKIP LOCKED" : ""
        let binds: [SQLValue] = [.timestamp(cutoff)] + statuses.map { .text($0.rawValue) } + [.int(limit), .int(offset)]
        let rows = try await session.query(
            """
            SELECT id, artifact_root_uri, trace_id, meta FROM cwom_runs
            WHERE trace_pruned_at IS NULL AND updated_at < $1 AND status IN (\(SQL.placeholders(count: statuses.count, after: 1)))
            ORDER BY updated_at, id LIMIT $\(statuses.count + 2) OFFSET $\(statuses.count + 3)\(lock)
            """, binds)
        return try rows.map { row throws(StorageError) in
            Candidate(
                runId: try row.string("id"), artifactRootUri: try row.optionalString("artifact_root_uri"), traceId: try row.optionalString("trace_id"),
                taskId: try row.optionalJSON("meta")?["task_id"]?.stringValue)
        }
    }

    /// Marks the Runs' trace folders pruned at `time`.
    public func markRunsPruned(_ runIds: [String], at time: Timestamp) async throws(StorageError) {
        guard !runIds.isEmpty else { return }
        var binds: [SQLValue] = [.timestamp(time)]
        let list = SQL.oneOf("id", runIds, binds: &binds, dialect: session.dialect)
        try await session.query("UPDATE cwom_runs SET trace_pruned_at = $1 WHERE \(list)", binds)
    }

    /// When the Run's trace folder was pruned, nil while it is there.
    public func tracePrunedAt(_ runId: String) async throws(StorageError) -> Timestamp? {
        try await session.query("SELECT trace_pruned_at FROM cwom_runs WHERE id = $1", [.text(runId)]).first?.optionalTimestamp("trace_pruned_at")
    }

    /// Adds `pruned_at` and `pruned_reason` to the meta of the Artifacts of `runIds` that lived in
    /// their trace folder (an Artifact elsewhere, a `uri` an agent reported, is left alone). The
    /// meta is rewritten as a whole, bound, so that the statement is the same on both databases
    /// and on a legacy `json` column.
    public func markArtifactsPruned(ofRuns runIds: [String], inFolders roots: [String: String], at time: Timestamp, reason: String)
        async throws(StorageError) -> Int
    {
        guard !runIds.isEmpty else { return 0 }
        var marked = 0
        for artifact in try await ArtifactRepository(session: session).list(forRuns: runIds) {
            guard let root = roots[artifact.producedBy.id], artifact.uri.hasPrefix(root), artifact.meta["pruned_at"] == nil else { continue }
            var meta = artifact.meta
            meta["pruned_at"] = .string(time.iso8601)
            meta["pruned_reason"] = .string(reason)
            try await session.query(
                "UPDATE cwom_artifacts SET meta = $1, updated_at = $2 WHERE id = $3", [.json(.object(meta)), .timestamp(time), .text(artifact.id)])
            marked += 1
        }
        return marked
    }

    /// Finished tasks (completed, failed, cancelled) that ended before `cutoff`, oldest first,
    /// except those whose Issue still waits for a review: the legacy queue rows only. Their CWOM Issue, Runs, Artifacts, evidence and the audit log are
    /// the record of the work and are kept (`tasks.cwom_issue_id` is the only link, and it points
    /// from the task).
    public func finishedTasks(before cutoff: Timestamp, limit: Int, peek: Bool = false, offset: Int = 0) async throws(StorageError)
        -> [String]
    {
        let lock = session.dialect == .postgres && !peek ? " FOR UPDATE SKIP LOCKED" : ""
        // The Issues under review, sought once per type in the index that leads with the type
        // (on SQLite an Issue's status has no index of its own since migration 0010); the types
        // are the enum's.
        let types = Filters.everyValue(of: IssueType.self)
        let rows = try await session.query(
            """
            SELECT id FROM tasks WHERE status IN ('completed', 'failed', 'cancelled') AND completed_at < $1
            AND (cwom_issue_id IS NULL OR cwom_issue_id NOT IN (
                SELECT id FROM cwom_issues WHERE type IN (\(types)) AND status = 'under_review'))
            ORDER BY completed_at, id LIMIT $2 OFFSET $3\(lock)
            """, [.timestamp(cutoff), .int(limit), .int(offset)])
        return try rows.map { row throws(StorageError) in try row.string("id") }
    }

    /// The registry's rows of worker processes whose last heartbeat came before `cutoff`
    /// (stopped, or gone without saying so; a running worker beats every second): deleted, or
    /// with `peek` only counted. Each process start adds a row, so a deployment that restarts
    /// often (or a crash loop) grows the table for ever otherwise.
    public func deleteWorkers(before cutoff: Timestamp, peek: Bool = false) async throws(StorageError) -> Int {
        let rows = try await session.query(
            peek
                ? "SELECT id FROM tower_workers WHERE heartbeat_at < $1"
                : "DELETE FROM tower_workers WHERE heartbeat_at < $1 RETURNING id",
            [.timestamp(cutoff)])
        return rows.count
    }

    public func deleteTasks(_ ids: [String]) async throws(StorageError) {
        guard !ids.isEmpty else { return }
        let (list, binds) = SQL.oneOf("id", ids, dialect: session.dialect)
        try await session.query("DELETE FROM tasks WHERE \(list) AND status IN ('completed', 'failed', 'cancelled')", binds)
    }
}
