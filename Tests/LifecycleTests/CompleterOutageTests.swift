import CWOM
import Foundation
import LegacyTasks
import Storage
import Testing
import TowerTestSupport

/// The completer and a database that goes away under it (`LifecycleEngine.completer`).
@Suite("The completer through a PostgreSQL restart")
struct CompleterOutageTests {
    @Test("stopped under a completion and started again, the server takes the batch on a later try: the task completes on its first attempt")
    func completionOutlastsRestart() async throws {
        try await withPrivatePostgres { server in
            let database = try await Database.open(.postgres(url: server.url + "?connect_timeout=120"), poolSize: 2, requireCurrentSchema: false)
            do {
                try await database.migrator(logger: quietLogger("tower.migrate")).migrate()
                let clock = ManualClock(Timestamp(microseconds: 1_800_000_000_000_000))
                let bench = Bench(database: database, clock: clock, engine: LifecycleEngine(database: database, clock: clock))
                let task = try await bench.enqueue()
                let claim = try await bench.claimOne()

                try await server.stop()
                let (retried, retry) = AsyncStream<Void>.makeStream()
                // Tries enough for any machine to start the server in between.
                let completer = bench.engine.completer(
                    policy: ReviewPolicy(), retryDelays: Array(repeating: .milliseconds(200), count: 300), onRetry: { _ in retry.yield() })
                async let answer = completer.submit(bench.completion(claim, .succeeded))
                // The first try met the stopped server.
                let triedAgain = try await withDeadline(seconds: 60) { () async -> Bool? in
                    for await _ in retried { return true }
                    return false
                }
                try #require(triedAgain == true, "the completer tries the batch again")
                try await server.start()

                #expect(try await answer == .finished(.completed))
                let after = try await bench.task(task.id)
                #expect(after.status == .completed)
                #expect(after.attempt == 1, "no second attempt")
                #expect(try await bench.run(claim.run.id).status == .done)
            } catch {
                await database.close()
                throw error
            }
            await database.close()
        }
    }
}
