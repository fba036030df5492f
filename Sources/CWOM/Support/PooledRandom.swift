#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Synchronization

/// Random bits for identifiers, drawn from the kernel 256 bytes at a time.
///
/// `SystemRandomNumberGenerator` asks the kernel for every 8 bytes (`getrandom` on Linux): an
/// enqueue's ids (two UUIDs of version 7, the ULIDs' random parts) were five or six system calls
/// of `tower api` per request. The same kernel randomness, read in blocks into a pool and handed
/// out 8 bytes at a time, is one call per 32 draws (one per five or six requests). The pool is
/// process memory, so it serves identifiers only; secrets (API keys, console sessions) still
/// draw from `SystemRandomNumberGenerator` directly. A process that forks without exec would
/// share the pool with its child; Control Tower starts its children with `posix_spawn`.
public struct PooledRandom: RandomNumberGenerator, Sendable {
    public init() {}

    public mutating func next() -> UInt64 { Self.pool.withLock { $0.next() } }

    /// Two draws under one lock (a UUID's 128 bits).
    public static func pair() -> (UInt64, UInt64) { pool.withLock { ($0.next(), $0.next()) } }

    private static let pool = Mutex(Pool())

    private struct Pool: ~Copyable {
        static let count = 32  // 256 bytes, what one `getentropy` call gives
        let words = UnsafeMutablePointer<UInt64>.allocate(capacity: Pool.count)
        var position = Pool.count

        mutating func next() -> UInt64 {
            if position == Self.count {
                Self.fill(UnsafeMutableRawPointer(words), byteCount: Self.count * MemoryLayout<UInt64>.stride)
                position = 0
            }
            defer { position += 1 }
            return words[position]
        }

        /// Fills `byteCount` (at most 256) bytes at `base` from the kernel with `getentropy`
        /// (glibc's wrapper of `getrandom`, which Swift's Glibc module does not declare).
        /// Elsewhere, or should it fail (it does not, for 256 bytes into valid memory), 8 bytes
        /// at a time from `SystemRandomNumberGenerator`, which stops the process rather than
        /// return bad bits.
        private static func fill(_ base: UnsafeMutableRawPointer, byteCount: Int) {
            #if canImport(Glibc) || canImport(Musl)
            if getentropy(base, byteCount) == 0 { return }
            #endif
            var system = SystemRandomNumberGenerator()
            var filled = 0
            while filled < byteCount {
                let amount = min(8, byteCount - filled)
                withUnsafeBytes(of: system.next() as UInt64) { word in
                    if let source = word.baseAddress { (base + filled).copyMemory(from: source, byteCount: amount) }
                }
                filled += amount
            }
        }

        deinit { words.deallocate() }
    }
}
