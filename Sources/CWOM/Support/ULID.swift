import Foundation
import Synchronization

/// Universally Unique Lexicographically Sortable Identifiers (https://github.com/ulid/spec):
/// 48 bits of Unix milliseconds and 80 random bits, written as 26 Crockford base-32 characters.
///
/// Identifiers made by one generator are strictly increasing: within one millisecond the random
/// part is incremented instead of redrawn, and if the clock goes backwards the last timestamp is
/// kept. The generator is safe to call from any number of tasks at once.
public final class ULIDGenerator: Sendable {
    private struct State {
        var lastMillis: UInt64 = 0
        var high: UInt16 = 0  // top 16 of the 80 random bits
        var low: UInt64 = 0  // bottom 64 random bits
    }

    private let state = Mutex(State())
    private let clock: @Sendable () -> UInt64

    /// - Parameter clock: milliseconds since the Unix epoch; injectable for tests.
    public init(clock: @escaping @Sendable () -> UInt64 = { UInt64(Date().timeIntervalSince1970 * 1000) }) {
        self.clock = clock
    }

    /// The process-wide generator.
    public static let shared = ULIDGenerator()

    public func next() -> String {
        let now = clock()
        let (millis, high, low) = state.withLock { s -> (UInt64, UInt16, UInt64) in
            if now > s.lastMillis {
                var rng = PooledRandom()
                s.lastMillis = now
                s.high = UInt16.random(in: 0...UInt16.max, using: &rng)
                s.low = UInt64.random(in: 0...UInt64.max, using: &rng)
            } else {
                // Same millisecond (or the clock went back): increment the 80-bit random part.
                let (newLow, overflow) = s.low.addingReportingOverflow(1)
                s.low = newLow
                if overflow {
                    if s.high == UInt16.max {
                        // 2^80 ids in one millisecond: move to the next millisecond.
                        s.lastMillis += 1
                        s.high = 0
                    } else {
                        s.high += 1
                    }
                }
            }
            return (s.lastMillis, s.high, s.low)
        }
        return ULID.encode(millis: millis, high: high, low: low)
    }
}

/// ULID helpers.
public enum ULID {
    static let alphabet = Array("0123456789ABCDEFGHJKMNPQRSTVWXYZ".utf8)

    /// A new ULID from the shared generator.
    public static func make() -> String { ULIDGenerator.shared.next() }

    static func encode(millis: UInt64, high: UInt16, low: UInt64) -> String {
        // Written straight into the string's storage (a dozen ids per enqueue).
        String(unsafeUninitializedCapacity: 26) { out in
            alphabet.withUnsafeBufferPointer { alphabet in
                // 10 characters of timestamp (50 bits, top 2 always zero for 48-bit values).
                var t = millis
                for i in stride(from: 9, through: 0, by: -1) {
                    out[i] = alphabet[Int(t & 31)]
                    t >>= 5
                }
                // 16 characters of randomness: 80 bits = high(16) + low(64).
                var lo = low
                var hi = UInt64(high)
                for i in stride(from: 25, through: 10, by: -1) {
                    out[i] = alphabet[Int(lo & 31)]
                    lo = (lo >> 5) | ((hi & 31) << 59)
                    hi >>= 5
                }
            }
            return 26
        }
    }

    /// Whether `text` is a well-formed ULID (26 Crockford base-32 characters, first ≤ 7).
    public static func isValid(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        guard bytes.count == 26, let first = bytes.first, first >= UInt8(ascii: "0"), first <= UInt8(ascii: "7") else {
            return false
        }
        return bytes.allSatisfy { alphabet.contains($0) }
    }

    /// The millisecond timestamp of a ULID, or nil when it is not one.
    public static func timestamp(of text: String) -> UInt64? {
        guard isValid(text) else { return nil }
        var value: UInt64 = 0
        for byte in text.utf8.prefix(10) {
            guard let digit = alphabet.firstIndex(of: byte) else { return nil }
            value = value << 5 | UInt64(digit)
        }
        return value
    }
}
