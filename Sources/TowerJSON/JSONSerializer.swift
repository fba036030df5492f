#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

extension JSONValue {
    /// Serialization options. The default is the compact form the legacy HTTP service sent
    /// (`separators=(",", ":")`, non-ASCII characters kept).
    public struct Format: Sendable {
        /// Indent nested values by two spaces and put `": "` between keys and values.
        public var pretty: Bool
        /// Escape every non-ASCII character as `\uXXXX` (Python's `ensure_ascii=True`).
        public var asciiOnly: Bool
        /// Python's default separators, `", "` and `": "`, on one line (the `events.jsonl` style).
        public var spaced: Bool

        public init(pretty: Bool = false, asciiOnly: Bool = false, spaced: Bool = false) {
            self.pretty = pretty
            self.asciiOnly = asciiOnly
            self.spaced = spaced
        }

        public static let compact = Format()
        /// Two-space indentation with ASCII escapes, as the legacy trace store wrote JSON files.
        public static let prettyASCII = Format(pretty: true, asciiOnly: true)
        /// One line with Python's default separators and ASCII escapes (`events.jsonl`).
        public static let pythonLine = Format(asciiOnly: true, spaced: true)
    }

    /// The JSON text of this value.
    public func serialized(_ format: Format = .compact) -> String {
        withOutput(format) { String(decoding: $0, as: UTF8.self) }
    }

    /// The compact JSON text as UTF-8 bytes, or nil when a string or key holds the NUL character
    /// U+0000 (see `firstNUL`): what a database driver copies into its message, with no `String`
    /// made of it first. One walk of the value: the text is written, then its escapes are read,
    /// where a NUL can only be `\u0000` (the serializer writes a backslash in escapes only).
    public func compactBytesWithoutNUL() -> [UInt8]? {
        withOutput(.compact) { text in Self.holdsEscapedNUL(text) ? nil : Array(text) }
    }

    /// The compact JSON text as a `String`, or nil when it holds the NUL character (see
    /// `compactBytesWithoutNUL`): made from the serializer's buffer at once, without the array of
    /// bytes in between (two allocations and copies fewer for each JSON column an enqueue writes).
    public func compactTextWithoutNUL() -> String? {
        withOutput(.compact) { text -> String? in
            guard !Self.holdsEscapedNUL(text) else { return nil }
            return String(unsafeUninitializedCapacity: text.count) { buffer in
                guard let source = text.baseAddress, let target = buffer.baseAddress else { return 0 }
                target.initialize(from: source, count: text.count)
                return text.count
            }
        }
    }

    /// Whether serialized JSON holds the escape `\u0000`, from one backslash to the next
    /// (`memchr`): most texts have none.
    static func holdsEscapedNUL(_ text: UnsafeBufferPointer<UInt8>) -> Bool {
        guard let base = text.baseAddress else { return false }
        let u = UInt8(ascii: "u"), zero = UInt8(ascii: "0")
        var index = 0
        while index < text.count, let found = memchr(base + index, Int32(UInt8(ascii: "\\")), text.count - index) {
            index = base.distance(to: found.assumingMemoryBound(to: UInt8.self))
            guard index + 1 < text.count else { break }
            guard text[index + 1] == u else {
                index += 2  // a two-character escape
                continue
            }
            if index + 5 < text.count, text[index + 2] == zero, text[index + 3] == zero, text[index + 4] == zero, text[index + 5] == zero {
                return true
            }
            index += 6
        }
        return false
    }

    /// The UTF-8 bytes of the JSON text.
    public func bytes(_ format: Format = .compact) -> [UInt8] {
        withOutput(format) { Array($0) }
    }

