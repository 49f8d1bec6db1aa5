"""The 2005 JobMon service's method names, as aliases (each answers ``[status, message]``).

* ``JobMon.registerJob(jobname, host, port, pid)`` registers a daemon for
  ``jobname`` (same ownership rules as ``jobmon.register``);
* ``JobMon.getJobToDo(jobname)`` returns ``[0, command]`` for the next queued
  ``exec`` (its argv joined with shell quoting; the legacy daemon must split
  it again, never hand it to a shell) or ``[0, ""]`` when there is none;
* ``JobMon.outputJobResult(jobname, output)`` answers that command with
  ``output`` as stdout and exit code 0;
* ``JobMon.unregisterJob(jobname)`` removes the daemon.

Status 0 is success; any refusal is ``[fault code, message]``.
"""

from __future__ import annotations

import shlex
from typing import Any

from relay.faults import RelayFault
from relay.methods import Ctx, method

_current: dict[str, str] = {}  # session -> request id handed out by getJobToDo


def _session(ctx: Ctx, jobname: str) -> Any:
    daemon = ctx.core.registry.by_job.get(jobname)
    if daemon is None or daemon.dn != ctx.caller.dn:
        raise RelayFault(900, f"job {jobname} is not registered by you; call JobMon.registerJob")
    return daemon


@method("JobMon.registerJob", "array string string int int", "daemon", "Legacy: register a job (2005 JobMon).")
async def register_job(ctx: Ctx, jobname: str, host: str, port: int, pid: int) -> Any:
    try:
        await ctx.core.register(ctx.caller, {"job": jobname, "host": host, "pid": pid, "legacy_port": port,
                                             "capabilities": ["exec"]})
    except RelayFault as f:
        return [f.code, f.message]
    return [0, f"job {jobname} registered"]


@method("JobMon.unregisterJob", "array string", "daemon", "Legacy: unregister a job.")
async def unregister_job(ctx: Ctx, jobname: str) -> Any:
    try:
        daemon = _session(ctx, jobname)
    except RelayFault as f:
        return [f.code, f.message]
    ctx.core.registry.unregister(daemon)
    return [0, f"job {jobname} unregistered"]


@method("JobMon.getJobToDo", "array string", "daemon", "Legacy: the next command for a job, or \"\".")
async def get_job_to_do(ctx: Ctx, jobname: str) -> Any:
    try:
        daemon = _session(ctx, jobname)
    except RelayFault as f:
        return [f.code, f.message]
    ctx.core.registry.touch(daemon)
    while daemon.queue:
        req = daemon.queue.popleft()
        if req.future.done():
            continue
        if req.op != "exec":
            req.future.set_result({"fault": 604, "message": f"a legacy daemon cannot run {req.op}"})
            continue
        req.delivered = True
        _current[daemon.session] = req.id
        return [0, shlex.join(req.args.get("argv", []))]
    return [0, ""]


@method("JobMon.outputJobResult", "array string string", "daemon", "Legacy: the output of the last command.")
async def output_job_result(ctx: Ctx, jobname: str, output: str) -> Any:
    try:
        daemon = _session(ctx, jobname)
    except RelayFault as f:
        return [f.code, f.message]
    rid = _current.pop(daemon.session, None)
    if rid is None:
        return [1, "no command was handed out to this job"]
    ok = ctx.core.registry.post_result(
        daemon, rid, {"exit_code": 0, "stdout": output.encode(), "stderr": b"", "duration": 0.0,
                      "truncated": False, "timed_out": False})
    return [0, "result accepted"] if ok else [1, "the command had already timed out"]
