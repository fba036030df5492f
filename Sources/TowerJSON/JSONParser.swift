/// A failure to parse JSON text, reported the way Python's `json.loads` reports it: the same
/// message and the position counted in characters (Unicode scalars), so that legacy-shaped
/// `json_invalid` errors can be reproduced exactly.
public struct JSONParseError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Python's message, e.g. `Expecting value`.
    public var message: String
    /// The offset of the error in Unicode scalars from the start of the text.
    public var position: Int

    public init(message: String, position: Int) {
        self.message = message
        self.position = position
    }

    public var description: String { "\(message) (char \(position))" }
}

/// A strict JSON parser over UTF-8 bytes with Python `json.loads` semantics: duplicate keys keep
/// the last value, `NaN`/`Infinity`/`-Infinity` are accepted, control characters inside strings
/// are rejected, and integers stay integers.
public struct JSONParser {
    /// Arrays and objects nested deeper than this are refused: each level is a frame of this
    /// recursive parser, and a request body of 200,000 `[` overflowed a thread's stack and took
    /// the whole process down (the API and its worker). Foundation's decoder stops at 512 too.
    public static let maximumDepth = 512

    private let bytes: [UInt8]
    private var index = 0
    private var depth = 0

    private init(bytes: [UInt8]) { self.bytes = bytes }

    /// Parses a complete JSON document.
    public static func parse(_ text: String) throws(JSONParseError) -> JSONValue {
        try parse(bytes: Array(text.utf8))
    }

    /// Parses a complete JSON document from UTF-8 bytes. The bytes must be valid UTF-8.
    public static func parse(bytes: [UInt8]) throws(JSONParseError) -> JSONValue {
        var parser = JSONParser(bytes: bytes)
        parser.skipWhitespace()
        let value = try parser.parseValue()
        parser.skipWhitespace()
        if parser.index < bytes.count { throw parser.error("Extra data", at: parser.index) }
        return value
    }

    // MARK: - Grammar

