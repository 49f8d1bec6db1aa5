"""``jobmon.watch``: fresh progress for live views, from memory, without asking the pool.

A live view (``jobmon status --watch``, ``q --watch``) calls ``watch(jobs,
{since, wait, lease})`` in a loop. Each call holds the caller's lease on the
listed jobs whose daemons are connected (so those daemons report progress
live, see relay/watching.py) and answers with their job structs as the
daemons last reported them. With ``since`` (the ``since`` of the previous
answer) it waits up to ``wait`` seconds until one of them reports again, so
a new progress value reaches the view as soon as the relay has it. Nothing
here touches the pool: the view refreshes the pool's side (queue state,
hold reasons) with ``joblist``/``status`` every few seconds on its own.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from relay.daemon_ops import DaemonCore
from relay.faults import Fault, RelayFault
from relay.identity import Identity
from relay.watching import lease_seconds

MAX_WAIT = 30.0
MAX_JOBS = 10000


class WatchCore(DaemonCore):
    async def watch(self, caller: Identity, jobs: list[Any], options: Mapping[str, Any] | None = None
                    ) -> dict[str, Any]:
        if caller.kind == "credential":
            raise RelayFault(Fault.ACCESS_DENIED, "a job credential cannot watch jobs")
        if not isinstance(jobs, list) or len(jobs) > MAX_JOBS or not all(isinstance(j, str) for j in jobs):
            raise RelayFault(Fault.BAD_PARAMS, f"jobmon.watch: jobs must be an array of at most {MAX_JOBS} job ids")
        opts = dict(options or {})
        unknown = set(opts) - {"since", "wait", "lease"}
        if unknown:
            raise RelayFault(Fault.BAD_PARAMS, f"jobmon.watch: unknown option(s) {', '.join(sorted(unknown))}")
        since = opts.get("since")
        if since is not None and (isinstance(since, bool) or not isinstance(since, int)):
            raise RelayFault(Fault.BAD_PARAMS, "jobmon.watch: options.since must be an int")
        wait = opts.get("wait", 0.0)
        if isinstance(wait, bool) or not isinstance(wait, (int, float)) or wait < 0:
            raise RelayFault(Fault.BAD_PARAMS, "jobmon.watch: options.wait must be a number of seconds")
        wait = min(float(wait), MAX_WAIT)
        holder = f"rpc:{caller.dn}"
        deadline = time.monotonic() + wait
        while True:
            mine = self._watchable(caller, jobs)
            self.watchers.hold(holder, mine, time.time() + lease_seconds(opts.get("lease")) + wait)
            fresh = since is None or any(d.seq > since for d in mine.values())
            left = deadline - time.monotonic()
            if fresh or left <= 0 or self.stopping:
                return {"since": self.change_seq,
                        "jobs": {job: self.daemon_struct(d) for job, d in mine.items()}}
            await self.wait_change(left)

    def _watchable(self, caller: Identity, jobs: list[str]) -> dict[str, Any]:
        """The listed jobs whose daemon is here and belongs to the caller (or the caller is an admin)."""
        out = {}
        admin = self.is_admin(caller)
        for job in jobs:
            daemon = self.registry.by_job.get(job)
            if daemon is not None and not daemon.gone and (admin or self.ownership.owns(caller.dn, daemon.dn)):
                out[job] = daemon
        return out
