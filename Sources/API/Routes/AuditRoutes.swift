import Storage
import TowerJSON

/// `GET /cwom/audit`: the audit log, newest first.
struct AuditRoutes: Sendable {
    let context: CWOMContext

    func register(on router: inout Router) {
        router.add(
            "GET", "/cwom/audit", summary: "Audit log entries, newest first", tag: "CWOM", access: .read,
            parameters: [
                Parameter("entity_kind", "The kind of the entity (Task, Issue, Run, …)."), Parameter("entity_id", "The entity's id."),
                Parameter("trace_id", "The trace id the entries carry."),
            ] + Parameter.page,
            answers: .json([200], schema: ["type": "array", "items": ["type": "object"]], "Audit entries, newest first.")
        ) { request in
            let page = try context.page(request)
            let filter = AuditLog.Filter(
                entityKind: request.queryValue("entity_kind"), entityId: request.queryValue("entity_id"),
                traceId: request.queryValue("trace_id"))
            let entries = try await context.database.read { try await $0.audit.list(filter, page: page) }
            return .json(200, .array(entries.map(\.json)))
        }
    }
}
