import CSpawn
import Dispatch
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

// What another process does reaches a test as an event from the kernel: a write to the log file
// it was given (inotify), or its end (a pidfd). The tests wait on these, never on a timer.

/// Runs `body` with a stream that wakes each time `descriptor` becomes readable; closes the
/// descriptor at the end. `drain` empties it, so that the next notice is a new one.
private func withReadiness<T>(of descriptor: Int32, drain: @escaping @Sendable (Int32) -> Void,
    _ body: (AsyncStream<Void>) async throws -> T) async throws -> T
{
    let (stream, continuation) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
    let source = DispatchSource.makeReadSource(fileDescriptor: descriptor, queue: .global())
    source.setEventHandler {
        drain(descriptor)
        continuation.yield()
    }
    source.setCancelHandler {
        close(descriptor)
        continuation.finish()
    }
    source.resume()
    defer { source.cancel() }
    return try await body(stream)
}

/// A log file that another process writes (a `tower` child's stderr), read as it grows.
public struct LogFile: Sendable {
    public let url: URL

    /// Creates the file empty, so that it is watched before the process that writes it starts
    /// (the child opens it with `O_TRUNC`: the same file).
    public init(_ url: URL) throws {
        guard FileManager.default.createFile(atPath: url.path, contents: nil) else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: url.path])
        }
        self.url = url
    }

    /// Everything written so far.
    public var text: String { (try? String(contentsOf: url, encoding: .utf8)) ?? "" }

    /// The first complete line, from the file's start, for which `matches` holds: read again at
    /// each write the kernel reports, for at most `seconds` (nil then).
    public func line(seconds: Double = 60, where matches: @escaping @Sendable (String) -> Bool) async throws -> String? {
        let watch = inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
        guard watch >= 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        guard inotify_add_watch(watch, url.path, UInt32(IN_MODIFY)) >= 0 else {
            let code = errno
            close(watch)
            throw POSIXError(POSIXErrorCode(rawValue: code) ?? .EIO)
        }
        let url = self.url
        return try await withReadiness(of: watch, drain: { descriptor in
            var buffer = [UInt8](repeating: 0, count: 4096)
            while read(descriptor, &buffer, buffer.count) > 0 {}
        }) { writes in
            try await withDeadline(seconds: seconds) {
                // The watch is in place before the first read: a line written after it wakes the loop.
                var reader = LineReader(url: url)
                if let line = try reader.first(where: matches) { return line }
                for await _ in writes {
                    if let line = try reader.first(where: matches) { return line }
                }
                return nil
            }
        }
    }

    /// Like `line(seconds:where:)`, failing the test with `what` when no such line came.
    @discardableResult
    public func require(_ what: String, seconds: Double = 60, where matches: @escaping @Sendable (String) -> Bool) async throws
        -> String
    {
        guard let line = try await line(seconds: seconds, where: matches) else {
            throw LogFileError(description: "\(what): no such line in \(seconds) s; the log: \(text.suffix(2000))")
        }
        return line
    }
}

public struct LogFileError: Error, CustomStringConvertible {
    public let description: String
}

/// Reads a growing file's complete lines, each once.
private struct LineReader {
    let url: URL
    var offset: UInt64 = 0
    var partial: [UInt8] = []

    mutating func first(where matches: (String) -> Bool) throws -> String? {
        let handle = try FileHandle(forReadingFrom: url)
        defer { try? handle.close() }
        try handle.seek(toOffset: offset)
        let data = try handle.readToEnd() ?? Data()
        offset += UInt64(data.count)
        partial += data
        var found: String?
        while found == nil, let end = partial.firstIndex(of: UInt8(ascii: "\n")) {
            let line = String(decoding: partial[..<end], as: UTF8.self)
            partial.removeSubrange(...end)
            if matches(line) { found = line }
        }
        return found
    }
}

/// Waits until process `pid` has ended (any process, not only a child of this one: a grandchild
/// a group kill must take down); true at once when it is gone already, false when it still runs
/// after `seconds`. A zombie has ended.
public func processEnded(_ pid: pid_t, seconds: Double) async throws -> Bool {
    let handle = cspawn_pidfd_open(pid)
    if handle < 0 {
        if errno == ESRCH { return true }
        throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO)
    }
    // Readable once the process has ended, and for good: one notice is enough.
    return try await withReadiness(of: handle, drain: { _ in }) { ended in
        try await withDeadline(seconds: seconds) {
            for await _ in ended { return true }
            return nil
        } ?? false
    }
}
