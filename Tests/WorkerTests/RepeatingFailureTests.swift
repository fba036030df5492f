import Foundation
import Logging
import Storage
import Testing
import TowerTestSupport
import Worker

/// A failure that comes back at every try (the database down) is logged when it starts, once a
/// minute while it lasts, and once when it ends (`RepeatingFailure`), not at every try.
@Suite("A worker's failures that repeat")
struct RepeatingFailureTests {
    let start = ContinuousClock.now

    func at(_ seconds: Double) -> ContinuousClock.Instant { start.advanced(by: .milliseconds(Int(seconds * 1000))) }

    @Test("the first failure is reported, the tries after it within a minute are only counted, and the first success reports the end with the count")
    func startAndEnd() {
        var failure = RepeatingFailure()
        #expect(failure.succeeded(at: at(0)) == nil, "a success after successes says nothing")
        #expect(failure.failed(at: at(1)) == .started)
        for second in 2...60 { #expect(failure.failed(at: at(Double(second))) == .repeated(failures: second), "try at \(second) s") }
        #expect(failure.succeeded(at: at(61)) == .ended(failures: 60, seconds: 60))
        #expect(failure.succeeded(at: at(62)) == nil, "the end is reported once")
        #expect(failure.failed(at: at(63)) == .started, "a new failure starts over")
    }

    @Test("a failure that lasts is reported again every period, with how many tries failed and for how long")
    func ongoing() {
        var failure = RepeatingFailure(every: .seconds(60))
        #expect(failure.failed(at: at(0)) == .started)
        var reports: [RepeatingFailure.Report] = []
        for second in 1...150 {
            let report = failure.failed(at: at(Double(second)))
            if report != .repeated(failures: second + 1) { reports.append(report) }
        }
        #expect(reports == [.ongoing(failures: 61, seconds: 60), .ongoing(failures: 121, seconds: 120)])
        #expect(failure.succeeded(at: at(151)) == .ended(failures: 151, seconds: 151))
    }

    @Test("a failure after a quiet period starts over: the first of a new outage, not the next of the last")
    func quietStartsOver() {
        var failure = RepeatingFailure(every: .seconds(60))
        #expect(failure.failed(at: at(0)) == .started)
        #expect(failure.failed(at: at(30)) == .repeated(failures: 2))
        #expect(failure.failed(at: at(200)) == .started, "no failure for over a minute")
        #expect(failure.failed(at: at(201)) == .repeated(failures: 2))
    }

    @Test("PostgreSQL stopped under a worker: each operation logs that it fails once, and once that it works again, with the failed tries")
    func workerThroughOutage() async throws {
        try await withPrivatePostgres { server in
            let database = try await Database.open(.postgres(url: server.url + "?connect_timeout=120"), poolSize: 4, requireCurrentSchema: false)
            let traces = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("tower-failures-\(UUID().uuidString)")
            defer { try? FileManager.default.removeItem(at: traces) }
            let log = CapturedLog()
            do {
                try await database.migrator(logger: quietLogger("tower.migrate")).migrate()
                let configuration = WorkerConfiguration(
                    concurrency: 1, pollInterval: 0.2, heartbeatSeconds: 0.1, rescueSeconds: 0.1, traceRoot: traces)
                // At `debug`, the tries that an `info` log leaves out show: the test waits for them.
                let worker = BridgeWorker(database: database, configuration: configuration, logger: log.logger("tower.worker", level: .debug))
                let running = Task { try await worker.run() }
                _ = try await withDeadline(seconds: 60) { await log.next { $0.message == "worker started" } }

                try await server.stop()
                let failed = try await withDeadline(seconds: 60) {
                    await log.next { $0.message == "heartbeat failed: not claiming until it succeeds" }
                }
                #expect(failed?.level == .error)
                for operation in ["heartbeat", "rescue", "listen"] {
                    _ = try await withDeadline(seconds: 60) {
                        await log.next { $0.message == "\(operation) failed again" && $0.metadata["failures"] == "3" }
                    }
                }
                try await server.start()
                for operation in ["heartbeat", "rescue", "listen"] {
                    let back = try await withDeadline(seconds: 120) { await log.next { $0.message == "\(operation) works again" } }
                    let failures = back.flatMap { $0.metadata["failures"] }.flatMap { Int($0) }
                    #expect(back?.level == .notice, "\(operation)")
                    #expect((failures ?? 0) >= 3, "\(operation): \(back?.metadata ?? [:])")
                }
                let lines = log.entries.filter { $0.level > .debug }.map(\.message)
                #expect(lines.count { $0 == "heartbeat failed: not claiming until it succeeds" } == 1)
                #expect(lines.count { $0 == "rescue failed" } == 1)
                #expect(lines.count { $0 == "LISTEN failed; polling meanwhile" } == 1)
                // An outage under a minute has no "still failing" line.
                #expect(!lines.contains { $0.hasSuffix("still failing") }, "\(lines)")

                await worker.shutdown()
                try await running.value
            } catch {
                await database.close()
                throw error
            }
            await database.close()
        }
    }
}
