import Testing
import TowerJSON

@Suite("JSON text, the way Python's json module reads and writes it")
struct JSONTests {
    @Test("errors carry Python's message and character position", arguments: [
        (#"{"objective": "abc",}"#, "Expecting property name enclosed in double quotes", 20),
        ("{not json", "Expecting property name enclosed in double quotes", 1),
        ("hello world", "Expecting value", 0),
        ("", "Expecting value", 0),
        ("[1,]", "Expecting value", 3),
        (#"{"a" 1}"#, "Expecting ':' delimiter", 5),
        (#"{"a": 1 "b": 2}"#, "Expecting ',' delimiter", 8),
        (#"{"a": "x"#, "Unterminated string starting at", 6),
        ("[1] 2", "Extra data", 4),
        (#"{"é": x}"#, "Expecting value", 6),
        ("\"a\u{01}\"", "Invalid control character at", 2),
    ])
    func parseErrors(_ input: String, _ message: String, _ position: Int) {
        #expect(throws: JSONParseError(message: message, position: position)) { try JSONParser.parse(input) }
    }

    @Test("arrays and objects nest up to 512 levels; deeper is an error at the first level too many, not a stack overflow")
    func depth() throws {
        let deepest = String(repeating: "[", count: JSONParser.maximumDepth) + String(repeating: "]", count: JSONParser.maximumDepth)
        #expect(try JSONParser.parse(deepest).arrayValue?.count == 1)
        let objects = String(repeating: #"{"a":"#, count: JSONParser.maximumDepth) + "1" + String(repeating: "}", count: JSONParser.maximumDepth)
        #expect(try JSONParser.parse(objects)["a"] != nil)
        // 200,000 levels overflowed the stack before the limit; the error names where it stopped.
        for open in ["[", #"{"a":"#] {
            let text = String(repeating: open, count: 200_000)
            #expect(throws: JSONParseError(message: "Nested more than 512 levels deep", position: open.count * JSONParser.maximumDepth)) {
                try JSONParser.parse(text)
            }
        }
    }

    @Test("the first value the databases cannot both store: NUL in a text or a key, NaN or an infinity, with its path")
    func unstorable() throws {
        #expect(try JSONParser.parse(#"{"a": [1, 2.5, "x", {"b": null}], "c": true}"#).firstUnstorable() == nil)
        let nan = try #require(try JSONParser.parse(#"{"a": [1, NaN]}"#).firstUnstorable())
        #expect(nan.path == ["a", 1] && nan.value.doubleValue?.isNaN == true)
        let infinity = try #require(try JSONParser.parse(#"{"a": {"b": -Infinity}}"#).firstUnstorable())
        #expect(infinity.path == ["a", "b"] && infinity.value == .double(-.infinity))
        let text = try #require(try JSONParser.parse(#"[{"k": "a\u0000b"}]"#).firstUnstorable())
        #expect(text.path == [0, "k"] && text.value == "a\u{0}b")
        let key = try #require(JSONValue.object(["a\u{0}": 1]).firstUnstorable())
        #expect(key.path == ["a\u{0}"] && key.value == "a\u{0}")
    }

    @Test("values: integers stay integers, the last duplicate key wins, escapes decode")
    func values() throws {
        #expect(try JSONParser.parse("300") == .int(300))
        #expect(try JSONParser.parse("300.0") == .double(300))
        #expect(try JSONParser.parse("-1.5e3") == .double(-1500))
        let object = try JSONParser.parse(#"{"a": 1, "b": 2, "a": 3}"#)
        #expect(object.objectValue?.keys == ["a", "b"])
        #expect(object["a"] == .int(3))
        #expect(try JSONParser.parse(#""\u00e9\ud83d\udc4d\n""#) == .string("é👍\n"))
        #expect(try JSONParser.parse(" [true, false, null] ") == [true, false, nil])
    }

    @Test("objects keep insertion order, replace in place, remove, and compare and hash without order",
        arguments: [3, 40, 5_000])
    func objects(_ size: Int) throws {
        var object = JSONObject()
        for n in 0..<size { object["k\(n)"] = .int(n) }
        #expect(object.count == size)
        #expect(object.keys == (0..<size).map { "k\($0)" })
        object["k1"] = "replaced"
        #expect(object.keys[1] == "k1", "a replaced key keeps its place")
        #expect(object["k1"] == "replaced")
        object["k0"] = nil
        #expect(object.count == size - 1)
        #expect(object["k0"] == nil)
        #expect(object["k\(size - 1)"] == .int(size - 1), "found after a removal")
        object["k0"] = 0
        #expect(object.keys.last == "k0", "a key set again after its removal goes last")
        #expect(Array(object.map(\.key)) == object.keys)

        let reversed = JSONObject(object.reversed().map { ($0.key, $0.value) })
        #expect(reversed == object)
        #expect(reversed.hashValue == object.hashValue)
        #expect(Set([JSONValue.object(reversed), .object(object)]).count == 1)
        var different = object
        different["k2"] = .int(-2)
        #expect(different != object)
        var longer = object
        longer["extra"] = nil
        longer["extra"] = .null
        #expect(longer != object, "a key holding null is not a missing key")

        // A parsed body of many keys, duplicates included: the last value wins in the first place.
        let text = "{" + (0..<size).map { #""d\#($0 % 7)": \#($0)"# }.joined(separator: ", ") + "}"
        let parsed = try #require(try JSONParser.parse(text).objectValue)
        #expect(parsed.keys == (0..<min(7, size)).map { "d\($0)" })
        #expect(parsed["d0"] == .int((size - 1) / 7 * 7))
    }

    @Test("an object literal of many keys is searched, grown and replaced in like any other")
    func literalObjects() {
        var object: JSONObject = [
            "k0": 0, "k1": 1, "k2": 2, "k3": 3, "k4": 4, "k5": 5, "k6": 6, "k7": 7, "k8": 8, "k9": 9,
            "k10": 10, "k11": 11, "k12": 12, "k13": 13, "k14": 14, "k15": 15, "k16": 16, "k17": 17, "k18": 18, "k19": 19,
        ]
        #expect(object["k17"] == 17)
        #expect(object["k20"] == nil)
        object["k3"] = "three"
        object["k20"] = 20
        #expect(object["k3"] == "three" && object["k20"] == 20 && object["k19"] == 19)
        #expect(object.keys == (0...20).map { "k\($0)" })
        object["k0"] = nil
        #expect(object["k0"] == nil && object["k20"] == 20 && object.count == 20)
    }

    @Test("integers are written as Python writes them, the smallest and largest too")
    func integers() {
        let value: JSONValue = [0, 7, -7, 1_000_000, .int(Int.max), .int(Int.min)]
        #expect(value.serialized() == "[0,7,-7,1000000,9223372036854775807,-9223372036854775808]")
    }

    @Test("a text or key holding NUL cannot be stored; a backslash before u0000 is not a NUL")
    func nul() {
        func text(_ value: JSONValue) -> String? {
            let fromBytes = value.compactBytesWithoutNUL().map { String(decoding: $0, as: UTF8.self) }
            #expect(value.compactTextWithoutNUL() == fromBytes, "both forms agree")
            return fromBytes
        }
        #expect(text(.object(["a": "x\u{0}y"])) == nil)
        #expect(text(.object(["x\u{0}": 1])) == nil)
        #expect(text(.array(["\\", "\\u0000"])) == #"["\\","\\u0000"]"#)
        #expect(text(.string("tab\tthen \u{1}")) == #""tab\tthen \u0001""#)
    }

    @Test("serialization is compact, keeps key order and prints floats like Python")
    func serialize() {
        let value: JSONValue = ["b": 1, "a": [1.0, 1e20, 0.5], "s": "é\"\n"]
        #expect(value.serialized() == #"{"b":1,"a":[1.0,1e+20,0.5],"s":"é\"\n"}"#)
        #expect(value.serialized(.pythonLine) == #"{"b": 1, "a": [1.0, 1e+20, 0.5], "s": "\u00e9\"\n"}"#)
        #expect(JSONValue.object(["x": ["y": 1]]).serialized(.prettyASCII) == "{\n  \"x\": {\n    \"y\": 1\n  }\n}")
        #expect(JSONValue.string("👍").serialized(.prettyASCII) == #""\ud83d\udc4d""#)
        // ASCII escapes: a non-ASCII character after escapes already written, and DEL in plain text.
        #expect(JSONValue.string("a\"b\u{7F}é\n").serialized(.pythonLine) == #""a\"b\u007f\u00e9\n""#)
        #expect(JSONValue.string("x\u{7F}").serialized(.pythonLine) == #""x\u007f""#)
        #expect(JSONValue.string("x\u{7F}").serialized() == "\"x\u{7F}\"", "the compact form keeps DEL as it is")
    }

    @Test("strings are escaped the same wherever the escaped character falls in a long text")
    func escapesAtEveryPosition() {
        // Escaped one character at a time, the way the rules read (RFC 8259, Python's `json`).
        func reference(_ text: String, asciiOnly: Bool) -> String {
            var out = "\""
            for scalar in text.unicodeScalars {
                switch scalar {
                case "\"": out += "\\\""
                case "\\": out += "\\\\"
                case "\n": out += "\\n"
                case "\r": out += "\\r"
                case "\t": out += "\\t"
                case "\u{08}": out += "\\b"
                case "\u{0C}": out += "\\f"
                default:
                    if scalar.value < 0x20 || (asciiOnly && scalar.value > 0x7E) {
                        let units = scalar.value > 0xFFFF
                            ? [0xD800 + ((scalar.value - 0x10000) >> 10), 0xDC00 + ((scalar.value - 0x10000) & 0x3FF)] : [scalar.value]
                        for unit in units { out += "\\u" + String(repeating: "0", count: 4 - String(unit, radix: 16).count) + String(unit, radix: 16) }
                    } else {
                        out.unicodeScalars.append(scalar)
                    }
                }
            }
            return out + "\""
        }
        let specials: [String] = ["\"", "\\", "\n", "\u{01}", "\u{1F}", "\u{7F}", "é", "👍", " ", "~"]
        // Every length from 1 to 20: texts shorter than a word, of whole words, and with a last
        // partial word (the serializer reads 8 bytes at a time).
        for special in specials {
            for length in 1...20 {
                for position in 0..<length {
                    let text = String(repeating: "a", count: position) + special + String(repeating: "b", count: length - 1 - position)
                    #expect(JSONValue.string(text).serialized() == reference(text, asciiOnly: false), "\(special.debugDescription) at \(position) of \(length)")
                    #expect(JSONValue.string(text).serialized(.pythonLine) == reference(text, asciiOnly: true), "\(special.debugDescription) at \(position) of \(length)")
                }
            }
        }
        #expect(JSONValue.string("").serialized() == "\"\"")
    }

    @Test("a value much longer than the serializer's first buffer is written whole, its NUL found at the end")
    func longValues() {
        let items = (0..<2_000).map { "item-\($0)" }
        let value = JSONValue.array(items.map { .string($0) } + [.object(["tail": .string(String(repeating: "é\"", count: 700))])])
        let expected = "[" + items.map { "\"\($0)\"" }.joined(separator: ",") + ",{\"tail\":\"" + String(repeating: "é\\\"", count: 700) + "\"}]"
        #expect(value.serialized() == expected)
        #expect(value.compactBytesWithoutNUL() == Array(expected.utf8))
        #expect(value.compactTextWithoutNUL() == expected)
        #expect(JSONValue.array(items.map { .string($0) } + ["x\u{0}"]).compactBytesWithoutNUL() == nil)
        #expect(JSONValue.array(items.map { .string($0) } + ["x\u{0}"]).compactTextWithoutNUL() == nil)
    }
}
