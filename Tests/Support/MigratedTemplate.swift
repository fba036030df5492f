import CWOM
import Foundation
import Storage

/// The migrated databases that `TestDatabase.make(_:migrated:)` copies: one per dialect and set of
/// migrations, made by the first test that needs it. Migrating a fresh PostgreSQL schema took
/// about half a second a test, and some two hundred PostgreSQL tests open a migrated database;
/// `CREATE DATABASE … TEMPLATE` takes under 0.2 s even while the suite runs, and a SQLite file
/// copy a millisecond. The whole suite went from 350 and 360 s to 276 and 266 s (2026-12-07).
///
/// Each is named by the migrations' checksums, so a run reuses what an earlier run with the same
/// migrations made (a private server of scripts/test is deleted with its data; a SQLite template
/// stays in the temporary folder), and a changed migration gets a template of its own. A template
/// is made under a name of its own and renamed when complete: a run stopped half-way never leaves
/// a half-migrated template behind, and two runs at once both end with the same one.
enum MigratedTemplate {
    static let postgres = Task { try await makePostgres() }
    static let sqlite = Task { try await makeSQLite() }

    /// The database name (PostgreSQL) or the file (SQLite) of `dialect`'s migrations.
    static func name(_ dialect: SQLDialect) -> String {
        // FNV-1a over the checksums: a name, not a security boundary.
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in Migrator.embedded(dialect).map(\.checksum).joined(separator: ",").utf8 {
            hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3
        }
        return "tower_template_" + String(hash, radix: 16)
    }

    private static func makePostgres() async throws -> String {
        let final = name(.postgres)
        let base = try postgresURL()
        if try await postgresDatabaseExists(final, base: base) { return final }
        let building = final + "_" + ULID.make().lowercased()
        try await TestDatabase.adminQuery(base, "CREATE DATABASE \(building)")
        do {
            try await migrate(.postgres(url: try postgresURL(database: building)))
            // The rename waits (up to 5 s, as CREATE DATABASE does) for the closed connection's
            // server process to end. Another run may have renamed its copy first: then use that.
            do { try await TestDatabase.adminQuery(base, "ALTER DATABASE \(building) RENAME TO \(final)") } catch {
                guard try await postgresDatabaseExists(final, base: base) else { throw error }
                _ = try? await TestDatabase.adminQuery(base, "DROP DATABASE \(building) WITH (FORCE)")
            }
            return final
        } catch {
            _ = try? await TestDatabase.adminQuery(base, "DROP DATABASE IF EXISTS \(building) WITH (FORCE)")
            throw error
        }
    }

    private static func postgresDatabaseExists(_ name: String, base: String) async throws -> Bool {
        try await !TestDatabase.adminQuery(base, "SELECT 1 AS found FROM pg_database WHERE datname = $1", [.text(name)]).isEmpty
    }

    private static func makeSQLite() async throws -> String {
        let folder = FileManager.default.temporaryDirectory
        let final = folder.appendingPathComponent(name(.sqlite) + ".db").path
        if FileManager.default.fileExists(atPath: final) { return final }
        let building = folder.appendingPathComponent(name(.sqlite) + "-" + ULID.make().lowercased())
        try FileManager.default.createDirectory(at: building, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: building) }
        let file = building.appendingPathComponent("tower.db").path
        try await migrate(.sqlite(path: file))
        // A closed database has no write-ahead log left: the file is the whole database.
        // rename(2) replaces atomically, so a run that finished first loses nothing.
        guard rename(file, final) == 0 else {
            throw TestDatabaseError("cannot move the SQLite template \(file) to \(final): \(String(cString: strerror(errno)))")
        }
        return final
    }

    /// Migrates the database at `location` and closes it, also when a migration fails.
    private static func migrate(_ location: DatabaseLocation) async throws {
        let database = try await Database.open(location, poolSize: 1, requireCurrentSchema: false)
        do { try await database.migrator(logger: quietLogger("tower.migrate")).migrate() } catch {
            await database.close()
            throw error
        }
        await database.close()
    }
}
