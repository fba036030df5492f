import Foundation
import Storage
import Testing
import TowerJSON
import TowerTestSupport

/// `/openapi.json` against the running API, by schemathesis (PyPI, installed by scripts/test):
/// thousands of requests generated from the document, every answer checked against it and HTTP.
/// Which checks run where, and why, is in Tests/APIConformance/schemathesis.toml.
extension CommandLineTests {
    @Test(
        "schemathesis: requests generated from /openapi.json get no 5xx, answers match their schemas, a bad query a 4xx and a good one none, no key a 401",
        arguments: Dialect.allCases)
    func openAPIConformance(_ dialect: Dialect) async throws {
        try await withSetup(dialect) { setup in
            let key = "conformance-\(UUID().uuidString)"
            let setup = Setup(
                environment: setup.environment.merging(["JCT_API_KEY": key, "JCT_REVIEW_AUTO_APPROVE": "true"]) { _, new in new },
                traceRoot: setup.traceRoot)
            #expect(try await tower(setup, "migrate").status == 0)
            let created = try await tower(setup, "enqueue", "--objective", "Write the changelog", "--operation", "docs", "--repo", "myorg/docs")
            let taskId = created.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            try await withAPIProcess(setup, command: "serve") { port, log, _ in
                // One task run to its end gives every kind of object, so that the generated
                // requests meet real ones and their answers are checked against the schemas.
                try await log.require("the task's run finished") { $0.contains("run finished") && $0.contains(taskId) }
                let parameters = try await objectIds(port: port, key: key, taskId: taskId)
                let config = FileManager.default.temporaryDirectory.appendingPathComponent("schemathesis-\(UUID().uuidString).toml")
                defer { try? FileManager.default.removeItem(at: config) }
                let policy = try String(contentsOf: repositoryRoot.appendingPathComponent("Tests/APIConformance/schemathesis.toml"), encoding: .utf8)
                let fixed = parameters.sorted { $0.key < $1.key }.map { "\($0.key) = \"\($0.value)\"" }.joined(separator: "\n")
                try (policy + "\n[parameters]\n" + fixed + "\n").write(to: config, atomically: true, encoding: .utf8)

                let outcome = try await TowerBinary.run(
                    [
                        "python3", "-m", "schemathesis.cli", "--no-color", "--config-file", config.path, "run",
                        "http://127.0.0.1:\(port)/openapi.json", "-H", "Authorization: Bearer \(key)",
                    ],
                    environment: ["PYTHONUNBUFFERED": "1"], timeout: 900, executable: URL(fileURLWithPath: "/usr/bin/env"))
                #expect(outcome.status == 0, "\(outcome)\n\(log.text)")
                #expect(outcome.stdout.contains(" passed"), "\(outcome)")
            }
        }
    }

    /// The ids of the task's objects by path parameter name, read over HTTP; a DoctrineRef is
    /// created for the purpose.
    func objectIds(port: Int, key: String, taskId: String) async throws -> [String: String] {
        func get(_ path: String, method: String = "GET", body: String = "") async throws -> JSONValue {
            let answer = try await RawConnection.request(
                port: port, method, path, headers: [("Authorization", "Bearer \(key)"), ("Content-Type", "application/json")], body: body)
            let text = try #require(answer.text.range(of: "\r\n\r\n").map { String(answer.text[$0.upperBound...]) }, "\(answer.text)")
            return try JSONParser.parse(bytes: Array(text.utf8))
        }
        func id(_ value: JSONValue?, _ what: String) throws -> String { try #require(value?["id"]?.stringValue, "\(what): \(value ?? .null)") }
        let issue = try await get("/cwom/issues/\(try #require(try await get("/tasks/\(taskId)")["cwom_issue_id"]?.stringValue))")
        let issueId = try id(issue, "the task's Issue")
        let run = try await get("/cwom/runs?issue_id=\(issueId)").arrayValue?.first
        let runId = try id(run, "its Run")
        let pack = try await get("/cwom/runs/\(runId)/evidence-pack")
        let packId = try id(pack, "its EvidencePack")
        let files = try await get("/cwom/runs/\(runId)/trace")["files"]?.arrayValue ?? []
        let doctrine = try await get(
            "/cwom/doctrine-refs", method: "POST",
            body: #"{"namespace":"org/conformance","name":"changelog","version":"1.0","type":"procedure","statement":"Keep a changelog."}"#)["doctrine_ref"]
        return [
            "task_id": taskId, "issue_id": issueId, "run_id": runId, "evidence_pack_id": packId,
            "repo_id": try id(issue["repo"], "its Repo"),
            "packet_id": try id(try await get("/cwom/issues/\(issueId)/context-packets").arrayValue?.last, "its ContextPacket"),
            "snapshot_id": try id(try await get("/cwom/constraint-snapshots").arrayValue?.first, "a ConstraintSnapshot"),
            "artifact_id": try id(try await get("/cwom/runs/\(runId)/artifacts").arrayValue?.first, "an Artifact"),
            "review_id": try id(try await get("/cwom/evidence-packs/\(packId)/review"), "its ReviewDecision"),
            "doctrine_id": try id(doctrine, "the DoctrineRef"),
            "path": try #require(files.first?["path"]?.stringValue, "a trace file"),
        ]
    }
}
