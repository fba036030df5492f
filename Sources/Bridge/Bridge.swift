import CWOM
import LegacyTasks
import TowerJSON

/// The CWOM objects that stand for one task (the seed's `task_to_issue`).
public struct TaskCWOM: Sendable, Hashable {
    public var repo: Repo
    public var constraintSnapshot: ConstraintSnapshot
    public var issue: Issue
    public var contextPacket: ContextPacket
}

/// Task ⇄ CWOM mapping (reference §3), built from the *normalised* task so that the Repo slug,
/// the Issue title and the instructions match what the task stores (reference §12 item 2).
public enum TaskBridge {
    /// TaskOperation → IssueType (§3.3).
    public static func issueType(for operation: TaskOperation) -> IssueType {
        switch operation {
        case .codeChange: return .feature
        case .docs: return .doc
        case .analysis: return .research
        case .ops: return .ops
        }
    }

    /// IssueType → TaskOperation (§3.3).
    public static func operation(for type: IssueType) -> TaskOperation {
        switch type {
        case .feature, .bug: return .codeChange
        case .doc: return .docs
        case .research: return .analysis
        case .ops, .chore, .incident: return .ops
        }
    }

    /// The Repo name for a slug: the text after the last `/`. A slug that ends in `/` (a bare
    /// allowed prefix) uses its last non-empty segment instead of failing (§12 item 34).
    public static func repoName(for slug: String) -> String {
        let segments = slug.split(separator: "/", omittingEmptySubsequences: true)
        return segments.last.map(String.init) ?? slug
    }

    /// Builds the Repo, ConstraintSnapshot, Issue and ContextPacket for a task. The Repo is a
    /// candidate: callers get or create it by slug and use the stored one's id.
    public static func cwom(for task: TaskRecord, acceptanceCriteria: [String], evidenceRequirements: [String],
        now: Timestamp = .now()) -> TaskCWOM
    {
        let actor = Actor(
            kind: ActorKind(rawValue: task.requestedBy.kind.rawValue) ?? .system, id: task.requestedBy.id,
            display: task.requestedBy.label)
        let slug = task.target.repo
        // A ref longer than Repo.default_branch allows (128) would fail the Repo (§12 item 5).
        let branch = task.target.ref.unicodeScalars.count <= 128 ? task.target.ref : "main"
        let repo = Repo(
            name: repoName(for: slug), slug: slug, source: Source(system: "jct", externalId: slug),
            defaultBranch: branch.isEmpty ? "main" : branch, createdAt: now)
        return cwom(for: task, repo: repo, actor: actor, acceptanceCriteria: acceptanceCriteria,
            evidenceRequirements: evidenceRequirements, now: now)
    }

