import Bridge
import CWOM
import LegacyTasks
import Testing
import TowerJSON

@Suite("Task ⇄ CWOM mapping")
struct BridgeTests {
    static func task(_ operation: TaskOperation = .codeChange, objective: String = "Fix the login page\nsecond line")
        -> TaskRecord
    {
        TaskRecord(
            id: "11111111-2222-4333-8444-555555555555", idempotencyKey: "key-7",
            requestedBy: Requester(kind: .agent, id: "bot", label: "Bot"), objective: objective, operation: operation,
            target: TaskTarget(repo: "myorg/app", ref: "dev", path: "src"),
            constraints: TaskConstraints(timeBudgetSeconds: 1250), inputs: ["ticket": 42], metadata: ["team": "web"],
            status: .queued, traceId: "trace-1")
    }

    @Test("task_to_issue builds the Repo, ConstraintSnapshot, Issue and ContextPacket of reference §3.1")
    func taskToIssue() throws {
        let cwom = TaskBridge.cwom(for: Self.task(), acceptanceCriteria: [], evidenceRequirements: ["test log"])
        #expect(cwom.repo.slug == "myorg/app")
        #expect(cwom.repo.name == "app")
        #expect(cwom.repo.source == Source(system: "jct", externalId: "myorg/app"))
        #expect(cwom.repo.defaultBranch == "dev")
        #expect(cwom.constraintSnapshot.scope == .run)
        #expect(cwom.constraintSnapshot.owner == Actor(kind: .agent, id: "bot", display: "Bot"))
        #expect(cwom.constraintSnapshot.constraints.time?.availableMinutes == 20)
        #expect(cwom.constraintSnapshot.constraints.risk == RiskConstraint(tolerance: .low, notes: "allow_network=False, allow_secrets=False"))
        #expect(cwom.constraintSnapshot.meta["time_budget_seconds"] == 1250)
        #expect(cwom.issue.title == "Fix the login page")
        #expect(cwom.issue.description == "Fix the login page\nsecond line")
        #expect(cwom.issue.type == .feature)
        #expect(cwom.issue.priority == .p2)
        #expect(cwom.issue.status == .planned)
        #expect(cwom.issue.acceptance.criteria == ["Fix the login page\nsecond line"], "the objective when no criteria")
        #expect(cwom.issue.repo == Ref(kind: .repo, id: cwom.repo.id))
        #expect(cwom.issue.constraints == [cwom.constraintSnapshot.ref])
        #expect(cwom.issue.contextPackets == [cwom.contextPacket.ref])
        #expect(cwom.issue.meta["evidence_requirements"] == ["test log"])
        #expect(cwom.issue.meta["task_metadata"] == ["team": "web"])
        #expect(cwom.contextPacket.version == "1.0")
        #expect(cwom.contextPacket.summary == "Initial context from JCT task")
        #expect(cwom.contextPacket.assumptions == ["Target branch: dev", "Working path: src"])
        #expect(cwom.contextPacket.instructions == "Fix the login page\nsecond line")
        #expect(cwom.contextPacket.constraintSnapshot == cwom.constraintSnapshot.ref)
        #expect(cwom.contextPacket.meta["task_inputs"] == ["ticket": 42])
        // Every object satisfies the CWOM schema.
        _ = try Repo.decode(cwom.repo.json)
        _ = try Issue.decode(cwom.issue.json)
        _ = try ContextPacket.decode(cwom.contextPacket.json)
        _ = try ConstraintSnapshot.decode(cwom.constraintSnapshot.json)
    }

