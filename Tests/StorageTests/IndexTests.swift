import CWOM
import Storage
import Testing
import TowerTestSupport

/// Every index of the hot tables costs each enqueue, claim and completion a write, so the layout
/// keeps only those a query reads (migration 0005 dropped the rest, and one whose queries another
/// index serves as well). These tests hold the other side of that bargain: each filter the lists
/// and lookups offer reads through an index it seeks, and each unfiltered list reads its page in
/// order through one (migration 0006 added the two the legacy layout lacked).
@Suite("Indexes")
struct IndexTests {
    /// A repository call and the column its filter must find through an index.
    struct Lookup: Sendable, CustomTestStringConvertible {
        let name: String
        let table: String
        let column: String
        let call: @Sendable (Store) async throws -> Void
        var testDescription: String { name }
    }

    static let lookups: [Lookup] = [
        Lookup(name: "tasks by status", table: "tasks", column: "status") { _ = try await $0.tasks.list(.init(status: "completed")) },
        Lookup(name: "tasks by operation", table: "tasks", column: "operation") { _ = try await $0.tasks.list(.init(operation: "docs")) },
        Lookup(name: "tasks by requester kind", table: "tasks", column: "requested_by_kind") {
            _ = try await $0.tasks.list(.init(requesterKind: "human"))
        },
        Lookup(name: "tasks by target repo", table: "tasks", column: "target_repo") {
            _ = try await $0.tasks.list(.init(targetRepo: "org/repo"))
        },
        Lookup(name: "tasks by Issue", table: "tasks", column: "cwom_issue_id") { _ = try await $0.tasks.list(.init(issueId: "i")) },
        Lookup(name: "a task by idempotency key", table: "tasks", column: "idempotency_key") {
            _ = try await $0.tasks.get(idempotencyKey: "k")
        },
        Lookup(name: "Issues by repo", table: "cwom_issues", column: "repo_id") { _ = try await $0.issues.list(.init(repoId: "r")) },
        Lookup(name: "Issues by status", table: "cwom_issues", column: "status") { _ = try await $0.issues.list(.init(status: "done")) },
        Lookup(name: "Issues by type", table: "cwom_issues", column: "type") { _ = try await $0.issues.list(.init(type: "doc")) },
        Lookup(name: "Issues by priority", table: "cwom_issues", column: "priority") {
            _ = try await $0.issues.list(.init(priority: "P1"))
        },
        Lookup(name: "Issues by status and priority", table: "cwom_issues", column: "status") {
            _ = try await $0.issues.list(.init(status: "done", priority: "P1"))
        },
        Lookup(name: "Issues by type and priority", table: "cwom_issues", column: "type") {
            _ = try await $0.issues.list(.init(type: "doc", priority: "P1"))
        },
        Lookup(name: "ConstraintSnapshots by scope and owner", table: "cwom_constraint_snapshots", column: "scope") {
            _ = try await $0.constraintSnapshots.list(scope: "repo", ownerId: "alice")
        },
        Lookup(name: "Issues by status and type", table: "cwom_issues", column: "status") {
            _ = try await $0.issues.list(.init(status: "done", type: "doc"))
        },
        Lookup(name: "finished tasks whose Issue is not under review (retention)", table: "cwom_issues", column: "status") {
            _ = try await $0.retention.finishedTasks(before: .now(), limit: 10)
        },
        Lookup(name: "Runs by Issue", table: "cwom_runs", column: "for_issue_id") { _ = try await $0.runs.list(.init(issueId: "i")) },
        Lookup(name: "Runs by repo", table: "cwom_runs", column: "repo_id") { _ = try await $0.runs.list(.init(repoId: "r")) },
        Lookup(name: "Runs by status", table: "cwom_runs", column: "status") { _ = try await $0.runs.list(.init(status: "done")) },
        Lookup(name: "Runs by mode", table: "cwom_runs", column: "mode") { _ = try await $0.runs.list(.init(mode: "human")) },
        Lookup(name: "the audit trail of an entity", table: "audit_log", column: "entity_id") {
            _ = try await $0.audit.list(.init(entityKind: "Task", entityId: "t"))
        },
        Lookup(name: "audit rows by entity id", table: "audit_log", column: "entity_id") {
            _ = try await $0.audit.list(.init(entityId: "t"))
        },
        Lookup(name: "audit rows by trace", table: "audit_log", column: "trace_id") {
            _ = try await $0.audit.list(.init(traceId: "trace"))
        },
        Lookup(name: "ContextPackets of an Issue", table: "cwom_context_packets", column: "for_issue_id") {
            _ = try await $0.contextPackets.list(forIssue: "i")
        },
        Lookup(name: "ConstraintSnapshots by scope", table: "cwom_constraint_snapshots", column: "scope") {
            _ = try await $0.constraintSnapshots.list(scope: "repo")
        },
        Lookup(name: "ConstraintSnapshots by owner", table: "cwom_constraint_snapshots", column: "owner_id") {
            _ = try await $0.constraintSnapshots.list(ownerId: "alice")
        },
        Lookup(name: "DoctrineRefs by namespace", table: "cwom_doctrine_refs", column: "namespace") {
            _ = try await $0.doctrineRefs.list(namespace: "org")
        },
        Lookup(name: "DoctrineRefs by type", table: "cwom_doctrine_refs", column: "type") {
            _ = try await $0.doctrineRefs.list(type: "policy")
        },
        Lookup(name: "DoctrineRefs by priority", table: "cwom_doctrine_refs", column: "priority") {
            _ = try await $0.doctrineRefs.list(priority: "must")
        },
        Lookup(name: "Repos by visibility", table: "cwom_repos", column: "visibility") {
            _ = try await $0.repos.list(visibility: "private")
        },
        Lookup(name: "Artifacts of a Run", table: "cwom_artifacts", column: "produced_by_id") {
            _ = try await $0.artifacts.list(forRun: "r")
        },
        Lookup(name: "Artifacts of an Issue", table: "cwom_artifacts", column: "for_issue_id") {
            _ = try await $0.artifacts.list(forIssue: "i")
        },
        Lookup(name: "evidence packs of a Run", table: "cwom_evidence_packs", column: "for_run_id") {
            _ = try await $0.evidencePacks.list(runId: "r")
        },
        Lookup(name: "evidence packs of an Issue", table: "cwom_evidence_packs", column: "for_issue_id") {
            _ = try await $0.evidencePacks.list(issueId: "i")
        },
        Lookup(name: "evidence packs by verdict", table: "cwom_evidence_packs", column: "verdict") {
            _ = try await $0.evidencePacks.list(verdict: "pass")
        },
        Lookup(name: "review decisions of an evidence pack", table: "cwom_review_decisions", column: "for_evidence_pack_id") {
            _ = try await $0.reviews.list(evidencePackId: "e")
        },
        Lookup(name: "review decisions of an Issue", table: "cwom_review_decisions", column: "for_issue_id") {
            _ = try await $0.reviews.list(issueId: "i")
        },
        Lookup(name: "review decisions by decision", table: "cwom_review_decisions", column: "decision") {
            _ = try await $0.reviews.list(decision: "approved")
        },
    ]

