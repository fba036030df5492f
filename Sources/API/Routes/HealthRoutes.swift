import Storage
import TowerJSON
import TowerJSON

/// `/health`, `/healthz` and `/version` (reference §1.6).
struct HealthRoutes: Sendable {
    let database: Database
    let version: String

    func register(on router: inout Router) {
        router.add("GET", "/health", summary: "Liveness", tag: "Health", access: .open, answers: .json([200], "`{\"status\": \"ok\"}`.")) { _ in
            .json(200, ["status": "ok"])
        }
        router.add(
            "GET", "/healthz", summary: "Liveness with a database check", tag: "Health", access: .open,
            answers: .json([200, 503], "`{\"ok\": true, \"db\": true}`; 503 with both false when the database is down.")
        ) { _ in
            let up = await databaseUp()
            // 503 when the database is down, same body (the legacy service said 200).
            return .json(up ? 200 : 503, ["ok": .bool(up), "db": .bool(up)])
        }
        router.add(
            "GET", "/version", summary: "The version of tower", tag: "Health", access: .open, answers: .json([200], "`{\"version\": …}`.")
        ) { _ in
            .json(200, ["version": .string(version)])
        }
    }

    func databaseUp() async -> Bool {
        do {
            _ = try await database.read { store in try await store.session.query("SELECT 1 AS one", []) }
            return true
        } catch {
            return false
        }
    }
}
