import Foundation
import VaporCSQLite

/// A VFS that writes each commit's WAL frames in a few large writes instead of two per frame.
///
/// SQLite writes a WAL frame as two calls, its 24-byte header and then its page, and a commit of
/// one enqueue is about a hundred frames: under `wrk` on intake those 200 `pwrite`s per commit
/// were 11 % of the machine's CPU. This VFS is SQLite's own (`unix`) with one change for WAL
/// files: a write that continues the previous one is gathered in memory, and the gathered bytes
/// are written (124 KB per call, `unix`'s most) before anything else touches the file (a read, a
/// sync, a truncate, its size, a non-contiguous write, closing it) and at the end of every commit.
///
/// The end of a commit is the page that follows a frame header marked as a commit (bytes 4–7,
/// the database size after the commit, non-zero). That write returns only once everything
/// gathered is written, and with its error if the write fails, so SQLite publishes a commit in the
/// WAL index only after its frames are in the file, as before, and a failed write fails the
/// commit. Other connections and processes read frames only up to the published index, so they
/// never look at bytes still gathered; a crash loses only frames no index ever pointed at. A
/// commit header that does not continue the gathered bytes (a one-frame commit, or SQLite
/// rewriting the checksums of frames it overwrote) is written through at once.
///
/// Non-WAL files (the database, temporary files) are opened by `unix` itself into the same
/// space and use its methods directly.
enum GatheredWAL {
    /// The name connections open their database with.
    static let name = "tower-gathered-wal"

    /// Registers the VFS once per process; false if SQLite has no `unix` VFS to build on.
    static let registered: Bool = {
        guard let unix = sqlite_nio_sqlite3_vfs_find("unix") else { return false }
        let vfs = UnsafeMutablePointer<sqlite3_vfs>.allocate(capacity: 1)
        vfs.initialize(to: unix.pointee)
        vfs.pointee.pNext = nil
        vfs.pointee.zName = UnsafePointer(strdup(name))  // kept for the process's life, as the VFS is
        vfs.pointee.szOsFile = Int32(headerSize) + unix.pointee.szOsFile
        vfs.pointee.xOpen = { _, path, file, flags, outFlags in
            guard let file, let unix = sqlite_nio_sqlite3_vfs_find("unix"), let open = unix.pointee.xOpen else { return SQLITE_CANTOPEN }
            // Not a WAL file: `unix` opens it in place, with its own methods.
            guard flags & SQLITE_OPEN_WAL != 0 else { return open(unix, path, file, flags, outFlags) }
            file.pointee.pMethods = nil
            let code = open(unix, path, inner(file), flags, outFlags)
            guard code == SQLITE_OK else { return code }
            slot(file).storeBytes(of: Unmanaged.passRetained(Gathered()).toOpaque(), as: UnsafeMutableRawPointer.self)
            file.pointee.pMethods = UnsafePointer(methods)
            return SQLITE_OK
        }
        return sqlite_nio_sqlite3_vfs_register(vfs, 0) == SQLITE_OK
    }()

    /// Ahead of `unix`'s file: the methods pointer SQLite reads, and the gathered bytes.
    private static let headerSize = 2 * MemoryLayout<UnsafeMutableRawPointer>.stride

    /// What a WAL file gathers; used only on its connection's thread.
    private final class Gathered {
        static let capacity = 1 << 20
        var bytes: UnsafeMutableRawPointer?
        var start: Int64 = 0
        var count = 0
        /// The last write was a commit's frame header: the next write ends the commit.
        var commitHeaderWritten = false

        deinit { bytes?.deallocate() }

        var end: Int64 { start + Int64(count) }

        /// `unix` writes at most 128 KB - 1 per call (a longer write comes back short, as
        /// `SQLITE_FULL`), so the gathered bytes go in pieces of 124 KB.
        static let piece = 124 * 1024

        func flush(_ file: UnsafeMutablePointer<sqlite3_file>) -> Int32 {
            guard count > 0, let bytes else { return SQLITE_OK }
            let inner = GatheredWAL.inner(file)
            guard let write = inner.pointee.pMethods.pointee.xWrite else { return SQLITE_IOERR }
            let total = count
            count = 0
            var done = 0
            while done < total {
                let size = min(Self.piece, total - done)
                let code = write(inner, bytes + done, Int32(size), start + Int64(done))
                guard code == SQLITE_OK else { return code }
                done += size
            }
            return SQLITE_OK
        }

        func append(_ data: UnsafeRawPointer, _ amount: Int, at offset: Int64) {
            let bytes = self.bytes ?? UnsafeMutableRawPointer.allocate(byteCount: Self.capacity, alignment: 16)
            self.bytes = bytes
            if count == 0 { start = offset }
            (bytes + count).copyMemory(from: data, byteCount: amount)
            count += amount
        }
    }

    private static func inner(_ file: UnsafeMutablePointer<sqlite3_file>) -> UnsafeMutablePointer<sqlite3_file> {
        (UnsafeMutableRawPointer(file) + headerSize).assumingMemoryBound(to: sqlite3_file.self)
    }

    /// Where a WAL file keeps its `Gathered` (retained while the file is open).
    private static func slot(_ file: UnsafeMutablePointer<sqlite3_file>) -> UnsafeMutableRawPointer {
        UnsafeMutableRawPointer(file) + MemoryLayout<UnsafeMutableRawPointer>.stride
    }

    /// Runs `body` with the file's `Gathered`, borrowed without a retain and release: the slot
    /// holds a reference until `xClose`, and SQLite calls a file's methods one at a time. With a
    /// retained copy, the two hundred calls of a commit (two per WAL frame) were 0.9 % of
    /// `tower api`'s samples under `wrk` on SQLite.
    private static func withGathered<T>(_ file: UnsafeMutablePointer<sqlite3_file>, _ body: (Gathered) -> T) -> T {
        Unmanaged<Gathered>.fromOpaque(slot(file).load(as: UnsafeMutableRawPointer.self))._withUnsafeGuaranteedRef(body)
    }