    /// Writes the text into a buffer of the serializer's own and hands `body` its bytes, which
    /// live until `body` returns: a kilobyte on the stack first (an audit row's snapshot is
    /// 600–900 bytes, a column's JSON a few), memory of its own past that.
    private func withOutput<T>(_ format: Format, _ body: (UnsafeBufferPointer<UInt8>) -> T) -> T {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 1024) { scratch in
            var output = JSONOutput(borrowing: scratch)
            defer { output.deallocate() }
            write(into: &output, format: format, depth: 0)
            return body(UnsafeBufferPointer(start: output.base, count: output.count))
        }
    }

    func write(into output: inout JSONOutput, format: Format, depth: Int) {
        switch self {
        case .null: output.append("null")
        case .bool(let b): output.append(b ? "true" : "false")
        case .int(let i): Self.writeInt(i, into: &output)
        case .double(let d):
            var text = Self.formatDouble(d)
            text.withUTF8 { output.append($0) }
        case .string(let s): Self.writeString(s, into: &output, asciiOnly: format.asciiOnly)
        case .array(let elements):
            if elements.isEmpty { output.append("[]"); return }
            output.append(UInt8(ascii: "["))
            for (offset, element) in elements.enumerated() {
                if offset > 0 { Self.separator(into: &output, format) }
                if format.pretty { newline(into: &output, depth: depth + 1) }
                element.write(into: &output, format: format, depth: depth + 1)
            }
            if format.pretty { newline(into: &output, depth: depth) }
            output.append(UInt8(ascii: "]"))
        case .object(let object):
            if object.isEmpty { output.append("{}"); return }
            output.append(UInt8(ascii: "{"))
            var first = true
            for (key, value) in object.members {
                if !first { Self.separator(into: &output, format) }
                first = false
                if format.pretty { newline(into: &output, depth: depth + 1) }
                Self.writeString(key, into: &output, asciiOnly: format.asciiOnly)
                output.append(UInt8(ascii: ":"))
                if format.pretty || format.spaced { output.append(UInt8(ascii: " ")) }
                value.write(into: &output, format: format, depth: depth + 1)
            }
            if format.pretty { newline(into: &output, depth: depth) }
            output.append(UInt8(ascii: "}"))
        }
    }

    /// The decimal digits of `value`, without the `String` that `String(value)` allocates.
    static func writeInt(_ value: Int, into output: inout JSONOutput) {
        if value < 0 { output.append(UInt8(ascii: "-")) }
        var magnitude = value.magnitude
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)  // 24 bytes; the longest magnitude has 19 digits
        withUnsafeMutableBytes(of: &digits) { buffer in
            var start = buffer.count
            repeat {
                start -= 1
                buffer[start] = UInt8(ascii: "0") + UInt8(magnitude % 10)
                magnitude /= 10
            } while magnitude > 0
            output.append(UnsafeRawBufferPointer(rebasing: buffer[start...]))
        }
    }

    private static func separator(into output: inout JSONOutput, _ format: Format) {
        output.append(UInt8(ascii: ","))
        if format.spaced && !format.pretty { output.append(UInt8(ascii: " ")) }
    }

    private func newline(into output: inout JSONOutput, depth: Int) {
        output.append(UInt8(ascii: "\n"))
        for _ in 0..<(depth * 2) { output.append(UInt8(ascii: " ")) }
    }

    /// Python's `repr(float)`: shortest round-trip digits, `1.0` for integral values,
    /// `1e+16` style exponents. JSON has no NaN or infinity; Python writes them bare.
    static func formatDouble(_ d: Double) -> String {
        if d.isNaN { return "NaN" }
        if d.isInfinite { return d < 0 ? "-Infinity" : "Infinity" }
        return d.description
    }

    private static let hexDigits: StaticString = "0123456789abcdef"

    /// Escapes `"`, `\\` and control characters; with `asciiOnly`, every non-ASCII scalar too
    /// (as UTF-16 `\\uXXXX` escapes). Runs of plain bytes are copied at once.
    static func writeString(_ input: String, into output: inout JSONOutput, asciiOnly: Bool) {
        let start = output.count
        // One walk of the bytes: runs of plain bytes are copied at once. With `asciiOnly`, the
        // first non-ASCII byte sends the string to the scalar walk below (what was copied is
        // dropped); a separate check of every byte first was 1 % of a worker (`perf`).
        let copied =
            input.utf8.withContiguousStorageIfAvailable { buffer -> Bool in
                // Most strings written are ids, names and timestamps with nothing to escape:
                // checked a word at a time and copied at once with their quotes.
                guard let base = buffer.baseAddress, holdsSpecialByte(in: base, count: buffer.count, asciiOnly: asciiOnly) else {
                    output.appendQuoted(buffer)
                    return true
                }
                output.append(UInt8(ascii: "\""))
                let plain = writePlain(buffer, into: &output, asciiOnly: asciiOnly)
                if plain { output.append(UInt8(ascii: "\"")) }
                return plain
            } ?? false
        guard !copied else { return }
        output.truncate(to: start)
        output.append(UInt8(ascii: "\""))
        for scalar in input.unicodeScalars {
            let escaped = scalar.value < 0x20 || scalar == "\"" || scalar == "\\" || (asciiOnly && scalar.value > 0x7E)
            if !escaped {
                var utf8 = UTF8.encode(scalar)?.makeIterator()
                while let byte = utf8?.next() { output.append(byte) }
            } else if scalar.value > 0xFFFF {
                let v = scalar.value - 0x10000
                appendUnicodeEscape(0xD800 + (v >> 10), into: &output)
                appendUnicodeEscape(0xDC00 + (v & 0x3FF), into: &output)
            } else {
                escape(scalar.value, into: &output)
            }
        }
        output.append(UInt8(ascii: "\""))
    }

    /// The bytes of a string, escaped where they must be; false (with part of them written) when
    /// `asciiOnly` meets a non-ASCII byte, which the scalar walk then writes.
    @inline(__always)
    private static func writePlain(_ buffer: UnsafeBufferPointer<UInt8>, into output: inout JSONOutput, asciiOnly: Bool) -> Bool {
        guard let base = buffer.baseAddress else { return true }
        let count = buffer.count
        var runStart = 0
        var index = 0
        while index < count {
            // Eight plain bytes at a time (most of what is written holds no escape).
            if index + 8 <= count, !holdsSpecialByte(UnsafeRawPointer(base + index).loadUnaligned(as: UInt64.self), asciiOnly: asciiOnly) {
                index += 8
                continue
            }
            let byte = base[index]
            let special = byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") || (asciiOnly && byte >= 0x7F)
            guard special else {
                index += 1
                continue
            }
            if asciiOnly && byte >= 0x80 { return false }
            output.append(UnsafeBufferPointer(start: base + runStart, count: index - runStart))
            escape(UInt32(byte), into: &output)
            index += 1
            runStart = index
        }
        output.append(UnsafeBufferPointer(start: base + runStart, count: count - runStart))
        return true
    }

    /// Whether any of the `count` bytes at `base` is escaped (see `holdsSpecialByte(_:asciiOnly:)`).
    @inline(__always)
    private static func holdsSpecialByte(in base: UnsafePointer<UInt8>, count: Int, asciiOnly: Bool) -> Bool {
        if count < 8 {
            var word: UInt64 = 0x2020_2020_2020_2020  // spaces: never escaped
            withUnsafeMutableBytes(of: &word) { $0.baseAddress?.copyMemory(from: base, byteCount: count) }
            return holdsSpecialByte(word, asciiOnly: asciiOnly)
        }
        var index = 0
        while index + 8 <= count {
            if holdsSpecialByte(UnsafeRawPointer(base + index).loadUnaligned(as: UInt64.self), asciiOnly: asciiOnly) { return true }
            index += 8
        }
        return index < count && holdsSpecialByte(UnsafeRawPointer(base + count - 8).loadUnaligned(as: UInt64.self), asciiOnly: asciiOnly)
    }

    /// Whether any of the eight bytes in `word` is escaped: below 0x20, `"`, `\\`, or with
    /// `asciiOnly` 0x7F and above. The classic bit tricks for "a byte below n" and "a byte equal
    /// to c" (exact as to whether one exists, which is all that is asked; the bytes of a word
    /// that holds one are looked at one by one).
    @inline(__always)
    private static func holdsSpecialByte(_ word: UInt64, asciiOnly: Bool) -> Bool {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highs: UInt64 = 0x8080_8080_8080_8080
        func holdsZeroByte(_ x: UInt64) -> Bool { (x &- ones) & ~x & highs != 0 }
        // A byte below 0x20: its high bit clear, and taking 0x20 from it borrows.
        let control = (word &- ones &* 0x20) & ~word & highs != 0
        if control || holdsZeroByte(word ^ (ones &* 0x22)) || holdsZeroByte(word ^ (ones &* 0x5C)) { return true }
        // 0x7F and above: adding one sets the high bit of 0x7F, and the others have it set.
        return asciiOnly && ((word & ~highs) &+ ones | word) & highs != 0
    }

    private static func escape(_ value: UInt32, into output: inout JSONOutput) {
        let letter: UInt8
        switch value {
        case 0x22: letter = UInt8(ascii: "\"")
        case 0x5C: letter = UInt8(ascii: "\\")
        case 0x0A: letter = UInt8(ascii: "n")
        case 0x0D: letter = UInt8(ascii: "r")
        case 0x09: letter = UInt8(ascii: "t")
        case 0x08: letter = UInt8(ascii: "b")
        case 0x0C: letter = UInt8(ascii: "f")
        default:
            appendUnicodeEscape(value, into: &output)
            return
        }
        output.append(UInt8(ascii: "\\"))
        output.append(letter)
    }

    private static func appendUnicodeEscape(_ value: UInt32, into output: inout JSONOutput) {
        output.append(UInt8(ascii: "\\"))
        output.append(UInt8(ascii: "u"))
        for shift in stride(from: 12, through: 0, by: -4) {
            output.append(hexDigits.utf8Start[Int((value >> UInt32(shift)) & 0xF)])
        }
    }
}

