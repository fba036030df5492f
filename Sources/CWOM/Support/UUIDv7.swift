import Foundation

/// UUIDs of version 7 (RFC 9562): 48 bits of Unix milliseconds, then random bits, written as the
/// usual 36 lower-case characters. Ids made in the same millisecond are not ordered among
/// themselves, but every id sorts after those of earlier milliseconds.
public enum UUIDv7 {
    public static func make(millis: UInt64 = UInt64(Date().timeIntervalSince1970 * 1000)) -> String {
        let random = PooledRandom.pair()
        // Written straight into the string's storage: no byte arrays on the way (two ids per
        // enqueue, the task's and its trace's).
        return String(unsafeUninitializedCapacity: 36) { out in
            func byte(_ index: Int) -> UInt8 {
                let source = index < 6 ? millis >> (8 * (5 - index)) : index < 14 ? random.0 >> (8 * (index - 6)) : random.1 >> (8 * (index - 14))
                let value = UInt8(truncatingIfNeeded: source)
                switch index {
                case 6: return 0x70 | (value & 0x0F)  // version 7
                case 8: return 0x80 | (value & 0x3F)  // variant 10
                default: return value
                }
            }
            var position = 0
            for index in 0..<16 {
                if index == 4 || index == 6 || index == 8 || index == 10 {
                    out[position] = UInt8(ascii: "-")
                    position += 1
                }
                let value = byte(index)
                out[position] = hexDigit(value >> 4)
                out[position + 1] = hexDigit(value & 0x0F)
                position += 2
            }
            return position
        }
    }

    private static func hexDigit(_ nibble: UInt8) -> UInt8 {
        nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "a") + nibble - 10
    }
}
