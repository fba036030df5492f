import CPlacement
import Foundation

/// The CPUs a thread may run on: Linux's affinity mask of one thread (`sched_getaffinity(2)`),
/// as sorted CPU numbers. A thread a thread starts inherits its mask.
///
/// Used to give SQLite's writer thread a core of its own, away from the HTTP server's event
/// loops (`TOWER_SQLITE_WRITER_CPU`, docs/operations.md): on this project's two-core machines the
/// two threads otherwise queue behind each other for a core a sixth of the time while the
/// machine is a quarter idle (docs/benchmarks.md, fifty-second and fifty-third sessions).
public struct CPUSet: Sendable, Hashable, CustomStringConvertible {
    /// The CPU numbers, ascending, without repeats.
    public let cpus: [Int]

    public init(_ cpus: some Sequence<Int>) { self.cpus = Array(Set(cpus)).sorted() }

    /// As Linux writes a mask in `/proc/<pid>/status` (`Cpus_allowed_list`): `0-3,6`.
    public var description: String {
        var ranges: [String] = []
        var index = cpus.startIndex
        while index < cpus.endIndex {
            var end = index
            while end + 1 < cpus.endIndex, cpus[end + 1] == cpus[end] + 1 { end += 1 }
            ranges.append(end == index ? "\(cpus[index])" : "\(cpus[index])-\(cpus[end])")
            index = end + 1
        }
        return ranges.joined(separator: ",")
    }

    /// The largest CPU number the system's mask type can name (`CPU_SETSIZE` − 1, 1,023 on glibc).
    public static var largestCPU: Int { cplacement_words() * UInt.bitWidth - 1 }

    /// The CPUs the calling thread may run on now.
    public static func ofCurrentThread() throws(StorageError) -> CPUSet {
        var words = [UInt](repeating: 0, count: cplacement_words())
        let failure = words.withUnsafeMutableBufferPointer { cplacement_get($0.baseAddress, $0.count) }
        guard failure == 0 else {
            throw StorageError(.configuration, "cannot read the CPUs this thread may run on: \(String(cString: strerror(failure)))")
        }
        let width = UInt.bitWidth
        return CPUSet((0..<words.count * width).filter { words[$0 / width] & (1 << UInt($0 % width)) != 0 })
    }

    /// Restricts the calling thread to these CPUs; the threads it starts afterwards inherit them.
    public func applyToCurrentThread() throws(StorageError) {
        guard let first = cpus.first, let last = cpus.last, first >= 0, last <= Self.largestCPU else {
            throw StorageError(.configuration, "cannot run a thread on CPUs '\(self)': none, or beyond CPU \(Self.largestCPU)")
        }
        var words = [UInt](repeating: 0, count: cplacement_words())
        let width = UInt.bitWidth
        for cpu in cpus { words[cpu / width] |= 1 << UInt(cpu % width) }
        let failure = words.withUnsafeBufferPointer { cplacement_set($0.baseAddress, $0.count) }
        guard failure == 0 else {
            throw StorageError(.configuration, "cannot run a thread on CPUs \(self): \(String(cString: strerror(failure)))")
        }
    }
}
