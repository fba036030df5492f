import Bridge
import CWOM
import TowerJSON

/// Many CWOM objects written with one multi-row `INSERT` per table (the backfill's unit of
/// work). Rows are written in foreign-key order.
public struct CWOMBatch: Sendable {
    public var snapshots: [ConstraintSnapshot] = []
    public var issues: [Issue] = []
    public var packets: [ContextPacket] = []
    public var runs: [Run] = []
    public var artifacts: [Artifact] = []
    public var audit: [AuditEntry] = []

    public init() {}

    public var isEmpty: Bool { issues.isEmpty && runs.isEmpty && snapshots.isEmpty && packets.isEmpty }

    /// Adds a task's snapshot, Issue (linked to the snapshot and the packet) and ContextPacket.
    public mutating func add(_ cwom: TaskCWOM) {
        snapshots.append(cwom.constraintSnapshot)
        var issue = cwom.issue
        issue.constraints = [cwom.constraintSnapshot.ref]
        issue.contextPackets = [cwom.contextPacket.ref]
        issues.append(issue)
        packets.append(cwom.contextPacket)
    }
}

extension Store {
    /// Writes a batch. Issues are linked to their constraint snapshots and context packets, runs
    /// to their pinned context packets.
    public func write(_ batch: CWOMBatch) async throws(StorageError) {
        func run(_ statements: [(String, [SQLValue])]) async throws(StorageError) {
            for (sql, binds) in statements { try await session.query(sql, binds) }
        }
        try await run(SQL.insertMany("cwom_constraint_snapshots", batch.snapshots.map(ConstraintSnapshotRepository.columns)))
        var rows = batch.issues
        for index in rows.indices { rows[index].contextPackets = [] }
        try await run(SQL.insertMany("cwom_issues", rows.map(IssueRepository.columns)))
        func links(_ column: String, _ pairs: [(String, String, Timestamp)]) -> [Columns] {
            pairs.map { ["issue_id": .text($0.0), column: .text($0.1), "created_at": .timestamp($0.2)] }
        }
        let constraintLinks = batch.issues.flatMap { issue in issue.constraints.map { (issue.id, $0.id, issue.createdAt) } }
        let doctrineLinks = batch.issues.flatMap { issue in issue.doctrineRefs.map { (issue.id, $0.id, issue.createdAt) } }
        try await run(SQL.insertMany("cwom_issue_constraint_snapshots", links("constraint_snapshot_id", constraintLinks)))
        try await run(SQL.insertMany("cwom_issue_doctrine_refs", links("doctrine_ref_id", doctrineLinks)))
        try await run(SQL.insertMany("cwom_context_packets", batch.packets.map(ContextPacketRepository.columns)))
        let packetLinks = batch.issues.flatMap { issue in issue.contextPackets.map { (issue.id, $0.id, issue.createdAt) } }
        try await run(SQL.insertMany("cwom_issue_context_packets", links("context_packet_id", packetLinks)))
        try await run(SQL.insertMany("cwom_runs", batch.runs.map(RunRepository.columns)))
        let runLinks: [Columns] = batch.runs.flatMap { run in
            run.inputs.contextPackets.map { ["run_id": .text(run.id), "context_packet_id": .text($0.id), "created_at": .timestamp(run.createdAt)] }
        }
        try await run(SQL.insertMany("cwom_run_context_packets", runLinks))
        try await run(SQL.insertMany("cwom_artifacts", batch.artifacts.map(ArtifactRepository.columns)))
        try await run(SQL.insertMany("audit_log", batch.audit.map(AuditLog.columns)))
    }
}
