import CWOM
import LegacyTasks
import Storage
import TowerJSON

/// The CWOM object routes of reference §4.1: repos, issues, context packets, constraint
/// snapshots, doctrine refs, runs and artifacts. Every write needs the API key when one is set,
/// checks that every ref resolves, and is audited.
struct CWOMRoutes: Sendable {
    let context: CWOMContext
    var database: Database { context.database }

    func register(on router: inout Router) {
        registerRepos(on: &router)
        registerIssues(on: &router)
        registerContext(on: &router)
        registerRuns(on: &router)
    }

    // MARK: - Repos

    func registerRepos(on router: inout Router) {
        router.add(
            "POST", "/cwom/repos", summary: "Create a Repo", tag: "CWOM", access: .write, parameters: [.traceId], body: .create(Repo.self),
            answers: .success("repo", Repo.self)
        ) { request in
            var repo = try context.payload(Repo.self, request)
            repo.header.traceId = context.traceId(request)
            try await context.engine.create(repo, by: request.actor(else: CWOMContext.service))
            return CWOMContext.created("repo", repo.json)
        }
        context.getOne(&router, "/cwom/repos/{repo_id}", parameter: "repo_id", summary: "Get a Repo") { try await $0.repos.get($1) }
        router.add(
            "GET", "/cwom/repos", summary: "List Repos", tag: "CWOM", access: .read,
            parameters: [.filter("visibility", Visibility.self, "The Repo's visibility")] + Parameter.page, answers: .list(Repo.self)
        ) { request in
            let page = try context.page(request)
            let repos = try await database.read { try await $0.repos.list(visibility: request.queryValue("visibility"), page: page) }
            return .json(200, repos.json)
        }
    }

    // MARK: - Issues

    /// `GET /cwom/issues/{id}?expand=all` (`IssueExpansion`): the Issue's fields and `expanded`.
    static let expandedIssue: JSONValue = [
        "type": "object", "required": ["kind", "id", "expanded"],
        "properties": [
            "kind": ["const": "Issue"],
            "expanded": [
                "type": "object", "required": ["repo", "context_packets", "constraint_snapshots", "doctrine_refs", "runs"],
                "properties": [
                    "repo": ["anyOf": [Answer.reference("Repo"), ["type": "null"]]],
                    "context_packets": ["type": "array", "items": Answer.reference("ContextPacket")],
                    "constraint_snapshots": ["type": "array", "items": Answer.reference("ConstraintSnapshot")],
                    "doctrine_refs": ["type": "array", "items": Answer.reference("DoctrineRef")],
                    "runs": [
                        "type": "array",
                        "items": [
                            "type": "object", "required": ["kind", "id", "artifacts", "evidence_pack"],
                            "properties": [
                                "artifacts": ["type": "array", "items": Answer.reference("Artifact")],
                                "evidence_pack": ["anyOf": [Answer.reference("EvidencePack"), ["type": "null"]]],
                            ],
                        ],
                    ],
                ],
            ],
        ],
    ]

