import CWOM
import Foundation
import Logging
import Synchronization
import TowerJSON

/// The embedded driver: one SQLite file in WAL mode with foreign keys on.
///
/// Writer discipline: every write transaction runs on the single writer connection, one at a
/// time, and starts with `BEGIN IMMEDIATE`, so a transaction never has to upgrade its lock and
/// `database is locked` cannot surface inside this process. Other processes on the same file
/// wait up to the busy timeout. Reads run on their own connections against WAL snapshots and
/// never wait for writers.
public final class SQLiteDriver: DatabaseDriver {
    public let dialect = SQLDialect.sqlite
    public let path: String
    private let writer: ConnectionPool<SQLiteConnection>
    private let readers: ConnectionPool<SQLiteConnection>
    private let checkpointer: SQLiteCheckpointer
    private let closed = ClosedFlag()
    private let inUse = Atomic<Int>(0)
    /// How long a connection waits for another process's lock on the file.
    private let busyTimeoutMilliseconds: Int

    public var sessionsInUse: Int { inUse.load(ordering: .relaxed) }

    /// The writer connection's thread (`SQLiteThread`).
    public var writeExecutor: (any TaskExecutor)? { writer.all.first?.thread }

    /// Statements sent to a connection's thread from another thread since the driver opened
    /// (`SQLiteThread`): the statements of transactions run inline and do not count. A test
    /// signal, and a figure for `tower bench`.
    public var statementHops: Int { (writer.all + readers.all).reduce(0) { $0 + $1.thread.statementHops } }

    /// Statements compiled on every connection since the driver opened: prepared once for its
    /// connection's cache, or again by SQLite inside a run (`SQLiteHandle.compilations`). A kept
    /// statement run again compiles nothing; a test signal.
    public var statementCompilations: Int { (writer.all + readers.all).reduce(0) { $0 + $1.compilations } }

