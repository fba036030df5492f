import Foundation
import TowerJSON

/// One execution attempt of an Issue, pinned to the context it ran under. A failed Run carries
/// its `failure`.
public struct Run: CWOMModel, Hashable {
    public static let schemaName = "Run"
    public var header: ObjectHeader
    public var forIssue: Ref
    public var repo: Ref
    public var status: Status
    public var mode: RunMode
    public var executor: Executor
    public var inputs: RunInputs
    public var plan: RunPlan
    public var telemetry: Telemetry
    public var cost: Cost
    public var outputs: RunOutputs
    public var failure: Failure?
    /// Where the run's trace folder lives (`file:///…/<run_id>/`).
    public var artifactRootUri: String?
    public var tags: [String]
    public var meta: JSONObject
    public var createdAt: Timestamp
    public var updatedAt: Timestamp

    public var id: String { header.id }
    public var ref: Ref { Ref(kind: .run, id: id) }

    public init(header: ObjectHeader = ObjectHeader(), forIssue: Ref, repo: Ref, status: Status = .planned,
        mode: RunMode, executor: Executor, inputs: RunInputs = RunInputs(), plan: RunPlan = RunPlan(),
        telemetry: Telemetry = Telemetry(), cost: Cost = Cost(), outputs: RunOutputs = RunOutputs(),
        failure: Failure? = nil, artifactRootUri: String? = nil, tags: [String] = [], meta: JSONObject = [:],
        createdAt: Timestamp = .now(), updatedAt: Timestamp? = nil)
    {
        self.header = header
        self.forIssue = forIssue
        self.repo = repo
        self.status = status
        self.mode = mode
        self.executor = executor
        self.inputs = inputs
        self.plan = plan
        self.telemetry = telemetry
        self.cost = cost
        self.outputs = outputs
        self.failure = failure
        self.artifactRootUri = artifactRootUri
        self.tags = tags
        self.meta = meta
        self.createdAt = createdAt
        self.updatedAt = updatedAt ?? createdAt
    }

    /// A payload creates a `planned` Run with empty telemetry, cost and outputs.
    public init(reading r: ObjectReader) {
        header = r.header(.run)
        forIssue = r.ref("for_issue", kind: .issue)
        repo = r.ref("repo", kind: .repo)
        let full = r.mode == .object
        status = full ? r.enumeration("status", default: .planned) : .planned
        mode = r.enumeration("mode")
        executor = r.model("executor", Executor.self)
        inputs = r.model("inputs", default: RunInputs())
        plan = r.model("plan", default: RunPlan())
        telemetry = full ? r.model("telemetry", default: Telemetry()) : Telemetry()
        cost = full ? r.model("cost", default: Cost()) : Cost()
        outputs = full ? r.model("outputs", default: RunOutputs()) : RunOutputs()
        failure = full ? r.optionalModel("failure", Failure.self) : nil
        artifactRootUri = full ? r.optionalString("artifact_root_uri", min: 1, max: 2000) : nil
        tags = r.strings("tags")
        meta = r.dictionary("meta")
        (createdAt, updatedAt) = r.timestamps()
        r.check(status != .failed || failure != nil, at: "failure", "a failed Run must carry a failure")
    }

    public func write(to sink: inout JSONSink) {
        header.beginJSON(.run, to: &sink)
        sink.member("for_issue", forIssue)
        sink.member("repo", repo)
        sink.member("status", status)
        sink.member("mode", mode)
        sink.member("executor", executor)
        sink.member("inputs", inputs)
        sink.member("plan", plan)
        sink.key("telemetry")
        Self.writeGiven(telemetry, Telemetry(), to: &sink)
        sink.key("cost")
        Self.writeGiven(cost, Cost(), to: &sink)
        sink.key("outputs")
        Self.writeGiven(outputs, RunOutputs(), to: &sink)
        sink.member("failure", failure)
        sink.member("artifact_root_uri", artifactRootUri)
        ObjectHeader.endJSON(tags: tags, meta: meta, createdAt: createdAt, updatedAt: updatedAt, to: &sink)
    }

    public var json: JSONValue { JSONSink.tree(of: self) }

    /// A member nobody gave shows as `{}`, as the legacy service shows it, not as an object of nulls.
    static func writeGiven<T: CWOMModel & Equatable>(_ value: T, _ empty: T, to sink: inout JSONSink) {
        if value == empty {
            sink.beginObject()
            sink.endObject()
        } else {
            value.write(to: &sink)
        }
    }

    /// The Run's trace folder on this machine: `artifact_root_uri` when it is a `file:` URL of a
    /// folder named after the Run (as a worker's run and an agent's claim make them) or after its
    /// task (the legacy worker's name for a folder it made without a Run, which the backfill
    /// records in `meta.task_id`). Any other uri is never read: the backfill takes a legacy
    /// task's `trace_path`, which any write key sets (`PATCH /tasks/{id}/status`), and
    /// `file:///etc/` there would have been listed and served to every read key.
    public var localTraceFolder: URL? {
        Self.localTraceFolder(artifactRootUri, runId: id, taskId: meta["task_id"]?.stringValue)
    }

    /// `localTraceFolder` from a Run's stored fields (retention reads no more of a Run).
    public static func localTraceFolder(_ artifactRootUri: String?, runId: String, taskId: String?) -> URL? {
        guard let uri = artifactRootUri, let url = URL(string: uri), url.isFileURL else { return nil }
        let folder = url.standardizedFileURL
        let name = folder.lastPathComponent
        guard name == runId || (taskId != nil && name == taskId), folder.pathComponents.count > 2 else { return nil }
        return folder
    }
}

/// A change to a Run (`PATCH /cwom/runs/{id}`): every member optional.
public struct RunUpdate: CWOMModel, Hashable {
    public static let schemaName = "RunUpdate"
    public var status: Status?
    public var telemetry: Telemetry?
    public var cost: Cost?
    public var outputs: RunOutputs?
    public var failure: Failure?

    public init(status: Status? = nil, telemetry: Telemetry? = nil, cost: Cost? = nil, outputs: RunOutputs? = nil,
        failure: Failure? = nil)
    {
        self.status = status
        self.telemetry = telemetry
        self.cost = cost
        self.outputs = outputs
        self.failure = failure
    }

    public init(reading r: ObjectReader) {
        status = r.optionalEnumeration("status")
        telemetry = r.optionalModel("telemetry", Telemetry.self)
        cost = r.optionalModel("cost", Cost.self)
        outputs = r.optionalModel("outputs", RunOutputs.self)
        failure = r.optionalModel("failure", Failure.self)
    }

    public var json: JSONValue {
        [
            "status": status.json, "telemetry": telemetry.json, "cost": cost.json, "outputs": outputs.json,
            "failure": failure.json,
        ]
    }
}
