import TowerJSON

// The primitives of CWOM v0.1 (reference §5.2). Every one rejects unknown keys; bounds are
// lengths in Unicode scalars, as Python counts them.

/// Who acts: a person, an agent or the system.
public struct Actor: CWOMModel, Hashable {
    public static let schemaName = "Actor"
    public var actorKind: ActorKind
    public var actorId: String
    public var display: String?

    public init(kind: ActorKind, id: String, display: String? = nil) {
        self.actorKind = kind
        self.actorId = id
        self.display = display
    }

    public init(reading r: ObjectReader) {
        actorKind = r.enumeration("actor_kind")
        actorId = r.string("actor_id", min: 1, max: 128)
        display = r.optionalString("display", min: 1, max: 256)
    }

    public func write(to sink: inout JSONSink) {
        sink.beginObject()
        sink.member("actor_kind", actorKind)
        sink.member("actor_id", actorId)
        sink.member("display", display)
        sink.endObject()
    }

    public var json: JSONValue { JSONSink.tree(of: self) }
}

/// Where an object comes from in an external system.
public struct Source: CWOMModel, Hashable {
    public static let schemaName = "Source"
    public var system: String
    public var externalId: String?
    public var url: String?

    public init(system: String, externalId: String? = nil, url: String? = nil) {
        self.system = system
        self.externalId = externalId
        self.url = url
    }

    public init(reading r: ObjectReader) {
        system = r.string("system", min: 1, max: 64)
        externalId = r.optionalString("external_id", min: 1, max: 256)
        url = r.optionalString("url", min: 1, max: 2000)
    }

    public func write(to sink: inout JSONSink) {
        sink.beginObject()
        sink.member("system", system)
        sink.member("external_id", externalId)
        sink.member("url", url)
        sink.endObject()
    }

    public var json: JSONValue { JSONSink.tree(of: self) }
}

/// A typed pointer to another CWOM object.
public struct Ref: CWOMModel, Hashable {
    public static let schemaName = "Ref"
    public var kind: ObjectKind
    public var id: String
    public var role: String?

    public init(kind: ObjectKind, id: String, role: String? = nil) {
        self.kind = kind
        self.id = id
        self.role = role
    }

    public init(reading r: ObjectReader) {
        kind = r.enumeration("kind")
        id = r.string("id", min: 1, max: 128)
        role = r.optionalString("role", min: 1, max: 64)
    }

    public func write(to sink: inout JSONSink) { write(to: &sink, role: true) }

    /// `{kind, id}`: how refs read from join tables are shown (they have no role).
    public func writeWithoutRole(to sink: inout JSONSink) { write(to: &sink, role: false) }

    private func write(to sink: inout JSONSink, role withRole: Bool) {
        sink.beginObject()
        sink.member("kind", kind)
        sink.member("id", id)
        if withRole { sink.member("role", role) }
        sink.endObject()
    }

    public var json: JSONValue { JSONSink.tree(of: self) }

    /// `{kind, id}` (see `writeWithoutRole`).
    public var jsonWithoutRole: JSONValue {
        var sink = JSONSink.tree()
        writeWithoutRole(to: &sink)
        return sink.value()
    }

    /// Refs without their roles, as a JSON array (see `writeWithoutRole`).
    public static func writeWithoutRoles(_ refs: [Ref], to sink: inout JSONSink) {
        sink.beginArray()
        for ref in refs { ref.writeWithoutRole(to: &sink) }
        sink.endArray()
    }
}

public struct Document: CWOMModel, Hashable {
    public static let schemaName = "Document"
    public var title: String
    public var uri: String
    public var digest: String?
    public var excerpt: String?

    public init(title: String, uri: String, digest: String? = nil, excerpt: String? = nil) {
        self.title = title
        self.uri = uri
        self.digest = digest
        self.excerpt = excerpt
    }

    public init(reading r: ObjectReader) {
        title = r.string("title", min: 1, max: 256)
        uri = r.string("uri", min: 1, max: 2000)
        digest = r.optionalString("digest", min: 1, max: 128)
        excerpt = r.optionalString("excerpt", max: 4000)
    }

