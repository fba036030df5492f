import TowerJSON

/// An output of a Run: a patch, a report, a build, a trace folder, with its digest and
/// verification.
public struct Artifact: CWOMModel, Hashable {
    public static let schemaName = "Artifact"
    public var header: ObjectHeader
    public var producedBy: Ref
    public var forIssue: Ref
    public var type: ArtifactType
    public var title: String
    public var uri: String
    public var digest: String?
    public var mediaType: String?
    public var sizeBytes: Int?
    public var preview: String?
    public var verification: Verification
    public var tags: [String]
    public var meta: JSONObject
    public var createdAt: Timestamp
    public var updatedAt: Timestamp

    public var id: String { header.id }
    public var ref: Ref { Ref(kind: .artifact, id: id) }

    public init(header: ObjectHeader = ObjectHeader(), producedBy: Ref, forIssue: Ref, type: ArtifactType,
        title: String, uri: String, digest: String? = nil, mediaType: String? = nil, sizeBytes: Int? = nil,
        preview: String? = nil, verification: Verification = Verification(), tags: [String] = [],
        meta: JSONObject = [:], createdAt: Timestamp = .now(), updatedAt: Timestamp? = nil)
    {
        self.header = header
        self.producedBy = producedBy
        self.forIssue = forIssue
        self.type = type
        self.title = title
        self.uri = uri
        self.digest = digest
        self.mediaType = mediaType
        self.sizeBytes = sizeBytes
        self.preview = preview
        self.verification = verification
        self.tags = tags
        self.meta = meta
        self.createdAt = createdAt
        self.updatedAt = updatedAt ?? createdAt
    }

    public init(reading r: ObjectReader) {
        header = r.header(.artifact)
        producedBy = r.ref("produced_by", kind: .run)
        forIssue = r.ref("for_issue", kind: .issue)
        type = r.enumeration("type")
        title = r.string("title", min: 1, max: 512)
        uri = r.string("uri", min: 1, max: 2000)
        digest = r.optionalString("digest", min: 1, max: 128)
        mediaType = r.optionalString("media_type", min: 1, max: 128)
        sizeBytes = r.optionalInt("size_bytes", min: 0)
        preview = r.optionalString("preview", max: 4000)
        verification = r.model("verification", default: Verification())
        tags = r.strings("tags")
        meta = r.dictionary("meta")
        (createdAt, updatedAt) = r.timestamps()
    }

    public func write(to sink: inout JSONSink) {
        header.beginJSON(.artifact, to: &sink)
        sink.member("produced_by", producedBy)
        sink.member("for_issue", forIssue)
        sink.member("type", type)
        sink.member("title", title)
        sink.member("uri", uri)
        sink.member("digest", digest)
        sink.member("media_type", mediaType)
        sink.member("size_bytes", sizeBytes)
        sink.member("preview", preview)
        sink.member("verification", verification)
        ObjectHeader.endJSON(tags: tags, meta: meta, createdAt: createdAt, updatedAt: updatedAt, to: &sink)
    }

    public var json: JSONValue { JSONSink.tree(of: self) }
}
