import CWOM
import PostgresNIO
import Synchronization

/// Which statements PostgreSQL keeps parsed and planned, per driver.
///
/// Every statement used to go out as an unnamed statement, which the server parses, analyses and
/// plans on every call: a fifth of its time in a burn-down went to planning alone. pgJDBC's answer
/// is kept here: a statement text seen `threshold` times becomes a named prepared statement on each
/// connection that runs it (PostgresNIO prepares it on a connection's first use and sends only
/// Bind/Execute afterwards). The hot statements (claim, completion, intake) have a fixed text per
/// batch size, so a few hundred texts cover them; one-off statements (migrations, reports) stay
/// unnamed because they are not seen often enough.
///
/// Why a name can change: PostgresNIO remembers a failed preparation for the connection's lifetime
/// and fails every later use of that name with the same error (for instance a statement first sent
/// inside a transaction that had already failed, or a plan made stale by `tower migrate` adding a
/// column: "cached plan must not change result type"). So an error on a prepared statement gives
/// its text a fresh name, prepared anew on next use; three errors in a row and the text goes back
/// to unnamed statements for good.
///
/// `prepare_threshold=0` in `DATABASE_URL` turns this off (what PgBouncer in transaction pooling
/// before 1.21 needs: a named statement lives on one server connection).
final class StatementCatalog: Sendable {
    struct Entry {
        var uses = 0
        var name: String?
        var failuresInARow = 0
        var unpreparable = false
    }

    /// Uses of a text before it is prepared; 0 never prepares.
    let threshold: Int
    /// Texts prepared at most (each is prepared once per connection that runs it; the server keeps
    /// each plan until the connection closes). Texts past the limit stay unnamed.
    let capacity: Int
    /// Texts counted at most; the counts restart when full (unique texts never reach the threshold).
    let countedTexts: Int
    /// Statements with more values than this stay unnamed: the server keeps a prepared statement's
    /// parse tree and plan per connection, about 350 KB for a 64-row insert of 1,280 values
    /// (`pg_backend_memory_contexts`), while planning is a small share of what such a batch costs.
    /// The hot statements of small batches, where planning weighs most, are under it: an intake
    /// of up to 7 enqueues (165 values each; 4 is what `wrk` with 4 connections makes, and
    /// preparing them took `POST /tasks/enqueue` on PostgreSQL from 461 to 495 req/s on average
    /// over five alternating runs, when the limit of 256 left every batch of 2 or more unnamed),
    /// a claim of up to 18 tasks (513 values for 8), and a worker's completion of up to 8 tasks
    /// (1,072 values with their output and trace-folder Artifacts and evidence packs; 8 is a
    /// `tower worker`'s slots on 8 cores). With a limit of 700, a burn-down's completions of 6 to
    /// 8 tasks were parsed and planned at every call.
    let maximumBinds = 1_200
    /// `failing`: entries whose last prepared run failed, so that a success looks its text up
    /// (hashing the whole text again) only when one may need its count reset.
    private let state = Mutex<(entries: [String: Entry], prepared: Int, nextName: Int, failing: Int)>(([:], 0, 0, 0))

    init(threshold: Int, capacity: Int = 400, countedTexts: Int = 4_000) {
        self.threshold = threshold
        self.capacity = capacity
        self.countedTexts = countedTexts
    }

    /// The name to run `sql` (with `binds` values) under, or nil to send it unnamed this time.
    func name(for sql: String, binds: Int) -> String? {
        guard threshold > 0, binds <= maximumBinds else { return nil }
        return state.withLock { state in
            if var entry = state.entries[sql] {
                if let name = entry.name { return name }
                guard !entry.unpreparable else { return nil }
                entry.uses += 1
                if entry.uses >= threshold && state.prepared < capacity {
                    state.nextName += 1
                    state.prepared += 1
                    entry.name = "tower_\(state.nextName)"
                }
                state.entries[sql] = entry
                return entry.name
            }
            if state.entries.count >= countedTexts {
                state.entries = state.entries.filter { $0.value.name != nil || $0.value.unpreparable }
            }
            var entry = Entry(uses: 1)
            if threshold <= 1 && state.prepared < capacity {
                state.nextName += 1
                state.prepared += 1
                entry.name = "tower_\(state.nextName)"
            }
            state.entries[sql] = entry
            return entry.name
        }
    }

    /// A prepared run of `sql` succeeded.
    func succeeded(_ sql: String) {
        state.withLock { state in
            guard state.failing > 0, let failures = state.entries[sql]?.failuresInARow, failures > 0 else { return }
            state.entries[sql]?.failuresInARow = 0
            state.failing -= 1
        }
    }

    /// A prepared run of `sql` under `name` failed: the text gets a fresh name (see the type's
    /// comment), or none after three failures in a row.
    func failed(_ sql: String, name: String) {
        state.withLock { state in
            guard var entry = state.entries[sql], entry.name == name else { return }
            if entry.failuresInARow == 0 { state.failing += 1 }
            entry.failuresInARow += 1
            if entry.failuresInARow >= 3 {
                entry.name = nil
                entry.unpreparable = true
                state.prepared -= 1
                state.failing -= 1  // never run prepared again, so never succeeds
            } else {
                state.nextName += 1
                entry.name = "tower_\(state.nextName)"
            }
            state.entries[sql] = entry
        }
    }

    /// Texts prepared now (for tests and the benchmark's report).
    var preparedCount: Int { state.withLock { $0.prepared } }
}

/// A statement whose name and text are chosen at run time. PostgresNIO's prepared statements are
/// types with a static name and text (one type per statement); ours are texts built per batch
/// size, so the type reads both from a task-local value set around the one call that uses them
/// (`PostgresConnection.execute` reads them before its first suspension).
struct NamedStatement: PostgresPreparedStatement {
    @TaskLocal static var current: (name: String, sql: String) = ("", "")

    static var name: String { current.name }
    static var sql: String { current.sql }

    let bindings: PostgresBindings

    func makeBindings() throws -> PostgresBindings { bindings }
    func decodeRow(_ row: PostgresRow) throws -> PostgresRow { row }
}

/// A value sent in text form with a declared type (or none, `.null`, for the server to infer).
/// Prepared statements send every value as text: the parameter types are fixed when a connection
/// first prepares the statement (from that call's values; a NULL leaves the type to the server),
/// and a later call's binary integer would not match a parameter the server typed `int4`, while
/// text is parsed into whatever type the parameter has.
struct TextBind: PostgresDynamicTypeEncodable {
    /// The text, kept as it came: a time is formatted and JSON copied straight into the message.
    enum Text {
        case string(String)
        /// UTF-8 bytes (a JSON value's compact text).
        case bytes([UInt8])
        /// Sent as `2026-11-24 22:11:23.094351+00`.
        case timestamp(Timestamp)
    }

    let text: Text
    let psqlType: PostgresDataType
    var psqlFormat: PostgresFormat { .text }

    init(_ text: Text, psqlType: PostgresDataType) {
        self.text = text
        self.psqlType = psqlType
    }

    func encode<JSONEncoder: PostgresJSONEncoder>(into byteBuffer: inout ByteBuffer,
        context: PostgresEncodingContext<JSONEncoder>)
    {
        switch text {
        case .string(let s): byteBuffer.writeString(s)
        case .bytes(let b): byteBuffer.writeBytes(b)
        case .timestamp(let t): _ = t.withSQLiteText(utcOffset: true) { byteBuffer.writeBytes($0) }
        }
    }
}