    public func write(to sink: inout JSONSink) {
        sink.beginObject()
        sink.member("title", title)
        sink.member("uri", uri)
        sink.member("digest", digest)
        sink.member("excerpt", excerpt)
        sink.endObject()
    }

    public var json: JSONValue { JSONSink.tree(of: self) }
}

/// Data handed to a run, by reference (`uri`) or inline. One of the two must be present.
public struct DataBlob: CWOMModel, Hashable {
    public static let schemaName = "DataBlob"
    public var name: String
    public var mediaType: String
    public var uri: String?
    public var inline: String?
    public var digest: String?

    public init(name: String, mediaType: String, uri: String? = nil, inline: String? = nil, digest: String? = nil) {
        self.name = name
        self.mediaType = mediaType
        self.uri = uri
        self.inline = inline
        self.digest = digest
    }

    public init(reading r: ObjectReader) {
        name = r.string("name", min: 1, max: 256)
        mediaType = r.string("media_type", min: 1, max: 128)
        uri = r.optionalString("uri", min: 1, max: 2000)
        inline = r.optionalString("inline")
        digest = r.optionalString("digest", min: 1, max: 128)
        r.check(uri != nil || inline != nil, "a DataBlob needs 'uri' or 'inline'")
    }

    public func write(to sink: inout JSONSink) {
        sink.beginObject()
        sink.member("name", name)
        sink.member("media_type", mediaType)
        sink.member("uri", uri)
        sink.member("inline", inline)
        sink.member("digest", digest)
        sink.endObject()
    }

    public var json: JSONValue { JSONSink.tree(of: self) }
}

public struct VerificationCheck: CWOMModel, Hashable {
    public static let schemaName = "VerificationCheck"
    public var name: String
    public var status: CheckStatus
    public var evidenceUri: String?

    public init(name: String, status: CheckStatus, evidenceUri: String? = nil) {
        self.name = name
        self.status = status
        self.evidenceUri = evidenceUri
    }

    public init(reading r: ObjectReader) {
        name = r.string("name", min: 1, max: 128)
        status = r.enumeration("status")
        evidenceUri = r.optionalString("evidence_uri", min: 1, max: 2000)
    }

    public func write(to sink: inout JSONSink) {
        sink.beginObject()
        sink.member("name", name)
        sink.member("status", status)
        sink.member("evidence_uri", evidenceUri)
        sink.endObject()
    }

    public var json: JSONValue { JSONSink.tree(of: self) }
}

public struct TimeConstraint: CWOMModel, Hashable {
    public static let schemaName = "TimeConstraint"
    public var availableMinutes: Int?
    public var deadline: Timestamp?

    public init(availableMinutes: Int? = nil, deadline: Timestamp? = nil) {
        self.availableMinutes = availableMinutes
        self.deadline = deadline
    }

    public init(reading r: ObjectReader) {
        availableMinutes = r.optionalInt("available_minutes", min: 0)
        deadline = r.optionalTimestamp("deadline")
    }

    public func write(to sink: inout JSONSink) {
        sink.beginObject()
        sink.member("available_minutes", availableMinutes)
        sink.member("deadline", deadline)
        sink.endObject()
    }

    public var json: JSONValue { JSONSink.tree(of: self) }
}

public struct EnergyConstraint: CWOMModel, Hashable {
    public static let schemaName = "EnergyConstraint"
    public var score0To5: Int?
    public var notes: String?

    public init(score0To5: Int? = nil, notes: String? = nil) {
        self.score0To5 = score0To5
        self.notes = notes
    }

    public init(reading r: ObjectReader) {
        score0To5 = r.optionalInt("score_0_5", min: 0, max: 5)
        notes = r.optionalString("notes", max: 500)
    }

    public func write(to sink: inout JSONSink) {
        sink.beginObject()
        sink.member("score_0_5", score0To5)
        sink.member("notes", notes)
        sink.endObject()
    }

    public var json: JSONValue { JSONSink.tree(of: self) }
}

public struct HealthConstraint: CWOMModel, Hashable {
    public static let schemaName = "HealthConstraint"
    public var flags: [String]
    public var notes: String?

