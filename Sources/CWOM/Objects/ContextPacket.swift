import TowerJSON

/// A versioned briefing: what we know, what we assume, and the instructions.
///
/// Context packets are immutable values: nothing in the API changes one. A new version is a new
/// object with a new id (`nextVersion`).
public struct ContextPacket: CWOMModel, Hashable {
    public static let schemaName = "ContextPacket"
    public let header: ObjectHeader
    public let forIssue: Ref
    public let version: String
    public let summary: String
    public let inputs: ContextInputs
    public let assumptions: [String]
    public let openQuestions: [String]
    public let instructions: String
    public let doctrineRefs: [Ref]
    public let constraintSnapshot: Ref?
    public let tags: [String]
    public let meta: JSONObject
    public let createdAt: Timestamp
    public let updatedAt: Timestamp

    public var id: String { header.id }
    public var ref: Ref { Ref(kind: .contextPacket, id: id) }

    public init(header: ObjectHeader = ObjectHeader(), forIssue: Ref, version: String, summary: String,
        inputs: ContextInputs = ContextInputs(), assumptions: [String] = [], openQuestions: [String] = [],
        instructions: String = "", doctrineRefs: [Ref] = [], constraintSnapshot: Ref? = nil, tags: [String] = [],
        meta: JSONObject = [:], createdAt: Timestamp = .now(), updatedAt: Timestamp? = nil)
    {
        self.header = header
        self.forIssue = forIssue
        self.version = version
        self.summary = summary
        self.inputs = inputs
        self.assumptions = assumptions
        self.openQuestions = openQuestions
        self.instructions = instructions
        self.doctrineRefs = doctrineRefs
        self.constraintSnapshot = constraintSnapshot
        self.tags = tags
        self.meta = meta
        self.createdAt = createdAt
        self.updatedAt = updatedAt ?? createdAt
    }

    public init(reading r: ObjectReader) {
        header = r.header(.contextPacket)
        forIssue = r.ref("for_issue", kind: .issue)
        version = r.string("version", min: 1, max: 64)
        summary = r.string("summary", min: 1, max: 4000)
        inputs = r.model("inputs", default: ContextInputs())
        assumptions = r.strings("assumptions")
        openQuestions = r.strings("open_questions")
        instructions = r.string("instructions", max: 8000, default: "")
        doctrineRefs = r.refs("doctrine_refs", kind: .doctrineRef)
        constraintSnapshot = r.optionalRef("constraint_snapshot", kind: .constraintSnapshot)
        tags = r.strings("tags")
        meta = r.dictionary("meta")
        (createdAt, updatedAt) = r.timestamps()
    }

    /// A new packet for the same issue with a new id and `version`, taking every field that is
    /// not given from this one. This packet is left as it is.
    public func nextVersion(_ version: String, summary: String? = nil, inputs: ContextInputs? = nil,
        assumptions: [String]? = nil, openQuestions: [String]? = nil, instructions: String? = nil,
        doctrineRefs: [Ref]? = nil, constraintSnapshot: Ref?? = nil, tags: [String]? = nil,
        meta: JSONObject? = nil) -> ContextPacket
    {
        ContextPacket(
            forIssue: forIssue, version: version, summary: summary ?? self.summary, inputs: inputs ?? self.inputs,
            assumptions: assumptions ?? self.assumptions, openQuestions: openQuestions ?? self.openQuestions,
            instructions: instructions ?? self.instructions, doctrineRefs: doctrineRefs ?? self.doctrineRefs,
            constraintSnapshot: constraintSnapshot ?? self.constraintSnapshot, tags: tags ?? self.tags,
            meta: meta ?? self.meta)
    }

    public func write(to sink: inout JSONSink) {
        header.beginJSON(.contextPacket, to: &sink)
        sink.member("for_issue", forIssue)
        sink.member("version", version)
        sink.member("summary", summary)
        sink.member("inputs", inputs)
        sink.member("assumptions", assumptions)
        sink.member("open_questions", openQuestions)
        sink.member("instructions", instructions)
        sink.key("doctrine_refs")
        Ref.writeWithoutRoles(doctrineRefs, to: &sink)
        sink.key("constraint_snapshot")
        if let constraintSnapshot { constraintSnapshot.writeWithoutRole(to: &sink) } else { sink.null() }
        ObjectHeader.endJSON(tags: tags, meta: meta, createdAt: createdAt, updatedAt: updatedAt, to: &sink)
    }

    public var json: JSONValue { JSONSink.tree(of: self) }
}
