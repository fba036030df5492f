import ArgumentParser
import Foundation
import Logging
import Storage

/// Options that pick the database, shared by every command that opens one.
struct DatabaseOptions: ParsableArguments {
    @Option(
        name: .customLong("database-url"),
        help: "postgres://user:pass@host:port/db or sqlite:///path.db (default: $DATABASE_URL, else sqlite .tower/tower.db).")
    var databaseURL: String?

    @Option(help: "Most PostgreSQL connections to open (default: $DATABASE_POOL_SIZE, else 10).")
    var poolSize: Int?

    func location() throws -> DatabaseLocation {
        try DatabaseLocation(url: databaseURL ?? ProcessInfo.processInfo.environment["DATABASE_URL"])
    }

    /// Opens the database for a short command and closes it on every path.
    func withDatabase<T>(poolSize: Int = 2, requireCurrentSchema: Bool = true, logger: Logger = Logger(label: "tower"),
        _ body: (Database) async throws -> T) async throws -> T
    {
        try await Database.withOpen(
            try location(), poolSize: poolSize, requireCurrentSchema: requireCurrentSchema, logger: logger, body)
    }

    func resolvedPoolSize() throws -> Int {
        if let poolSize {
            guard (1...1_000).contains(poolSize) else { throw CommandError("--pool-size must be a number of connections from 1 to 1000, not \(poolSize)") }
            return poolSize
        }
        guard let text = ProcessInfo.processInfo.environment["DATABASE_POOL_SIZE"] else { return 10 }
        guard let value = Int(text), (1...1_000).contains(value) else {
            throw CommandError("DATABASE_POOL_SIZE must be a whole number of connections from 1 to 1000, not '\(text)'")
        }
        return value
    }
}

struct MigrateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate",
        abstract: "Create the database schema, adopt a legacy JCT database, or apply pending migrations.",
        discussion: """
            Each migration runs in its own transaction and is recorded with its checksum in \
            tower_migrations. Running it from several processes at once is safe. On a database made by \
            the legacy service (alembic head j1e2f3a4b5c6) the legacy tables are adopted in place: nothing \
            is dropped or retyped, only additive changes are applied.
            """
    )

    @OptionGroup var database: DatabaseOptions

    @Flag(help: "List applied and pending migrations instead of applying them.")
    var status = false

    func run() async throws {
        let logger = Logger(label: "tower")
        let location = try database.location()
        try await database.withDatabase(requireCurrentSchema: false, logger: logger) { db in
            let migrator = db.migrator(logger: logger)
            if status {
                print("Migrations for \(location):")
                for entry in try await migrator.status() {
                    let state = entry.state.rawValue.padding(toLength: 8, withPad: " ", startingAt: 0)
                    print("  \(state) \(entry.migration.name)\(entry.appliedAt.map { "  (\($0))" } ?? "")")
                }
            } else {
                let done = try await migrator.migrate()
                if done.isEmpty {
                    print("\(location): up to date")
                } else {
                    for entry in done { print("\(entry.state.rawValue) \(entry.migration.name)") }
                    print("\(location): up to date")
                }
            }
        }
    }
}