    private mutating func parseValue() throws(JSONParseError) -> JSONValue {
        guard index < bytes.count else { throw error("Expecting value", at: index) }
        switch bytes[index] {
        case UInt8(ascii: "{"): return try parseObject()
        case UInt8(ascii: "["): return try parseArray()
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "n") where matches("null"): index += 4; return .null
        case UInt8(ascii: "t") where matches("true"): index += 4; return .bool(true)
        case UInt8(ascii: "f") where matches("false"): index += 5; return .bool(false)
        case UInt8(ascii: "N") where matches("NaN"): index += 3; return .double(.nan)
        case UInt8(ascii: "I") where matches("Infinity"): index += 8; return .double(.infinity)
        case UInt8(ascii: "-") where matches("-Infinity"): index += 9; return .double(-.infinity)
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            if let number = parseNumber() { return number }
            throw error("Expecting value", at: index)
        default:
            throw error("Expecting value", at: index)
        }
    }

    /// One level deeper, refused past `maximumDepth` (the caller steps back out when it ends).
    private mutating func enter() throws(JSONParseError) {
        depth += 1
        guard depth <= Self.maximumDepth else {
            throw error("Nested more than \(Self.maximumDepth) levels deep", at: index)
        }
    }

    private mutating func parseObject() throws(JSONParseError) -> JSONValue {
        try enter()
        defer { depth -= 1 }
        index += 1  // {
        var object = JSONObject()
        skipWhitespace()
        if peek == UInt8(ascii: "}") { index += 1; return .object(object) }
        while true {
            guard peek == UInt8(ascii: "\"") else {
                throw error("Expecting property name enclosed in double quotes", at: index)
            }
            let key = try parseString()
            skipWhitespace()
            guard peek == UInt8(ascii: ":") else { throw error("Expecting ':' delimiter", at: index) }
            index += 1
            skipWhitespace()
            object[key] = try parseValue()
            skipWhitespace()
            switch peek {
            case UInt8(ascii: "}"):
                index += 1
                return .object(object)
            case UInt8(ascii: ","):
                index += 1
                skipWhitespace()
            default:
                throw error("Expecting ',' delimiter", at: index)
            }
        }
    }

    private mutating func parseArray() throws(JSONParseError) -> JSONValue {
        try enter()
        defer { depth -= 1 }
        index += 1  // [
        var elements: [JSONValue] = []
        skipWhitespace()
        if peek == UInt8(ascii: "]") { index += 1; return .array(elements) }
        while true {
            elements.append(try parseValue())
            skipWhitespace()
            switch peek {
            case UInt8(ascii: "]"):
                index += 1
                return .array(elements)
            case UInt8(ascii: ","):
                index += 1
                skipWhitespace()
            default:
                throw error("Expecting ',' delimiter", at: index)
            }
        }
    }

    private mutating func parseString() throws(JSONParseError) -> String {
        let start = index
        index += 1  // opening quote
        // Runs of plain bytes are appended as text at once (a string without escapes, the usual
        // case, is one run); an escape appends its one scalar.
        var text = ""
        var runStart = index
        func flush(_ parser: JSONParser, upTo end: Int, into text: inout String) {
            if end > runStart { text += String(decoding: parser.bytes[runStart..<end], as: UTF8.self) }
        }
        while true {
            guard index < bytes.count else { throw error("Unterminated string starting at", at: start) }
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") {
                if text.isEmpty {
                    text = String(decoding: bytes[runStart..<index], as: UTF8.self)
                } else {
                    flush(self, upTo: index, into: &text)
                }
                index += 1
                return text
            }
            if byte < 0x20 { throw error("Invalid control character at", at: index) }
            if byte != UInt8(ascii: "\\") {
                index += 1
                continue
            }
            flush(self, upTo: index, into: &text)
            guard index + 1 < bytes.count else { throw error("Unterminated string starting at", at: start) }
            let escape = bytes[index + 1]
            switch escape {
            case UInt8(ascii: "\""): text.unicodeScalars.append("\"")
            case UInt8(ascii: "\\"): text.unicodeScalars.append("\\")
            case UInt8(ascii: "/"): text.unicodeScalars.append("/")
            case UInt8(ascii: "b"): text.unicodeScalars.append("\u{08}")
            case UInt8(ascii: "f"): text.unicodeScalars.append("\u{0C}")
            case UInt8(ascii: "n"): text.unicodeScalars.append("\n")
            case UInt8(ascii: "r"): text.unicodeScalars.append("\r")
            case UInt8(ascii: "t"): text.unicodeScalars.append("\t")
            case UInt8(ascii: "u"):
                guard let high = hex4(at: index + 2) else { throw error("Invalid \\uXXXX escape", at: index + 1) }
                var consumed = 6
                var scalarValue = high
                if (0xD800...0xDBFF).contains(high), bytes.count > index + 7,
                    bytes[index + 6] == UInt8(ascii: "\\"), bytes[index + 7] == UInt8(ascii: "u"),
                    let low = hex4(at: index + 8), (0xDC00...0xDFFF).contains(low)
                {
                    scalarValue = 0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)
                    consumed = 12
                }
                // A lone surrogate cannot live in a Swift string; it becomes U+FFFD.
                text.unicodeScalars.append(Unicode.Scalar(scalarValue) ?? "\u{FFFD}")
                index += consumed
                runStart = index
                continue
            default:
                throw error("Invalid \\escape", at: index)
            }
            index += 2
            runStart = index
        }
    }

    private func hex4(at position: Int) -> UInt32? {
        guard position + 4 <= bytes.count else { return nil }
        var value: UInt32 = 0
        for byte in bytes[position..<position + 4] {
            let digit: UInt32
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt32(byte - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt32(byte - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt32(byte - UInt8(ascii: "A") + 10)
            default: return nil
            }
            value = value * 16 + digit
        }
        return value
    }

    /// Python's number grammar: `-?(0|[1-9]\d*)(\.\d+)?([eE][-+]?\d+)?`. Returns nil (and
    /// leaves the index alone) when no number starts here.
    private mutating func parseNumber() -> JSONValue? {
        let start = index
        var cursor = index
        func isDigit(_ i: Int) -> Bool { i < bytes.count && bytes[i] >= 0x30 && bytes[i] <= 0x39 }
        if cursor < bytes.count, bytes[cursor] == UInt8(ascii: "-") { cursor += 1 }
        guard isDigit(cursor) else { return nil }
        if bytes[cursor] == UInt8(ascii: "0") {
            cursor += 1
        } else {
            while isDigit(cursor) { cursor += 1 }
        }
        var isInteger = true
        if cursor < bytes.count, bytes[cursor] == UInt8(ascii: "."), isDigit(cursor + 1) {
            isInteger = false
            cursor += 1
            while isDigit(cursor) { cursor += 1 }
        }
        if cursor < bytes.count, bytes[cursor] == UInt8(ascii: "e") || bytes[cursor] == UInt8(ascii: "E") {
            var expCursor = cursor + 1
            if expCursor < bytes.count, bytes[expCursor] == UInt8(ascii: "+") || bytes[expCursor] == UInt8(ascii: "-") {
                expCursor += 1
            }
            if isDigit(expCursor) {
                isInteger = false
                cursor = expCursor
                while isDigit(cursor) { cursor += 1 }
            }
        }
        let text = String(decoding: bytes[start..<cursor], as: UTF8.self)
        index = cursor
        if isInteger, let int = Int(text) { return .int(int) }
        return .double(Double(text) ?? .nan)
    }

    // MARK: - Helpers

    private var peek: UInt8? { index < bytes.count ? bytes[index] : nil }

    private func matches(_ literal: StaticString) -> Bool {
        let count = literal.utf8CodeUnitCount
        guard index + count <= bytes.count else { return false }
        return literal.withUTF8Buffer { buffer in
            for offset in 0..<count where bytes[index + offset] != buffer[offset] { return false }
            return true
        }
    }

    private mutating func skipWhitespace() {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x09, 0x0A, 0x0D: index += 1
            default: return
            }
        }
    }

    /// Converts a byte offset into Python's character offset.
    private func error(_ message: String, at byteOffset: Int) -> JSONParseError {
        var characters = 0
        for byte in bytes[0..<min(byteOffset, bytes.count)] where byte & 0xC0 != 0x80 { characters += 1 }
        return JSONParseError(message: message, position: characters)
    }
}
