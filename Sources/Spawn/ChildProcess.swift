import CSpawn
import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// How a child process ended.
public enum ProcessStatus: Equatable, Sendable, CustomStringConvertible {
    case exited(Int32)
    case signaled(Int32)

    /// Exit status 0.
    public var succeeded: Bool { self == .exited(0) }

    public var description: String {
        switch self {
        case .exited(let code): "exit \(code)"
        case .signaled(let signal): "signal \(signal)"
        }
    }
}

/// Where a child's stdout or stderr goes.
public enum ChildOutput: Sendable {
    /// `/dev/null`.
    case discard
    /// A file, created or truncated.
    case file(URL)
    /// A file, created or truncated, that keeps the first `limit` bytes: the child writes into a
    /// pipe, a thread of the parent copies it, reads on past the limit (the child is never
    /// blocked on a full pipe) and drops the rest, then ends the file with a line saying how much
    /// was dropped (`ChildProcess.copiedOutput`).
    case capped(URL, limit: Int)
    /// The parent's own descriptor.
    case inherit
}

/// A failure to start a child process, naming the program.
public struct SpawnError: Error, CustomStringConvertible {
    public let description: String
}

/// A process started with `posix_spawn` and reaped by a thread of its own. Every program this
/// project starts (an executor's command, `git diff`, `tower bench`'s workers, the tests' `tower`
/// processes) starts here, for three reasons:
///
/// - Foundation's `Process` finds the descriptors to close in the child by copying
///   `/proc/self/fd` entries in a way that crashes a parent holding ~1,350 of them (a busy
///   `tower serve`, or the parallel test suite with its dozens of open databases).
/// - A child inherits the signal mask of the thread that starts it, and the threads of a Swift
///   server block SIGTERM (ServiceLifecycle and Dispatch handle it); a child started by `Process`
///   could only be stopped by SIGKILL, never given the chance to clean up. Here every signal is
///   unblocked and reset to its default in the child.
/// - The child gets descriptors 0, 1 and 2 and nothing else (`closefrom(3)`): no database socket
///   or WAL file of the parent leaks into an agent's command.
public final class ChildProcess: Sendable {
    public let pid: pid_t
    /// True when the child leads a process group of its own (its children inherit it), so that
    /// `send` and `terminate` reach the whole tree.
    public let leadsGroup: Bool
    private let state = Mutex(State())
    /// The copiers of `.capped` outputs, by the child's descriptor (1, 2).
    private let copiers: [Int32: OutputCopier]

    private struct State {
        var status: ProcessStatus?
        var cpuSeconds: Double?
        var waiters: [@Sendable (ProcessStatus) -> Void] = []
    }

