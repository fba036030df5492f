import CWOM
import Foundation
import LegacyTasks
import Storage
import Testing
import TowerJSON
import TowerTestSupport

/// Every legal transition of the three machines, taken through the engine, earns exactly one
/// audit row that says so; every illegal one is refused with a typed error and writes nothing.
@Suite("State machines")
struct TransitionTests {
    static let carol = Actor(kind: .human, id: "carol")

    // MARK: Runs

    /// A Run of a real Issue in `status`, not executed by any worker.
    func run(in status: Status, _ bench: Bench) async throws -> Run {
        let task = try await bench.enqueue()
        let issue = try await bench.issue(task.cwomIssueId)
        var run = Run(
            header: ObjectHeader(traceId: "trace-run"), forIssue: issue.ref, repo: issue.repo, status: status, mode: .human,
            executor: Executor(actor: Self.carol, runtime: "manual"), telemetry: Telemetry(startedAt: bench.clock.now()))
        if status == .failed { run.failure = Failure(category: .runtime, message: "failed") }
        try await bench.database.write { [run] in try await $0.runs.insert(run) }
        return run
    }

    func runUpdate(to status: Status) -> RunUpdate {
        RunUpdate(status: status, failure: status == .failed ? Failure(category: .runtime, message: "failed") : nil)
    }

    @Test("every Run transition is audited once", arguments: Dialect.allCases)
    func runEdges(_ dialect: Dialect) async throws {
        try await withEngine(dialect) { bench in
            for edge in Lifecycle.run.edges {
                let run = try await run(in: edge.from, bench)
                _ = try await bench.engine.updateRun(run.id, runUpdate(to: edge.to), by: Self.carol, traceId: "trace-patch")
                try await expectOneTransition(bench, "Run", run.id, edge.from.rawValue, edge.to.rawValue, trace: "trace-patch")
                #expect(try await bench.run(run.id).status == edge.to)
            }
        }
    }

