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

    @Test("serialization is compact, keeps key order and prints floats like Python")
    func serialize() {
        let value: JSONValue = ["b": 1, "a": [1.0, 1e20, 0.5], "s": "é\"\n"]
        #expect(value.serialized() == #"{"b":1,"a":[1.0,1e+20,0.5],"s":"é\"\n"}"#)
        #expect(value.serialized(.pythonLine) == #"{"b": 1, "a": [1.0, 1e+20, 0.5], "s": "\u00e9\"\n"}"#)
        #expect(JSONValue.object(["x": ["y": 1]]).serialized(.prettyASCII) == "{\n  \"x\": {\n    \"y\": 1\n  }\n}")
        #expect(JSONValue.string("👍").serialized(.prettyASCII) == #""\ud83d\udc4d""#)
    }
}
