import CWOM
import Foundation
import Testing

@Suite("UUIDv7")
struct UUIDv7Tests {
    @Test("36 lower-case characters any UUID parser takes, version 7, RFC variant, the millisecond in front")
    func shape() throws {
        let id = UUIDv7.make(millis: 0x0189_ABCD_EF01)
        #expect(id.count == 36 && id == id.lowercased())
        #expect(UUID(uuidString: id) != nil)
        #expect(id.hasPrefix("0189abcd-ef01-7"), "\(id)")
        let variant = try #require(id.split(separator: "-")[3].first)
        #expect("89ab".contains(variant))
    }

    @Test("ids of later milliseconds sort later; ids of one millisecond differ")
    func ordered() {
        let early = (0..<50).map { _ in UUIDv7.make(millis: 1_700_000_000_000) }
        let late = UUIDv7.make(millis: 1_700_000_000_001)
        #expect(early.allSatisfy { $0 < late })
        #expect(Set(early).count == early.count)
    }
}
