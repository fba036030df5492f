import CWOM
import Synchronization
import Testing

@Suite("ULIDs")
struct ULIDTests {
    @Test("26 Crockford base-32 characters that encode the creation millisecond")
    func shape() {
        let generator = ULIDGenerator(clock: { 1_700_000_000_123 })
        let id = generator.next()
        #expect(id.count == 26)
        #expect(ULID.isValid(id))
        #expect(id.allSatisfy { "0123456789ABCDEFGHJKMNPQRSTVWXYZ".contains($0) })
        #expect(ULID.timestamp(of: id) == 1_700_000_000_123)
        #expect(!ULID.isValid("01J0000000000000000000000I"))  // I is not Crockford
        #expect(!ULID.isValid("short"))
    }

    @Test("later milliseconds sort later")
    func timeOrdered() {
        let clock = Mutex<UInt64>(1_000)
        let generator = ULIDGenerator(clock: { clock.withLock { $0 } })
        var ids: [String] = []
        for step in 0..<50 {
            clock.withLock { $0 = 1_000 + UInt64(step) * 7 }
            ids.append(generator.next())
        }
        #expect(ids == ids.sorted())
    }

    @Test("monotonic within one millisecond and when the clock goes back")
    func monotonic() {
        let clock = Mutex<UInt64>(5_000)
        let generator = ULIDGenerator(clock: { clock.withLock { $0 } })
        var ids = (0..<1000).map { _ in generator.next() }
        clock.withLock { $0 = 4_000 }  // the wall clock stepped back
        ids += (0..<10).map { _ in generator.next() }
        #expect(ids == ids.sorted())
        #expect(Set(ids).count == ids.count)
        #expect(ids.allSatisfy { ULID.timestamp(of: $0) == 5_000 })
    }

    @Test("unique and ordered when many tasks generate at once")
    func concurrent() async {
        let generator = ULIDGenerator(clock: { 42 })
        let batches = await withTaskGroup(of: [String].self) { group in
            for _ in 0..<8 { group.addTask { (0..<2000).map { _ in generator.next() } } }
            var all: [[String]] = []
            for await batch in group { all.append(batch) }
            return all
        }
        let all = batches.flatMap { $0 }
        #expect(Set(all).count == 16_000)
        for batch in batches { #expect(batch == batch.sorted()) }
    }
}
