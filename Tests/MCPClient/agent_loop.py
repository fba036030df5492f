"""An agent's whole loop against Control Tower's MCP server, with the official Python MCP client.

    python3 Tests/MCPClient/agent_loop.py stdio
    python3 Tests/MCPClient/agent_loop.py http URL     (Streamable HTTP, e.g. http://127.0.0.1:8000/mcp)
    python3 Tests/MCPClient/agent_loop.py sse URL      (the legacy SSE endpoint, e.g. http://127.0.0.1:8000/mcp/sse)
    python3 Tests/MCPClient/agent_loop.py lease http URL   (a claim abandoned until its lease runs out; needs a worker)

The agent's key is AGENT_KEY (scopes agent, read, write) and the reviewer's REVIEWER_KEY (review,
read); over stdio they are handed to `tower mcp` as TOWER_MCP_KEY, over HTTP as bearer keys.
TOWER_BINARY is the tower executable. Exits 0 when every step answered as expected; otherwise it
prints the step that did not and exits 1.
"""
import asyncio
import contextlib
import json
import os
import sys
import uuid

from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client


@contextlib.asynccontextmanager
async def connect(transport, target, key):
    if transport == "stdio":
        env = dict(os.environ, TOWER_MCP_KEY=key)
        params = StdioServerParameters(command=os.environ["TOWER_BINARY"], args=["mcp"], env=env)
        async with stdio_client(params) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                yield session
    elif transport == "sse":
        from mcp.client.sse import sse_client

        async with sse_client(target, headers={"Authorization": f"Bearer {key}"}) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                yield session
    else:
        import httpx2 as httpx
        from mcp.client.streamable_http import streamable_http_client

        async with httpx.AsyncClient(headers={"Authorization": f"Bearer {key}"}) as client:
            async with streamable_http_client(target, http_client=client) as streams:
                read, write = streams[0], streams[1]
                async with ClientSession(read, write) as session:
                    await session.initialize()
                    yield session


async def call(session, name, **arguments):
    result = await session.call_tool(name, arguments)
    assert len(result.content) == 1 and result.content[0].type == "text", f"{name}: one text content, got {result}"
    return json.loads(result.content[0].text)


def expect(condition, what, reply=None):
    if not condition:
        raise AssertionError(f"{what}: {json.dumps(reply) if reply is not None else ''}")


def error_code(reply):
    return None if reply.get("success") else reply["error"]["code"]