    @Test("operation ⇄ issue type maps of reference §3.3")
    func typeMaps() {
        #expect(TaskOperation.allCases.map { TaskBridge.issueType(for: $0) } == [.feature, .doc, .research, .ops])
        #expect(IssueType.allCases.map { TaskBridge.operation(for: $0) } == [
            .codeChange, .codeChange, .ops, .analysis, .ops, .docs, .ops,
        ])
    }

    @Test("issue_to_task inverts task_to_issue", arguments: TaskOperation.allCases)
    func roundTrip(_ operation: TaskOperation) {
        let task = Self.task(operation)
        let cwom = TaskBridge.cwom(for: task, acceptanceCriteria: ["works"], evidenceRequirements: ["log"])
        let request = TaskBridge.request(
            for: cwom.issue, contextPacket: cwom.contextPacket, constraintSnapshot: cwom.constraintSnapshot,
            repo: cwom.repo)
        #expect(request.operation == operation)
        #expect(request.requestedBy == task.requestedBy)
        #expect(request.objective == task.objective)
        #expect(request.target == task.target)
        #expect(request.constraints == task.constraints)
        #expect(request.inputs == task.inputs)
        #expect(request.metadata == task.metadata)
        #expect(request.idempotencyKey == "key-7")
        #expect(request.acceptanceCriteria == ["works"])
        #expect(request.evidenceRequirements == ["log"])
    }

    @Test("issue_to_task without context: defaults of reference §3.2")
    func reverseDefaults() {
        let issue = Issue(
            repo: Ref(kind: .repo, id: "r1"), title: "Title only", type: .incident,
            constraints: [])
        let request = TaskBridge.request(for: issue)
        #expect(request.requestedBy == Requester(kind: .system, id: "cwom", label: "CWOM System"))
        #expect(request.target == TaskTarget(repo: "r1", ref: "main", path: ""))
        #expect(request.objective == "Title only")
        #expect(request.operation == .ops)
        #expect(request.constraints == TaskConstraints())
        let snapshot = ConstraintSnapshot(
            scope: .run, owner: Actor(kind: .system, id: "x"),
            constraints: Constraints(time: TimeConstraint(availableMinutes: 10), risk: RiskConstraint(tolerance: .high)))
        let derived = TaskBridge.request(for: issue, constraintSnapshot: snapshot)
        #expect(derived.constraints == TaskConstraints(timeBudgetSeconds: 600, allowNetwork: true, allowSecrets: true))
    }

    @Test("the title is the objective's first line as Python splits it, cut at 200 code points", arguments: [
        ("   Update the docs  \n\t second line \n ", "   Update the docs  "),
        ("Fix it\r\nthen test it", "Fix it\r"),
        ("One line only", "One line only"),
        (String(repeating: "é", count: 250), String(repeating: "é", count: 200)),
        (String(repeating: "👍🏽", count: 150) + "\nrest", String(repeating: "👍🏽", count: 100)),
    ])
    func titles(_ objective: String, _ title: String) {
        let cwom = TaskBridge.cwom(for: Self.task(objective: objective), acceptanceCriteria: [], evidenceRequirements: [])
        #expect(cwom.issue.title == title)
        #expect(cwom.contextPacket.instructions == objective, "the instructions keep the whole objective")
    }

    @Test("edge cases the legacy adapter crashed on")
    func edges() {
        #expect(TaskBridge.repoName(for: "myorg/") == "myorg")
        #expect(TaskBridge.repoName(for: "single") == "single")
        var task = Self.task()
        task.target.ref = String(repeating: "r", count: 200)
        #expect(TaskBridge.cwom(for: task, acceptanceCriteria: [], evidenceRequirements: []).repo.defaultBranch == "main")
        let long = String(repeating: "x", count: 300)
        #expect(TaskBridge.cwom(for: Self.task(objective: long), acceptanceCriteria: [], evidenceRequirements: []).issue.title.count == 200)
    }
}

@Suite("A task's JSON, read as a tree or written as text")
struct TaskJSONTests {
    @Test("a task's text is its tree serialized, byte for byte: every field set, and every optional one unset")
    func textIsTheTreeSerialized() throws {
        let awkward = "quote \" backslash \\ newline \n é 日本 🚀 " + String(repeating: "y", count: 200)
        let now = try #require(Timestamp(iso8601: "2026-12-06T16:03:38.904260Z"))
        let full = TaskRecord(
            id: "01a24c18-bb18-7a82-95dd-329e483f627a", idempotencyKey: awkward,
            requestedBy: Requester(kind: .agent, id: "agent-7", label: awkward), objective: awkward, operation: .codeChange,
            target: TaskTarget(repo: "org/repo", ref: "dev", path: "src/ä"),
            constraints: TaskConstraints(timeBudgetSeconds: 60, allowNetwork: true, allowSecrets: false),
            inputs: ["files": ["a.swift", "b.swift"], "depth": 2], metadata: ["note": .string(awkward), "n": 1.5],
            status: .completed, createdAt: now, queuedAt: now, startedAt: now, completedAt: now, assignedTo: "worker-1",
            result: ["ok": true, "lines": [1, 2]], error: "none", tracePath: "/traces/x", cwomIssueId: "01M961HERSAMFW22ZFZTE7JCAN",
            traceId: "trace-1")
        let bare = TaskRecord(
            id: "t-2", requestedBy: Requester(kind: .system, id: "wrk"), objective: "Do it", operation: .ops,
            target: TaskTarget(repo: "bench/repo"))
        for task in [full, bare] {
            #expect(JSONSink.textWithoutNUL(of: task) == task.json.serialized())
            #expect(task.json.objectValue?.keys.count == 21, "the legacy representation's 21 keys")
        }
    }
}
