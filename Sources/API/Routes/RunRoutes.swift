import CWOM
import LegacyTasks
import Storage
import TowerJSON

/// Runs (append-only records with one status state machine), artifacts, evidence packs and
/// reviews.
extension CWOMRoutes {
    func registerRuns(on router: inout Router) {
        router.add(
            "POST", "/cwom/runs", summary: "Create a Run (status planned)", tag: "CWOM", access: .write, parameters: [.traceId],
            body: .create(Run.self), answers: .success("run", Run.self)
        ) { request in
            var run = try context.payload(Run.self, request)
            run.header.traceId = context.traceId(request)
            try await context.engine.create(run, by: request.actor(else: CWOMContext.service))
            return CWOMContext.created("run", run.json)
        }
        context.getOne(&router, "/cwom/runs/{run_id}", parameter: "run_id", summary: "Get a Run") { try await $0.runs.get($1) }
        router.add(
            "GET", "/cwom/runs", summary: "List Runs", tag: "CWOM", access: .read,
            parameters: [
                Parameter("issue_id", "The Issue's id."), Parameter("repo_id", "The Repo's id."),
                .filter("status", Status.self, "The Run's status"), .filter("mode", RunMode.self, "The Run's mode"),
            ] + Parameter.page,
            answers: .list(Run.self)
        ) { request in
            let page = try context.page(request)
            let filter = RunRepository.Filter(
                issueId: request.queryValue("issue_id"), repoId: request.queryValue("repo_id"),
                status: request.queryValue("status"), mode: request.queryValue("mode"))
            return .json(200, try await database.read { try await $0.runs.list(filter, page: page) }.json)
        }
        router.add(
            "PATCH", "/cwom/runs/{run_id}", summary: "Update a Run: legal status transitions, outputs only appended", tag: "CWOM",
            access: .scopes([.write, .agent]), parameters: [.traceId], body: .model(RunUpdate.self), answers: .changed("run", Run.self)
        ) {
            request in
            try await updateRun(request)
        }
        router.add(
            "GET", "/cwom/runs/{run_id}/artifacts", summary: "Artifacts of a Run", tag: "CWOM", access: .read,
            parameters: [.filter("type", ArtifactType.self, "The Artifact's type")], answers: .list(Artifact.self)
        ) { request in
            let artifacts = try await database.read {
                try await $0.artifacts.list(forRun: request.parameter("run_id"), type: request.queryValue("type"))
            }
            return .json(200, artifacts.json)
        }
        router.add(
            "GET", "/cwom/runs/{run_id}/evidence-pack", summary: "The EvidencePack of a Run", tag: "CWOM", access: .read,
            answers: .object(EvidencePack.self)
        ) { request in
            let id = request.parameter("run_id")
            let (run, packs) = try await database.read { store in
                (try await store.runs.get(id), try await store.evidencePacks.list(forRuns: [id]))
            }
            guard run != nil else { throw CWOMContext.notFound("Run") }
            guard let pack = packs.first else {
                throw APIError.detail(404, .string("No EvidencePack found for Run '\(id)'"))
            }
            return .json(200, pack.json)
        }

        router.add(
            "POST", "/cwom/artifacts", summary: "Create an Artifact", tag: "CWOM", access: .scopes([.write, .agent]),
            parameters: [.traceId], body: .create(Artifact.self), answers: .success("artifact", Artifact.self)
        ) { request in
            var artifact = try context.payload(Artifact.self, request)
            artifact.header.traceId = context.traceId(request)
            try await context.engine.create(artifact, by: request.actor(else: CWOMContext.service))
            return CWOMContext.created("artifact", artifact.json)
        }
        context.getOne(&router, "/cwom/artifacts/{artifact_id}", parameter: "artifact_id", summary: "Get an Artifact") {
            try await $0.artifacts.get($1)
        }

        context.getOne(&router, "/cwom/evidence-packs/{evidence_pack_id}", parameter: "evidence_pack_id", summary: "Get an EvidencePack") {
            try await $0.evidencePacks.get($1)
        }
        router.add(
            "GET", "/cwom/evidence-packs", summary: "List EvidencePacks", tag: "CWOM", access: .read,
            parameters: [
                Parameter("run_id", "The Run's id."), Parameter("issue_id", "The Issue's id."),
                .filter("verdict", Verdict.self, "The pack's verdict"),
            ] + Parameter.page,
            answers: .list(EvidencePack.self)
        ) { request in
            let page = try context.page(request)
            let packs = try await database.read {
                try await $0.evidencePacks.list(
                    runId: request.queryValue("run_id"), issueId: request.queryValue("issue_id"),
                    verdict: request.queryValue("verdict"), page: page)
            }
            return .json(200, packs.json)
        }
        router.add(
            "GET", "/cwom/issues/{issue_id}/evidence-packs", summary: "EvidencePacks of an Issue", tag: "CWOM", access: .read,
            parameters: [.filter("verdict", Verdict.self, "The pack's verdict")], answers: .list(EvidencePack.self)
        ) { request in
            let packs = try await database.read {
                try await $0.evidencePacks.list(
                    issueId: request.parameter("issue_id"), verdict: request.queryValue("verdict"), page: Page(limit: 10_000))
            }
            return .json(200, packs.json)
        }
        ReviewRoutes(context: context).register(on: &router)
    }