async def main(transport, target):
    agent_key, reviewer_key = os.environ["AGENT_KEY"], os.environ["REVIEWER_KEY"]
    async with connect(transport, target, agent_key) as agent:
        listed = await agent.list_tools()
        names = {tool.name for tool in listed.tools}
        legacy = {
            "jct_list_tasks", "jct_claim_task", "jct_get_context", "jct_report_artifact", "jct_complete_task",
            "jct_get_task", "jct_get_run", "jct_get_evidence", "jct_get_audit_trail", "jct_submit_review",
            "jct_list_pending_reviews", "jct_enqueue_task",
        }
        expect(legacy <= names, f"the 12 legacy tools are listed, got {sorted(names)}")
        expect("jct_heartbeat" in names, "jct_heartbeat is listed")

        enqueued = await call(agent, "jct_enqueue_task", objective="Write the release notes", operation="docs",
                              target_repo="myorg/docs", acceptance_criteria=["NOTES.md exists"])
        expect(enqueued.get("success") is True, "enqueue", enqueued)
        task_id = enqueued["task_id"]
        expect(error_code(await call(agent, "jct_enqueue_task", objective="Write the release notes", operation="docs",
                                     target_repo="elsewhere/docs")) == "REPO_NOT_ALLOWED", "the intake policy applies")

        run_key = f"notes-{uuid.uuid4()}"
        expect(error_code(await call(agent, "jct_enqueue_task", objective="Write the release notes", operation="docs",
                                     target_repo="myorg/docs", idempotency_key=run_key)) is None, "a keyed enqueue")
        expect(error_code(await call(agent, "jct_enqueue_task", objective="Write the release notes", operation="docs",
                                     target_repo="myorg/docs", idempotency_key=run_key)) == "IDEMPOTENCY_CONFLICT",
               "the same key twice")
        expect(error_code(await call(agent, "jct_list_tasks", status="sleeping")) == "INVALID_PARAMETERS", "arguments checked")

        tasks = await call(agent, "jct_list_tasks")
        expect(any(t["task_id"] == task_id for t in tasks["tasks"]), "the task is listed", tasks)

        expect(error_code(await call(agent, "jct_report_artifact", task_id=task_id, title="early", artifact_type="doc",
                                     content="x")) == "NO_ACTIVE_CLAIM", "no report before the claim")

        claimed = await call(agent, "jct_claim_task", task_id=task_id)
        expect(claimed.get("success") is True and claimed["run_id"], "claim", claimed)
        run_id = claimed["run_id"]
        expect(error_code(await call(agent, "jct_claim_task", task_id=task_id)) == "TASK_ALREADY_CLAIMED", "no second claim")
        expect(error_code(await call(agent, "jct_claim_task", task_id="00000000-0000-0000-0000-000000000000")) == "TASK_NOT_FOUND",
               "unknown task")

        context = await call(agent, "jct_get_context", task_id=task_id)
        expect(context["context_packet"]["id"] == claimed["context_packet"]["id"], "context", context)

        notes = await call(agent, "jct_report_artifact", task_id=task_id, title="NOTES.md", artifact_type="doc",
                           content="# Release notes\n", media_type="text/markdown")
        expect(notes.get("success") is True and notes["digest"].startswith("sha256:"), "first artifact", notes)
        link = await call(agent, "jct_report_artifact", task_id=task_id, title="Pull request", artifact_type="pr",
                          uri="https://example.com/pr/7")
        expect(link.get("success") is True and link["uri"] == "https://example.com/pr/7", "second artifact", link)
        expect(error_code(await call(agent, "jct_report_artifact", task_id=task_id, title="x", artifact_type="pdf",
                                     content="x")) == "INVALID_ARTIFACT_TYPE", "artifact type checked")

        beat = await call(agent, "jct_heartbeat", task_id=task_id)
        expect(beat.get("success") is True and beat["cancel_requested"] is False, "heartbeat", beat)

        completed = await call(agent, "jct_complete_task", task_id=task_id, success=True, summary="Wrote NOTES.md",
                               outputs=json.dumps({"files": 1}))
        expect(completed.get("success") is True and completed["task_status"] == "completed", "complete", completed)
        expect(completed["run_status"] == "under_review", "the review policy ran", completed)
        pack_id = completed["evidence_pack"]["id"]
        expect(error_code(await call(agent, "jct_complete_task", task_id=task_id, success=True, summary="again")) == "TASK_NOT_RUNNING",
               "never completed twice")

        run = await call(agent, "jct_get_run", run_id=run_id)
        expect(run["run"]["mode"] == "agent" and run["run"]["evidence_pack"]["id"] == pack_id, "run", run)
        evidence = await call(agent, "jct_get_evidence", run_id=run_id)
        expect(evidence["evidence_pack"]["id"] == pack_id, "evidence by run id", evidence)
        expect(error_code(await call(agent, "jct_get_run", run_id="nothing")) == "RUN_NOT_FOUND", "unknown run")
        expect(error_code(await call(agent, "jct_get_evidence", run_id="nothing")) == "EVIDENCE_NOT_FOUND", "unknown evidence")
        expect(error_code(await call(agent, "jct_submit_review", evidence_pack_id=pack_id, decision="approved",
                                     reason="x")) == "FORBIDDEN", "an agent key cannot review")

    async with connect(transport, target, reviewer_key) as reviewer:
        pending = await call(reviewer, "jct_list_pending_reviews")
        expect(any(p["evidence_pack_id"] == pack_id for p in pending["pending_reviews"]), "pending review", pending)
        expect(error_code(await call(reviewer, "jct_submit_review", evidence_pack_id=pack_id, decision="maybe",
                                     reason="x")) == "INVALID_DECISION", "decision checked")
        reviewed = await call(reviewer, "jct_submit_review", evidence_pack_id=pack_id, decision="approved",
                              reason="Reads well")
        expect(reviewed.get("success") is True, "review", reviewed)
        expect(error_code(await call(reviewer, "jct_claim_task", task_id=task_id)) == "FORBIDDEN", "a reviewer cannot claim")
        trail = await call(reviewer, "jct_get_audit_trail", entity_kind="Task", entity_id=task_id)
        actors = {entry["actor_id"] for entry in trail["entries"]}
        agent_name = os.environ.get("AGENT_NAME", "mcp-agent-key")
        expect(agent_name in actors, f"the agent's key name is the actor, got {actors}", trail)
        task = await call(reviewer, "jct_get_task", task_id=task_id)
        expect(task["task"]["status"] == "completed", "task", task)
    print(json.dumps({"ok": True, "transport": transport, "task_id": task_id, "run_id": run_id}))


