/// The planner's statistics after a bulk load: `tower backfill`, and the backlog `tower bench`
/// enqueues before a burn-down.
///
/// Why: PostgreSQL plans a table it has no statistics for from its size on disk and a guessed
/// row width, and takes a freshly filled table for a few pages. The workers' prepared claims then
/// read the Issues' link tables from end to end on every claim (measured: a quarter of the
/// server's time in a burn-down of 5,000 tasks), until autovacuum analyzes the tables (it wakes
/// once a minute) and the plans are made again. PostgreSQL's documentation asks for `ANALYZE`
/// after a bulk load; this is that pass.
public struct StatisticsRepository: Sendable {
    let session: any DatabaseSession

    /// The layout's tables in the current schema, as a condition on `pg_class`.
    static let layoutTables = #"relnamespace = CAST(current_schema() AS regnamespace) AND relkind = 'r' AND (relname IN ('tasks', 'audit_log') OR relname LIKE 'cwom\_%')"#

    /// PostgreSQL: `ANALYZE` of every table of the layout (`tasks`, `audit_log`, `cwom_*`) in the
    /// current schema that holds 50 rows or more (the rows after which autovacuum analyzes a table
    /// it never analyzed); other tables sharing the schema are not ours to touch. Tables left empty
    /// (Runs and Artifacts before any work) are left without statistics, as autovacuum leaves
    /// them: statistics that say "empty" would have the planner read them by sequential scans
    /// once they fill. A table the user may not analyze is skipped with a warning from the server.
    /// Returns the schema's tables that have statistics afterwards.
    ///
    /// SQLite: nothing. Its planner works without statistics, and the schema's indexes are chosen
    /// so that it takes them (`QueueContractTests.claimUsesTheQueueIndex`); an `ANALYZE` would
    /// write `sqlite_stat1` and change those plans.
    public func refreshAfterBulkLoad() async throws(StorageError) -> [String] {
        guard session.dialect == .postgres else { return [] }
        // The table names come from the catalog and are quoted by `format('%I')`.
        try await session.query(
            """
            DO $$
            DECLARE
                t text;
                n int;
            BEGIN
                FOR t IN
                    SELECT relname FROM pg_class
                    WHERE \(Self.layoutTables)
                    ORDER BY relname
                LOOP
                    EXECUTE format('SELECT count(*) FROM (SELECT 1 FROM %I LIMIT 50) AS sample', t) INTO n;
                    IF n >= 50 THEN
                        EXECUTE format('ANALYZE %I', t);
                    END IF;
                END LOOP;
            END
            $$
            """, [])
        // `reltuples` is -1 until a table is first analyzed (or vacuumed); pg_class, unlike the
        // statistics views, shows this transaction's own change.
        return try await session.query(
            """
            SELECT relname FROM pg_class WHERE \(Self.layoutTables) AND reltuples >= 0 ORDER BY relname
            """, []
        ).map { row throws(StorageError) in try row.string("relname") }
    }
}