    public init(flags: [String] = [], notes: String? = nil) {
        self.flags = flags
        self.notes = notes
    }

    public init(reading r: ObjectReader) {
        flags = r.strings("flags")
        notes = r.optionalString("notes", max: 500)
    }

    public func write(to sink: inout JSONSink) {
        sink.beginObject()
        sink.member("flags", flags)
        sink.member("notes", notes)
        sink.endObject()
    }

    public var json: JSONValue { JSONSink.tree(of: self) }
}

public struct BudgetConstraint: CWOMModel, Hashable {
    public static let schemaName = "BudgetConstraint"
    public var usdAvailable: Double?
    public var burnLimitUsd: Double?

    public init(usdAvailable: Double? = nil, burnLimitUsd: Double? = nil) {
        self.usdAvailable = usdAvailable
        self.burnLimitUsd = burnLimitUsd
    }

    public init(reading r: ObjectReader) {
        usdAvailable = r.optionalDouble("usd_available", min: 0)
        burnLimitUsd = r.optionalDouble("burn_limit_usd", min: 0)
    }

    public func write(to sink: inout JSONSink) {
        sink.beginObject()
        sink.member("usd_available", usdAvailable)
        sink.member("burn_limit_usd", burnLimitUsd)
        sink.endObject()
    }

    public var json: JSONValue { JSONSink.tree(of: self) }
}

public struct ToolsConstraint: CWOMModel, Hashable {
    public static let schemaName = "ToolsConstraint"
    public var allowed: [String]
    public var blocked: [String]

    public init(allowed: [String] = [], blocked: [String] = []) {
        self.allowed = allowed
        self.blocked = blocked
    }

    public init(reading r: ObjectReader) {
        allowed = r.strings("allowed")
        blocked = r.strings("blocked")
    }

    public func write(to sink: inout JSONSink) {
        sink.beginObject()
        sink.member("allowed", allowed)
        sink.member("blocked", blocked)
        sink.endObject()
    }

    public var json: JSONValue { JSONSink.tree(of: self) }
}

public struct EnvironmentConstraint: CWOMModel, Hashable {
    public static let schemaName = "EnvironmentConstraint"
    public var location: String?
    public var connectivity: Connectivity
    public var device: String?

    public init(location: String? = nil, connectivity: Connectivity = .ok, device: String? = nil) {
        self.location = location
        self.connectivity = connectivity
        self.device = device
    }

    public init(reading r: ObjectReader) {
        location = r.optionalString("location", max: 128)
        connectivity = r.enumeration("connectivity", default: .ok)
        device = r.optionalString("device", max: 128)
    }

    public func write(to sink: inout JSONSink) {
        sink.beginObject()
        sink.member("location", location)
        sink.member("connectivity", connectivity)
        sink.member("device", device)
        sink.endObject()
    }

    public var json: JSONValue { JSONSink.tree(of: self) }
}

public struct RiskConstraint: CWOMModel, Hashable {
    public static let schemaName = "RiskConstraint"
    public var tolerance: RiskTolerance
    public var notes: String?

    public init(tolerance: RiskTolerance = .medium, notes: String? = nil) {
        self.tolerance = tolerance
        self.notes = notes
    }

    public init(reading r: ObjectReader) {
        tolerance = r.enumeration("tolerance", default: .medium)
        notes = r.optionalString("notes", max: 500)
    }

    public func write(to sink: inout JSONSink) {
        sink.beginObject()
        sink.member("tolerance", tolerance)
        sink.member("notes", notes)
        sink.endObject()
    }

    public var json: JSONValue { JSONSink.tree(of: self) }
}

/// The operating envelope captured by a ConstraintSnapshot.
public struct Constraints: CWOMModel, Hashable {
    public static let schemaName = "Constraints"
    public var time: TimeConstraint?
    public var energy: EnergyConstraint?
    public var health: HealthConstraint?
    public var budget: BudgetConstraint?
    public var tools: ToolsConstraint?
    public var environment: EnvironmentConstraint?
    public var risk: RiskConstraint?

