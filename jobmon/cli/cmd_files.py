"""``jobmon ps JOB`` and ``jobmon ls JOB [PATH]``."""

from __future__ import annotations

import stat
import time

from jobmon import routing
from jobmon.cli.common import Context, fmt_duration, parse_job, plain_table

PS_COLUMNS = ("PID", "PPID", "S", "%CPU", "RSS", "ELAPSED", "COMMAND")


def run_ps(ctx: Context) -> int:
    job = parse_job(ctx.args.job)
    res = routing.on_job_relay(routing.relays_for(ctx), str(job), lambda c: c.call("jobmon.ps", str(job)))
    rows = []
    for p in res.get("processes", []):
        rss = p.get("rss_kb")
        rows.append((str(p.get("pid")), str(p.get("ppid")), str(p.get("state", "")),
                     f"{float(p.get('cpu_percent', 0)):.1f}",
                     f"{int(rss) // 1024}M" if isinstance(rss, (int, float)) and rss >= 10240 else f"{rss}K",
                     fmt_duration(p.get("elapsed")), str(p.get("cmdline", ""))))
    for line in plain_table(PS_COLUMNS, rows, right=("PID", "PPID", "%CPU", "RSS"), out=ctx.out):
        ctx.print(line)
    return 0


def _mode(entry: dict[str, object]) -> str:
    mode = entry.get("mode")
    if isinstance(mode, int):
        return stat.filemode(mode if mode > 0o7777 else mode | {"dir": stat.S_IFDIR, "link": stat.S_IFLNK}
                             .get(str(entry.get("type")), stat.S_IFREG))
    return "?"


def run_ls(ctx: Context) -> int:
    job = parse_job(ctx.args.job)
    res = routing.on_job_relay(routing.relays_for(ctx), str(job),
                               lambda c: c.call("jobmon.listdir", str(job), ctx.args.path))
    entries = sorted(res.get("entries", []), key=lambda e: str(e.get("name")))
    for e in entries:
        mtime = e.get("mtime")
        when = time.strftime("%b %d %H:%M", time.localtime(float(mtime))) if isinstance(mtime, (int, float)) else "-"
        name = str(e.get("name")) + ("/" if e.get("type") == "dir" else "")
        ctx.print(f"{_mode(e)} {int(e.get('size', 0)):>12,} {when} {name}")
    return 0
