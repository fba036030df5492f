import Logging

/// Every repository over one session, so that a transaction can span several of them:
/// `try await database.write { store in try await store.repos.insert(r); try await store.issues.insert(i) }`.
public struct Store: Sendable {
    public let session: any DatabaseSession

    public init(session: any DatabaseSession) { self.session = session }

    public var tasks: TaskRepository { TaskRepository(session: session) }
    public var repos: RepoRepository { RepoRepository(session: session) }
    public var issues: IssueRepository { IssueRepository(session: session) }
    public var contextPackets: ContextPacketRepository { ContextPacketRepository(session: session) }
    public var constraintSnapshots: ConstraintSnapshotRepository { ConstraintSnapshotRepository(session: session) }
    public var doctrineRefs: DoctrineRefRepository { DoctrineRefRepository(session: session) }
    public var runs: RunRepository { RunRepository(session: session) }
    public var artifacts: ArtifactRepository { ArtifactRepository(session: session) }
    public var evidencePacks: EvidencePackRepository { EvidencePackRepository(session: session) }
    public var reviews: ReviewDecisionRepository { ReviewDecisionRepository(session: session) }
    public var audit: AuditLog { AuditLog(session: session) }
    public var retention: RetentionRepository { RetentionRepository(session: session) }
    public var statistics: StatisticsRepository { StatisticsRepository(session: session) }
}

/// An open database with its repositories.
public final class Database: Sendable {
    public let driver: any DatabaseDriver
    public let location: DatabaseLocation?

    public init(driver: any DatabaseDriver, location: DatabaseLocation? = nil) {
        self.driver = driver
        self.location = location
    }

    /// Opens the database at `location`. With `requireCurrentSchema`, refuses a database that
    /// `tower migrate` has not brought up to date (the error says so).
    public static func open(_ location: DatabaseLocation, poolSize: Int = 10, requireCurrentSchema: Bool = true,
        logger: Logger = Logger(label: "tower.storage")) async throws -> Database
    {
        let driver = try await location.open(poolSize: poolSize, logger: logger)
        let database = Database(driver: driver, location: location)
        if requireCurrentSchema {
            do { try await Migrator(driver: driver, logger: logger).requireCurrent() } catch {
                await driver.close()
                throw error
            }
        }
        return database
    }

    /// Opens the database, runs `body`, and closes the database on every path (also when
    /// `body` throws): short-lived commands use this so that no connection outlives them.
    public static func withOpen<T>(_ location: DatabaseLocation, poolSize: Int = 10, requireCurrentSchema: Bool = true,
        logger: Logger = Logger(label: "tower.storage"), _ body: (Database) async throws -> T) async throws -> T
    {
        let database = try await open(location, poolSize: poolSize, requireCurrentSchema: requireCurrentSchema, logger: logger)
        do {
            let result = try await body(database)
            await database.close()
            return result
        } catch {
            await database.close()
            throw error
        }
    }

    public var dialect: SQLDialect { driver.dialect }

    @discardableResult
    public func write<T: Sendable>(_ body: @Sendable (Store) async throws -> T) async throws -> T {
        try await driver.write { session in try await body(Store(session: session)) }
    }

    @discardableResult
    public func read<T: Sendable>(_ body: @Sendable (Store) async throws -> T) async throws -> T {
        try await driver.read { session in try await body(Store(session: session)) }
    }

    public func migrator(logger: Logger = Logger(label: "tower.migrate")) -> Migrator {
        Migrator(driver: driver, logger: logger)
    }

    public func close() async { await driver.close() }
}
