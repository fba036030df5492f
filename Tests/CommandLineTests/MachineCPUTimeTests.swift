import Spawn
import Testing

@Suite("The machine's CPU time, as a benchmark reads the host's steal")
struct MachineCPUTimeTests {
    // The first lines of a /proc/stat of this VM kind: user, nice, system, idle, iowait, irq,
    // softirq, steal, then the guest times (already inside user and nice).
    static let stat = """
        cpu  104719 22 27318 3384466 10372 0 7129 2411 0 0
        cpu0 52416 11 13699 1692080 5098 0 5344 1203 0 0
        cpu1 52303 11 13619 1692386 5274 0 1785 1208 0 0
        intr 31221458 0 9 0 0 0 0 0 0 0 0 0 0 0 0 0 0
        """

    @Test("The cpu line gives the total of its eight fields and the steal among them; the guest times are not counted twice")
    func parsesTheCPULine() throws {
        let reading = try #require(MachineCPUTime.parse(Self.stat))
        #expect(reading.steal == 2411)
        #expect(reading.total == 104719 + 22 + 27318 + 3384466 + 10372 + 0 + 7129 + 2411)
    }

    @Test("A text without the cpu line, or one too short to hold steal, is no reading rather than a guess")
    func refusesWhatItCannotRead() {
        #expect(MachineCPUTime.parse("intr 1 2 3\n") == nil)
        #expect(MachineCPUTime.parse("cpu  1 2 3 4 5 6 7\n") == nil, "seven fields: a kernel without steal")
        #expect(MachineCPUTime.parse("cpu  1 2 3 4 5 6 7 x\n") == nil)
        #expect(MachineCPUTime.parse("cpu0 1 2 3 4 5 6 7 8\n") == nil, "one core's line is not the machine's")
    }

    @Test("The steal share is the stolen ticks over all ticks between two readings, and none when no time passed")
    func stealShare() throws {
        let before = MachineCPUTime(total: 1_000, steal: 10)
        let after = MachineCPUTime(total: 1_200, steal: 60)
        #expect(after.stealShare(since: before) == 0.25)
        #expect(before.stealShare(since: before) == nil)
        #expect(before.stealShare(since: after) == nil, "readings in the wrong order")
    }

    @Test("This Linux machine's own /proc/stat reads, and its ticks only grow")
    func readsThisMachine() throws {
        let first = try #require(MachineCPUTime.now())
        var second = first
        while second.total == first.total {
            // A tick is 10 ms of a core, idle ones included: the next one comes whatever runs.
            second = try #require(MachineCPUTime.now())
        }
        #expect(second.total > first.total && second.steal >= first.steal)
        let share = try #require(second.stealShare(since: first))
        #expect(share >= 0 && share <= 1)
    }
}
