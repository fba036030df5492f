import CWOM
import Testing

@Suite("Pooled kernel randomness for identifiers")
struct PooledRandomTests {
    @Test("draws across several refills of the pool never repeat, and every bit is set about half the time")
    func drawsAcrossRefills() {
        var random = PooledRandom()
        // 4,096 draws empty the 32-word pool 128 times over.
        let draws = (0..<4_096).map { _ in random.next() }
        #expect(Set(draws).count == draws.count)
        for bit in 0..<64 {
            let set = draws.count { $0 & (1 << UInt64(bit)) != 0 }
            // The expected 2,048 with a standard deviation of 32: 1,700…2,400 fails by chance
            // with a probability below 10^-25.
            #expect((1_700...2_400).contains(set), "bit \(bit) set in \(set) of \(draws.count) draws")
        }
    }

    @Test("many tasks drawing at once get distinct values")
    func concurrentDraws() async {
        let draws = await withTaskGroup(of: [UInt64].self) { group in
            for _ in 0..<8 {
                group.addTask { (0..<1_000).map { _ in PooledRandom.pair() }.flatMap { [$0.0, $0.1] } }
            }
            return await group.reduce(into: []) { $0 += $1 }
        }
        #expect(draws.count == 16_000)
        #expect(Set(draws).count == draws.count)
    }

    @Test("ranged draws through the generator stay in their range")
    func rangedDraws() {
        var random = PooledRandom()
        let values = (0..<1_000).map { _ in UInt16.random(in: 10...20, using: &random) }
        #expect(values.allSatisfy { (10...20).contains($0) })
        #expect(Set(values).count == 11)
    }
}
