import Foundation
import Storage
import Testing
import TowerTestSupport

/// `/openapi.json` against the running API, by schemathesis (PyPI, installed by scripts/test):
/// thousands of requests generated from the document, every answer checked against it and HTTP.
/// Which checks run where, and why, is in Tests/APIConformance/schemathesis.toml.
extension CommandLineTests {
    @Test(
        "schemathesis: requests generated from /openapi.json get no 5xx, a bad query a 4xx and a good one none, no key a 401, a 405 the path's methods",
        arguments: Dialect.allCases)
    func openAPIConformance(_ dialect: Dialect) async throws {
        try await withSetup(dialect) { setup in
            let key = "conformance-\(UUID().uuidString)"
            let setup = Setup(environment: setup.environment.merging(["JCT_API_KEY": key]) { _, new in new }, traceRoot: setup.traceRoot)
            #expect(try await tower(setup, "migrate").status == 0)
            try await withAPIProcess(setup) { port, log, _ in
                let config = repositoryRoot.appendingPathComponent("Tests/APIConformance/schemathesis.toml").path
                let outcome = try await TowerBinary.run(
                    [
                        "python3", "-m", "schemathesis.cli", "--no-color", "--config-file", config, "run",
                        "http://127.0.0.1:\(port)/openapi.json", "-H", "Authorization: Bearer \(key)",
                    ],
                    environment: ["PYTHONUNBUFFERED": "1"], timeout: 900, executable: URL(fileURLWithPath: "/usr/bin/env"))
                #expect(outcome.status == 0, "\(outcome)\n\(log.text)")
                #expect(outcome.stdout.contains(" passed"), "\(outcome)")
            }
        }
    }
}
