/// Where a model writes its JSON: one description of its shape (`JSONWritable.write(to:)`),
/// read either as a `JSONValue` tree (`tree`) or as compact text written as it goes (`text`).
///
/// Why both: an enqueue stores its task, Issue, packet and snapshot as audit snapshots and
/// answers with the task, about 5 KB of JSON a request. Built as trees, written out and freed,
/// that JSON was about 180 K of the request thread's 600 K instructions (callgrind, the
/// forty-ninth section of docs/benchmarks.md); written straight as text it is a fraction of
/// that. The API's other answers keep their trees (`JSONValue` is what they compose), and both
/// come from the one `write(to:)` of each model, so the two forms cannot drift apart.
///
/// Text mode writes what `JSONValue.serialized()` writes for the same tree, byte for byte
/// (`JSONTests` checks both forms of the models).
public struct JSONSink: ~Copyable {
    private let writesText: Bool
    // Text mode.
    private var output: JSONOutput
    /// No member or element written yet in the innermost object or array.
    private var first = true
    /// A key was just written: the next value follows it without a comma.
    private var afterKey = false
    // Tree mode: the innermost open object's members and next key, or the innermost open array's
    // elements, kept here, and those of the containers around it saved while it is open (a flat
    // object, a Ref say, is one array of members, as its literal was). `objectBits` says of each
    // open container, innermost in bit 0, whether it is an object.
    private var members: [(String, JSONValue)] = []
    private var nextKey = ""
    private var elements: [JSONValue] = []
    private var depth = 0
    private var objectBits: UInt64 = 0
    private var outer: [Outer] = []
    private var root: JSONValue = .null

    /// A container saved while a container inside it is open.
    private enum Outer {
        case object([(String, JSONValue)], key: String)
        case array([JSONValue])
    }

    private init(text: Bool) {
        writesText = text
        output = JSONOutput(capacity: text ? 1024 : 0)  // nothing allocated for a tree
    }

    /// A text sink that writes into `scratch` until it is full.
    private init(textInto scratch: UnsafeMutableBufferPointer<UInt8>) {
        writesText = true
        output = JSONOutput(borrowing: scratch)
    }

    deinit { output.deallocate() }

    /// A sink that builds a `JSONValue`.
    public static func tree() -> JSONSink { JSONSink(text: false) }
    /// A sink that writes compact text (`JSONValue.Format.compact`).
    public static func text() -> JSONSink { JSONSink(text: true) }

    /// The tree of `value`.
    public static func tree<T: JSONWritable>(of value: T) -> JSONValue {
        var sink = JSONSink.tree()
        value.write(to: &sink)
        return sink.value()
    }

