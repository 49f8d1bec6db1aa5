"""``jobmon rm JOB``: remove a job, or every job of a cluster."""

from __future__ import annotations

from jobmon.cli.common import Context
from jobmon.jobid import JobId


def run(ctx: Context) -> int:
    job = JobId.parse(ctx.args.job)
    res = ctx.client().call("jobmon.remove", str(job), ctx.args.reason)
    removed = [str(j) for j in res.get("jobs", [])]
    for jid in removed:
        ctx.print(f"{jid}: marked for removal")
    if not removed:
        from jobmon.errors import NotFound

        raise NotFound(f"no job {job} to remove (already ended?)")
    return 0
