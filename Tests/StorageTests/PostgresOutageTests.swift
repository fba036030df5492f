import Foundation
import Logging
import Storage
import Testing
import TowerTestSupport

/// What a PostgreSQL outage does to the driver's transactions (`PostgresPool`): they fail at
/// once as `unreachable` (a 503 from the API) instead of waiting for the server, and the first
/// one after the server is back is served. PostgresNIO's own pool, used before, kept them waiting
/// for a minute and then retried connecting with a backoff: `tower serve` answered `/healthz`
/// after 67 s while the server was down, and 503 for 35 s more after it was back.
@Suite("PostgreSQL connections: outages and the pool")
struct PostgresOutageTests {
    /// What a transaction ended with: "served", or the unreachable error's message, or nil when it
    /// was still waiting after a minute (far beyond every deadline a test sets).
    static func outcome(_ driver: any DatabaseDriver) async throws -> String? {
        try await withDeadline(seconds: 60) { () async -> String? in
            do {
                _ = try await driver.write { try await $0.query("SELECT 1 AS one", []) }
                return "served"
            } catch let error as StorageError {
                return error.kind == .unreachable ? error.message : "not unreachable: \(error.kind) \(error)"
            } catch {
                return "\(error)"
            }
        }
    }

    @Test("stopped: a transaction fails at once as unreachable rather than waiting; started again: the next one is served")
    func restart() async throws {
        try await withPrivatePostgres { server in
            // Deadlines of an hour: only failing at once (or being served) ends a transaction
            // within the test's bound of a minute.
            let log = CapturedLog()
            let driver = try await DatabaseLocation.postgres(url: server.url + "?acquire_timeout=3600&connect_timeout=3600")
                .open(poolSize: 2, logger: log.logger("tower.storage", level: .debug))
            #expect(try await Self.outcome(driver) == "served")

            try await server.stop()
            let down = try await Self.outcome(driver)
            #expect(down?.contains("PostgreSQL") == true && down != "served", "\(down ?? "still waiting after a minute")")
            let stillDown = try await Self.outcome(driver)
            #expect(stillDown?.hasPrefix("cannot reach PostgreSQL at 127.0.0.1:") == true, "\(stillDown ?? "still waiting after a minute")")

            try await server.start()
            #expect(try await Self.outcome(driver) == "served", "the first transaction after the restart connects")
            // The outage in the log: once as it starts (at error), each later failed connection at
            // debug, once as it ends, with the count. (The first transaction after the stop may
            // have met its closed connection rather than tried a new one.)
            let lines = log.entries.filter { $0.message.contains("PostgreSQL") }
            let failed = lines.filter { $0.message == "cannot connect to PostgreSQL" }
            #expect(!failed.isEmpty && lines.count == failed.count + 1, "\(lines.map(\.message))")
            #expect(failed.map(\.level) == [.error] + Array(repeating: .debug, count: max(0, failed.count - 1)))
            #expect(lines.last?.message == "PostgreSQL reachable again" && lines.last?.level == .notice)
            #expect(lines.last?.metadata["failed_connections"] == "\(failed.count)")
            await driver.close()
        }
    }