    public init(time: TimeConstraint? = nil, energy: EnergyConstraint? = nil, health: HealthConstraint? = nil,
        budget: BudgetConstraint? = nil, tools: ToolsConstraint? = nil, environment: EnvironmentConstraint? = nil,
        risk: RiskConstraint? = nil)
    {
        self.time = time
        self.energy = energy
        self.health = health
        self.budget = budget
        self.tools = tools
        self.environment = environment
        self.risk = risk
    }

    public init(reading r: ObjectReader) {
        time = r.optionalModel("time", TimeConstraint.self)
        energy = r.optionalModel("energy", EnergyConstraint.self)
        health = r.optionalModel("health", HealthConstraint.self)
        budget = r.optionalModel("budget", BudgetConstraint.self)
        tools = r.optionalModel("tools", ToolsConstraint.self)
        environment = r.optionalModel("environment", EnvironmentConstraint.self)
        risk = r.optionalModel("risk", RiskConstraint.self)
    }

    public func write(to sink: inout JSONSink) {
        sink.beginObject()
        sink.member("time", time)
        sink.member("energy", energy)
        sink.member("health", health)
        sink.member("budget", budget)
        sink.member("tools", tools)
        sink.member("environment", environment)
        sink.member("risk", risk)
        sink.endObject()
    }

    public var json: JSONValue { JSONSink.tree(of: self) }
}

public struct Acceptance: CWOMModel, Hashable {
    public static let schemaName = "Acceptance"
    public var criteria: [String]
    public var testsExpected: [String]?

    public init(criteria: [String] = [], testsExpected: [String]? = nil) {
        self.criteria = criteria
        self.testsExpected = testsExpected
    }

    public init(reading r: ObjectReader) {
        criteria = r.strings("criteria")
        testsExpected = r.optionalStrings("tests_expected")
    }

    public func write(to sink: inout JSONSink) {
        sink.beginObject()
        sink.member("criteria", criteria)
        sink.member("tests_expected", testsExpected)
        sink.endObject()
    }

    public var json: JSONValue { JSONSink.tree(of: self) }
}

/// How an Issue relates to other Issues. Every ref here must be an Issue ref.
public struct IssueRelationships: CWOMModel, Hashable {
    public static let schemaName = "IssueRelationships"
    public var parent: Ref?
    public var blocks: [Ref]
    public var blockedBy: [Ref]
    public var duplicates: [Ref]

    public init(parent: Ref? = nil, blocks: [Ref] = [], blockedBy: [Ref] = [], duplicates: [Ref] = []) {
        self.parent = parent
        self.blocks = blocks
        self.blockedBy = blockedBy
        self.duplicates = duplicates
    }

    public init(reading r: ObjectReader) {
        parent = r.optionalRef("parent", kind: .issue)
        blocks = r.refs("blocks", kind: .issue)
        blockedBy = r.refs("blocked_by", kind: .issue)
        duplicates = r.refs("duplicates", kind: .issue)
    }

    public func write(to sink: inout JSONSink) {
        sink.beginObject()
        sink.member("parent", parent)
        sink.member("blocks", blocks)
        sink.member("blocked_by", blockedBy)
        sink.member("duplicates", duplicates)
        sink.endObject()
    }

    public var json: JSONValue { JSONSink.tree(of: self) }
}

/// Who or what executes a Run.
public struct Executor: CWOMModel, Hashable {
    public static let schemaName = "Executor"
    public var actor: Actor
    public var runtime: String
    public var toolchain: [String]

    public init(actor: Actor, runtime: String, toolchain: [String] = []) {
        self.actor = actor
        self.runtime = runtime
        self.toolchain = toolchain
    }

    public init(reading r: ObjectReader) {
        actor = r.model("actor", Actor.self)
        runtime = r.string("runtime", min: 1, max: 64)
        toolchain = r.strings("toolchain")
    }

    public func write(to sink: inout JSONSink) {
        sink.beginObject()
        sink.member("actor", actor)
        sink.member("runtime", runtime)
        sink.member("toolchain", toolchain)
        sink.endObject()
    }

    public var json: JSONValue { JSONSink.tree(of: self) }
}

