import Foundation
import Testing
import TowerJSON
import TowerTestSupport

/// `tower prune` as an operator runs it, on both databases.
extension CommandLineTests {
    @Test("tower prune --older-than 0d: finished Runs' trace folders go, a pruned Artifact says so, a second prune finds nothing",
        arguments: Dialect.allCases)
    func pruneCommand(_ dialect: Dialect) async throws {
        try await withSetup(dialect) { setup in
            #expect(try await tower(setup, "migrate").status == 0)
            let setup = Setup(environment: setup.environment.merging(["JCT_REVIEW_AUTO_APPROVE": "true"]) { $1 }, traceRoot: setup.traceRoot)
            let created = try await tower(setup, "enqueue", "--objective", "Write the changelog", "--operation", "docs", "--repo", "myorg/docs")
            let taskId = created.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            try await withAPIProcess(setup, command: "serve") { port, log, _ in
                // The worker logs a run's end once its completion is committed.
                try await log.require("the task's run finished") { $0.contains("run finished") && $0.contains(taskId) }
                let task = try await RawConnection.request(port: port, "GET", "/tasks/\(taskId)").text
                #expect(task.contains(#""status":"completed""#), "\(task)")
                let issueId = try #require(task.range(of: #""cwom_issue_id":""#).map { String(task[$0.upperBound...].prefix { $0 != "\"" }) })
                let runs = try await RawConnection.request(port: port, "GET", "/cwom/runs?issue_id=\(issueId)").text
                let runId = try #require(runs.range(of: #""kind":"Run","id":""#).map { String(runs[$0.upperBound...].prefix { $0 != "\"" }) })
                let folder = setup.traceRoot.appendingPathComponent(runId)
                #expect(FileManager.default.fileExists(atPath: folder.path))
                let artifacts = try await RawConnection.request(port: port, "GET", "/cwom/runs/\(runId)/artifacts").text
                let artifactId = try #require(
                    artifacts.range(of: #""kind":"Artifact","id":""#).map { String(artifacts[$0.upperBound...].prefix { $0 != "\"" }) })

                let dry = try await tower(setup, "prune", "--older-than", "0d", "--dry-run")
                #expect(dry.status == 0 && dry.stdout.hasPrefix("would prune: 1 trace folder(s)"), "\(dry)")
                #expect(FileManager.default.fileExists(atPath: folder.path))
                let pruned = try await tower(setup, "prune", "--older-than", "0d")
                #expect(pruned.status == 0 && pruned.stdout.hasPrefix("pruned: 1 trace folder(s)"), "\(pruned)")
                #expect(!FileManager.default.fileExists(atPath: folder.path), "the trace folder is gone")
                let artifact = try await RawConnection.request(port: port, "GET", "/cwom/artifacts/\(artifactId)").text
                #expect(artifact.contains(#""pruned_at":"#) && artifact.contains(#""pruned_reason":"retention: older than 0d""#), "\(artifact)")
                #expect(try await RawConnection.request(port: port, "GET", "/cwom/runs/\(runId)/trace").status == 410)
                let again = try await tower(setup, "prune", "--older-than", "0d")
                #expect(again.stdout.hasPrefix("pruned: 0 trace folder(s)"), "\(again)")
                #expect(try await tower(setup, "prune", "--older-than", "soon").status != 0, "a wrong age is refused")
                #expect(try await tower(setup, "prune").stderr.contains("TOWER_RETENTION_DAYS"), "an age is needed")
            }
        }
    }
}