    /// Opens (creating if needed) the database file at `path`. `checkpointPages`: the WAL's
    /// growth after which the checkpointer copies it into the database file (SQLite's automatic
    /// checkpoint runs at 1,000 pages; 4,000 pages of 4 KB is 16 MB, see `SQLiteCheckpointer`).
    /// `walLimitPages`: the WAL's size from which the writer finishes a checkpoint itself so
    /// that the WAL starts over; 16,000 pages is 64 MB.
    public static func open(path: String, readers readerCount: Int = 4, busyTimeoutMilliseconds: Int = 30_000,
        checkpointPages: Int = 4_000, walLimitPages: Int = 16_000,
        logger: Logger = Logger(label: "tower.sqlite")) async throws(StorageError) -> SQLiteDriver
    {
        let directory = URL(fileURLWithPath: path).deletingLastPathComponent()
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        } catch {
            throw StorageError(.configuration, "cannot create the folder for the SQLite database \(path): \(error)")
        }
        var opened: [SQLiteConnection] = []
        do throws(StorageError) {
            // 0: the writer, 1...readerCount: readers, then the checkpointer.
            for index in 0...readerCount + 1 {
                let connection = try await SQLiteConnection.open(
                    path: path, busyTimeoutMilliseconds: busyTimeoutMilliseconds, name: index == 0 ? "sqlite-writer" : index > readerCount ? "sqlite-checkpt" : "sqlite-reader")
                opened.append(connection)
                if index == 0 { try await connection.execute("PRAGMA journal_mode = WAL") }
                try await connection.execute("PRAGMA foreign_keys = ON")
                try await connection.execute("PRAGMA synchronous = NORMAL")
                try await connection.execute("PRAGMA temp_store = MEMORY")
            }
            let checkpointer = SQLiteCheckpointer(connection: opened[readerCount + 1], threshold: Int32(clamping: max(1, checkpointPages)),
                limit: Int32(clamping: max(1, walLimitPages)))
            try await opened[0].watchWAL(step: checkpointer.afterCommit, checkpointed: checkpointer.checkpointedByWriter)
            return SQLiteDriver(
                path: path, writer: [opened[0]], readers: Array(opened[1...readerCount]), checkpointer: checkpointer,
                busyTimeoutMilliseconds: busyTimeoutMilliseconds)
        } catch {
            for connection in opened { await connection.close() }
            throw StorageError(error.kind, "cannot open the SQLite database \(path): \(error.message)")
        }
    }

    private init(path: String, writer: [SQLiteConnection], readers: [SQLiteConnection], checkpointer: SQLiteCheckpointer,
        busyTimeoutMilliseconds: Int)
    {
        self.path = path
        self.busyTimeoutMilliseconds = busyTimeoutMilliseconds
        self.checkpointer = checkpointer
        self.writer = ConnectionPool(writer)
        self.readers = ConnectionPool(readers)
    }

    public func write<T: Sendable>(_ body: @Sendable (any DatabaseSession) async throws -> T) async throws -> T {
        try await transaction(on: writer, begin: "BEGIN IMMEDIATE", body)
    }

    /// A write that waits for another process's write lock as long as it takes (see
    /// `DatabaseDriver.writeSchema`): the writer's busy timeout is lifted for this transaction
    /// and set back after it.
    public func writeSchema<T: Sendable>(_ body: @Sendable (any DatabaseSession) async throws -> T) async throws -> T {
        try await transaction(on: writer, begin: "BEGIN IMMEDIATE", busyTimeout: Int(Int32.max), body)
    }

    public func read<T: Sendable>(_ body: @Sendable (any DatabaseSession) async throws -> T) async throws -> T {
        try await transaction(on: readers, begin: "BEGIN", body)
    }

    public func withSession<T: Sendable>(_ body: @Sendable (any DatabaseSession) async throws -> T) async throws -> T {
        guard !closed.value else { throw StorageError(.unreachable, "the SQLite database \(path) is closed") }
        let connection = await writer.acquire()
        do {
            let result = try await withTaskExecutorPreference(connection.thread) {
                try await body(SQLiteSession(connection: connection))
            }
            await writer.release(connection)
            return result
        } catch {
            await writer.release(connection)
            throw error
        }
    }

    /// The transaction's body runs with the connection's thread as its executor, so its
    /// statements run there inline: one thread hop in, one out (`SQLiteThread`).
    /// `busyTimeout`: milliseconds this transaction waits for another process's lock, instead of
    /// the driver's.
    private func transaction<T: Sendable>(on pool: ConnectionPool<SQLiteConnection>, begin: String, busyTimeout: Int? = nil,
        _ body: @Sendable (any DatabaseSession) async throws -> T) async throws -> T
    {
        guard !closed.value else { throw StorageError(.unreachable, "the SQLite database \(path) is closed") }
        let connection = await pool.acquire()
        inUse.add(1, ordering: .relaxed)
        defer { inUse.subtract(1, ordering: .relaxed) }
        let session = SQLiteSession(connection: connection)
        let usual = busyTimeoutMilliseconds
        do {
            let result = try await withTaskExecutorPreference(connection.thread) {
                if let busyTimeout { try await session.query("PRAGMA busy_timeout = \(busyTimeout)", []) }
                let outcome: Result<T, any Error>
                do {
                    try await session.query(begin, [])
                    do {
                        let result = try await body(session)
                        try await session.query("COMMIT", [])
                        outcome = .success(result)
                    } catch {
                        _ = try? await session.query("ROLLBACK", [])
                        throw error
                    }
                } catch {
                    outcome = .failure(error)
                }
                if busyTimeout != nil { try await session.query("PRAGMA busy_timeout = \(usual)", []) }
                return try outcome.get()
            }
            await pool.release(connection)
            return result
        } catch {
            await pool.release(connection)
            throw error
        }
    }

    /// Runs the writer connection's thread on `cpus` from now on (`TOWER_SQLITE_WRITER_CPU`,
    /// docs/operations.md); returns the CPUs it may run on afterwards, as the thread itself reads
    /// them. Every write transaction and the commits' WAL writes run there.
    @discardableResult
    public func placeWriter(on cpus: CPUSet) async throws(StorageError) -> CPUSet {
        guard let connection = writer.all.first else { throw StorageError(.configuration, "the SQLite database \(path) has no writer") }
        return try await connection.thread.perform { () throws(StorageError) -> CPUSet in
            try cpus.applyToCurrentThread()
            return try CPUSet.ofCurrentThread()
        }
    }

    public func close() async {
        guard closed.set() else { return }
        // Wait for work in progress: take every connection before closing it.
        for _ in writer.all { _ = await writer.acquire() }
        for _ in readers.all { _ = await readers.acquire() }
        await checkpointer.settle()
        await checkpointer.checkpointAtClose()
        for connection in writer.all + readers.all + [checkpointer.connection] { await connection.close() }
    }

    /// WAL checkpoints run by the checkpointer so far, after those already asked for have run
    /// (`SQLiteCheckpointer`). A test signal.
    public func checkpointsCompleted() async -> Int {
        await checkpointer.settle()
        return checkpointer.completed
    }

    /// Checkpoints the writer finished itself so that the WAL could start over. A test signal.
    public var checkpointsFinishedByWriter: Int { checkpointer.finishedByWriter }

    /// The WAL's size in pages after this driver's last commit (0 before its first). A test signal.
    public var walPagesAfterLastCommit: Int { Int(checkpointer.lastPages) }

    /// Runs `body` while the checkpointer's thread is kept busy, as a checkpointer that cannot
    /// keep up would be; checkpoints handed to it wait until `body` returns. A test signal.
    public func whileCheckpointerIsHeld<T>(_ body: () async throws -> T) async rethrows -> T {
        let release = DispatchSemaphore(value: 0)
        checkpointer.connection.thread.submit { release.wait() }
        defer { release.signal() }
        return try await body()
    }
}