    /// The unfiltered lists, each a page in its order (newest first, or a DoctrineRef's key).
    static let pages: [Lookup] = [
        Lookup(name: "tasks", table: "tasks", column: "created_at") { _ = try await $0.tasks.list() },
        Lookup(name: "Issues", table: "cwom_issues", column: "created_at") { _ = try await $0.issues.list() },
        Lookup(name: "Runs", table: "cwom_runs", column: "created_at") { _ = try await $0.runs.list() },
        Lookup(name: "the audit trail", table: "audit_log", column: "ts") { _ = try await $0.audit.list() },
        Lookup(name: "ConstraintSnapshots", table: "cwom_constraint_snapshots", column: "captured_at") {
            _ = try await $0.constraintSnapshots.list()
        },
        Lookup(name: "Repos", table: "cwom_repos", column: "created_at") { _ = try await $0.repos.list() },
        Lookup(name: "DoctrineRefs", table: "cwom_doctrine_refs", column: "namespace") { _ = try await $0.doctrineRefs.list() },
        Lookup(name: "evidence packs", table: "cwom_evidence_packs", column: "created_at") { _ = try await $0.evidencePacks.list() },
        Lookup(name: "review decisions", table: "cwom_review_decisions", column: "created_at") { _ = try await $0.reviews.list() },
    ]

