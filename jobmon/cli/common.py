"""What every command shares: the context (settings, a lazy client), output, fan-out."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TextIO

from jobmon.client import Client, binary
from jobmon.errors import JobmonError
from jobmon.jobid import JobId
from jobmon.settings import Settings


@dataclass
class Context:
    settings: Settings
    args: argparse.Namespace
    out: TextIO = field(default_factory=lambda: sys.stdout)
    err: TextIO = field(default_factory=lambda: sys.stderr)
    _client: Client | None = None

    def client(self, timeout: float | None = None) -> Client:
        if self._client is None or timeout is not None:
            kw: dict[str, Any] = {} if timeout is None else {"timeout": timeout}
            self._client = Client.from_settings(self.settings, **kw)
        return self._client

    def print(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)

    def json(self, value: Any) -> None:
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