/// One SQLite handle and the thread that uses it.
final class SQLiteConnection: Sendable {
    let thread: SQLiteThread
    private let handle: SQLiteHandle

    private init(thread: SQLiteThread, handle: SQLiteHandle) {
        self.thread = thread
        self.handle = handle
    }

    static func open(path: String, busyTimeoutMilliseconds: Int, name: String) async throws(StorageError) -> SQLiteConnection {
        let thread = SQLiteThread(name: name)
        do throws(StorageError) {
            let handle = try await thread.perform { () throws(StorageError) in
                try SQLiteHandle(path: path, busyTimeoutMilliseconds: busyTimeoutMilliseconds)
            }
            return SQLiteConnection(thread: thread, handle: handle)
        } catch {
            thread.stop()
            throw error
        }
    }

    var compilations: Int { handle.compilations }

    func query(_ sql: String, _ binds: [SQLValue]) async throws(StorageError) -> [SQLRow] {
        let handle = handle
        return try await thread.perform { () throws(StorageError) in try handle.query(sql, binds) }
    }

    func execute(_ sql: String) async throws(StorageError) {
        _ = try await query(sql, [])
    }

    /// Runs multi-row inserts, each bound from its rows (`SQLiteHandle.insert`).
    func insert(_ chunks: [InsertChunk]) async throws(StorageError) {
        let handle = handle
        try await thread.perform { () throws(StorageError) in
            for chunk in chunks { try handle.insert(chunk) }
        }
    }

    /// See `SQLiteHandle.watchWAL`; set up on the connection's thread.
    func watchWAL(step: @escaping @Sendable (Int32) -> SQLiteHandle.WALStep, checkpointed: @escaping @Sendable (SQLiteHandle.WALCheckpoint) -> Void)
        async throws(StorageError)
    {
        let handle = handle
        try await thread.perform { handle.watchWAL(step: step, checkpointed: checkpointed) }
    }

    /// Runs `work` with the handle on the connection's thread later, ignoring its errors; then
    /// `done`.
    func send(_ work: @escaping @Sendable (SQLiteHandle) throws(StorageError) -> Void, then done: @escaping @Sendable () -> Void) {
        let handle = handle
        thread.submit {
            try? work(handle)
            done()
        }
    }

    /// Closes the handle on its thread, then ends the thread.
    func close() async {
        let handle = handle
        _ = try? await thread.perform { handle.close() }
        thread.stop()
    }
}