    @Test("each unfiltered list reads its page in order through an index, not by sorting its whole table",
        arguments: Dialect.allCases, pages)
    func pageReadsInOrder(_ dialect: Dialect, _ page: Lookup) async throws {
        try await withDatabase(dialect) { database, _ in
            // Sorting priced out as well: an empty table's plan sorts its few estimated rows
            // whatever the indexes; without one in the list's order the `Sort` stays.
            let plan = try await Self.plan(of: page, on: database, dialect, settings: ["SET LOCAL enable_sort = off"])
            let ordered: Bool
            if dialect == .postgres {
                // A `Sort` node sorts every row it is given; an `Incremental Sort` over an index in
                // the first key's order only orders rows that tie on it, and stops at the limit.
                let sortsAll = plan.contains { $0.contains("Sort  (") && !$0.contains("Incremental Sort") }
                ordered = plan.contains { $0.contains("Index Scan") } && !sortsAll
            } else {
                // "USE TEMP B-TREE FOR RIGHT PART OF ORDER BY" orders ties only, as above.
                ordered = plan.contains { $0.hasPrefix("SCAN \(page.table) USING") } && !plan.contains { $0 == "USE TEMP B-TREE FOR ORDER BY" }
            }
            #expect(ordered, "\(page.name): \(plan.joined(separator: "\n"))")
        }
    }

    /// The plan of the one statement of `lookup` that names its table and column.
    static func plan(of lookup: Lookup, on database: Database, _ dialect: Dialect, settings: [String] = []) async throws -> [String] {
        let counting = CountingDriver(database.driver)
        counting.record()
        try await Database(driver: counting, location: database.location).read { store in try await lookup.call(store) }
        let statements = counting.takeRecorded().filter { $0.sql.contains(lookup.table) && $0.sql.contains(lookup.column) }
        try #require(statements.count == 1, "the lookup's statement: \(statements.map(\.sql))")
        let (sql, binds) = statements[0]
        return try await database.write { store in
            if dialect == .postgres {
                // With sequential scans priced out, a filter that no index serves still shows
                // as a scan with a Filter line, never as an Index Cond on its column.
                for setting in ["SET LOCAL enable_seqscan = off"] + settings { _ = try await store.session.query(setting, []) }
                return try await store.session.query("EXPLAIN \(sql)", binds).map { try $0.string("QUERY PLAN") }
            }
            return try await store.session.query("EXPLAIN QUERY PLAN \(sql)", binds).map { try $0.string("detail") }
        }
    }

    @Test("each filter of the lists and lookups reads its table through an index", arguments: Dialect.allCases, lookups)
    func filterReadsThroughAnIndex(_ dialect: Dialect, _ lookup: Lookup) async throws {
        try await withDatabase(dialect) { database, _ in
            let plan = try await Self.plan(of: lookup, on: database, dialect)
            let found: Bool
            if dialect == .postgres {
                // An `Index Cond` on the column, from an index that the condition seeks: one whose
                // first column the condition names too. A condition on a later column alone
                // reads the whole index (`owner_id` of `(owner_kind, owner_id)`).
                var index: String?
                var seeks = false
                for line in plan {
                    if let named = line.firstMatch(of: /(?:using|Index Scan on) (\w+)/)?.output.1 { index = String(named) }
                    guard line.contains("Index Cond"), line.contains(lookup.column), let index else { continue }
                    let leading = try await database.read { store in
                        try await store.session.query(
                            """
                            SELECT a.attname AS name FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
                            JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
                            WHERE c.relname = $1 AND c.relnamespace = CAST(current_schema() AS regnamespace)
                            """, [.text(index)])
                    }.first?.string("name")
                    if let leading, line.contains(try Regex("\\b\(leading)\\b")) { seeks = true }
                }
                found = seeks
            } else {
                found = plan.contains { $0.hasPrefix("SEARCH \(lookup.table) ") && $0.contains("\(lookup.column)=?") }
            }
            #expect(found, "\(lookup.name): \(plan.joined(separator: "\n"))")
        }
    }
}
