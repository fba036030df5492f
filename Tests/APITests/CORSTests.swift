import API
import Testing
import TowerJSON
import TowerTestSupport

/// `TOWER_CORS_ORIGINS`: an external dashboard's page may call the API from the origins listed,
/// with a key; other origins, and the console, get no CORS header.
@Suite("CORS")
struct CORSTests {
    func withAPI(_ cors: CORSPolicy, _ body: (Harness) async throws -> Void) async throws {
        try await withDatabase(.sqlite) { database, _ in
            let configuration = APIConfiguration(access: AccessTests.access(), policy: testConfiguration.policy, cors: cors)
            try await body(Harness(api: TowerAPI(database: database, configuration: configuration, logger: quietLogger("tower.api")), database: database, dialect: .sqlite))
        }
    }

    @Test("a listed origin's preflight is answered without a key; its requests carry Allow-Origin; the key is still required")
    func listedOrigin() async throws {
        try await withAPI(try CORSPolicy(environmentValue: "https://dash.example.com, http://localhost:3000")) { h in
            let preflight = await h.send(
                "OPTIONS", "/tasks",
                headers: [("origin", "https://dash.example.com"), ("access-control-request-method", "GET"), ("access-control-request-headers", "authorization")])
            #expect(preflight.status == 204)
            #expect(preflight.header("access-control-allow-origin") == "https://dash.example.com")
            #expect(preflight.header("access-control-allow-headers")?.contains("authorization") == true)
            #expect(preflight.header("access-control-allow-methods")?.contains("POST") == true)
            #expect(preflight.header("access-control-allow-credentials") == nil, "the API's credential is a header, never a cookie")

            let listed = await h.get("/tasks", headers: [("origin", "http://localhost:3000")] + AccessTests.bearer(AccessTests.secret(.read)))
            #expect(listed.status == 200 && listed.header("access-control-allow-origin") == "http://localhost:3000")
            #expect(listed.header("vary") == "Origin")
            let keyless = await h.get("/tasks", headers: [("origin", "http://localhost:3000")])
            #expect(keyless.status == 401 && keyless.header("access-control-allow-origin") != nil, "refused, and the page can read why")

            let other = await h.get("/tasks", headers: [("origin", "https://evil.example")] + AccessTests.bearer(AccessTests.secret(.read)))
            #expect(other.status == 200 && other.header("access-control-allow-origin") == nil, "an unlisted origin's page cannot read it")
            let otherPreflight = await h.send("OPTIONS", "/tasks", headers: [("origin", "https://evil.example"), ("access-control-request-method", "GET")])
            #expect(otherPreflight.header("access-control-allow-origin") == nil)
            #expect(await h.get("/ui/login", headers: [("origin", "https://dash.example.com")]).header("access-control-allow-origin") == nil,
                "the console is same-origin only")
        }
    }

    @Test("without TOWER_CORS_ORIGINS no CORS header is sent; * allows any origin; a malformed origin is refused at start")
    func configuration() async throws {
        try await withAPI(CORSPolicy()) { h in
            let answer = await h.get("/health", headers: [("origin", "https://dash.example.com")])
            #expect(answer.status == 200 && answer.header("access-control-allow-origin") == nil)
        }
        try await withAPI(try CORSPolicy(environmentValue: "*")) { h in
            #expect(await h.get("/health", headers: [("origin", "https://any.example")]).header("access-control-allow-origin") == "*")
        }
        for bad in ["dash.example.com", "https://dash.example.com/", "https://dash.example.com/app", "ftp://x.example"] {
            #expect(throws: ConfigurationError.self, "\(bad)") { try CORSPolicy(environmentValue: bad) }
        }
    }
}
