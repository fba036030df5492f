import API
import CWOM
import Storage
import Testing
import TowerJSON
import TowerTestSupport

@Suite("Metrics endpoint")
struct MetricsTests {
    @Test("/metrics serves the Prometheus text of the process, and is documented")
    func metricsRoute() async throws {
        try await withDatabase(.sqlite) { database, _ in
            let api = TowerAPI(database: database, configuration: APIConfiguration(), metrics: { "tower_example_total 3\n" })
            let response = await api.respond(APIRequest(method: "GET", path: "/metrics", query: nil, headers: [], body: []))
            #expect(response.status == 200)
            #expect(response.header("content-type") == "text/plain; version=0.0.4; charset=utf-8")
            #expect(String(decoding: response.body, as: UTF8.self) == "tower_example_total 3\n")
            #expect(api.router.routes.contains { $0.pattern == "/metrics" })
            let without = TowerAPI(database: database, configuration: APIConfiguration(), logger: quietLogger("tower.api"))
            let none = await without.respond(APIRequest(method: "GET", path: "/metrics", query: nil, headers: [], body: []))
            #expect(none.status == 404)
        }
    }
}
