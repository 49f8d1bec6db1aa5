"""The 2005 JobMon daemon's methods (``JobMon.*``), as the real daemon calls them.

Each answers ``[status, text]``, status 0 for success (docs/PROTOCOL.md,
"Legacy JobMon daemon"). The daemon logs in with ``system.auth2`` before
every exchange and calls ``system.logout`` after it; its identity is the
session's DN, checked like every daemon's. The work is done by
:class:`relay.legacy_hub.LegacyHub`, which exists only when the relay's
config has ``[legacy] enabled = true``; otherwise ``registerJob`` says so
and the daemon tries again after its own 300 s.

* ``JobMon.registerJob(jobname, hostname, port, pid)`` → ``[0, "registered
  JOB JobMon_reconnect_time=N JobMon_wakeup_method=TCPbroadcast
  JobMon_tcpserver_hostname=H JobMon_tcpserver_port=P"]``;
* ``JobMon.unregisterJob(jobname, hostname, port, pid)``;
* ``JobMon.getJobToDo(name)`` → ``[0, command line]`` or ``[0, ""]``;
* ``JobMon.outputJobResult(name, output)``.
"""

from __future__ import annotations

from typing import Any

from relay.legacy_hub import hub_for
from relay.legacy_wire import ascii_text
from relay.methods import Ctx, method

_OFF = "this relay does not serve 2005 JobMon daemons (its config has no [legacy] enabled = true)"


def _reply(status: int, text: str) -> list[Any]:
    """``[status, text]``, the text made ASCII: the daemon logs it and dies on anything else."""
    return [int(status), ascii_text(text)]


@method("JobMon.registerJob", "array string string int int", "daemon",
        "Legacy (2005 JobMon daemon): register jobname from hostname; the UDP port and pid are the "
        "daemon's. Answers [0, 'key=value ...' settings] or [code, reason].")
async def register_job(ctx: Ctx, jobname: str, hostname: str, port: int, pid: int) -> Any:
    hub = hub_for(ctx.core)
    if hub is None:
        return _reply(1, _OFF)
    return _reply(*await hub.register(ctx.caller, jobname, hostname, port, pid, ctx.peer))


@method("JobMon.unregisterJob", "array string string int int", "daemon",
        "Legacy: the daemon of jobname leaves (it sends the arguments it registered with).")
async def unregister_job(ctx: Ctx, jobname: str, hostname: str, port: int, pid: int) -> Any:
    hub = hub_for(ctx.core)
    if hub is None:
        return _reply(1, _OFF)
    return _reply(*hub.unregister(ctx.caller, jobname))


@method("JobMon.getJobToDo", "array string", "daemon",
        "Legacy: the command line of the request named in the daemon's wake-up, or \"\" (always status 0).")
async def get_job_to_do(ctx: Ctx, name: str) -> Any:
    hub = hub_for(ctx.core)
    if hub is None:
        return _reply(0, "")
    return _reply(*hub.get_job_to_do(ctx.caller, name))


@method("JobMon.outputJobResult", "array string string", "daemon",
        "Legacy: the output of the request name (with .fo changed to .fi): stdout, or Error: and stderr.")
async def output_job_result(ctx: Ctx, name: str, output: str) -> Any:
    hub = hub_for(ctx.core)
    if hub is None:
        return _reply(1, _OFF)
    return _reply(*hub.output_job_result(ctx.caller, name, output))
