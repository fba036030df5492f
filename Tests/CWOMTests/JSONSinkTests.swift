import CWOM
import Testing
import TowerJSON

@Suite("A model's JSON described once, read as a tree or written as text")
struct JSONSinkTests {
    /// Strings that take each path of the text writer: plain, escaped, non-ASCII, long.
    static let awkward = "quote \" backslash \\ newline \n tab \t bell \u{07} é 日本 🚀 " + String(repeating: "x", count: 300)

    @Test("every CWOM object's text is its tree serialized, byte for byte, also with escapes and non-ASCII text")
    func textIsTheTreeSerialized() throws {
        for (type, fixture) in Fixtures.all {
            for json in [fixture, fixture.setting(path("meta"), to: ["note": .string(Self.awkward)])] {
                let model = try decodeAny(type, json)
                let text = JSONSink.textWithoutNUL(of: model)
                #expect(text == model.json.serialized(), "\(type.schemaName)")
            }
        }
        var issue = try Issue.decode(Fixtures.issue)
        issue.title = Self.awkward
        issue.description = ""
        issue.assignees = []
        #expect(JSONSink.textWithoutNUL(of: issue) == issue.json.serialized())
    }

    @Test("a text longer than the buffer it is first written in (a kilobyte on the stack) is written whole, escapes across the boundary included")
    func textPastItsFirstBuffer() throws {
        for length in [1_000, 1_023, 1_024, 1_025, 5_000, 70_000] {
            var issue = try Issue.decode(Fixtures.issue)
            issue.description = String(repeating: "y\"é", count: length / 3)
            let text = try #require(JSONSink.textWithoutNUL(of: issue))
            #expect(text == issue.json.serialized(), "description of \(length) characters")
        }
    }

    @Test("nested objects and arrays, empty ones and nulls are written as the tree serializes them")
    func shapes() {
        struct Valid: JSONWritable {
            func write(to sink: inout JSONSink) {
                sink.beginObject()
                sink.member("empty_object", JSONObject())
                sink.key("nested")
                sink.beginArray()
                sink.beginObject()
                sink.endObject()
                sink.beginArray()
                sink.endArray()
                sink.null()
                sink.beginObject()
                sink.member("inner", "value")
                sink.endObject()
                sink.endArray()
                sink.member("numbers", [1, -2, Int.max, Int.min])
                sink.member("flags", [true, false])
                sink.member("double", 1.5)
                sink.member("tree", ["a": [1, 2], "b": .null] as JSONValue)
                sink.member("strings", ["", JSONSinkTests.awkward])
                sink.endObject()
            }
        }
        let tree = JSONSink.tree(of: Valid())
        #expect(
            tree
                == [
                    "empty_object": [:], "nested": [[:], [], .null, ["inner": "value"]], "numbers": [1, -2, .int(Int.max), .int(Int.min)],
                    "flags": [true, false], "double": 1.5, "tree": ["a": [1, 2], "b": .null], "strings": ["", .string(Self.awkward)],
                ])
        #expect(JSONSink.textWithoutNUL(of: Valid()) == tree.serialized())
        var text = JSONSink.text()
        Valid().write(to: &text)
        #expect(text.bytes() == tree.bytes())
    }

    @Test("a text holding NUL is no text (no database here stores it); its tree keeps it")
    func nul() throws {
        var packet = try ContextPacket.decode(Fixtures.contextPacket.setting(path("instructions"), to: "before\u{0}after"))
        #expect(JSONSink.textWithoutNUL(of: packet) == nil)
        #expect(JSONSink.tree(of: packet)["instructions"] == .string("before\u{0}after"))
        packet = try ContextPacket.decode(Fixtures.contextPacket.setting(path("instructions"), to: #"a backslash before u0000 is no NUL: \u0000"#))
        #expect(JSONSink.textWithoutNUL(of: packet) == packet.json.serialized())
    }
}