public struct RunPlan: CWOMModel, Hashable {
    public static let schemaName = "RunPlan"
    public var steps: [String]
    public var riskNotes: [String]

    public init(steps: [String] = [], riskNotes: [String] = []) {
        self.steps = steps
        self.riskNotes = riskNotes
    }

    public init(reading r: ObjectReader) {
        steps = r.strings("steps")
        riskNotes = r.strings("risk_notes")
    }

    public func write(to sink: inout JSONSink) {
        sink.beginObject()
        sink.member("steps", steps)
        sink.member("risk_notes", riskNotes)
        sink.endObject()
    }

    public var json: JSONValue { JSONSink.tree(of: self) }
}

/// When a Run started and ended. `ended_at` is never before `started_at`.
public struct Telemetry: CWOMModel, Hashable {
    public static let schemaName = "Telemetry"
    public var startedAt: Timestamp?
    public var endedAt: Timestamp?
    public var durationS: Double?

    public init(startedAt: Timestamp? = nil, endedAt: Timestamp? = nil, durationS: Double? = nil) {
        self.startedAt = startedAt
        self.endedAt = endedAt
        self.durationS = durationS
    }

    public init(reading r: ObjectReader) {
        startedAt = r.optionalTimestamp("started_at")
        endedAt = r.optionalTimestamp("ended_at")
        durationS = r.optionalDouble("duration_s", min: 0)
        if let startedAt, let endedAt {
            r.check(endedAt >= startedAt, at: "ended_at", "ended_at must not be before started_at")
        }
    }

    public func write(to sink: inout JSONSink) {
        sink.beginObject()
        sink.member("started_at", startedAt)
        sink.member("ended_at", endedAt)
        sink.member("duration_s", durationS)
        sink.endObject()
    }

    public var json: JSONValue { JSONSink.tree(of: self) }
}

public struct Cost: CWOMModel, Hashable {
    public static let schemaName = "Cost"
    public var usd: Double?
    public var tokens: Int?
    public var computeS: Double?

    public init(usd: Double? = nil, tokens: Int? = nil, computeS: Double? = nil) {
        self.usd = usd
        self.tokens = tokens
        self.computeS = computeS
    }

    public init(reading r: ObjectReader) {
        usd = r.optionalDouble("usd", min: 0)
        tokens = r.optionalInt("tokens", min: 0)
        computeS = r.optionalDouble("compute_s", min: 0)
    }

    public func write(to sink: inout JSONSink) {
        sink.beginObject()
        sink.member("usd", usd)
        sink.member("tokens", tokens)
        sink.member("compute_s", computeS)
        sink.endObject()
    }

    public var json: JSONValue { JSONSink.tree(of: self) }
}

public struct RunOutputs: CWOMModel, Hashable {
    public static let schemaName = "RunOutputs"
    public var artifacts: [Ref]
    public var resultSummary: String?
    public var decisionLog: [String]

    public init(artifacts: [Ref] = [], resultSummary: String? = nil, decisionLog: [String] = []) {
        self.artifacts = artifacts
        self.resultSummary = resultSummary
        self.decisionLog = decisionLog
    }

    public init(reading r: ObjectReader) {
        artifacts = r.refs("artifacts", kind: .artifact)
        resultSummary = r.optionalString("result_summary", max: 4000)
        decisionLog = r.strings("decision_log")
    }

    public func write(to sink: inout JSONSink) {
        sink.beginObject()
        sink.member("artifacts", artifacts)
        sink.member("result_summary", resultSummary)
        sink.member("decision_log", decisionLog)
        sink.endObject()
    }

    public var json: JSONValue { JSONSink.tree(of: self) }
}

/// Why a Run failed.
public struct Failure: CWOMModel, Hashable {
    public static let schemaName = "Failure"
    public var category: FailureCategory
    public var message: String

    public init(category: FailureCategory, message: String) {
        self.category = category
        self.message = message
    }

    public init(reading r: ObjectReader) {
        category = r.enumeration("category", literal: true)
        message = r.string("message", min: 1, max: 4000)
    }

