"""Learning that jobs ended when no daemon says so: ask the pool.

A daemon's ``jobmon.finish`` is the normal way the relay learns a job's end.
When the daemon went away without it (killed, evicted, node lost), when the
starter hook reported an eviction, or for jobs submitted through the relay
whose daemon never connected, :class:`EndWatcher` asks the pool every
``interval`` seconds (and at once after :meth:`kick`), and reports ended jobs
to the core's subscribers and job-end callbacks exactly once.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from jobmon.jobstate import exit_of, state_of
from relay.faults import RelayFault
from relay.jobs import ad_id

if TYPE_CHECKING:  # pragma: no cover
    from relay.base import CoreBase

log = logging.getLogger("relay.watcher")


class EndWatcher:
    def __init__(self, core: CoreBase, interval: float = 30.0) -> None:
        self.core = core
        self.interval = interval
        self.clusters: set[int] = set()      # submitted through this relay
        self.jobs: set[str] = set()          # asked for explicitly (evictions)
        self.notified: set[str] = set()
        self._kick = asyncio.Event()

    def kick(self, job: str | None = None) -> None:
        if job is not None:
            self.jobs.add(job)
        self._kick.set()

    def ended(self, job: str) -> bool:
        """Record that ``job``'s end was announced; False if it already was."""
        if job in self.notified:
            return False
        self.notified.add(job)
        return True

    async def run(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._kick.wait(), timeout=self.interval)
            except asyncio.TimeoutError:
                pass
            self._kick.clear()
            try:
                await self.check()
            except RelayFault as f:
                log.warning("could not ask the pool for ended jobs: %s", f.message)

    def _candidates(self) -> list[str]:
        reg = self.core.registry
        out = set(self.jobs)
        for job, daemon in list(reg.by_job.items()):
            if daemon.final is None and not reg.connected(job) and "." in job:
                out.add(job)
        return sorted(j for j in out if j not in self.notified)

    async def check(self) -> None:
        if self.core.pool is None:
            return
        parts = [f"ClusterId == {c}" for c in sorted(self.clusters)]
        for job in self._candidates():
            c, _, p = job.partition(".")
            if c.isdigit() and p.isdigit():
                parts.append(f"(ClusterId == {c} && ProcId == {p})")
        if not parts:
            return
        expr = " || ".join(parts)
        ads = await self.core.pool_ads(expr, history=True)
        live_clusters: set[int] = set()
        for ad in ads:
            found = ad_id(ad)
            if found is None:
                continue
            job = found
            state = state_of(ad)
            if not state.ended:
                live_clusters.add(int(ad.get("ClusterId", -1)))
                continue
            self.jobs.discard(job)
            if job in self.notified:
                continue
            daemon = self.core.registry.by_job.get(job)
            if daemon is not None and daemon.final is None:
                code, sig = exit_of(ad)
                daemon.final = {k: v for k, v in (("exit_code", code), ("signal", sig)) if v is not None}
            struct = self.core.struct(ad, daemon)
            if job not in self.notified:
                self.core.publish(struct)
                self.core.job_ended(struct)  # marks it notified
        self.clusters &= live_clusters

    async def close(self) -> None:
        return None


def cluster_of(result: Any) -> int | None:
    value = result.get("cluster") if isinstance(result, dict) else None
    return value if isinstance(value, int) else None