    @Test("frozen: opening a connection fails after connect_timeout as unreachable, naming it; thawed: served")
    func frozenServer() async throws {
        try await withPrivatePostgres { server in
            try server.freeze()
            // The kernel completes the TCP connection; the startup message gets no answer.
            let frozen = try await withDeadline(seconds: 60) { () async throws -> String? in
                do {
                    let driver = try await DatabaseLocation.postgres(url: server.url + "?connect_timeout=1").open(poolSize: 1)
                    await driver.close()
                    return "opened"
                } catch let error as StorageError {
                    return error.kind == .unreachable ? error.message : "not unreachable: \(error.kind) \(error)"
                }
            }
            #expect(
                frozen == "PostgreSQL at tower@127.0.0.1:\(server.port)/tower did not complete a connection within 1 s (connect_timeout): is the server stopped or overloaded?",
                "\(frozen ?? "still waiting after a minute")")
            try server.thaw()
            let driver = try await DatabaseLocation.postgres(url: server.url + "?connect_timeout=120").open(poolSize: 1)
            #expect(try await Self.outcome(driver) == "served")
            await driver.close()
        }
    }

    @Test("every connection in use: a transaction waits at most acquire_timeout, then fails as unreachable; one freed serves again")
    func acquireTimeout() async throws {
        try await withPostgresDriver(parameters: "&acquire_timeout=1") { driver in
            // The pool's one connection, held until released.
            let (held, hold) = AsyncStream<Void>.makeStream()
            let (release, released) = AsyncStream<Void>.makeStream()
            async let holder: Void = driver.write { session in
                _ = try await session.query("SELECT 1 AS one", [])
                hold.yield()
                for await _ in release {}
            }
            for await _ in held { break }
            let waited = try await Self.outcome(driver)
            #expect(
                waited?.hasPrefix("no connection to PostgreSQL at ") == true
                    && waited?.hasSuffix(" within 1 s: all 1 of the pool (pool_size) are in use") == true,
                "\(waited ?? "still waiting after a minute")")
            released.finish()
            try await holder
            #expect(try await Self.outcome(driver) == "served", "the pool serves again once its connection is free")
        }
    }

    @Test("a connection idle for more than a minute is closed and replaced when next needed; one used within the minute is kept")
    func idleConnectionReplaced() async throws {
        let test = try await TestDatabase.make(.postgres)
        guard case .postgres(let url) = test.location else { return }
        let clock = ManualClock()
        var settings = try PostgresSettings(url: url, maximumConnections: 1)
        settings.clock = clock
        let driver = try await PostgresDriver.open(settings)
        func backend() async throws -> Int {
            try await driver.write { try await $0.query("SELECT pg_backend_pid() AS pid", [])[0].int("pid") }
        }
        do {
            let first = try await backend()
            clock.advance(seconds: 59)
            #expect(try await backend() == first, "idle 59 s: the same connection")
            clock.advance(seconds: 61)
            let replaced = try await backend()
            #expect(replaced != first, "idle 61 s: a new connection")
            #expect(driver.openConnections == 1, "the old one closed: the pool of one holds one")
        } catch {
            await driver.close()
            await test.drop()
            throw error
        }
        await driver.close()
        await test.drop()
    }

    @Test("a statement waiting for its answer when the server stops fails then as unreachable, not at its query_timeout")
    func inFlightWhenStopped() async throws {
        try await withPrivatePostgres { server in
            // A deadline of an hour: only the connection's close can end the wait in time.
            let driver = try await DatabaseLocation.postgres(url: server.url + "?query_timeout=3600&connect_timeout=120").open(poolSize: 2)
            // Prepared, as the hot statements are (their third use): the worker's completion hung so.
            for _ in 0..<3 { _ = try await driver.write { try await $0.query("SELECT pg_sleep($1) AS slept", .double(0)) } }
            let (asked, ask) = AsyncStream<Void>.makeStream()
            async let waiting = withDeadline(seconds: 60) { () async -> String? in
                do {
                    _ = try await driver.write { session in
                        ask.yield()
                        return try await session.query("SELECT pg_sleep($1) AS slept", .double(600))
                    }
                    return "answered"
                } catch let error as StorageError {
                    return error.kind == .unreachable ? error.message : "not unreachable: \(error.kind) \(error)"
                } catch {
                    return "\(error)"
                }
            }
            for await _ in asked { break }
            // The statement is on its way (pg_stat_activity would say so; the stop ends it either way).
            try await server.stop()
            let ended = try await waiting
            #expect(ended?.hasPrefix("lost the connection to PostgreSQL") == true, "\(ended ?? "still waiting after a minute")")
            await driver.close()
        }
    }
}
