import Crypto
import Foundation
import CWOM
import Logging

/// One migration file, embedded in the binary.
public struct Migration: Sendable, Hashable {
    public var version: Int
    public var name: String
    public var sql: String
    /// sha256 of the file's text, hex.
    public var checksum: String

    init(file: String, sql: String) {
        self.name = file
        self.version = Int(file.prefix(while: { $0.isNumber })) ?? 0
        self.sql = sql
        self.checksum = SHA256.hash(data: Data(sql.utf8)).withUnsafeBytes { Hex.encode($0) }
    }

    /// The statements of the file (both drivers run one statement per call).
    public var statements: [String] { Self.statements(in: sql) }

    /// Splits a SQL script on `;` outside quotes and `--` comments.
    public static func statements(in sql: String) -> [String] {
        var statements: [String] = []
        var current = ""
        var inQuote = false
        var inIdentifier = false
        var lines = sql.split(separator: "\n", omittingEmptySubsequences: false).makeIterator()
        while let line = lines.next() {
            var text = Substring(line)
            if !inQuote && !inIdentifier, let comment = text.range(of: "--") { text = text[..<comment.lowerBound] }
            for ch in text {
                if ch == "'" && !inIdentifier { inQuote.toggle() }
                if ch == "\"" && !inQuote { inIdentifier.toggle() }
                if ch == ";" && !inQuote && !inIdentifier {
                    let statement = current.trimmingCharacters(in: .whitespacesAndNewlines)
                    if !statement.isEmpty { statements.append(statement) }
                    current = ""
                } else {
                    current.append(ch)
                }
            }
            current.append("\n")
        }
        let rest = current.trimmingCharacters(in: .whitespacesAndNewlines)
        if !rest.isEmpty { statements.append(rest) }
        return statements
    }
}

/// The state of one migration in a database.
public struct MigrationStatus: Sendable, Hashable {
    public enum State: String, Sendable {
        case applied, adopted, pending
        /// Recorded with another checksum: the file changed after it was applied.
        case modified
    }

    public var migration: Migration
    public var state: State
    public var appliedAt: String?
}

/// Applies the embedded migrations in order, each in its own transaction, recording each with
/// its checksum in `tower_migrations`. Safe when several processes run it at once: PostgreSQL
/// serialises them on an advisory lock, SQLite on `BEGIN IMMEDIATE`.
///
/// A database created by the legacy service (its `alembic_version` at the last legacy revision)
/// is adopted in place: migration 0001, which creates that same layout, is recorded as adopted
/// instead of being run, and only the additive migrations after it are applied.
public struct Migrator: Sendable {
    /// The last revision of the legacy service's own (alembic) migrations.
    public static let legacyHead = "j1e2f3a4b5c6"
    /// The migration that creates the legacy layout.
    static let legacyLayoutVersion = 1

    public let driver: any DatabaseDriver
    public let migrations: [Migration]
    let logger: Logger

    public init(driver: any DatabaseDriver, logger: Logger = Logger(label: "tower.migrate")) {
        self.driver = driver
        self.logger = logger
        self.migrations = Self.embedded(driver.dialect)
    }

    /// The migrations this binary carries for a dialect, in order.
    public static func embedded(_ dialect: SQLDialect) -> [Migration] {
        let files = dialect == .postgres ? EmbeddedMigrations.postgres : EmbeddedMigrations.sqlite
        return files.map { Migration(file: $0.file, sql: $0.sql) }.sorted { $0.version < $1.version }
    }

    /// One lock per schema: migrations of the same schema wait for each other, those of different
    /// schemas (databases shared by several installations, or the test suite's many schemas) do not
    /// queue behind one database-wide key.
    private var lockStatement: String? {
        driver.dialect == .postgres ? "SELECT pg_advisory_xact_lock(hashtextextended(current_schema(), 7368257318))" : nil
    }

    /// Every migration with its state.
    public func status() async throws -> [MigrationStatus] {
        let recorded = try await driver.read { session in try await Self.recorded(session) }
        return migrations.map { migration in
            guard let row = recorded[migration.version] else {
                return MigrationStatus(migration: migration, state: .pending, appliedAt: nil)
            }
            let state: MigrationStatus.State =
                row.checksum != migration.checksum ? .modified : (row.adopted ? .adopted : .applied)
            return MigrationStatus(migration: migration, state: state, appliedAt: row.appliedAt)
        }
    }