    /// Starts `command` (an absolute path, then its arguments) with exactly `environment`.
    /// stdin is a file (`/dev/null` unless given); output goes to files (a `.capped` one through a
    /// pipe that a thread of this process always reads on, so a large output never blocks the
    /// child on a full pipe). `directory` is the child's working
    /// directory (the parent's when nil).
    public init(
        _ command: [String], environment: [String: String], directory: URL? = nil, stdin: URL? = nil,
        stdout: ChildOutput = .discard, stderr: ChildOutput = .discard, newProcessGroup: Bool = false
    ) throws {
        guard let executable = command.first else { throw SpawnError(description: "an empty command") }
        guard FileManager.default.isExecutableFile(atPath: executable) else {
            throw SpawnError(description: "\(executable) is not an executable file")
        }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var unblocked = sigset_t()
        sigemptyset(&unblocked)
        posix_spawnattr_setsigmask(&attributes, &unblocked)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in Int32(1)..<32 where signal != SIGKILL && signal != SIGSTOP { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        var flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF
        if newProcessGroup {
            posix_spawnattr_setpgroup(&attributes, 0)
            flags |= POSIX_SPAWN_SETPGROUP
        }
        posix_spawnattr_setflags(&attributes, Int16(flags))

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, stdin?.path ?? "/dev/null", O_RDONLY, 0)
        var copiers: [Int32: OutputCopier] = [:]
        // The pipes' write ends: the child's copies are its 1 and 2, the parent's are closed once
        // it has started (or failed to), so that the copier sees the end of the output.
        var writeEnds: [Int32] = []
        var spawned = false
        defer {
            for descriptor in writeEnds { close(descriptor) }
            if !spawned { for copier in copiers.values { copier.abandon() } }
        }
        for (descriptor, output) in [(Int32(1), stdout), (2, stderr)] {
            switch output {
            case .discard: posix_spawn_file_actions_addopen(&actions, descriptor, "/dev/null", O_WRONLY, 0)
            case .file(let url):
                posix_spawn_file_actions_addopen(&actions, descriptor, url.path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
            case .capped(let url, let limit):
                let copier = try OutputCopier(to: url, limit: limit)
                copiers[descriptor] = copier
                writeEnds.append(copier.writeEnd)
                posix_spawn_file_actions_adddup2(&actions, copier.writeEnd, descriptor)
            case .inherit: break
            }
        }
        cspawn_file_actions_addclosefrom(&actions, 3)
        if let directory { cspawn_file_actions_addchdir(&actions, directory.path) }

        let argv = command.map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { for pointer in argv + envp { free(pointer) } }
        var pid: pid_t = 0
        let code = posix_spawn(&pid, executable, &actions, &attributes, argv, envp)
        guard code == 0 else { throw SpawnError(description: "\(executable): \(String(cString: strerror(code)))") }
        spawned = true
        self.pid = pid
        self.leadsGroup = newProcessGroup
        self.copiers = copiers
        for copier in copiers.values { copier.start() }
        let started = copiers
        // wait4 blocks: one thread per running child, for as long as it runs. It also reports
        // the CPU time the child used, which `tower bench` prints per task for its workers.
        Thread.detachNewThread { [self] in
            var raw: Int32 = 0
            var usage = rusage()
            while wait4(self.pid, &raw, 0, &usage) == -1 && errno == EINTR {}
            let signal = raw & 0x7f
            let seconds = { (time: timeval) in Double(time.tv_sec) + Double(time.tv_usec) / 1_000_000 }
            // The output is whole when the child has ended: what it wrote last is in its files.
            // A process it left behind that still holds the pipe gets two seconds more, then the
            // copy ends (and that process's next write fails).
            for copier in started.values { copier.finish(within: 2) }
            finish(
                signal == 0 ? .exited((raw >> 8) & 0xff) : .signaled(signal),
                cpuSeconds: seconds(usage.ru_utime) + seconds(usage.ru_stime))
        }
    }

    private func finish(_ status: ProcessStatus, cpuSeconds: Double) {
        let waiters = state.withLock { state in
            state.status = status
            state.cpuSeconds = cpuSeconds
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter(status) }
    }

    /// Calls `waiter` once the child has ended (at once when it already has).
    private func whenEnded(_ waiter: @escaping @Sendable (ProcessStatus) -> Void) {
        let ended = state.withLock { state -> ProcessStatus? in
            if let status = state.status { return status }
            state.waiters.append(waiter)
            return nil
        }
        if let ended { waiter(ended) }
    }

    /// What became of the child's descriptor 1 or 2 when it is a `.capped` output (nil for any
    /// other): final once the child has ended (`wait`).
    public func copiedOutput(_ descriptor: Int32) -> CopiedOutput? {
        copiers[descriptor]?.outcome
    }

    /// How the child ended, or nil while it runs.
    public var status: ProcessStatus? { state.withLock { $0.status } }

    /// The CPU time the child used, user and system, in seconds (its own, not its children's);
    /// nil while it runs.
    public var cpuSeconds: Double? { state.withLock { $0.cpuSeconds } }

    /// Waits for the child to end.
    public func wait() async -> ProcessStatus {
        await withCheckedContinuation { continuation in whenEnded { continuation.resume(returning: $0) } }
    }

    /// Waits for the child to end, at most `timeout` seconds (nil then; the child runs on).
    public func wait(timeout: Double) async -> ProcessStatus? {
        final class Once: Sendable {
            let resumed = Mutex(false)
            func first() -> Bool { resumed.withLock { resumed in defer { resumed = true }; return !resumed } }
        }
        let once = Once()
        return await withCheckedContinuation { (continuation: CheckedContinuation<ProcessStatus?, Never>) in
            whenEnded { status in if once.first() { continuation.resume(returning: status) } }
            DispatchQueue.global().asyncAfter(deadline: .now() + timeout) {
                if once.first() { continuation.resume(returning: nil) }
            }
        }
    }

    /// Blocks the calling thread until the child ends or `timeout` seconds pass (nil then).
    public func waitBlocking(timeout: Double) -> ProcessStatus? {
        let ended = DispatchSemaphore(value: 0)
        whenEnded { _ in ended.signal() }
        _ = ended.wait(timeout: .now() + timeout)
        return status
    }

    /// Sends `signal` to the child, or to its whole group when it leads one. A group is
    /// signalled even after its leader was reaped (members that outlived it still get the
    /// signal; Linux reuses no pid while a group of that id exists); a lone child is not, since
    /// its pid may belong to another process by then.
    public func send(_ signal: Int32) {
        if leadsGroup {
            kill(-pid, signal)
            return
        }
        state.withLock { state in
            guard state.status == nil else { return }
            kill(pid, signal)
        }
    }

    /// SIGTERM, then SIGKILL `grace` seconds later if the child still runs.
    public func terminate(grace: Double = 2) {
        send(SIGTERM)
        DispatchQueue.global().asyncAfter(deadline: .now() + grace) { [self] in send(SIGKILL) }
    }
}


/// What a `.capped` output kept of what the child wrote.
public struct CopiedOutput: Sendable, Equatable {
    /// Bytes in the file, the closing note aside.
    public var keptBytes = 0
    /// Bytes past the limit, read and dropped.
    public var droppedBytes = 0
    /// Why the file could not take the rest, when a write failed (a full disk): the bytes from
    /// `keptBytes` on are lost.
    public var writeFailure: String?