/// The serializer's output: bytes in memory of its own, which grows by doubling. An append is
/// a capacity check and a store, where an `[UInt8]` also checks that it is uniquely referenced
/// at every append; with the three hundred-odd keys and strings of an enqueue's JSON (most of
/// them ids, names and timestamps, copied with their quotes at once) the serializer runs about
/// 38 % fewer instructions so (an Issue's 908 bytes: 35.5 K → 22.0 K). Deallocated by its owner
/// (`JSONValue.withOutput`).
struct JSONOutput {
    private(set) var base: UnsafeMutablePointer<UInt8>
    private(set) var count = 0
    private var capacity: Int
    /// Whether `base` is this output's own (allocated, deallocated by `deallocate`), or memory
    /// lent to it (`init(borrowing:)`) until it grows.
    private var owned: Bool

    /// With `capacity` 0 nothing is allocated until the first write (a `JSONSink` that builds a
    /// tree never writes).
    init(capacity: Int) {
        if capacity == 0, let nowhere = UnsafeMutablePointer<UInt8>(bitPattern: MemoryLayout<UInt8>.alignment) {
            base = nowhere  // never read: any write grows the output first
            owned = false
        } else {
            base = .allocate(capacity: Swift.max(capacity, 1))
            owned = true
        }
        self.capacity = capacity
    }