    /// Applies what is pending and returns the migrations applied (or adopted) now.
    @discardableResult
    public func migrate() async throws -> [MigrationStatus] {
        try await ensureTable()
        var done: [MigrationStatus] = []
        for migration in migrations {
            let outcome = try await driver.writeSchema { session -> MigrationStatus.State? in
                if let lock = lockStatement { try await session.query(lock) }
                let recorded = try await Self.recorded(session)
                if let row = recorded[migration.version] {
                    guard row.checksum == migration.checksum else {
                        throw StorageError(
                            .migration,
                            "migration \(migration.name) was changed after it was applied (recorded checksum \(row.checksum.prefix(12))…, file \(migration.checksum.prefix(12))…); restore the file or this binary's version, never edit an applied migration")
                    }
                    return nil
                }
                if migration.version == Self.legacyLayoutVersion, try await isLegacyDatabase(session) {
                    try await record(migration, adopted: true, session)
                    return .adopted
                }
                // Said before it runs: a migration that rewrites large tables (0007 on a long
                // history) can take minutes, and the operator sees which one is working.
                let statements = migration.statements
                logger.info("applying migration", metadata: ["migration": "\(migration.name)", "statements": "\(statements.count)"])
                for statement in statements { try await session.query(statement, []) }
                try await record(migration, adopted: false, session)
                return .applied
            }
            if let outcome {
                logger.info("migration \(outcome.rawValue)", metadata: ["migration": "\(migration.name)"])
                done.append(MigrationStatus(migration: migration, state: outcome, appliedAt: nil))
            }
        }
        return done
    }

    /// Throws `schemaBehind` unless every migration is applied, so that servers refuse to start
    /// on a database that `tower migrate` has not brought up to date.
    public func requireCurrent() async throws {
        let pending = try await status().filter { $0.state != .applied && $0.state != .adopted }
        guard pending.isEmpty else {
            let names = pending.map { "\($0.migration.name) (\($0.state.rawValue))" }.joined(separator: ", ")
            throw StorageError(.schemaBehind, "the database schema is behind this version of tower: \(names); run `tower migrate`")
        }
    }

    // MARK: - Internals

    private func ensureTable() async throws {
        try await driver.writeSchema { session in
            if let lock = lockStatement { try await session.query(lock) }
            try await session.query(
                """
                CREATE TABLE IF NOT EXISTS tower_migrations (
                    version INTEGER PRIMARY KEY,
                    name VARCHAR(256) NOT NULL,
                    checksum VARCHAR(64) NOT NULL,
                    adopted BOOLEAN NOT NULL DEFAULT FALSE,
                    applied_at VARCHAR(40) NOT NULL
                )
                """, [])
        }
    }

    struct Recorded { var checksum: String; var adopted: Bool; var appliedAt: String }

    static func recorded(_ session: any DatabaseSession) async throws -> [Int: Recorded] {
        guard try await tableExists("tower_migrations", session) else { return [:] }
        var result: [Int: Recorded] = [:]
        for row in try await session.query("SELECT version, checksum, adopted, applied_at FROM tower_migrations", []) {
            result[try row.int("version")] = Recorded(
                checksum: try row.string("checksum"), adopted: try row.bool("adopted"),
                appliedAt: try row.string("applied_at"))
        }
        return result
    }

    static func tableExists(_ table: String, _ session: any DatabaseSession) async throws -> Bool {
        let sql =
            session.dialect == .postgres
            ? "SELECT to_regclass($1)::text AS name"
            : "SELECT name FROM sqlite_master WHERE type = 'table' AND name = $1"
        let rows = try await session.query(sql, [.text(table)])
        return rows.first.map { !$0.isNull("name") } ?? false
    }

    /// Whether this database already holds the legacy layout. Refuses a legacy database at an
    /// older revision and a `tasks` table of unknown origin.
    private func isLegacyDatabase(_ session: any DatabaseSession) async throws -> Bool {
        guard try await Self.tableExists("tasks", session) else { return false }
        guard try await Self.tableExists("alembic_version", session) else {
            throw StorageError(
                .migration,
                "this database has a 'tasks' table but no 'alembic_version': it was not made by the legacy JCT service or by tower, so tower will not touch it")
        }
        let revision = try await session.query("SELECT version_num FROM alembic_version", []).first.flatMap {
            try? $0.optionalString("version_num")
        }
        guard revision == Self.legacyHead else {
            throw StorageError(
                .migration,
                "the legacy database is at alembic revision \(revision ?? "(none)"), not \(Self.legacyHead); upgrade it with the legacy service first (alembic upgrade head), then run tower migrate")
        }
        return true
    }

    private func record(_ migration: Migration, adopted: Bool, _ session: any DatabaseSession) async throws {
        try await session.query(
            "INSERT INTO tower_migrations (version, name, checksum, adopted, applied_at) VALUES ($1, $2, $3, $4, $5)",
            [
                .int(migration.version), .text(migration.name), .text(migration.checksum), .bool(adopted),
                .text(Timestamp.now().iso8601),
            ])
    }
}
