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
        var output = ""
        write(into: &output, format: format, depth: 0)
        return output
    }

    /// The UTF-8 bytes of the JSON text.
    public func bytes(_ format: Format = .compact) -> [UInt8] {
        Array(serialized(format).utf8)
    }

    private func write(into output: inout String, format: Format, depth: Int) {
        switch self {
        case .null: output += "null"
        case .bool(let b): output += b ? "true" : "false"
        case .int(let i): output += String(i)
        case .double(let d): output += Self.formatDouble(d)
        case .string(let s): Self.writeString(s, into: &output, asciiOnly: format.asciiOnly)
        case .array(let elements):
            if elements.isEmpty { output += "[]"; return }
            output += "["
            for (offset, element) in elements.enumerated() {
                if offset > 0 { output += format.spaced && !format.pretty ? ", " : "," }
                if format.pretty { newline(into: &output, depth: depth + 1) }
                element.write(into: &output, format: format, depth: depth + 1)
            }
            if format.pretty { newline(into: &output, depth: depth) }
            output += "]"
        case .object(let object):
            if object.isEmpty { output += "{}"; return }
            output += "{"
            var first = true
            for (key, value) in object {
                if !first { output += format.spaced && !format.pretty ? ", " : "," }
                first = false
                if format.pretty { newline(into: &output, depth: depth + 1) }
                Self.writeString(key, into: &output, asciiOnly: format.asciiOnly)
                output += format.pretty || format.spaced ? ": " : ":"
                value.write(into: &output, format: format, depth: depth + 1)
            }
            if format.pretty { newline(into: &output, depth: depth) }
            output += "}"
        }
    }

    private func newline(into output: inout String, depth: Int) {
        output += "\n"
        output += String(repeating: "  ", count: depth)
    }

    /// Python's `repr(float)`: shortest round-trip digits, `1.0` for integral values,
    /// `1e+16` style exponents. JSON has no NaN or infinity; Python writes them bare.
    static func formatDouble(_ d: Double) -> String {
        if d.isNaN { return "NaN" }
        if d.isInfinite { return d < 0 ? "-Infinity" : "Infinity" }
        return d.description
    }

    private static let hexDigits = Array("0123456789abcdef")

    private static func writeString(_ s: String, into output: inout String, asciiOnly: Bool) {
        output += "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": output += "\\\""
            case "\\": output += "\\\\"
            case "\n": output += "\\n"
            case "\r": output += "\\r"
            case "\t": output += "\\t"
            case "\u{08}": output += "\\b"
            case "\u{0C}": output += "\\f"
            default:
                if scalar.value < 0x20 || (asciiOnly && scalar.value > 0x7E) {
                    if scalar.value > 0xFFFF {
                        let v = scalar.value - 0x10000
                        appendEscape(0xD800 + (v >> 10), into: &output)
                        appendEscape(0xDC00 + (v & 0x3FF), into: &output)
                    } else {
                        appendEscape(scalar.value, into: &output)
                    }
                } else {
                    output.unicodeScalars.append(scalar)
                }
            }
        }
        output += "\""
    }

    private static func appendEscape(_ value: UInt32, into output: inout String) {
        output += "\\u"
        for shift in stride(from: 12, through: 0, by: -4) {
            output.append(hexDigits[Int((value >> UInt32(shift)) & 0xF)])
        }
    }
}

extension JSONValue: CustomStringConvertible {
    public var description: String { serialized() }
}
