import Foundation

/// The machine's CPU time so far, from the first line of Linux's `/proc/stat`: all of it, and
/// the part the hypervisor gave to other guests while this one had work ("steal").
///
/// On a virtual machine a benchmark's figure moves with its neighbours: a drain measured while
/// the host ran others on these cores measured them too. Two readings around a measurement say
/// how much of its time was taken that way (`stealShare(since:)`), so a reader can tell a slow
/// figure of our code from a slow minute of the host (`tower bench`, `scripts/bench`).
public struct MachineCPUTime: Sendable, Equatable {
    /// Clock ticks of every kind (user, nice, system, idle, iowait, irq, softirq, steal).
    public let total: UInt64
    /// Clock ticks stolen by the hypervisor.
    public let steal: UInt64

    public init(total: UInt64, steal: UInt64) {
        self.total = total
        self.steal = steal
    }

    /// The reading now; nil where there is no `/proc/stat` (not Linux) or it cannot be read.
    public static func now() -> MachineCPUTime? {
        guard let text = try? String(contentsOfFile: "/proc/stat", encoding: .utf8) else { return nil }
        return parse(text)
    }

    /// The reading in the text of `/proc/stat`: its `cpu` line, whose fields are user, nice,
    /// system, idle, iowait, irq, softirq and steal, then guest times that user and nice already
    /// count (proc(5)). Nil when that line is missing or shorter: a kernel before 2.6.11 had no
    /// steal field, and a guess would be a wrong figure.
    public static func parse(_ text: String) -> MachineCPUTime? {
        guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix("cpu ") }) else { return nil }
        let fields = line.split(separator: " ").dropFirst().map { UInt64($0) }
        guard fields.count >= 8 else { return nil }
        var ticks: [UInt64] = []
        for field in fields.prefix(8) {
            guard let field else { return nil }
            ticks.append(field)
        }
        return MachineCPUTime(total: ticks.reduce(0, +), steal: ticks[7])
    }

    /// The share of the machine's CPU time since `earlier` that was stolen, from 0 to 1; nil when
    /// no time passed between the two readings.
    public func stealShare(since earlier: MachineCPUTime) -> Double? {
        guard total > earlier.total, steal >= earlier.steal else { return nil }
        return Double(steal - earlier.steal) / Double(total - earlier.total)
    }
}