async def lease_runs_out(transport, target):
    """An agent claims a task and vanishes: once the lease (the task's 30-second time budget) has
    run out, a worker rescues the task, the agent's Run is failed, and its late completion is
    refused. Nothing calls a tool naming the task meanwhile (that would renew the lease)."""
    async with connect(transport, target, os.environ["AGENT_KEY"]) as agent:
        enqueued = await call(agent, "jct_enqueue_task", objective="A task its agent abandons", operation="docs",
                              target_repo="myorg/docs", time_budget_seconds=30)
        task_id = enqueued["task_id"]
        claimed = await call(agent, "jct_claim_task", task_id=task_id)
        expect(claimed.get("success") is True, "claim", claimed)
        run_id = claimed["run_id"]
        # A worker, started only now so that it cannot take the task first, rescues expired leases
        # and says so in its log: the event this test waits on.
        worker = await asyncio.create_subprocess_exec(
            os.environ["TOWER_BINARY"], "worker", "--poll-interval", "0.5",
            env=dict(os.environ, LOG_FORMAT="json", LOG_LEVEL="warning"),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
        try:
            try:
                await asyncio.wait_for(rescue_logged(worker.stderr, task_id), timeout=120)
            except asyncio.TimeoutError:
                expect(False, "the worker rescued the task within 120 s")
            await after_rescue(agent, task_id, run_id)
        finally:
            worker.terminate()
            await asyncio.wait_for(worker.wait(), timeout=60)
    print(json.dumps({"ok": True, "transport": transport, "rescued": task_id}))


async def rescue_logged(log, task_id):
    """Reads the worker's JSON log lines until it reports the rescue of task_id."""
    while True:
        line = await log.readline()
        expect(line != b"", "the worker logged the rescue before it exited")
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("message") == "rescued a task" and entry.get("task_id") == task_id:
            return entry


async def after_rescue(agent, task_id, run_id):
    """The rescue committed before the worker logged it: the agent's Run is failed (read through
    jct_get_run, which does not renew the lease), its late completion refused, the failure audited."""
    run = await call(agent, "jct_get_run", run_id=run_id)
    expect(run["run"]["status"] == "failed", "the rescuer failed the agent's Run", run)
    late = await call(agent, "jct_complete_task", task_id=task_id, success=True, summary="too late")
    expect(error_code(late) in ("NO_ACTIVE_CLAIM", "TASK_NOT_RUNNING"), "a late completion is refused", late)
    trail = await call(agent, "jct_get_audit_trail", entity_kind="Run", entity_id=run_id)
    expect(any(e["after"] and e["after"].get("status") == "failed" for e in trail["entries"]), "the failure is audited", trail)


if __name__ == "__main__":
    try:
        if sys.argv[1] == "lease":
            asyncio.run(lease_runs_out(sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else None))
        else:
            asyncio.run(main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None))
    except AssertionError as failure:
        print(f"FAILED: {failure}", file=sys.stderr)
        sys.exit(1)