    func registerIssues(on router: inout Router) {
        router.add(
            "POST", "/cwom/issues", summary: "Create an Issue", tag: "CWOM", access: .write, parameters: [.traceId], body: .create(Issue.self),
            answers: .success("issue", Issue.self)
        ) { request in
            var issue = try context.payload(Issue.self, request)
            issue.header.traceId = context.traceId(request)
            try await context.engine.create(issue, by: request.actor(else: CWOMContext.service))
            return CWOMContext.created("issue", issue.json)
        }
        router.add(
            "GET", "/cwom/issues/{issue_id}", summary: "Get an Issue (?expand=all for its related objects)", tag: "CWOM", access: .read,
            parameters: [
                Parameter(
                    "expand", schema: ["type": "string", "examples": ["all"]],
                    "all: the Issue with its Repo, ContextPackets, ConstraintSnapshots, DoctrineRefs, Runs, and each Run's Artifacts "
                        + "and EvidencePack; any other value: the Issue alone.")
            ],
            answers: .json(
                [200], schema: ["anyOf": [Answer.reference("Issue"), Self.expandedIssue]],
                "The Issue; with expand=all, its related objects under `expanded`.")
        ) { request in
            let id = request.parameter("issue_id")
            if request.queryValue("expand") == "all" {
                guard let expanded = try await database.read({ try await IssueExpansion.load(id, from: $0) }) else {
                    throw CWOMContext.notFound("Issue")
                }
                return .json(200, expanded)
            }
            guard let issue = try await database.read({ try await $0.issues.get(id) }) else {
                throw CWOMContext.notFound("Issue")
            }
            return .json(200, issue.json)
        }
        router.add(
            "GET", "/cwom/issues", summary: "List Issues", tag: "CWOM", access: .read,
            parameters: [
                Parameter("repo_id", "The Repo's id."), .filter("status", Status.self, "The Issue's status"),
                .filter("type", IssueType.self, "The Issue's type"), .filter("priority", Priority.self, "The Issue's priority"),
            ] + Parameter.page,
            answers: .list(Issue.self)
        ) { request in
            let page = try context.page(request)
            let filter = IssueRepository.Filter(
                repoId: request.queryValue("repo_id"), status: request.queryValue("status"),
                type: request.queryValue("type"), priority: request.queryValue("priority"))
            return .json(200, try await database.read { try await $0.issues.list(filter, page: page) }.json)
        }
        router.add(
            "PATCH", "/cwom/issues/{issue_id}/status", summary: "Set an Issue's status", tag: "CWOM", access: .write,
            parameters: [.choice("status", Status.self, required: true, "The new status."), .traceId], answers: .changed("issue", Issue.self)
        ) { request in
            guard let raw = request.queryValue("status") else {
                throw RequestReading.validationError([
                    RequestReading.queryError("status", PydanticError.missing(FieldPath(), input: .null))
                ])
            }
            guard let status = Status(rawValue: raw) else {
                throw RequestReading.validationError([
                    RequestReading.queryError(
                        "status", PydanticError.enumeration(FieldPath(), input: .string(raw), values: Status.allValues))
                ])
            }
            let id = request.parameter("issue_id")
            let trace = context.traceId(request)
            switch try await context.engine.setIssueStatus(id, to: status, by: request.actor(else: CWOMContext.service), traceId: trace) {
            case .updated(let issue):
                return .json(200, ["status": "success", "issue": issue.json])
            case .cancelRequested(let issue, let task):
                return .json(202, ["status": "cancel_requested", "issue": issue.json, "task": task.json])
            }
        }
        router.add(
            "GET", "/cwom/issues/{issue_id}/context-packets", summary: "Every ContextPacket version of an Issue, newest last", tag: "CWOM",
            access: .read, answers: .list(ContextPacket.self)
        ) {
            request in
            let packets = try await database.read { try await $0.contextPackets.list(forIssue: request.parameter("issue_id")) }
            return .json(200, packets.json)
        }
        router.add(
            "GET", "/cwom/issues/{issue_id}/artifacts", summary: "Artifacts of an Issue", tag: "CWOM", access: .read,
            parameters: [.filter("type", ArtifactType.self, "The Artifact's type")], answers: .list(Artifact.self)
        ) { request in
            let artifacts = try await database.read {
                try await $0.artifacts.list(forIssue: request.parameter("issue_id"), type: request.queryValue("type"))
            }
            return .json(200, artifacts.json)
        }
    }

    // MARK: - Context packets, constraint snapshots, doctrine refs

