"""``jobmon nodes`` and ``jobmon audit`` (admins)."""

from __future__ import annotations

import datetime as dt
import re
import time

from jobmon.cli.common import Context, fmt_time
from jobmon.errors import UsageError


def run_nodes(ctx: Context) -> int:
    from rich.console import Console
    from rich.table import Table

    a = ctx.args
    if a.action != "list" and not a.node:
        raise UsageError(f"jobmon nodes {a.action} needs a NODE")
    if a.action == "add":
        # local: the steps that make NODE join this HTCondor pool, filled in from its configuration
        from jobmon.pools.condor import node_join_instructions

        ctx.print(node_join_instructions(a.node).rstrip("\n"))
        return 0
    if a.action != "list":
        res = ctx.client().call("jobmon.nodeAction", a.node, a.action)
        ctx.print(str(res.get("message", "done")))
        return 0
    nodes = list(ctx.client().call("jobmon.nodes"))
    if a.json:
        ctx.json(nodes)
        return 0
    t = Table(box=None, header_style="bold", pad_edge=False)
    for col in ("NODE", "STATE", "ACTIVITY", "SLOTS", "LOAD", "JOBMON", "JOBS"):
        t.add_column(col)
    for n in nodes:
        t.add_row(str(n.get("name")), str(n.get("state")), str(n.get("activity", "")),
                  f"{n.get('slots_busy', 0)}/{n.get('slots_total', 0)}", f"{float(n.get('load', 0)):.2f}",
                  "yes" if n.get("has_jobmon") else "no", " ".join(str(j) for j in n.get("running_jobs", [])))
    Console(file=ctx.out, width=200).print(t)
    return 0


def parse_since(text: str, now: float | None = None) -> float:
    """``--since``: epoch seconds, an ISO time, or an age like ``90s``, ``30m``, ``2h``, ``1d``."""
    now = time.time() if now is None else now
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([smhd])", text.strip())
    if m:
        return now - float(m.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return dt.datetime.fromisoformat(text).timestamp()
    except ValueError:
        raise UsageError(f"--since {text!r}: use epoch seconds, an ISO time or an age like 2h") from None


def run_audit(ctx: Context) -> int:
    a = ctx.args
    flt: dict[str, object] = {}
    if a.job:
        flt["job"] = a.job
    if a.user:
        flt["user"] = a.user
    if a.since:
        flt["since"] = parse_since(a.since)
    records = list(ctx.client().call("jobmon.audit", flt))
    if a.json:
        ctx.json(records)
        return 0
    for r in records:
        allowed = "ok" if r.get("allowed", True) else "DENIED"
        argv = r.get("argv")
        what = " ".join(str(x) for x in argv) if isinstance(argv, list) else str(argv or "")
        ctx.print(f"{fmt_time(r.get('time'))} {allowed:6} {r.get('job', '-')!s:10} {r.get('method', '')} "
                  f"{what} exit={r.get('exit_status', '-')} by {r.get('caller', r.get('dn', '?'))}")
    return 0
