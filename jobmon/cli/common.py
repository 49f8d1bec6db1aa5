"""What every command shares: the context (settings, a lazy client), output, fan-out.

Imported by every command, so it imports only what the quick commands need
(docs/PERFORMANCE.md, "CLI latency"); ``json`` and the fault table load when used.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping, Sequence

from jobmon.client import Client, binary
from jobmon.errors import JobmonError
from jobmon.jobid import JobId
from jobmon.settings import Settings

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from typing import Any, TextIO


class Context:
    """One command's settings, arguments, output streams and its one client.

    The client (and with it the credentials, the TLS context and the
    connection) is made on first use and then kept: every call of the command
    rides on one TLS connection. ``client(timeout=S)`` sets the timeout of the
    calls that follow.
    """

    def __init__(self, settings: Settings, args: argparse.Namespace, out: TextIO | None = None,
                 err: TextIO | None = None) -> None:
        self.settings = settings
        self.args = args
        self.out: TextIO = sys.stdout if out is None else out
        self.err: TextIO = sys.stderr if err is None else err
        self._client: Client | None = None

    def client(self, timeout: float | None = None) -> Client:
        if self._client is None:
            kw: dict[str, Any] = {} if timeout is None else {"timeout": timeout}
            self._client = Client.from_settings(self.settings, **kw)
        elif timeout is not None:
            self._client.timeout = timeout
        return self._client

    def print(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)

    def json(self, value: Any) -> None:
        import json

        print(json.dumps(value, indent=2, sort_keys=True, default=_json_default), file=self.out)


def _json_default(value: Any) -> Any:
    data = binary(value)
    return data.decode("utf-8", "replace")


def parse_job(text: str, allow_cluster: bool = False) -> JobId:
    job = JobId.parse(text)
    if job.is_cluster and not allow_cluster:
        from jobmon.errors import UsageError

        raise UsageError(f"{text!r} names a whole cluster; this command needs one job (CLUSTER.PROC)")
    return job


def cluster_jobs(ctx: Context, job: JobId) -> list[dict[str, Any]]:
    """The jobs of a cluster the caller may see, in proc order."""
    jobs = ctx.client().joblist({"cluster": job.cluster})
    jobs = [j for j in jobs if int(j.get("cluster", -1)) == job.cluster]
    if not jobs:
        from jobmon.errors import NotFound

        raise NotFound(f"no jobs of cluster {job.cluster} that you may see")
    return sorted(jobs, key=lambda j: int(j.get("proc", 0)))


def fan_out(ctx: Context, job: JobId, argv: list[str], options: Mapping[str, Any]
            ) -> Iterator[tuple[str, dict[str, Any] | None, JobmonError | None]]:
    """Run ``argv`` in every job of a cluster through ``execMany``: (job, result, error) each."""
    from jobmon.faults import error_for_fault

    for entry in ctx.client().batch({"cluster": job.cluster}, argv, dict(options)):
        jid = str(entry.get("job"))
        if "fault" in entry:
            yield jid, None, error_for_fault(int(entry["fault"]), str(entry.get("message", "")))
        else:
            yield jid, dict(entry.get("result", {})), None


def plain_table(headers: tuple[str, ...], rows: Sequence[tuple[str, ...]], right: tuple[str, ...] = (),
                out: Any = None) -> list[str]:
    """Lines of a table as ``rich.table.Table(box=None, pad_edge=False)`` draws it: columns two
    spaces apart, ``right`` ones right-aligned, header bold on a terminal; the last column is
    never padded or wrapped. For the quick commands, which do not import rich (~40 ms)."""
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]

    def line(cells: tuple[str, ...]) -> str:
        parts = []
        for i, (h, cell) in enumerate(zip(headers, cells)):
            last = i == len(headers) - 1
            if h in right:
                parts.append(cell.rjust(widths[i]))
            else:
                parts.append(cell if last else cell.ljust(widths[i]))
        return "  ".join(parts).rstrip()

    head = line(headers)
    if out is not None and _bold_ok(out):
        head = f"\x1b[1m{head}\x1b[0m"
    return [head] + [line(r) for r in rows]


def _bold_ok(out: Any) -> bool:
    import os

    tty = hasattr(out, "isatty") and out.isatty()
    return bool(tty) and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"


def fmt_time(value: Any) -> str:
    import time

    if not isinstance(value, (int, float)) or not value:
        return "-"
    return time.strftime("%m/%d %H:%M:%S", time.localtime(float(value)))


def fmt_duration(seconds: Any) -> str:
    if not isinstance(seconds, (int, float)) or seconds < 0:
        return "-"
    s = int(seconds)
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    if s >= 60:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s}s"


def exit_text(job: Mapping[str, Any]) -> str:
    if "signal" in job:
        return f"signal {job['signal']}"
    if "exit_code" in job:
        return str(job["exit_code"])
    return "-"
