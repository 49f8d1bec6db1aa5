"""The job list behind ``status --watch`` and ``q --watch``: fresh progress, little load.

The pool's side of the jobs (queue state, hold reasons, exit codes HTCondor
records) comes from a full refresh every ``FULL_REFRESH`` seconds. In
between, ``jobmon.watch`` long-polls the relay for the running jobs: it holds
a lease that makes their daemons report progress live (at most once a
second) and returns as soon as one of them does, so a new value is on the
screen a few milliseconds after the relay has it (docs/PROTOCOL.md). A relay
without ``jobmon.watch`` gets the full refresh every ``REFRESH`` seconds.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

FULL_REFRESH = 5.0
REFRESH = 2.0
WAIT = 2.0
LEASE = 15.0
LIVE_STATES = ("running", "waiting")
ENDED = ("finished", "removed")
#: what a daemon's report may change in a job struct between full refreshes
LIVE_KEYS = ("progress", "resources", "connected", "state", "exit_code", "signal", "ended", "host")

Jobs = list[dict[str, Any]]


def merge(jobs: Jobs, fresh: dict[str, dict[str, Any]]) -> Jobs:
    """``jobs`` with the live fields of ``fresh`` (id -> the daemon's struct) laid over them.

    >>> merge([{"id": "1.0", "state": "running", "cmd": "a"}],
    ...       {"1.0": {"id": "1.0", "state": "running", "progress": {"done": 5.0}}})
    [{'id': '1.0', 'state': 'running', 'cmd': 'a', 'progress': {'done': 5.0}}]
    """
    out = []
    for job in jobs:
        new = fresh.get(str(job.get("id")))
        if new is not None and job.get("state") not in ENDED:
            job = dict(job)
            job.update({k: new[k] for k in LIVE_KEYS if k in new})
        out.append(job)
    return out


def live_jobs(client: Any, full: Callable[[], Jobs], done: Callable[[Jobs], bool]) -> Iterator[Jobs]:
    """Yield the jobs at once and then at every change, until ``done(jobs)``."""
    jobs = full()
    yield jobs
    last_full = time.monotonic()
    since: int | None = None
    watch = "jobmon.watch" in client.call("system.listMethods")
    while not done(jobs):
        left = FULL_REFRESH - (time.monotonic() - last_full)
        live = [str(j.get("id")) for j in jobs if j.get("state") in LIVE_STATES]
        if not watch or left <= 0 or not live:
            if left > 0:
                time.sleep(min(left, REFRESH))
            jobs = full()
            last_full = time.monotonic()
            yield jobs
            continue
        options: dict[str, Any] = {"wait": min(WAIT, left), "lease": LEASE}
        if since is not None:
            options["since"] = since
        answer = client.call("jobmon.watch", live, options)
        since = int(answer.get("since", 0))
        jobs = merge(jobs, answer.get("jobs") or {})
        yield jobs  # also when nothing changed: the run times on screen move on
