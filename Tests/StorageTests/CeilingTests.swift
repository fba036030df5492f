import Storage
import Testing
import TowerTestSupport

@Suite("The benchmark's ceiling")
struct CeilingTests {
    @Test("the ceiling writes an enqueue's very rows: the audit trail of its intake is the one an enqueue through the engine leaves",
        arguments: Dialect.allCases)
    func intakeRowsAreTheEngines(_ dialect: Dialect) async throws {
        try await withDatabase(dialect) { database, _ in
            let figures = try await Ceiling(database: database).measure(tasks: 5, batch: 2)
            #expect(figures.intake > 0 && figures.work > 0)

            let tasks = try await database.read { store in
                try await store.session.query("SELECT id, trace_id, objective, status, cwom_issue_id FROM tasks ORDER BY objective", [])
            }
            // The one enqueue the ceiling sends through the engine (its Repo's first), then its own five.
            #expect(tasks.count == 6)
            let reference = try #require(try tasks.first { try $0.string("objective") == "Ceiling task -1" })
            let measured = try tasks.filter { try $0.string("objective") != "Ceiling task -1" }
            #expect(try measured.allSatisfy { try $0.string("status") == "completed" && $0.optionalString("cwom_issue_id") != nil })

            // What intake audits: the Task's creation by its requester, its move to the queue, the
            // CWOM objects and their links (claim and completion audit Runs, Artifacts and status
            // changes by the worker, which the ceiling writes afterwards).
            func intakeAudit(_ traceId: String) async throws -> [String] {
                try await database.read { store in
                    try await store.session.query(
                        """
                        SELECT action, entity_kind, actor_id FROM audit_log WHERE trace_id = $1
                        AND (actor_id IN ('cwom-service', 'task-enqueue') OR (action = 'created' AND entity_kind = 'Task'))
                        AND entity_kind <> 'Repo'
                        """, [.text(traceId)])
                }.map { "\(try $0.string("action")) \(try $0.string("entity_kind")) \(try $0.string("actor_id"))" }.sorted()
            }
            let expected = try await intakeAudit(try reference.string("trace_id"))
            #expect(expected.count == 7, "\(expected)")
            for task in measured {
                #expect(try await intakeAudit(try task.string("trace_id")) == expected)
            }
        }
    }
}
