"""``jobmon.*`` XML-RPC methods: thin wrappers over ``RelayCore`` (see docs/PROTOCOL.md)."""

from __future__ import annotations

from typing import Any

from relay.methods import Ctx, method


# -- user side -------------------------------------------------------------
@method("jobmon.whoami", "struct", "auth", "Your DN, whether you are an admin, and how you authenticated.")
async def whoami(ctx: Ctx) -> Any:
    return await ctx.core.whoami(ctx.caller)


@method("jobmon.joblist", "array struct?", "user",
        "Jobs you may act on; filter: all (admins: everyone's), cluster, state, constraint.")
async def joblist(ctx: Ctx, filt: dict[str, Any] | None = None) -> Any:
    return await ctx.core.joblist(ctx.caller, filt or {})


@method("jobmon.status", "struct string", "user", "The job struct of one job (owner or admin).")
async def status(ctx: Ctx, job: str) -> Any:
    return await ctx.core.status(ctx.caller, job)


@method("jobmon.watch", "struct array struct?", "user",
        "Watch jobs live: {since, jobs: {id: job struct}} for the listed jobs whose daemons are connected "
        "(yours); options: since (wait for a report newer than this), wait (seconds, <= 30), lease (seconds).")
async def watch(ctx: Ctx, jobs: list[Any], options: dict[str, Any] | None = None) -> Any:
    return await ctx.core.watch(ctx.caller, jobs, options or {})


@method("jobmon.exec", "struct string array struct?", "user",
        "Run argv in the job's sandbox; options: timeout, shell, max_output, cwd.")
async def exec_(ctx: Ctx, job: str, argv: list[Any], options: dict[str, Any] | None = None) -> Any:
    return await ctx.core.exec(ctx.caller, job, argv, options or {})


@method("jobmon.execMany", "struct struct array struct?", "user",
        "Run argv in many jobs: target {cluster}, {jobs} or {constraint}; returns {batch, jobs}.")
async def exec_many(ctx: Ctx, target: dict[str, Any], argv: list[Any], options: dict[str, Any] | None = None) -> Any:
    return await ctx.core.exec_many(ctx.caller, target, argv, options or {})


@method("jobmon.batchResults", "struct string double?", "user",
        "Results of a fan-out batch that arrived since the last call; waits up to wait s for one.")
async def batch_results(ctx: Ctx, batch: str, wait: float = 0.0) -> Any:
    return await ctx.core.batch_results(ctx.caller, batch, wait)


@method("jobmon.read", "struct string string double? double? double?", "user",
        "Read a sandbox file (or @stdout/@stderr) from offset; wait s for new data if none.")
async def read(ctx: Ctx, job: str, path: str, offset: float = 0.0, length: float = 65536.0,
               wait: float = 0.0) -> Any:
    return await ctx.core.read(ctx.caller, job, path, offset, length, wait)


@method("jobmon.listdir", "struct string string?", "user", "List a sandbox directory.")
async def listdir(ctx: Ctx, job: str, path: str = ".") -> Any:
    return await ctx.core.listdir(ctx.caller, job, path)


@method("jobmon.stat", "struct string string", "user", "Stat a sandbox path.")
async def stat(ctx: Ctx, job: str, path: str) -> Any:
    return await ctx.core.stat(ctx.caller, job, path)


@method("jobmon.ps", "struct string", "user", "The job's process tree.")
async def ps(ctx: Ctx, job: str) -> Any:
    return await ctx.core.ps(ctx.caller, job)


@method("jobmon.submit", "struct string struct?", "user",
        "Submit a description to the relay's pool; options: iwd or files. Returns {cluster, procs}.")
async def submit(ctx: Ctx, description: str, options: dict[str, Any] | None = None) -> Any:
    return await ctx.core.submit(ctx.caller, description, options or {})


@method("jobmon.remove", "struct string string?", "user", "Remove a job or cluster.")
async def remove(ctx: Ctx, job: str, reason: str = "") -> Any:
    return await ctx.core.remove(ctx.caller, job, reason)