    /// `unix`'s method `method` of the file under `file`, after writing what is gathered.
    private static func flushed<T>(_ file: UnsafeMutablePointer<sqlite3_file>?, or failure: T,
        _ call: (UnsafeMutablePointer<sqlite3_file>, sqlite3_io_methods) -> T?) -> T
    {
        guard let file else { return failure }
        let code = withGathered(file) { $0.flush(file) }
        guard code == SQLITE_OK else { return (code as? T) ?? failure }
        return call(inner(file), inner(file).pointee.pMethods.pointee) ?? failure
    }

    private static func write(_ file: UnsafeMutablePointer<sqlite3_file>?, _ data: UnsafeRawPointer?, _ amount: Int32, _ offset: Int64) -> Int32 {
        guard let file, let data else { return SQLITE_IOERR }
        return withGathered(file) { gathered in write(file, gathered, data, amount, offset) }
    }

    private static func write(_ file: UnsafeMutablePointer<sqlite3_file>, _ gathered: Gathered, _ data: UnsafeRawPointer, _ amount: Int32, _ offset: Int64) -> Int32 {
        let endsCommit = gathered.commitHeaderWritten
        let header = amount == 24
        let commitHeader = header && (4..<8).contains(where: { data.load(fromByteOffset: $0, as: UInt8.self) != 0 })
        gathered.commitHeaderWritten = commitHeader
        if gathered.count > 0 && (offset != gathered.end || gathered.count + Int(amount) > Gathered.capacity) {
            let code = gathered.flush(file)
            guard code == SQLITE_OK else { return code }
        }
        if (commitHeader && gathered.count == 0) || Int(amount) > Gathered.capacity {
            return inner(file).pointee.pMethods.pointee.xWrite?(inner(file), data, amount, offset) ?? SQLITE_IOERR
        }
        gathered.append(data, Int(amount), at: offset)
        return endsCommit && !header ? gathered.flush(file) : SQLITE_OK
    }

    /// Written once, then only read (by SQLite, from any connection's thread).
    nonisolated(unsafe) private static let methods: UnsafeMutablePointer<sqlite3_io_methods> = {
        let methods = UnsafeMutablePointer<sqlite3_io_methods>.allocate(capacity: 1)
        methods.initialize(to: sqlite3_io_methods())
        methods.pointee.iVersion = 3
        methods.pointee.xClose = { file in
            guard let file else { return SQLITE_OK }
            let flushed = withGathered(file) { $0.flush(file) }
            Unmanaged<Gathered>.fromOpaque(slot(file).load(as: UnsafeMutableRawPointer.self)).release()
            let closed = inner(file).pointee.pMethods.pointee.xClose?(inner(file)) ?? SQLITE_OK
            return flushed != SQLITE_OK ? flushed : closed
        }
        methods.pointee.xRead = { file, buffer, amount, offset in flushed(file, or: SQLITE_IOERR) { $1.xRead?($0, buffer, amount, offset) } }
        methods.pointee.xWrite = { file, data, amount, offset in write(file, data, amount, offset) }
        methods.pointee.xTruncate = { file, size in flushed(file, or: SQLITE_IOERR) { $1.xTruncate?($0, size) } }
        methods.pointee.xSync = { file, flags in flushed(file, or: SQLITE_IOERR) { $1.xSync?($0, flags) } }
        methods.pointee.xFileSize = { file, size in flushed(file, or: SQLITE_IOERR) { $1.xFileSize?($0, size) } }
        methods.pointee.xLock = { file, lock in flushed(file, or: SQLITE_IOERR) { $1.xLock?($0, lock) } }
        methods.pointee.xUnlock = { file, lock in flushed(file, or: SQLITE_IOERR) { $1.xUnlock?($0, lock) } }
        methods.pointee.xCheckReservedLock = { file, out in flushed(file, or: SQLITE_IOERR) { $1.xCheckReservedLock?($0, out) } }
        methods.pointee.xFileControl = { file, op, argument in flushed(file, or: SQLITE_NOTFOUND) { $1.xFileControl?($0, op, argument) } }
        methods.pointee.xSectorSize = { file in file.flatMap { inner($0).pointee.pMethods.pointee.xSectorSize?(inner($0)) } ?? 4096 }
        methods.pointee.xDeviceCharacteristics = { file in
            file.flatMap { inner($0).pointee.pMethods.pointee.xDeviceCharacteristics?(inner($0)) } ?? 0
        }
        methods.pointee.xShmMap = { file, page, size, extend, out in flushed(file, or: SQLITE_IOERR) { $1.xShmMap?($0, page, size, extend, out) } }
        methods.pointee.xShmLock = { file, offset, count, flags in flushed(file, or: SQLITE_IOERR) { $1.xShmLock?($0, offset, count, flags) } }
        methods.pointee.xShmBarrier = { file in flushed(file, or: ()) { $1.xShmBarrier?($0) } }
        methods.pointee.xShmUnmap = { file, delete in flushed(file, or: SQLITE_IOERR) { $1.xShmUnmap?($0, delete) } }
        methods.pointee.xFetch = { file, offset, amount, out in
            out?.pointee = nil
            return flushed(file, or: SQLITE_OK) { $1.xFetch?($0, offset, amount, out) }
        }
        methods.pointee.xUnfetch = { file, offset, pointer in flushed(file, or: SQLITE_OK) { $1.xUnfetch?($0, offset, pointer) } }
        return methods
    }()
}
