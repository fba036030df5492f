import CWOM
import Foundation
import LegacyTasks
import Storage
import Testing
import TowerJSON
import TowerTestSupport

/// An engine on a database of its own, with a clock that moves only when the test moves it.
struct Bench: Sendable {
    let database: Database
    let clock: ManualClock
    let engine: LifecycleEngine

    static let lease = 30.0

    /// A worker as the engine sees it.
    func claimant(_ id: String) -> LifecycleEngine.Claimant {
        LifecycleEngine.Claimant(
            id: id, actor: Actor(kind: .system, id: id), leaseSeconds: Self.lease, executor: { _ in ("stub", "0.1.0") },
            artifactRoot: { "file:///tmp/runs/\($0)/" })
    }

    @discardableResult
    func enqueue(_ objective: String = "Update the docs", createCWOM: Bool = true) async throws -> TaskRecord {
        let request = TaskRequest(
            requestedBy: Requester(kind: .human, id: "alice"), objective: objective, operation: .docs,
            target: TaskTarget(repo: "testorg/docs"))
        let outcome = try await engine.enqueue(
            request, id: UUID().uuidString.lowercased(), traceId: "trace-\(ULID.make())", createCWOM: createCWOM)
        guard case .created(let created) = outcome else { throw HarnessError("enqueue did not create a task") }
        return created.task
    }

    /// Enqueues a task per objective, a second apart (so that they are claimed in this order), and
    /// claims them all for `worker` in one claim.
    func claimAll(_ objectives: [String], by worker: String = "worker-a") async throws -> [LifecycleEngine.Claim] {
        for (n, objective) in objectives.enumerated() {
            if n > 0 { clock.advance(seconds: 1) }
            try await enqueue(objective)
        }
        let claims = try await engine.claim(claimant(worker), limit: objectives.count)
        guard claims.count == objectives.count else { throw HarnessError("claimed \(claims.count) of \(objectives.count)") }
        return claims
    }

    func claimOne(_ worker: String = "worker-a") async throws -> LifecycleEngine.Claim {
        guard let claim = try await engine.claim(claimant(worker), limit: 1).first else { throw HarnessError("nothing to claim") }
        return claim
    }

    /// The end of an attempt as a worker reports it, without files.
    func completion(_ claim: LifecycleEngine.Claim, _ outcome: AttemptOutcome, holder: String = "worker-a",
        evidence: Bool = false) -> LifecycleEngine.Completion
    {
        var telemetry = claim.run.telemetry
        telemetry.endedAt = clock.now()
        let pack =
            evidence
            ? EvidencePack(
                forRun: claim.run.ref, forIssue: claim.issue.ref, verdict: .pass, verdictReason: "ok",
                evaluatedBy: Actor(kind: .system, id: holder))
            : nil
        return LifecycleEngine.Completion(
            claim: claim, holder: holder, outcome: outcome, message: outcome == .succeeded ? nil : "it went wrong",
            result: ["ok": .bool(outcome == .succeeded)], telemetry: telemetry, evidence: pack)
    }

    func task(_ id: String) async throws -> TaskRecord {
        guard let task = try await database.read({ try await $0.tasks.get(id) }) else { throw HarnessError("no task \(id)") }
        return task
    }

    func run(_ id: String) async throws -> Run {
        guard let run = try await database.read({ try await $0.runs.get(id) }) else { throw HarnessError("no run \(id)") }
        return run
    }

    func issue(_ id: String?) async throws -> CWOM.Issue {
        guard let id, let issue = try await database.read({ try await $0.issues.get(id) }) else {
            throw HarnessError("no issue \(id ?? "-")")
        }
        return issue
    }

    /// Audit rows about one entity, oldest first.
    func audit(_ kind: String, _ id: String) async throws -> [AuditEntry] {
        try await database.read { try await $0.audit.list(.init(entityKind: kind, entityId: id)) }.reversed()
    }

    func auditCount() async throws -> Int {
        try await database.read { try await $0.audit.list(page: Page(limit: 100_000)).count }
    }
}

struct HarnessError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Runs `body` with an engine on a fresh database of `dialect`.
func withEngine(_ dialect: Dialect, _ body: (Bench) async throws -> Void) async throws {
    try await withDatabase(dialect) { database, _ in
        let clock = ManualClock(Timestamp(microseconds: 1_800_000_000_000_000))
        try await body(Bench(database: database, clock: clock, engine: LifecycleEngine(database: database, clock: clock)))
    }
}

extension AsyncStream where Element == LifecycleEvent {
    /// The first event that matches, or nil when the stream ends first.
    func next(where matches: (LifecycleEvent) -> Bool) async -> LifecycleEvent? {
        for await event in self where matches(event) { return event }
        return nil
    }
}