    /// The same, for an already stored Repo; the snapshot, Issue and packet carry `traceId`.
    public static func cwom(for task: TaskRecord, repo: Repo, actor: Actor, acceptanceCriteria: [String],
        evidenceRequirements: [String], traceId: String? = nil, now: Timestamp = .now()) -> TaskCWOM
    {
        let budget = task.constraints.timeBudgetSeconds
        let network = task.constraints.allowNetwork
        let secrets = task.constraints.allowSecrets
        let tolerance: RiskTolerance = network && secrets ? .high : (network || secrets ? .medium : .low)
        let snapshot = ConstraintSnapshot(
            header: ObjectHeader(traceId: traceId), scope: .run, capturedAt: now, owner: actor,
            constraints: Constraints(
                time: TimeConstraint(availableMinutes: budget / 60),
                risk: RiskConstraint(
                    tolerance: tolerance,
                    notes: "allow_network=\(network ? "True" : "False"), allow_secrets=\(secrets ? "True" : "False")")),
            meta: [
                "source": "jct_task", "idempotency_key": task.idempotencyKey.json,
                "time_budget_seconds": .int(budget), "allow_network": .bool(network), "allow_secrets": .bool(secrets),
                "task_id": .string(task.id),
            ])
        // Python's `split("\n")[0]`: cut at the first line feed scalar, so a `\r` before it stays
        // (Swift's "\r\n" is one Character, which a search for "\n" would not find).
        let scalars = task.objective.unicodeScalars
        let firstLine = scalars.firstIndex(of: "\n").map { String(Substring(scalars[..<$0])) } ?? task.objective
        var title = firstLine.prefix(scalars: 200)
        if title.pythonStripped().isEmpty { title = task.objective.prefix(scalars: 200) }
        let criteria = acceptanceCriteria.isEmpty ? [task.objective] : acceptanceCriteria
        var issue = Issue(
            header: ObjectHeader(traceId: traceId), repo: Ref(kind: .repo, id: repo.id), title: title, description: task.objective,
            type: issueType(for: task.operation), priority: .p2, status: .planned, assignees: [actor],
            constraints: [snapshot.ref], acceptance: Acceptance(criteria: criteria),
            meta: [
                "source": "jct_task", "idempotency_key": task.idempotencyKey.json, "task_metadata": .object(task.metadata),
                "evidence_requirements": evidenceRequirements.json, "task_id": .string(task.id),
            ], createdAt: now)
        let packet = ContextPacket(
            header: ObjectHeader(traceId: traceId), forIssue: issue.ref, version: "1.0", summary: "Initial context from JCT task",
            assumptions: [
                "Target branch: \(task.target.ref)", "Working path: \(task.target.path.isEmpty ? "(root)" : task.target.path)",
            ], instructions: task.objective.prefix(scalars: 8000),
            constraintSnapshot: snapshot.ref,
            meta: [
                "source": "jct_task", "idempotency_key": task.idempotencyKey.json, "acceptance_criteria": criteria.json,
                "evidence_requirements": evidenceRequirements.json, "task_ref": .string(task.target.ref),
                "task_path": .string(task.target.path), "task_inputs": .object(task.inputs),
            ], createdAt: now)
        issue.contextPackets = [packet.ref]
        return TaskCWOM(repo: repo, constraintSnapshot: snapshot, issue: issue, contextPacket: packet)
    }

    /// The reverse mapping (`issue_to_task`, §3.2): a task request from an issue and its
    /// context.
    public static func request(for issue: Issue, contextPacket: ContextPacket? = nil,
        constraintSnapshot: ConstraintSnapshot? = nil, repo: Repo? = nil) -> TaskRequest
    {
        let requester: Requester =
            issue.assignees.first.map {
                Requester(kind: RequesterKind(rawValue: $0.actorKind.rawValue) ?? .system, id: $0.actorId, label: $0.display)
            } ?? Requester(kind: .system, id: "cwom", label: "CWOM System")
        var constraints = TaskConstraints()
        if let snapshot = constraintSnapshot {
            if !snapshot.meta.isEmpty {
                constraints.timeBudgetSeconds = snapshot.meta["time_budget_seconds"]?.intValue ?? 900
                constraints.allowNetwork = snapshot.meta["allow_network"]?.boolValue ?? false
                constraints.allowSecrets = snapshot.meta["allow_secrets"]?.boolValue ?? false
            } else {
                if let minutes = snapshot.constraints.time?.availableMinutes { constraints.timeBudgetSeconds = minutes * 60 }
                let tolerance = snapshot.constraints.risk?.tolerance
                constraints.allowNetwork = tolerance == .medium || tolerance == .high
                constraints.allowSecrets = tolerance == .high
            }
        }
        return TaskRequest(
            idempotencyKey: issue.meta["idempotency_key"]?.stringValue, requestedBy: requester,
            objective: issue.description.isEmpty ? issue.title : issue.description,
            operation: operation(for: issue.type),
            target: TaskTarget(
                repo: repo?.slug ?? issue.repo.id, ref: contextPacket?.meta["task_ref"]?.stringValue ?? "main",
                path: contextPacket?.meta["task_path"]?.stringValue ?? ""),
            constraints: constraints, inputs: contextPacket?.meta["task_inputs"]?.objectValue ?? [:],
            acceptanceCriteria: issue.acceptance.criteria,
            evidenceRequirements: (issue.meta["evidence_requirements"]?.arrayValue ?? []).compactMap(\.stringValue),
            metadata: issue.meta["task_metadata"]?.objectValue ?? [:])
    }
}

extension String {
    /// The first `count` Unicode scalars (Python's `text[:count]`), copied as bytes; the text
    /// itself when it is no longer (its UTF-8 length bounds its scalar count).
    func prefix(scalars count: Int) -> String {
        utf8.count <= count ? self : String(Substring(unicodeScalars.prefix(count)))
    }
}
