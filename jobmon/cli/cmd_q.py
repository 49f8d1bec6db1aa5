"""``jobmon q`` and ``jobmon status``: job lists, one job's status, live views."""

from __future__ import annotations

import time
from collections.abc import Mapping

from jobmon import routing
from jobmon.cli.common import Context, cluster_jobs, exit_text, fmt_duration, fmt_time
from jobmon.errors import JobmonError
from jobmon.jobid import JobId

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

ENDED = ("finished", "removed")


def _filter(ctx: Context) -> dict[str, Any]:
    a = ctx.args
    flt: dict[str, Any] = {}
    if a.all:
        flt["all"] = True
    if a.constraint:
        flt["constraint"] = a.constraint
    if a.job:
        flt["cluster"] = JobId.parse(a.job).cluster
    return flt


def _progress(job: Mapping[str, Any]) -> str:
    p = job.get("progress") or {}
    done, total = p.get("done"), p.get("total")
    if isinstance(done, (int, float)) and isinstance(total, (int, float)) and total:
        return f"{done:,.0f}/{total:,.0f} ({100 * done / total:.0f}%)"
    if isinstance(done, (int, float)):
        return f"{done:,.0f}"
    if not p and job.get("daemon") == "legacy":
        return "legacy daemon"   # the 2005 JobMon daemon reports no progress
    return str(p.get("text", ""))[:30]


def _runtime(job: Mapping[str, Any]) -> str:
    start = job.get("started")
    if not isinstance(start, (int, float)):
        return "-"
    end = job.get("ended") if isinstance(job.get("ended"), (int, float)) else time.time()
    return fmt_duration(float(end) - float(start))  # type: ignore[arg-type]


def command_line(job: Mapping[str, Any]) -> str:
    args = job.get("args")
    if isinstance(args, (list, tuple)):
        args = " ".join(str(a) for a in args)
    cmd, args = str(job.get("cmd") or ""), str(args or "")
    if cmd.endswith(".pyz") and " -- " in f" {args} ":
        return f" {args} ".split(" -- ", 1)[1].strip()  # a wrapped job: show the payload
    return f"{cmd} {args}".strip()


def job_table(jobs: list[dict[str, Any]]) -> Any:
    from rich.table import Table

    rows = []
    for j in jobs:
        state = str(j.get("state", "?"))
        if state == "running" and j.get("monitor_problem"):
            state = "running!"
        elif state == "running" and j.get("connected") is False:
            state = "running*"
        rows.append((str(j.get("id")), str(j.get("owner", "-")), state, fmt_time(j.get("submitted")),
                     _runtime(j), str(j.get("host", "-")), _progress(j), exit_text(j),
                     command_line(j)[:60]))
    t = Table(box=None, header_style="bold", pad_edge=False)
    names = ("ID", "OWNER", "STATE", "SUBMITTED", "RUN TIME", "HOST", "PROGRESS", "EXIT", "CMD")
    for i, col in enumerate(names):
        # in a narrow terminal only HOST and CMD are shortened: an id or a state cut to "1…" is useless
        keep = col not in ("HOST", "CMD")
        width = max([len(col)] + [len(r[i]) for r in rows]) if keep else None
        t.add_column(col, no_wrap=True, overflow="ellipsis", min_width=width,
                     max_width=50 if col == "CMD" else None)
    for r in rows:
        t.add_row(*r)
    return t


MIN_TABLE_WIDTH = 100


def table_console(out: Any) -> Any:
    """A rich console for tables: the terminal's width, or wide enough when output is piped."""
    from rich.console import Console

    tty = hasattr(out, "isatty") and out.isatty()
    if not tty:
        return Console(file=out, width=200)
    console = Console(file=out)
    if console.width < MIN_TABLE_WIDTH:  # rich would drop whole columns; let the terminal wrap instead
        console = Console(file=out, width=MIN_TABLE_WIDTH)
    return console


def run_q(ctx: Context) -> int:
    flt = _filter(ctx)
    relays = routing.relays_for(ctx)
    jobs = routing.job_lists(relays, flt)  # every relay the jobs name, merged
    if ctx.args.json:
        ctx.json(jobs)
        return 0
    console = table_console(ctx.out)
    if not ctx.args.watch:
        if jobs:
            console.print(job_table(jobs))
        _summary(ctx, jobs)
        return 0
    from rich.live import Live

    from jobmon.cli.live import live_jobs

    with Live(job_table(jobs), console=console, refresh_per_second=4) as live:
        for jobs in live_jobs(ctx.client(), lambda: routing.job_lists(relays, flt), _all_ended):
            live.update(job_table(jobs))
    _summary(ctx, jobs)
    return 0


def _all_ended(jobs: list[dict[str, Any]]) -> bool:
    return not jobs or all(j.get("state") in ENDED for j in jobs)


def _summary(ctx: Context, jobs: list[dict[str, Any]]) -> None:
    counts: dict[str, int] = {}
    for j in jobs:
        counts[str(j.get("state"))] = counts.get(str(j.get("state")), 0) + 1
    parts = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    ctx.print(f"{len(jobs)} job(s){': ' + parts if parts else ''}")
    untrusting = [str(j.get("id")) for j in jobs if j.get("state") == "running" and j.get("monitor_problem")]
    if untrusting:
        ctx.print(f"running!: the daemon cannot verify the relay's certificate ({', '.join(untrusting[:5])}"
                  f"{', ...' if len(untrusting) > 5 else ''}); `jobmon status JOB` says why")