    /// `PATCH /cwom/runs/{id}`, through the engine's `updateRun`: only legal transitions (409
    /// otherwise), telemetry and cost replaced, outputs appended to (artifact refs and decision
    /// log entries are never removed), and the CWOM invariants checked on the result. A Run a
    /// worker executes can only be cancelled (202), which cancels its task.
    func updateRun(_ request: APIRequest) async throws -> APIResponse {
        let update = try context.payload(RunUpdate.self, request)
        let id = request.parameter("run_id")
        let trace = context.traceId(request)
        let outcome: LifecycleEngine.StatusSetOutcome<Run>
        do {
            outcome = try await context.engine.updateRun(id, update, by: request.actor(else: CWOMContext.service), traceId: trace)
        } catch let error as CWOMValidationError {
            throw RequestReading.validationError(error.errors.map {
                RequestError(loc: ["body"] + $0.path.components.map(\.json), error: $0)
            })
        }
        let run: Run
        switch outcome {
        case .updated(let updated): run = updated
        case .cancelRequested(let running, let task):
            // A worker executes this Run: its task was asked to stop, and the Run becomes
            // `canceled` once the worker has stopped the executor (within a heartbeat).
            return .json(202, ["status": "cancel_requested", "run": running.json, "task": task.json])
        }
        return .json(200, ["status": "success", "run": run.json])
    }
}

/// `GET /cwom/issues/{id}?expand=all`: the issue with its repo, every context packet version,
/// constraint snapshots, doctrine refs, runs, and each run's artifacts and evidence pack, in a
/// fixed number of queries (eleven) whatever the size of the history.
enum IssueExpansion {
    static func load(_ id: String, from store: Store) async throws -> JSONValue? {
        guard let issue = try await store.issues.get(id) else { return nil }
        let repo = try await store.repos.get(issue.repo.id)
        let packets = try await store.contextPackets.list(forIssue: id)
        let snapshots = try await store.constraintSnapshots.list(forIssue: id)
        let doctrine = try await store.doctrineRefs.get(ids: issue.doctrineRefs.map(\.id))
        let runs = try await store.runs.list(forIssue: id)
        let artifacts = try await store.artifacts.list(forRuns: runs.map(\.id))
        let packs = try await store.evidencePacks.list(forRuns: runs.map(\.id))
        var expanded = issue.json.objectValue ?? [:]
        expanded["expanded"] = [
            "repo": repo?.json ?? .null, "context_packets": packets.json, "constraint_snapshots": snapshots.json,
            "doctrine_refs": doctrine.json,
            "runs": .array(runs.map { run in
                var object = run.json.objectValue ?? [:]
                object["artifacts"] = artifacts.filter { $0.producedBy.id == run.id }.json
                object["evidence_pack"] = packs.first(where: { $0.forRun.id == run.id })?.json ?? .null
                return .object(object)
            }),
        ]
        return .object(expanded)
    }
}