    public func write(to sink: inout JSONSink) {
        sink.beginObject()
        sink.member("category", category)
        sink.member("message", message)
        sink.endObject()
    }

    public var json: JSONValue { JSONSink.tree(of: self) }
}

public struct Verification: CWOMModel, Hashable {
    public static let schemaName = "Verification"
    public var status: VerificationStatus
    public var checks: [VerificationCheck]

    public init(status: VerificationStatus = .unverified, checks: [VerificationCheck] = []) {
        self.status = status
        self.checks = checks
    }

    public init(reading r: ObjectReader) {
        status = r.enumeration("status", default: .unverified)
        checks = r.models("checks", VerificationCheck.self)
    }

    public func write(to sink: inout JSONSink) {
        sink.beginObject()
        sink.member("status", status)
        sink.member("checks", checks)
        sink.endObject()
    }

    public var json: JSONValue { JSONSink.tree(of: self) }
}

public struct RepoPolicy: CWOMModel, Hashable {
    public static let schemaName = "RepoPolicy"
    public var allowedTools: [String]
    public var secretsProfile: String?

    public init(allowedTools: [String] = [], secretsProfile: String? = nil) {
        self.allowedTools = allowedTools
        self.secretsProfile = secretsProfile
    }

    public init(reading r: ObjectReader) {
        allowedTools = r.strings("allowed_tools")
        secretsProfile = r.optionalString("secrets_profile", max: 64)
    }

    public func write(to sink: inout JSONSink) {
        sink.beginObject()
        sink.member("allowed_tools", allowedTools)
        sink.member("secrets_profile", secretsProfile)
        sink.endObject()
    }

    public var json: JSONValue { JSONSink.tree(of: self) }
}

public struct DoctrineApplicability: CWOMModel, Hashable {
    public static let schemaName = "DoctrineApplicability"
    public var repoRefs: [Ref]
    public var issueTypes: [String]
    public var tags: [String]

    public init(repoRefs: [Ref] = [], issueTypes: [String] = [], tags: [String] = []) {
        self.repoRefs = repoRefs
        self.issueTypes = issueTypes
        self.tags = tags
    }

    public init(reading r: ObjectReader) {
        repoRefs = r.refs("repo_refs", kind: .repo)
        issueTypes = r.strings("issue_types")
        tags = r.strings("tags")
    }

    public func write(to sink: inout JSONSink) {
        sink.beginObject()
        sink.member("repo_refs", repoRefs)
        sink.member("issue_types", issueTypes)
        sink.member("tags", tags)
        sink.endObject()
    }

    public var json: JSONValue { JSONSink.tree(of: self) }
}

public struct ContextInputs: CWOMModel, Hashable {
    public static let schemaName = "ContextInputs"
    public var documents: [Document]
    public var dataBlobs: [DataBlob]
    public var links: [String]

    public init(documents: [Document] = [], dataBlobs: [DataBlob] = [], links: [String] = []) {
        self.documents = documents
        self.dataBlobs = dataBlobs
        self.links = links
    }

    public init(reading r: ObjectReader) {
        documents = r.models("documents", Document.self)
        dataBlobs = r.models("data_blobs", DataBlob.self)
        links = r.strings("links")
    }

    public func write(to sink: inout JSONSink) {
        sink.beginObject()
        sink.member("documents", documents)
        sink.member("data_blobs", dataBlobs)
        sink.member("links", links)
        sink.endObject()
    }

    public var json: JSONValue { JSONSink.tree(of: self) }
}

/// What a Run is pinned to: context packet versions, doctrine and one constraint snapshot.
public struct RunInputs: CWOMModel, Hashable {
    public static let schemaName = "RunInputs"
    public var contextPackets: [Ref]
    public var doctrineRefs: [Ref]
    public var constraintSnapshot: Ref?

    public init(contextPackets: [Ref] = [], doctrineRefs: [Ref] = [], constraintSnapshot: Ref? = nil) {
        self.contextPackets = contextPackets
        self.doctrineRefs = doctrineRefs
        self.constraintSnapshot = constraintSnapshot
    }