/// Checkpoints the WAL on a connection of its own, so that no commit pays for copying it, and
/// has the writer finish one at the WAL's limit so that the WAL starts over instead of growing.
///
/// SQLite's automatic checkpoint runs inside the commit that takes the WAL past 1,000 pages: that
/// commit copies the WAL into the database file and syncs both while the writer, and every
/// transaction queued behind it, waits. On this project's 2-core VM that was the slowest 1–3 % of
/// enqueue-to-start on an idle worker (p99 32–40 ms against a p50 of 3–5 ms). Here the writer's
/// WAL hook (`SQLiteHandle.watchWAL`) only hands a `PASSIVE` checkpoint to this connection's
/// thread; a passive checkpoint never blocks the writer or readers (it copies what no reader
/// still needs, and the next one continues), and at most one is queued at a time.
///
/// A checkpoint copies the newest version of every page the WAL holds, and an enqueue rewrites
/// the same few pages (the last leaf of each table and of each index): the less often a
/// checkpoint runs, the fewer times each of them is copied and synced (the checkpointer was 8 %
/// of the machine under `wrk` against intake). Handing one off every 4,000 pages instead of
/// SQLite's 1,000 gave that `wrk` +18 % (six alternating pairs, docs/benchmarks.md), with no
/// slower requests: the writer does not wait for it.
///
/// A checkpoint alone does not shrink the WAL: SQLite writes it from its start again only when a
/// write transaction begins with every frame already copied. Under a steady stream of commits
/// the writer appends while the checkpointer copies, so that moment never came and the WAL grew
/// without end (1.8 GB after 15 s of `wrk` against intake, 128 MB/s: every commit extended the
/// file, and the checkpointer ran and synced nonstop over an ever longer WAL, an eighth of the
/// machine). So once the WAL has reached `limit` pages the writer runs one `PASSIVE` checkpoint
/// itself from the same hook (SQLite's automatic checkpoint does that at every threshold): it
/// copies only what the checkpointer has not, and the writer's next transaction starts the WAL
/// over, unless a reader still holds an older snapshot (then again after the next pass or
/// `threshold` more pages). If another process's checkpoint is copying just then, the writer's
/// answers "busy" at once and the next commit tries again.
///
/// That checkpoint syncs the WAL and the database file while the writer, and every request
/// behind it, waits, and a sync takes as long as the unsynced data it has to write: 20–35 ms
/// every half second under `wrk` on this VM when the writer finished as soon as the WAL reached
/// the limit (up to 4,000 pages of WAL since the checkpointer's last sync, and every page the
/// checkpointer had copied, which a checkpoint that does not copy everything leaves unsynced).
/// So each pass of the checkpointer ends by syncing both files itself (`SQLiteHandle.syncFiles`,
/// off the writer's thread), the commit that reaches the limit hands a pass off, and the writer
/// finishes in the first commit after a pass that ended past the limit: 3–4 ms of syncs in the
/// commit instead (the slowest `wrk` requests, p99, 16–19 ms → 7–10 ms). Should no pass end (a
/// disk slower than the writer), the writer finishes anyway once the WAL has grown `threshold`
/// pages past the limit. The limit stays well above the threshold: the WAL starts over less
/// often, and each start costs the commit that does it one more sync (of the WAL's new header).
/// Below the limit a checkpoint is handed off once per `threshold` pages of growth, and while
/// one runs the first commit after it asks for the next, so that the checkpointer keeps up and
/// what the writer copies stays short.
final class SQLiteCheckpointer: Sendable {
    let connection: SQLiteConnection
    /// WAL growth, in pages, after which a checkpoint is handed off.
    let threshold: Int32
    /// WAL size, in pages, from which the writer finishes a checkpoint itself.
    let limit: Int32
    private let pending = Atomic<Bool>(false)
    private let done = Atomic<Int>(0)
    private let finished = Atomic<Int>(0)
    /// Touched by the writer's WAL hook only; a lock that is never contended.
    private let marks = Mutex(Marks(lastPages: 0, nextHandOff: 0, nextFinish: 0))

    private struct Marks {
        var lastPages: Int32
        var nextHandOff: Int32
        var nextFinish: Int32
        /// The checkpointer's passes completed when the WAL last reached the limit, or when the
        /// writer last finished one past it; nil below the limit.
        var passesAtLimit: Int?
    }

    init(connection: SQLiteConnection, threshold: Int32, limit: Int32) {
        self.connection = connection
        self.threshold = threshold
        self.limit = max(limit, threshold)
        marks.withLock { $0 = Marks(lastPages: 0, nextHandOff: threshold, nextFinish: self.limit) }
    }

    var completed: Int { done.load(ordering: .relaxed) }
    var lastPages: Int32 { marks.withLock { $0.lastPages } }
    var finishedByWriter: Int { finished.load(ordering: .relaxed) }