    @Test("an illegal Run transition is refused and writes nothing", arguments: Dialect.allCases)
    func runIllegal(_ dialect: Dialect) async throws {
        try await withEngine(dialect) { bench in
            for from in Status.allCases {
                let run = try await run(in: from, bench)
                for to in Status.allCases where to != from && !Lifecycle.run.allows(from, to) {
                    let before = try await bench.auditCount()
                    await #expect(throws: LifecycleError.invalidTransition(entity: "Run", id: run.id, current: from.rawValue, requested: to.rawValue)) {
                        _ = try await bench.engine.updateRun(run.id, runUpdate(to: to), by: Self.carol, traceId: nil)
                    }
                    #expect(try await bench.auditCount() == before)
                    #expect(try await bench.run(run.id).status == from)
                }
            }
        }
    }

    // MARK: Issues

    /// An Issue in `status` whose task is not running.
    func issue(in status: Status, _ bench: Bench) async throws -> CWOM.Issue {
        let task = try await bench.enqueue()
        var issue = try await bench.issue(task.cwomIssueId)
        issue.header = ObjectHeader(traceId: "trace-issue")
        issue.status = status
        issue.contextPackets = []
        issue.constraints = []
        try await bench.database.write { [issue] in try await $0.issues.insert(issue) }
        return issue
    }

    @Test("every Issue transition is audited once", arguments: Dialect.allCases)
    func issueEdges(_ dialect: Dialect) async throws {
        try await withEngine(dialect) { bench in
            for edge in Lifecycle.issue.edges {
                let issue = try await issue(in: edge.from, bench)
                _ = try await bench.engine.setIssueStatus(issue.id, to: edge.to, by: Self.carol, traceId: "trace-patch")
                try await expectOneTransition(bench, "Issue", issue.id, edge.from.rawValue, edge.to.rawValue, trace: "trace-patch")
                #expect(try await bench.issue(issue.id).status == edge.to)
            }
        }
    }

    @Test("an illegal Issue transition is refused and writes nothing", arguments: Dialect.allCases)
    func issueIllegal(_ dialect: Dialect) async throws {
        try await withEngine(dialect) { bench in
            for from in Status.allCases {
                let issue = try await issue(in: from, bench)
                for to in Status.allCases where to != from && !Lifecycle.issue.allows(from, to) {
                    let before = try await bench.auditCount()
                    await #expect(throws: LifecycleError.invalidTransition(entity: "Issue", id: issue.id, current: from.rawValue, requested: to.rawValue)) {
                        _ = try await bench.engine.setIssueStatus(issue.id, to: to, by: Self.carol, traceId: nil)
                    }
                    #expect(try await bench.auditCount() == before)
                    #expect(try await bench.issue(issue.id).status == from)
                }
            }
        }
    }

    // MARK: Tasks

    /// A task stored in `status` as a legacy writer would leave it (no lease).
    func task(in status: TaskStatus, _ bench: Bench) async throws -> TaskRecord {
        var task = try await bench.enqueue()
        task.id = UUID().uuidString.lowercased()
        task.status = status
        task.cwomIssueId = nil
        try await bench.database.write { [task] in try await $0.tasks.insert(task) }
        return task
    }

    typealias Walk = @Sendable (Bench) async throws -> TaskRecord

    /// How each edge of the task machine is taken through the engine's operations.
    static let taskWalks: [String: Walk] = [
        "pending→queued": { bench in
            let task = try await TransitionTests().task(in: .pending, bench)
            return try await bench.engine.setTaskStatus(task.id, to: .queued, fields: .init(), by: carol)
        },
        "pending→cancelled": { bench in
            let task = try await TransitionTests().task(in: .pending, bench)
            return try await bench.engine.cancel(task.id, by: carol).task
        },
        "queued→running": { bench in
            try await bench.enqueue()
            return try await bench.claimOne().task
        },
        "queued→cancelled": { bench in try await bench.engine.cancel(try await bench.enqueue().id, by: carol).task },
        "running→completed": { bench in try await finish(bench, .succeeded) },
        "running→failed": { bench in try await finish(bench, .failed) },
        "running→cancelled": { bench in
            try await bench.enqueue()
            let claim = try await bench.claimOne()
            _ = try await bench.engine.cancel(claim.task.id, by: carol)
            _ = try await bench.engine.complete(bench.completion(claim, .succeeded))
            return claim.task
        },
        "running→queued": { bench in
            try await bench.enqueue()
            let claim = try await bench.claimOne()
            _ = try await bench.engine.requeue(claim, holder: "worker-a", note: "Worker shut down")
            return claim.task
        },
        "completed→queued": { bench in try await bench.engine.retry(try await TransitionTests().task(in: .completed, bench).id, by: carol) },
        "failed→queued": { bench in try await bench.engine.retry(try await TransitionTests().task(in: .failed, bench).id, by: carol) },
        "cancelled→queued": { bench in try await bench.engine.retry(try await TransitionTests().task(in: .cancelled, bench).id, by: carol) },
    ]

    static func finish(_ bench: Bench, _ outcome: AttemptOutcome) async throws -> TaskRecord {
        try await bench.enqueue()
        let claim = try await bench.claimOne()
        _ = try await bench.engine.complete(bench.completion(claim, outcome))
        return claim.task
    }

    @Test("every task transition is taken by an engine operation and audited once", arguments: Dialect.allCases)
    func taskEdges(_ dialect: Dialect) async throws {
        let names = Set(Lifecycle.task.edges.map { "\($0.from.rawValue)→\($0.to.rawValue)" })
        #expect(Set(Self.taskWalks.keys) == names, "a walk for every edge, and no walk for an edge that does not exist")
        try await withEngine(dialect) { bench in
            for edge in Lifecycle.task.edges {
                guard let walk = Self.taskWalks["\(edge.from.rawValue)→\(edge.to.rawValue)"] else { continue }
                let task = try await walk(bench)
                let stored = try await bench.task(task.id)
                #expect(stored.status == edge.to, "\(edge.from) → \(edge.to)")
                let moves = try await bench.audit("Task", task.id).filter {
                    $0.action == .statusChanged && $0.before?["status"]?.stringValue == edge.from.rawValue
                        && $0.after?["status"]?.stringValue == edge.to.rawValue
                }
                #expect(moves.count == 1, "\(edge.from) → \(edge.to): one audit row")
                #expect(moves.first?.traceId == stored.traceId)
            }
        }
    }

    @Test("an illegal task transition is refused and writes nothing", arguments: Dialect.allCases)
    func taskIllegal(_ dialect: Dialect) async throws {
        try await withEngine(dialect) { bench in
            for from in TaskStatus.allCases {
                let task = try await task(in: from, bench)
                for to in TaskStatus.allCases where to != from && !Lifecycle.task.allows(from, to) {
                    let before = try await bench.auditCount()
                    await #expect(throws: LifecycleError.invalidTransition(entity: "Task", id: task.id, current: from.rawValue, requested: to.rawValue)) {
                        _ = try await bench.engine.setTaskStatus(task.id, to: to, fields: .init(error: "x"), by: Self.carol)
                    }
                    #expect(try await bench.auditCount() == before)
                    #expect(try await bench.task(task.id) == task)
                }
            }
            // An edge of another operation is not a status set's: a running task is requeued only by
            // its worker (shutdown) or a rescuer, never by PATCH.
            let running = try await task(in: .running, bench)
            await #expect(throws: LifecycleError.invalidTransition(entity: "Task", id: running.id, current: "running", requested: "queued")) {
                _ = try await bench.engine.setTaskStatus(running.id, to: .queued, fields: .init(), by: Self.carol)
            }
        }
    }

    @Test("docs/worker.md draws the three machines exactly as the engine has them")
    func diagrams() throws {
        let doc = try String(contentsOf: repositoryRoot.appendingPathComponent("docs/worker.md"), encoding: .utf8)
        for (name, diagram) in [("task", Lifecycle.task.mermaid), ("Run", Lifecycle.run.mermaid), ("Issue", Lifecycle.issue.mermaid)] {
            #expect(doc.contains("```mermaid\n\(diagram)\n```"), "the \(name) diagram; it is:\n\(diagram)")
        }
    }

    func expectOneTransition(_ bench: Bench, _ kind: String, _ id: String, _ from: String, _ to: String, trace: String)
        async throws
    {
        let rows = try await bench.audit(kind, id).filter { $0.action == .statusChanged }
        #expect(rows.count == 1, "\(kind) \(from) → \(to)")
        #expect(rows.first?.before == ["status": .string(from)])
        #expect(rows.first?.after == ["status": .string(to)])
        #expect(rows.first?.traceId == trace)
        #expect(rows.first?.actor.actorId == Self.carol.actorId)
    }
}