    public init(keptBytes: Int = 0, droppedBytes: Int = 0, writeFailure: String? = nil) {
        (self.keptBytes, self.droppedBytes, self.writeFailure) = (keptBytes, droppedBytes, writeFailure)
    }
}

/// Copies a child's output from a pipe into a file, up to a limit (`ChildOutput.capped`), on a
/// thread of its own: a read blocks, and the child must never wait on a full pipe.
final class OutputCopier: Sendable {
    let writeEnd: Int32
    private let readEnd: Int32
    private let file: Int32
    private let limit: Int
    private let ended = DispatchSemaphore(value: 0)
    private let stopping = Atomic<Bool>(false)
    private let result = Mutex(CopiedOutput())

    var outcome: CopiedOutput { result.withLock { $0 } }

    init(to url: URL, limit: Int) throws {
        let descriptor = open(url.path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw SpawnError(description: "\(url.path): \(String(cString: strerror(errno)))") }
        var ends: [Int32] = [0, 0]
        guard cspawn_pipe_cloexec(&ends) == 0 else {
            let reason = String(cString: strerror(errno))
            close(descriptor)
            throw SpawnError(description: "a pipe for \(url.lastPathComponent): \(reason)")
        }
        (file, readEnd, writeEnd, self.limit) = (descriptor, ends[0], ends[1], max(0, limit))
    }

    func start() {
        Thread.detachNewThread { [self] in copy() }
    }

    /// The child could not be started: nothing to copy.
    func abandon() {
        close(readEnd)
        close(file)
    }

    /// Waits until the output has ended, at most `seconds`; then stops copying and waits for
    /// the copy to end (at most a poll interval later).
    func finish(within seconds: Double) {
        if ended.wait(timeout: .now() + seconds) == .success { return }
        stopping.store(true, ordering: .releasing)
        ended.wait()
    }

    private func copy() {
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        var outcome = CopiedOutput()
        var seen = 0
        while !stopping.load(ordering: .acquiring) {
            var ready = pollfd(fd: readEnd, events: Int16(POLLIN), revents: 0)
            let events = poll(&ready, 1, 200)
            if events == 0 || (events < 0 && errno == EINTR) { continue }
            let count = events < 0 ? -1 : read(readEnd, &buffer, buffer.count)
            if count < 0 && (errno == EINTR || errno == EAGAIN) { continue }
            if count <= 0 { break }
            let keep = min(count, limit - seen)
            seen += keep
            outcome.droppedBytes += count - keep
            // After a failed write (a full disk) nothing more is written: the file ends where
            // the failure was, and the copy reads on so that the child is never blocked.
            if keep > 0, outcome.writeFailure == nil {
                let written = writeAll(buffer, count: keep)
                outcome.keptBytes += written
                if written < keep { outcome.writeFailure = String(cString: strerror(errno)) }
            }
        }
        if outcome.droppedBytes > 0, outcome.writeFailure == nil {
            let note = "\n[tower: output cut at \(limit) bytes; \(outcome.droppedBytes) more bytes were dropped]\n"
            _ = writeAll(Array(note.utf8), count: note.utf8.count)
        }
        result.withLock { $0 = outcome }
        close(readEnd)
        close(file)
        ended.signal()
    }

    /// Writes the first `count` bytes; the number written (fewer when a write failed, `errno`
    /// saying why).
    private func writeAll(_ bytes: [UInt8], count: Int) -> Int {
        var written = 0
        bytes.withUnsafeBytes { raw in
            guard let base = raw.baseAddress else { return }
            while written < count {
                let result = write(file, base + written, count - written)
                if result < 0 && errno == EINTR { continue }
                guard result > 0 else {
                    if result == 0 { errno = EIO }
                    return
                }
                written += result
            }
        }
        return written
    }
}