    /// Called from inside a commit on the writer's thread.
    @Sendable func afterCommit(walPages: Int32) -> SQLiteHandle.WALStep {
        marks.withLock { marks in
            if walPages < marks.lastPages {
                // The WAL started over.
                marks.nextHandOff = threshold
                marks.nextFinish = limit
                marks.passesAtLimit = nil
            }
            marks.lastPages = walPages
            if walPages >= limit {
                // Past the limit the writer finishes a checkpoint so that the WAL starts over. It
                // waits for that checkpoint's syncs, which take as long as there is unsynced data
                // to write: up to 4,000 pages of WAL and every page copied since the database
                // file was last synced, 20–35 ms under `wrk` on this VM, every half second,
                // while every request waited. So it waits for a pass of the checkpointer that
                // ends after the limit (which copies nearly everything and syncs both files,
                // `SQLiteHandle.syncFiles`) and finishes in the first commit after it, when little
                // is left to copy or write. Should no pass end (a slow disk), it finishes anyway
                // once the WAL has grown `threshold` pages past the limit, as before.
                let passes = done.load(ordering: .acquiring)
                if marks.passesAtLimit == nil {
                    // The commit that reached the limit: a free checkpointer is handed a pass now.
                    marks.passesAtLimit = passes
                    marks.nextFinish = walPages &+ threshold
                    marks.nextHandOff = walPages
                }
                let since = marks.passesAtLimit ?? passes
                let checkpointerIdle = !pending.load(ordering: .acquiring)
                if (checkpointerIdle && passes > since) || walPages >= marks.nextFinish {
                    // Again only after another pass, or as much growth, should a reader's
                    // snapshot keep this one from copying everything.
                    marks.passesAtLimit = passes
                    marks.nextFinish = walPages &+ threshold
                    return .checkpointHere
                }
            }
            // While one runs, the next is asked for by the first commit after it: the
            // checkpointer keeps up, and what the writer copies when it finishes one stays short.
            guard walPages >= marks.nextHandOff, handOff() else { return .nothing }
            marks.nextHandOff = walPages &+ threshold
            return .nothing
        }
    }

    /// Hands a `PASSIVE` checkpoint to the checkpointer's thread; false when one is already
    /// asked for and has not run yet.
    private func handOff() -> Bool {
        guard pending.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged else {
            return false
        }
        connection.send({ handle throws(StorageError) in
            _ = try handle.query("PRAGMA wal_checkpoint(PASSIVE)", [])
            try handle.syncFiles()
        }) { [self] in
            done.add(1, ordering: .releasing)
            pending.store(false, ordering: .releasing)
        }
        return true
    }

    /// Called from inside a commit on the writer's thread, after its own checkpoint.
    @Sendable func checkpointedByWriter(_ outcome: SQLiteHandle.WALCheckpoint) {
        switch outcome {
        case .done: finished.add(1, ordering: .relaxed)
        // The checkpointer's (or another process's) is running: try again at the next commit.
        case .busy: marks.withLock { $0.nextFinish = $0.lastPages }
        // An I/O error, say: the next try comes after `threshold` more pages.
        case .failed: break
        }
    }

    /// Copies the whole WAL into the database file when the driver closes, so that the next write
    /// from any other process starts the WAL over instead of appending to it.
    ///
    /// SQLite does this itself only when the last connection to the file closes. A `tower
    /// worker` stopping beside a server (or `tower bench` with its worker processes) is not the
    /// last, and its commits stayed in the WAL: after a drain by two worker processes the WAL was
    /// 27,000 pages, past the limit, and could not start over while the server's samples kept
    /// appending to it, so the server's writer finished the limit's checkpoint itself twice
    /// inside idle commits (13 and 23 ms, the slowest idle enqueue-to-start). Another process's
    /// checkpoint running answers busy at once; then this one runs after it, so that what that
    /// one did not copy (this process's last commits, say) is copied too. Bounded: a second at
    /// most, and never an error (the data is safe in the WAL either way). Only a driver that wrote:
    /// a `tower tasks` beside a server would otherwise copy the server's WAL as it exits.
    func checkpointAtClose() async {
        guard lastPages > 0 else { return }
        for _ in 0..<40 {
            guard let row = try? await connection.query("PRAGMA wal_checkpoint(PASSIVE)", []).first,
                (try? row.optionalInt("busy")) == 1
            else { return }
            do { try await Task.sleep(for: .milliseconds(25)) } catch { return }
        }
    }

    /// Returns after every checkpoint asked for so far has run (the thread runs jobs in order).
    func settle() async {
        _ = try? await connection.thread.perform { () throws(StorageError) in () }
    }
}

/// A flag set once, readable from any thread.
final class ClosedFlag: Sendable {
    private let state = Mutex(false)
    var value: Bool { state.withLock { $0 } }
    /// Sets the flag; false when it was already set.
    func set() -> Bool { state.withLock { old in defer { old = true }; return !old } }
}

struct SQLiteSession: DatabaseSession {
    let connection: SQLiteConnection
    var dialect: SQLDialect { .sqlite }

    @discardableResult
    func query(_ sql: String, _ binds: [SQLValue]) async throws(StorageError) -> [SQLRow] {
        try await connection.query(sql, binds)  // refused and bound as text where they are bound (`SQLiteHandle.bindAll`)
    }
}

extension SQLiteSession: ChunkWriting {
    func write(_ chunks: [InsertChunk]) async throws(StorageError) { try await connection.insert(chunks) }
}