    /// The compact text of `value`, or nil when it holds the NUL character (U+0000), which no
    /// database here stores (see `JSONValue.compactTextWithoutNUL`).
    ///
    /// Written on the stack first: the text is copied into its `String` anyway, and most are a
    /// column's JSON of a few bytes or an audit row's snapshot under a kilobyte, each of which
    /// allocated and freed a kilobyte of its own (two dozen a `POST /tasks/enqueue`).
    public static func textWithoutNUL<T: JSONWritable>(of value: T) -> String? {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 1024) { scratch in
            var sink = JSONSink(textInto: scratch)
            value.write(to: &sink)
            return sink.textWithoutNUL()
        }
    }

    // MARK: - Reading the result

    /// What a tree sink built (`null` when nothing was written).
    public consuming func value() -> JSONValue {
        precondition(!writesText && depth == 0, "JSONSink: value() of a text sink or of an unfinished tree")
        return root
    }

    /// What a text sink wrote, in UTF-8 bytes.
    public consuming func bytes() -> [UInt8] {
        precondition(writesText, "JSONSink: bytes() of a tree sink")
        return Array(UnsafeBufferPointer(start: output.base, count: output.count))
    }

    /// What a text sink wrote, or nil when it holds the NUL character: the serializer writes a
    /// backslash only in escapes, so the escapes are all that is read.
    public consuming func textWithoutNUL() -> String? {
        precondition(writesText, "JSONSink: textWithoutNUL() of a tree sink")
        let text = UnsafeBufferPointer(start: output.base, count: output.count)
        guard !JSONValue.holdsEscapedNUL(text) else { return nil }
        return String(unsafeUninitializedCapacity: text.count) { buffer in
            guard let source = text.baseAddress, let target = buffer.baseAddress else { return 0 }
            target.initialize(from: source, count: text.count)
            return text.count
        }
    }

    // MARK: - Writing

    /// Before a value in text mode: the comma between elements or members.
    private mutating func separate() {
        if afterKey {
            afterKey = false
        } else if first {
            first = false
        } else {
            output.append(UInt8(ascii: ","))
        }
    }

    /// A finished value in tree mode: the root, or the next member or element of the open one.
    private mutating func place(_ value: JSONValue) {
        if depth == 0 {
            root = value
        } else if objectBits & 1 != 0 {
            members.append((nextKey, value))
        } else {
            elements.append(value)
        }
    }

    /// Tree mode: a container opens inside the current one, which is saved meanwhile.
    private mutating func open(object: Bool) {
        if depth > 0 {
            if objectBits & 1 != 0 {
                outer.append(.object(members, key: nextKey))
            } else {
                outer.append(.array(elements))
            }
        }
        precondition(depth < 64, "JSONSink: more than 64 nested objects and arrays")
        depth += 1
        objectBits = objectBits << 1 | (object ? 1 : 0)
        // A model's object has a handful of members: one allocation, as its literal had.
        if object { members = []; members.reserveCapacity(8) } else { elements = [] }
    }

    /// Tree mode: the current container closes, and the one around it is current again.
    private mutating func close() {
        depth -= 1
        objectBits >>= 1
        if depth > 0, let saved = outer.popLast() {
            switch saved {
            case .object(let savedMembers, let key):
                members = savedMembers
                nextKey = key
            case .array(let savedElements):
                elements = savedElements
            }
        }
    }

    public mutating func beginObject() { begin(object: true) }
    public mutating func endObject() { end(object: true) }
    public mutating func beginArray() { begin(object: false) }
    public mutating func endArray() { end(object: false) }

    private mutating func begin(object: Bool) {
        if writesText {
            separate()
            output.append(object ? UInt8(ascii: "{") : UInt8(ascii: "["))
            first = true
        } else {
            open(object: object)
        }
    }

    private mutating func end(object: Bool) {
        if writesText {
            output.append(object ? UInt8(ascii: "}") : UInt8(ascii: "]"))
            first = false
            return
        }
        precondition(depth > 0 && (objectBits & 1 != 0) == object, "JSONSink: an end\(object ? "Object" : "Array")() that closes nothing open")
        let value: JSONValue
        if object {
            value = .object(JSONObject(literal: members))
            members = []
        } else {
            value = .array(elements)
            elements = []
        }
        close()
        place(value)
    }

    /// The key of the next member: one of the models' own names, ASCII with nothing to escape,
    /// written as it is.
    public mutating func key(_ key: StaticString) {
        if writesText {
            if first { first = false } else { output.append(UInt8(ascii: ",")) }
            output.appendQuoted(UnsafeBufferPointer(start: key.utf8Start, count: key.utf8CodeUnitCount))
            output.append(UInt8(ascii: ":"))
            afterKey = true
        } else {
            precondition(depth > 0 && objectBits & 1 != 0, "JSONSink: key(\(key)) outside an object")
            nextKey = key.description
        }
    }

    /// A string of at most `capacity` ASCII bytes with nothing to escape, which `body` writes into
    /// the buffer it is given and whose length it returns (a timestamp): in text mode straight
    /// into the output, without a `String` made.
    public mutating func asciiString(capacity: Int, _ body: (UnsafeMutableBufferPointer<UInt8>) -> Int) {
        if writesText {
            separate()
            output.append(UInt8(ascii: "\""))
            output.write(capacity: capacity, body)
            output.append(UInt8(ascii: "\""))
        } else {
            place(.string(String(unsafeUninitializedCapacity: capacity, initializingUTF8With: body)))
        }
    }

    public mutating func null() {
        if writesText {
            separate()
            output.append("null")
        } else {
            place(.null)
        }
    }

    public mutating func bool(_ value: Bool) {
        if writesText {
            separate()
            output.append(value ? "true" : "false")
        } else {
            place(.bool(value))
        }
    }

    public mutating func int(_ value: Int) {
        if writesText {
            separate()
            JSONValue.writeInt(value, into: &output)
        } else {
            place(.int(value))
        }
    }

    public mutating func string(_ value: String) {
        if writesText {
            separate()
            JSONValue.writeString(value, into: &output, asciiOnly: false)
        } else {
            place(.string(value))
        }
    }

    /// A value that is a tree already (a dictionary of metadata, a request's inputs).
    public mutating func value(_ value: JSONValue) {
        if writesText {
            separate()
            value.write(into: &output, format: .compact, depth: 0)
        } else {
            place(value)
        }
    }

    /// `key` and `value`.
    @inlinable
    public mutating func member<T: JSONWritable>(_ key: StaticString, _ value: T) {
        self.key(key)
        value.write(to: &self)
    }
}

/// A value that describes its JSON to a `JSONSink` (see there).
public protocol JSONWritable {
    func write(to sink: inout JSONSink)
}

extension String: JSONWritable { public func write(to sink: inout JSONSink) { sink.string(self) } }
extension Int: JSONWritable { public func write(to sink: inout JSONSink) { sink.int(self) } }
extension Bool: JSONWritable { public func write(to sink: inout JSONSink) { sink.bool(self) } }
extension Double: JSONWritable { public func write(to sink: inout JSONSink) { sink.value(.double(self)) } }
extension JSONValue: JSONWritable { public func write(to sink: inout JSONSink) { sink.value(self) } }
extension JSONObject: JSONWritable { public func write(to sink: inout JSONSink) { sink.value(.object(self)) } }

extension Optional: JSONWritable where Wrapped: JSONWritable {
    /// `null` when nil.
    @inlinable
    public func write(to sink: inout JSONSink) {
        if let self { self.write(to: &sink) } else { sink.null() }
    }
}

extension Array: JSONWritable where Element: JSONWritable {
    @inlinable
    public func write(to sink: inout JSONSink) {
        sink.beginArray()
        for element in self { element.write(to: &sink) }
        sink.endArray()
    }
}