@method("jobmon.hold", "struct string string?", "user", "Hold a job or cluster.")
async def hold(ctx: Ctx, job: str, reason: str = "") -> Any:
    return await ctx.core.hold(ctx.caller, job, reason)


@method("jobmon.release", "struct string", "user", "Release a held job or cluster.")
async def release(ctx: Ctx, job: str) -> Any:
    return await ctx.core.release(ctx.caller, job)


@method("jobmon.nodes", "array", "admin", "Execute nodes (admins).")
async def nodes(ctx: Ctx) -> Any:
    return await ctx.core.nodes(ctx.caller)


@method("jobmon.nodeAction", "struct string string", "admin", "drain, undrain, off or on a node (admins).")
async def node_action(ctx: Ctx, node: str, action: str) -> Any:
    return await ctx.core.node_action(ctx.caller, node, action)


@method("jobmon.audit", "array struct?", "admin", "Audit records (admins); filter: job, user, since, limit.")
async def audit(ctx: Ctx, filt: dict[str, Any] | None = None) -> Any:
    return await ctx.core.audit_query(ctx.caller, filt or {})


@method("jobmon.issueCredential", "struct struct?", "user",
        "A per-job credential bound to your DN (options.cluster binds it now): {token, id, expires, "
        "ca_pem?}; ca_pem is the CA bundle jobs need to verify this relay, when they need one.")
async def issue_credential(ctx: Ctx, options: dict[str, Any] | None = None) -> Any:
    return await ctx.core.issue_credential(ctx.caller, options or {})


@method("jobmon.jobTrust", "struct", "user",
        "What a job must carry to verify this relay: {ca_pem, reason}; ca_pem is '' when nothing travels.")
async def job_trust(ctx: Ctx) -> Any:
    return await ctx.core.job_trust_info(ctx.caller)


@method("jobmon.bindCredential", "boolean string int", "user", "Bind your credential to a cluster.")
async def bind_credential(ctx: Ctx, cred_id: str, cluster: int) -> Any:
    return await ctx.core.bind_credential(ctx.caller, cred_id, cluster)


@method("jobmon.webLogin", "struct", "user", "A one-time login link for the web pages: {url, expires}.")
async def web_login(ctx: Ctx) -> Any:
    return await ctx.core.web_login(ctx.caller)


# -- daemon side -----------------------------------------------------------
@method("jobmon.register", "struct struct", "daemon",
        "Register a job daemon: returns {session, poll_wait, heartbeat, relay_version}.")
async def register(ctx: Ctx, info: dict[str, Any]) -> Any:
    return await ctx.core.register(ctx.caller, info)


@method("jobmon.poll", "array string double array?", "daemon",
        "Long-poll for requests (daemons); results [{id, result}] may ride along.")
async def poll(ctx: Ctx, session: str, max_wait: float, results: list[Any] | None = None) -> Any:
    return await ctx.core.poll(ctx.caller, session, max_wait, results)


@method("jobmon.result", "boolean string string any", "daemon", "Post a request's result (daemons).")
async def result(ctx: Ctx, session: str, request_id: str, res: Any) -> Any:
    return await ctx.core.result(ctx.caller, session, request_id, res)


@method("jobmon.heartbeat", "struct string struct", "daemon", "Progress and resource use (daemons).")
async def heartbeat(ctx: Ctx, session: str, status: dict[str, Any]) -> Any:
    return await ctx.core.heartbeat(ctx.caller, session, status)


@method("jobmon.finish", "boolean string struct", "daemon", "The payload's end (daemons).")
async def finish(ctx: Ctx, session: str, final: dict[str, Any]) -> Any:
    return await ctx.core.finish(ctx.caller, session, final)


@method("jobmon.nodeReport", "boolean string struct", "daemon",
        "What the execute node's starter hooks report about a job (update or exit).")
async def node_report(ctx: Ctx, job: str, report: dict[str, Any]) -> Any:
    from relay.node_reports import node_report as report_fn

    return await report_fn(ctx.core, ctx.caller, job, report)
