"""``jobmon.nodeReport``: what the execute node's starter hooks say about a job.

The hooks (condor_hooks/) authenticate like the job's daemon. An ``update``
report's ``resources`` are shown for the job like a heartbeat's (also when no
daemon is connected); an ``exit`` report with reason ``exit`` gives the exit
code or signal; ``evict`` makes the relay ask the pool for the job's state.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from relay.faults import Fault, RelayFault
from relay.jobs import owner_dn

if TYPE_CHECKING:  # pragma: no cover
    from relay.core import RelayCore
    from relay.identity import Identity

KINDS = ("update", "exit")


async def node_report(core: RelayCore, caller: Identity, job: str, report: dict[str, Any]) -> bool:
    from relay.base import _parse_job

    jid = _parse_job(job)
    if jid is None or jid.proc is None:
        raise RelayFault(Fault.BAD_PARAMS, f"jobmon.nodeReport: {job!r} is not a job id (C.P)")
    kind = report.get("kind")
    if kind not in KINDS:
        raise RelayFault(Fault.BAD_PARAMS, "jobmon.nodeReport: report.kind must be \"update\" or \"exit\"")
    if caller.kind == "credential":
        scope = caller.job_scope
        if scope is None:
            scope = core.credentials.bound_cluster(caller.credential_id or "")
        if scope != jid.cluster:
            raise core.deny(caller, "jobmon.nodeReport", RelayFault(
                Fault.CREDENTIAL_INVALID, f"credential is not bound to cluster {jid.cluster}"), job)
    else:
        daemon = core.registry.by_job.get(job)
        ads = [] if daemon is not None else await core.pool_ads(jid.constraint())
        owner = owner_dn(ads[0] if ads else None, daemon)
        if not core.may_act(caller, owner):
            raise core.deny(caller, "jobmon.nodeReport", RelayFault(
                Fault.NOT_OWNER, f"you may not report for job {job}"), job)
    entry = core.node_reports.setdefault(job, {})
    entry["time"] = report.get("time", time.time())
    if isinstance(report.get("resources"), dict):
        entry["resources"] = report["resources"]
    if kind == "exit":
        entry["exit"] = {k: report[k] for k in ("reason", "exit_code", "signal", "vacate_reason") if k in report}
        if report.get("reason") == "evict":
            core.watch_now(job)
    daemon = core.registry.by_job.get(job)
    if daemon is not None and "resources" in entry and not daemon.status.get("resources"):
        daemon.status["resources"] = entry["resources"]
    return True