    func registerContext(on router: inout Router) {
        router.add(
            "POST", "/cwom/context-packets", summary: "Create a ContextPacket (a new version for its Issue)", tag: "CWOM", access: .write,
            parameters: [.traceId], body: .create(ContextPacket.self), answers: .success("context_packet", ContextPacket.self)
        ) {
            request in
            let payload = try context.payload(ContextPacket.self, request)
            let packet = ContextPacket(
                header: ObjectHeader(id: payload.id, traceId: context.traceId(request)), forIssue: payload.forIssue,
                version: payload.version, summary: payload.summary, inputs: payload.inputs,
                assumptions: payload.assumptions, openQuestions: payload.openQuestions,
                instructions: payload.instructions, doctrineRefs: payload.doctrineRefs,
                constraintSnapshot: payload.constraintSnapshot, tags: payload.tags, meta: payload.meta)
            try await context.engine.create(packet, by: request.actor(else: CWOMContext.service))
            return CWOMContext.created("context_packet", packet.json)
        }
        context.getOne(&router, "/cwom/context-packets/{packet_id}", parameter: "packet_id", summary: "Get a ContextPacket") {
            try await $0.contextPackets.get($1)
        }
        context.refuseChanges(
            &router, "/cwom/context-packets/{packet_id}", parameter: "packet_id", kind: "ContextPackets",
            message: "ContextPackets are immutable. Create a new ContextPacket with an incremented version instead.")

        router.add(
            "POST", "/cwom/constraint-snapshots", summary: "Create a ConstraintSnapshot", tag: "CWOM", access: .write,
            parameters: [.traceId], body: .create(ConstraintSnapshot.self), answers: .success("constraint_snapshot", ConstraintSnapshot.self)
        ) { request in
            let payload = try context.payload(ConstraintSnapshot.self, request)
            let snapshot = ConstraintSnapshot(
                header: ObjectHeader(id: payload.id, traceId: context.traceId(request)), scope: payload.scope,
                owner: payload.owner, constraints: payload.constraints, tags: payload.tags, meta: payload.meta)
            try await context.engine.create(snapshot, by: request.actor(else: CWOMContext.service))
            return CWOMContext.created("constraint_snapshot", snapshot.json)
        }
        context.getOne(&router, "/cwom/constraint-snapshots/{snapshot_id}", parameter: "snapshot_id", summary: "Get a ConstraintSnapshot") {
            try await $0.constraintSnapshots.get($1)
        }
        router.add(
            "GET", "/cwom/constraint-snapshots", summary: "List ConstraintSnapshots", tag: "CWOM", access: .read,
            parameters: [.filter("scope", ConstraintScope.self, "The snapshot's scope"), Parameter("owner_id", "The id of its owner.")]
                + Parameter.page, answers: .list(ConstraintSnapshot.self)
        ) { request in
            let page = try context.page(request)
            let snapshots = try await database.read {
                try await $0.constraintSnapshots.list(
                    scope: request.queryValue("scope"), ownerId: request.queryValue("owner_id"), page: page)
            }
            return .json(200, snapshots.json)
        }
        context.refuseChanges(
            &router, "/cwom/constraint-snapshots/{snapshot_id}", parameter: "snapshot_id", kind: "ConstraintSnapshots",
            message: "ConstraintSnapshots are immutable. Create a new ConstraintSnapshot instead.")

        router.add(
            "POST", "/cwom/doctrine-refs", summary: "Create a DoctrineRef", tag: "CWOM", access: .write, parameters: [.traceId],
            body: .create(DoctrineRef.self),
            answers: .success("doctrine_ref", DoctrineRef.self)
        ) { request in
            var doctrine = try context.payload(DoctrineRef.self, request)
            doctrine.header.traceId = context.traceId(request)
            try await context.engine.create(doctrine, by: request.actor(else: CWOMContext.service))
            return CWOMContext.created("doctrine_ref", doctrine.json)
        }
        context.getOne(&router, "/cwom/doctrine-refs/{doctrine_id}", parameter: "doctrine_id", summary: "Get a DoctrineRef") {
            try await $0.doctrineRefs.get($1)
        }
        router.add(
            "GET", "/cwom/doctrine-refs", summary: "List DoctrineRefs", tag: "CWOM", access: .read,
            parameters: [
                Parameter("namespace", "The DoctrineRef's namespace."), .filter("type", DoctrineType.self, "The DoctrineRef's type"),
                .filter("priority", DoctrinePriority.self, "The DoctrineRef's priority"),
            ] + Parameter.page,
            answers: .list(DoctrineRef.self)
        ) { request in
            let page = try context.page(request)
            let refs = try await database.read {
                try await $0.doctrineRefs.list(
                    namespace: request.queryValue("namespace"), type: request.queryValue("type"),
                    priority: request.queryValue("priority"), page: page)
            }
            return .json(200, refs.json)
        }
    }
}