    /// Writes into `scratch` (a caller's stack buffer, say) until it is full, then into memory
    /// of its own: a short text allocates nothing but its `String`.
    init(borrowing scratch: UnsafeMutableBufferPointer<UInt8>) {
        guard let start = scratch.baseAddress else {
            self.init(capacity: 0)
            return
        }
        self.init(base: start, capacity: scratch.count)
    }

    private init(base: UnsafeMutablePointer<UInt8>, capacity: Int) {
        self.base = base
        self.capacity = capacity
        owned = false
    }

    func deallocate() { if owned { base.deallocate() } }

    /// Drops what was written from `position` on.
    mutating func truncate(to position: Int) { count = Swift.min(count, position) }

    @inline(__always)
    private mutating func reserve(_ extra: Int) {
        if capacity - count < extra { grow(toHold: extra) }
    }

    @inline(never)
    private mutating func grow(toHold extra: Int) {
        let newCapacity = Swift.max(capacity * 2, count + extra)
        let larger = UnsafeMutablePointer<UInt8>.allocate(capacity: newCapacity)
        larger.initialize(from: base, count: count)
        deallocate()
        base = larger
        capacity = newCapacity
        owned = true
    }

    @inline(__always)
    mutating func append(_ byte: UInt8) {
        reserve(1)
        base[count] = byte
        count += 1
    }

    @inline(__always)
    mutating func append(_ bytes: UnsafeBufferPointer<UInt8>) {
        guard let source = bytes.baseAddress, bytes.count > 0 else { return }
        reserve(bytes.count)
        (base + count).initialize(from: source, count: bytes.count)
        count += bytes.count
    }

    /// `bytes` between double quotes, with one check of the capacity.
    @inline(__always)
    mutating func appendQuoted(_ bytes: UnsafeBufferPointer<UInt8>) {
        reserve(bytes.count + 2)
        base[count] = UInt8(ascii: "\"")
        if let source = bytes.baseAddress { (base + count + 1).initialize(from: source, count: bytes.count) }
        base[count + 1 + bytes.count] = UInt8(ascii: "\"")
        count += bytes.count + 2
    }

    mutating func append(_ bytes: UnsafeRawBufferPointer) {
        guard let source = bytes.baseAddress, bytes.count > 0 else { return }
        reserve(bytes.count)
        UnsafeMutableRawPointer(base + count).copyMemory(from: source, byteCount: bytes.count)
        count += bytes.count
    }

    /// Up to `capacity` bytes that `body` writes in place; it returns how many it wrote.
    mutating func write(capacity: Int, _ body: (UnsafeMutableBufferPointer<UInt8>) -> Int) {
        reserve(capacity)
        count += body(UnsafeMutableBufferPointer(start: base + count, count: capacity))
    }

    mutating func append(_ text: StaticString) {
        append(UnsafeBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
    }
}

extension JSONValue: CustomStringConvertible {
    public var description: String { serialized() }
}
