import Bridge
import CWOM
import TowerJSON

/// Many CWOM objects written with one multi-row `INSERT` per table (an enqueue's objects, a
/// backfill batch's). Rows are written in foreign-key order; their audit rows are the engine's.
public struct CWOMBatch: Sendable {
    public var snapshots: [ConstraintSnapshot] = []
    public var issues: [Issue] = []
    public var packets: [ContextPacket] = []
    public var runs: [Run] = []
    public var artifacts: [Artifact] = []

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

extension CWOMBatch {
    /// The batch's multi-row `INSERT`s, in foreign-key order.
    var statements: [(String, [SQLValue])] { rows.statements }

    /// The batch's rows, table by table in foreign-key order. Issues are linked to their
    /// constraint snapshots and context packets, runs to what they pin (`RunRepository.rows`).
    var rows: InsertRows {
        func links(_ column: String, _ pairs: [(String, String, Timestamp)]) -> [Columns] {
            pairs.map { ["issue_id": .text($0.0), column: .text($0.1), "created_at": .timestamp($0.2)] }
        }
        let constraintLinks = issues.flatMap { issue in issue.constraints.map { (issue.id, $0.id, issue.createdAt) } }
        let doctrineLinks = issues.flatMap { issue in issue.doctrineRefs.map { (issue.id, $0.id, issue.createdAt) } }
        let packetLinks = issues.flatMap { issue in issue.contextPackets.map { (issue.id, $0.id, issue.createdAt) } }
        var rows = InsertRows()
        rows.add("cwom_constraint_snapshots", snapshots.map(ConstraintSnapshotRepository.columns))
        // An Issue's links are rows of their own (below); its row holds none of them.
        rows.add("cwom_issues", issues.map(IssueRepository.columns))
        rows.add("cwom_issue_constraint_snapshots", links("constraint_snapshot_id", constraintLinks))
        rows.add("cwom_issue_doctrine_refs", links("doctrine_ref_id", doctrineLinks))
        rows.add("cwom_context_packets", packets.map(ContextPacketRepository.columns))
        rows.add("cwom_issue_context_packets", links("context_packet_id", packetLinks))
        rows.add(RunRepository.rows(runs))
        rows.add("cwom_artifacts", artifacts.map(ArtifactRepository.columns))
        return rows
    }
}

extension Store {
    /// Writes a batch (one statement on PostgreSQL, see `WriteBatch`).
    public func write(_ batch: CWOMBatch) async throws(StorageError) {
        try await session.writeAll(batch.statements)
    }
}
