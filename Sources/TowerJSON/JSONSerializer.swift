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
        String(decoding: bytes(format), as: UTF8.self)
    }

    /// The compact JSON text as UTF-8 bytes, or nil when a string or key holds the NUL character
    /// U+0000 (see `firstNUL`): what a database driver copies into its message, with no `String`
    /// made of it first. One walk of the value: the text is written, then its escapes are read,
    /// where a NUL can only be `\u0000` (the serializer writes a backslash in escapes only).
    public func compactBytesWithoutNUL() -> [UInt8]? {
        let output = bytes(.compact)
        let holdsNUL = output.withUnsafeBufferPointer { text -> Bool in
            guard let base = text.baseAddress else { return false }
            let u = UInt8(ascii: "u"), zero = UInt8(ascii: "0")
            var index = 0
            // From one backslash to the next (`memchr`): most texts have none.
            while index < text.count, let found = memchr(base + index, Int32(UInt8(ascii: "\\")), text.count - index) {
                index = base.distance(to: found.assumingMemoryBound(to: UInt8.self))
                guard index + 1 < text.count else { return false }
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
        return holdsNUL ? nil : output
    }

    /// The UTF-8 bytes of the JSON text.
    public func bytes(_ format: Format = .compact) -> [UInt8] {
        var output: [UInt8] = []
        output.reserveCapacity(1024)  // an audit row's snapshot is 600–900 bytes: no regrowth
        write(into: &output, format: format, depth: 0)
        return output
    }

    private func write(into output: inout [UInt8], format: Format, depth: Int) {
        switch self {
        case .null: output.append(contentsOf: "null".utf8)
        case .bool(let b): output.append(contentsOf: (b ? "true" : "false").utf8)
        case .int(let i): Self.writeInt(i, into: &output)
        case .double(let d): output.append(contentsOf: Self.formatDouble(d).utf8)
        case .string(let s): Self.writeString(s, into: &output, asciiOnly: format.asciiOnly)
        case .array(let elements):
            if elements.isEmpty { output.append(contentsOf: "[]".utf8); return }
            output.append(UInt8(ascii: "["))
            for (offset, element) in elements.enumerated() {
                if offset > 0 { Self.separator(into: &output, format) }
                if format.pretty { newline(into: &output, depth: depth + 1) }
                element.write(into: &output, format: format, depth: depth + 1)
            }
            if format.pretty { newline(into: &output, depth: depth) }
            output.append(UInt8(ascii: "]"))
        case .object(let object):
            if object.isEmpty { output.append(contentsOf: "{}".utf8); return }
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
    private static func writeInt(_ value: Int, into output: inout [UInt8]) {
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
            output.append(contentsOf: buffer[start...])
        }
    }

    private static func separator(into output: inout [UInt8], _ format: Format) {
        output.append(UInt8(ascii: ","))
        if format.spaced && !format.pretty { output.append(UInt8(ascii: " ")) }
    }

    private func newline(into output: inout [UInt8], depth: Int) {
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

    private static let hexDigits = Array("0123456789abcdef".utf8)

    /// Escapes `"`, `\\` and control characters; with `asciiOnly`, every non-ASCII scalar too
    /// (as UTF-16 `\\uXXXX` escapes). Runs of plain bytes are copied at once.
    private static func writeString(_ input: String, into output: inout [UInt8], asciiOnly: Bool) {
        var text = input
        text.makeContiguousUTF8()
        output.append(UInt8(ascii: "\""))
        let start = output.count
        // One walk of the bytes: runs of plain bytes are copied at once. With `asciiOnly`, the
        // first non-ASCII byte sends the string to the scalar walk below (what was copied is
        // dropped); a separate check of every byte first was 1 % of a worker (`perf`).
        let copied =
            text.utf8.withContiguousStorageIfAvailable { buffer -> Bool in
                guard let base = buffer.baseAddress else { return true }
                let count = buffer.count
                var runStart = 0
                var index = 0
                while index < count {
                    // Eight plain bytes at a time (most of what is written holds no escape).
                    if index + 8 <= count,
                        !Self.holdsSpecialByte(UnsafeRawPointer(base + index).loadUnaligned(as: UInt64.self), asciiOnly: asciiOnly)
                    {
                        index += 8
                        continue
                    }
                    let byte = base[index]
                    let special =
                        byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") || (asciiOnly && byte >= 0x7F)
                    guard special else {
                        index += 1
                        continue
                    }
                    if asciiOnly && byte >= 0x80 { return false }
                    output.append(contentsOf: UnsafeBufferPointer(start: base + runStart, count: index - runStart))
                    escape(UInt32(byte), into: &output)
                    index += 1
                    runStart = index
                }
                output.append(contentsOf: UnsafeBufferPointer(start: base + runStart, count: count - runStart))
                return true
            } ?? false
        if !copied {
            output.removeSubrange(start...)
            for scalar in text.unicodeScalars {
                let escaped = scalar.value < 0x20 || scalar == "\"" || scalar == "\\" || (asciiOnly && scalar.value > 0x7E)
                if !escaped {
                    output.append(contentsOf: String(scalar).utf8)
                } else if scalar.value > 0xFFFF {
                    let v = scalar.value - 0x10000
                    appendUnicodeEscape(0xD800 + (v >> 10), into: &output)
                    appendUnicodeEscape(0xDC00 + (v & 0x3FF), into: &output)
                } else {
                    escape(scalar.value, into: &output)
                }
            }
        }
        output.append(UInt8(ascii: "\""))
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

    private static func escape(_ value: UInt32, into output: inout [UInt8]) {
        switch value {
        case 0x22: output.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\"")])
        case 0x5C: output.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\\")])
        case 0x0A: output.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "n")])
        case 0x0D: output.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "r")])
        case 0x09: output.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "t")])
        case 0x08: output.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "b")])
        case 0x0C: output.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "f")])
        default: appendUnicodeEscape(value, into: &output)
        }
    }

    private static func appendUnicodeEscape(_ value: UInt32, into output: inout [UInt8]) {
        output.append(UInt8(ascii: "\\"))
        output.append(UInt8(ascii: "u"))
        for shift in stride(from: 12, through: 0, by: -4) {
            output.append(hexDigits[Int((value >> UInt32(shift)) & 0xF)])
        }
    }
}

extension JSONValue: CustomStringConvertible {
    public var description: String { serialized() }
}
