import Foundation
import Testing
import TowerTestSupport

/// `/metrics` of a fresh process: every documented family is there at zero before its first
/// event (so that `rate()` and absence alerts work), and nothing is exported undocumented.
extension CommandLineTests {
    /// The series names of the metrics table in docs/operations.md.
    func documentedMetrics() throws -> Set<String> {
        let doc = try String(contentsOf: repositoryRoot.appendingPathComponent("docs/operations.md"), encoding: .utf8)
        var names: Set<String> = []
        for line in doc.split(separator: "\n") where line.hasPrefix("| `tower_") {
            let name = line.dropFirst(3).prefix { $0 != "`" && $0 != "{" }
            names.insert(String(name))
        }
        return names
    }

    @Test("a fresh API's /metrics has every documented family, at zero before any event, and no undocumented one")
    func metricsFromTheStart() async throws {
        // On PostgreSQL: the pool's size is a PostgreSQL series.
        try await withSetup(.postgres) { setup in
            #expect(try await tower(setup, "migrate").status == 0)
            try await withAPIProcess(setup) { port, _, _ in
                // The HTTP family has a series per route and status: it appears with the first request.
                #expect(try await RawConnection.request(port: port, "GET", "/health").status == 200)
                let answer = try await RawConnection.request(port: port, "GET", "/metrics").text
                let text = answer.components(separatedBy: "\r\n\r\n").dropFirst().joined(separator: "\r\n\r\n")
                let exported = Set(text.split(separator: "\n").compactMap { line -> String? in
                    guard line.hasPrefix("# TYPE tower_") else { return nil }
                    return line.split(separator: " ").dropFirst(2).first.map(String.init)
                })
                let documented = try documentedMetrics()
                #expect(documented.count >= 15)
                #expect(documented.subtracting(exported).isEmpty, "documented but absent: \(documented.subtracting(exported).sorted()) in\n\(text)")
                #expect(exported.subtracting(documented).isEmpty, "exported but undocumented: \(exported.subtracting(documented).sorted())")
                for zero in [
                    #"tower_task_rescues_total 0"#, #"tower_task_cancellations_total 0"#, #"tower_task_retries_total{operation="docs"} 0"#,
                    #"tower_pruned_total{kind="trace_folders"} 0"#, #"tower_prune_runs_total 0"#, #"tower_queue_depth 0"#,
                    #"tower_task_completions_total{operation="code_change",status="failed"} 0"#,
                ] {
                    #expect(text.contains(zero), "\(zero) in\n\(text)")
                }
            }
        }
    }

    @Test("a served task is counted once in its claim, completion and run-duration series (handles a worker makes once)")
    func seriesCountWork() async throws {
        try await withSetup(.sqlite) { setup in
            #expect(try await tower(setup, "migrate").status == 0)
            let created = try await tower(setup, "enqueue", "--objective", "Write the changelog", "--operation", "docs", "--repo", "myorg/docs")
            let taskId = created.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            try await withAPIProcess(setup, command: "serve") { port, log, _ in
                try await log.require("the task's run finished") { $0.contains("run finished") && $0.contains(taskId) }
                let answer = try await RawConnection.request(port: port, "GET", "/metrics").text
                for line in [
                    #"tower_task_claims_total{operation="docs"} 1"#, #"tower_task_claims_total{operation="ops"} 0"#,
                    #"tower_run_duration_seconds_count{operation="docs"} 1"#,
                ] {
                    #expect(answer.contains(line), "\(line) in\n\(answer)")
                }
                // The completion is counted once its transaction commits, which the log line follows.
                let completed = answer.contains(#"tower_task_completions_total{operation="docs",status="completed"} 1"#)
                    || answer.contains(#"tower_task_completions_total{operation="docs",status="under_review"} 1"#)
                #expect(completed || answer.contains(#"tower_task_completions_total{operation="docs",status="failed"} 1"#), "\(answer)")
                #expect(answer.contains(#"tower_task_completions_total{operation="ops",status="completed"} 0"#))
            }
        }
    }
}
