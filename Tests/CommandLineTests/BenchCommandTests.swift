import Foundation
import Testing
import TowerTestSupport

/// `tower bench` as docs/benchmarks.md runs it, small: it prints figures (never asserted as times).
extension CommandLineTests {
    @Test("tower bench --mode burn-down --ceiling drains a backlog with worker processes and prints its figures beside the ceiling",
        arguments: Dialect.allCases)
    func benchBurnDown(_ dialect: Dialect) async throws {
        try await withSetup(dialect) { setup in
            var arguments = ["bench", "--mode", "burn-down", "--tasks", "40", "--workers", "2", "--concurrency", "2", "--path", "storage", "--ceiling",
                "--trace-root", setup.traceRoot.path]
            if dialect == .postgres, let url = setup.environment["DATABASE_URL"] { arguments += ["--database-url", url] }
            let outcome = try await TowerBinary.run(arguments, environment: setup.environment)
            #expect(outcome.status == 0, "\(outcome)")
            let lines = outcome.stdout.split(separator: "\n").map(String.init)
            #expect(lines.contains { $0.hasPrefix("burn-down:") && $0.contains("2 workers × 2 slots") }, "\(outcome.stdout)")
            #expect(lines.contains { $0.hasPrefix("statements per task:") && $0.contains("claim") && $0.contains("complete") })
            let writers = dialect == .postgres ? "4 writer(s)" : "1 writer(s)"
            #expect(lines.contains { $0.hasPrefix("ceiling (plain multi-row SQL, batches of 32, \(writers))") }, "\(outcome.stdout)")
            #expect(lines.contains { $0.contains("burn-down at") && $0.contains("% of the claim + complete ceiling") })
            #expect(lines.contains { $0.hasPrefix("trace folder per run:") && $0.contains(setup.traceRoot.path) }, "\(outcome.stdout)")
            let left = try FileManager.default.contentsOfDirectory(atPath: setup.traceRoot.path)
            #expect(left.isEmpty, "the bench removes its trace folders: \(left)")
        }
    }
}