def status_lines(job: Mapping[str, Any]) -> list[str]:
    live = job.get("state") == "running"  # only a running job's monitor can be missing
    problem = job.get("monitor_problem") if live else None
    note = "" if job.get("connected", True) or not live else " (monitor not connected)"
    if problem:
        note = " (daemon cannot verify the relay's certificate)"
    lines = [f"state:      {job.get('state')}{note}"]
    if problem:
        lines.append(f"monitor:    {problem}")
    for key, label in (("owner", "owner"), ("owner_dn", "owner DN"), ("host", "host")):
        if job.get(key):
            lines.append(f"{label + ':':<11} {job[key]}")
    if job.get("daemon") == "legacy":
        lines.append("daemon:     2005 JobMon daemon (legacy: runs ls, cat, tail, head, du, ps only)")
    if job.get("submitted"):  # absent while the job's monitor answers for it (docs/PROTOCOL.md)
        lines.append(f"submitted:  {fmt_time(job.get('submitted'))}")
    if job.get("started"):
        lines.append(f"started:    {fmt_time(job.get('started'))}   run time {_runtime(job)}")
    if job.get("ended"):
        lines.append(f"ended:      {fmt_time(job.get('ended'))}")
    if "exit_code" in job or "signal" in job:
        lines.append(f"exit:       {exit_text(job)}")
    if job.get("hold_reason"):
        lines.append(f"held:       {job['hold_reason']}")
    prog = _progress(job)
    if prog:
        p = job.get("progress") or {}
        extra = ""
        if isinstance(p.get("rate"), (int, float)):
            extra += f", {p['rate']:.1f}/s"
        if isinstance(p.get("eta"), (int, float)):
            extra += f", ETA {fmt_duration(p['eta'])}"
        lines.append(f"progress:   {prog}{extra}")
    cmd = command_line(job)
    if cmd:
        lines.append(f"command:    {cmd}")
    return lines


def run_status(ctx: Context) -> int:
    job = JobId.parse(ctx.args.job)
    if ctx.args.watch:
        return _watch(ctx, job)
    if not job.is_cluster:
        st = routing.job_status(routing.relays_for(ctx), str(job))
        if ctx.args.json:
            ctx.json(st)
        else:
            ctx.print(f"{st.get('id', job)}")
            for line in status_lines(st):
                ctx.print("  " + line)
        return 0
    failed = 0
    results = []
    for j in cluster_jobs(ctx, job):
        jid = str(j.get("id"))
        try:
            st = ctx.client().status(jid)
        except JobmonError as exc:
            failed += 1
            ctx.print(f"{jid}: error: {exc}")
            continue
        results.append(st)
        if not ctx.args.json:
            for line in status_lines(st):
                ctx.print(f"{jid}:  {line}")
    if ctx.args.json:
        ctx.json(results)
    return 1 if failed else 0


def _watch(ctx: Context, job: JobId) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn

    from jobmon.cli.live import live_jobs

    ids = [str(j["id"]) for j in cluster_jobs(ctx, job)] if job.is_cluster else [str(job)]
    console = Console(file=ctx.out)
    columns = (TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
               TextColumn("{task.fields[detail]}"))

    def full() -> list[dict[str, Any]]:
        if not job.is_cluster:
            return [dict(ctx.client().status(str(job)))]
        listed = {str(j.get("id")): dict(j) for j in ctx.client().joblist({"cluster": job.cluster})}
        return [listed[jid] for jid in ids if jid in listed]

    states: dict[str, Mapping[str, Any]] = {}
    with Progress(*columns, console=console, refresh_per_second=4) as bars:
        tasks = {jid: bars.add_task(jid, total=None, detail="") for jid in ids}
        for jobs in live_jobs(ctx.client(), full, _all_ended):
            for st in jobs:
                jid = str(st.get("id"))
                if jid not in tasks:
                    continue
                states[jid] = st
                p = st.get("progress") or {}
                total = p.get("total") if isinstance(p.get("total"), (int, float)) else None
                done = p.get("done") if isinstance(p.get("done"), (int, float)) else 0
                detail = str(st.get("state"))
                if isinstance(done, (int, float)) and total:
                    detail += f"  {done:,.0f}/{total:,.0f}"
                if isinstance(p.get("rate"), (int, float)):
                    detail += f"  {p['rate']:.1f}/s"
                if isinstance(p.get("eta"), (int, float)) and st.get("state") == "running":
                    detail += f"  ETA {fmt_duration(p['eta'])}"
                if st.get("state") in ENDED:
                    detail += f"  exit {exit_text(st)}"
                    if total is None:
                        total, done = 1, 1
                bars.update(tasks[jid], total=total, completed=done, detail=detail)
    bad = [jid for jid, s in states.items() if s.get("state") != "finished" or s.get("exit_code", 0) != 0]
    return 1 if bad else 0