    public init(reading r: ObjectReader) {
        contextPackets = r.refs("context_packets", kind: .contextPacket)
        doctrineRefs = r.refs("doctrine_refs", kind: .doctrineRef)
        constraintSnapshot = r.optionalRef("constraint_snapshot", kind: .constraintSnapshot)
    }

    public func write(to sink: inout JSONSink) {
        sink.beginObject()
        sink.member("context_packets", contextPackets)
        sink.member("doctrine_refs", doctrineRefs)
        sink.member("constraint_snapshot", constraintSnapshot)
        sink.endObject()
    }

    public var json: JSONValue { JSONSink.tree(of: self) }
}

public struct CriterionResult: CWOMModel, Hashable {
    public static let schemaName = "CriterionResult"
    public var criterion: String
    public var index: Int
    public var status: CriterionStatus
    public var reason: String?
    public var evidenceRefs: [String]

    public init(criterion: String, index: Int, status: CriterionStatus, reason: String? = nil,
        evidenceRefs: [String] = [])
    {
        self.criterion = criterion
        self.index = index
        self.status = status
        self.reason = reason
        self.evidenceRefs = evidenceRefs
    }

    public init(reading r: ObjectReader) {
        criterion = r.string("criterion")
        index = r.requiredInt("index", min: 0)
        status = r.enumeration("status")
        reason = r.optionalString("reason")
        evidenceRefs = r.strings("evidence_refs")
    }

    public func write(to sink: inout JSONSink) {
        sink.beginObject()
        sink.member("criterion", criterion)
        sink.member("index", index)
        sink.member("status", status)
        sink.member("reason", reason)
        sink.member("evidence_refs", evidenceRefs)
        sink.endObject()
    }

    public var json: JSONValue { JSONSink.tree(of: self) }
}

public struct EvidenceItem: CWOMModel, Hashable {
    public static let schemaName = "EvidenceItem"
    public var requirement: String
    public var index: Int
    public var found: Bool
    public var artifactUri: String?
    public var artifactType: String?
    public var notes: String?

    public init(requirement: String, index: Int, found: Bool, artifactUri: String? = nil,
        artifactType: String? = nil, notes: String? = nil)
    {
        self.requirement = requirement
        self.index = index
        self.found = found
        self.artifactUri = artifactUri
        self.artifactType = artifactType
        self.notes = notes
    }

    public init(reading r: ObjectReader) {
        requirement = r.string("requirement")
        index = r.requiredInt("index", min: 0)
        found = r.requiredBool("found")
        artifactUri = r.optionalString("artifact_uri")
        artifactType = r.optionalString("artifact_type")
        notes = r.optionalString("notes")
    }

    public func write(to sink: inout JSONSink) {
        sink.beginObject()
        sink.member("requirement", requirement)
        sink.member("index", index)
        sink.member("found", found)
        sink.member("artifact_uri", artifactUri)
        sink.member("artifact_type", artifactType)
        sink.member("notes", notes)
        sink.endObject()
    }

    public var json: JSONValue { JSONSink.tree(of: self) }
}

public struct CriterionOverride: CWOMModel, Hashable {
    public static let schemaName = "CriterionOverride"
    public var criterionIndex: Int
    public var originalStatus: CriterionStatus
    public var overrideStatus: CriterionStatus
    public var reason: String

    public init(criterionIndex: Int, originalStatus: CriterionStatus, overrideStatus: CriterionStatus,
        reason: String)
    {
        self.criterionIndex = criterionIndex
        self.originalStatus = originalStatus
        self.overrideStatus = overrideStatus
        self.reason = reason
    }

    public init(reading r: ObjectReader) {
        criterionIndex = r.requiredInt("criterion_index", min: 0)
        originalStatus = r.enumeration("original_status")
        overrideStatus = r.enumeration("override_status")
        reason = r.string("reason")
    }

    public func write(to sink: inout JSONSink) {
        sink.beginObject()
        sink.member("criterion_index", criterionIndex)
        sink.member("original_status", originalStatus)
        sink.member("override_status", overrideStatus)
        sink.member("reason", reason)
        sink.endObject()
    }

    public var json: JSONValue { JSONSink.tree(of: self) }
}
