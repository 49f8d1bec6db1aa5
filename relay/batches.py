"""Fan-out batches: one command to many jobs, results collected as they arrive."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from relay.faults import Fault, RelayFault

KEEP_DONE = 600.0  # seconds a finished batch stays readable
#: workers started per turn of the event loop: between turns the loop reads what came in, so
#: the first results are taken (and a waiting batchResults answered) while the rest start
RAMP = 16


@dataclass
class Batch:
    id: str
    dn: str
    jobs: list[str]
    results: list[dict[str, Any]] = field(default_factory=list)
    cursor: int = 0
    pending: int = 0
    finished_at: float | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    read_at: float = field(default_factory=time.monotonic)   # last collected (or started)
    cancelled: bool = False                                   # no more workers start
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def done(self) -> bool:
        return self.pending == 0

    def add(self, item: dict[str, Any]) -> None:
        self.results.append(item)
        self.pending -= 1
        if self.pending == 0:
            self.finished_at = time.time()
        self._changed.set()

    async def take(self, wait: float) -> tuple[list[dict[str, Any]], bool]:
        if self.cursor >= len(self.results) and not self.done and wait > 0:
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), timeout=wait)
            except asyncio.TimeoutError:
                pass
        out = self.results[self.cursor :]
        self.cursor = len(self.results)
        self.read_at = time.monotonic()
        return out, self.done and self.cursor >= len(self.results)


class Batches:
    def __init__(self, concurrency: int) -> None:
        self.concurrency = max(1, concurrency)
        self._batches: dict[str, Batch] = {}

    def start(
        self, dn: str, jobs: list[str], run: Callable[[str], Awaitable[dict[str, Any]]]
    ) -> Batch:
        self._expire()
        batch = Batch(id=os.urandom(8).hex(), dn=dn, jobs=list(jobs), pending=len(jobs))
        if not jobs:
            batch.finished_at = time.time()
        self._batches[batch.id] = batch
        todo = iter(batch.jobs)

        async def worker() -> None:
            # at most ``concurrency`` workers take the jobs in turn: the first commands leave at
            # once (no task per job to start first), and memory does not grow with the batch
            for job in todo:
                try:
                    result = await run(job)
                    batch.add({"job": job, "result": result})
                except RelayFault as f:
                    batch.add({"job": job, "fault": f.code, "message": f.message})

        loop = asyncio.get_running_loop()
        wanted = min(self.concurrency, len(jobs))

        def start_some() -> None:
            if batch.cancelled:
                return
            for _ in range(min(RAMP, wanted - len(batch.tasks))):
                batch.tasks.append(loop.create_task(worker()))
            if len(batch.tasks) < wanted:
                loop.call_soon(start_some)

        start_some()
        return batch

    def get(self, batch_id: str, dn: str, admin: bool) -> Batch:
        batch = self._batches.get(batch_id)
        if batch is None:
            raise RelayFault(Fault.BAD_PARAMS, f"no batch {batch_id!r} (expired or never started)")
        if batch.dn != dn and not admin:
            raise RelayFault(Fault.NOT_OWNER, f"batch {batch_id} was started by someone else")
        return batch

    def _expire(self) -> None:
        now = time.time()
        for key in [k for k, b in self._batches.items() if b.finished_at and now - b.finished_at > KEEP_DONE]:
            del self._batches[key]

    def cancel_all(self) -> None:
        for b in self._batches.values():
            b.cancelled = True
            for t in b.tasks:
                t.cancel()

    def unread(self, recent: float = 60.0) -> int:
        """Batches whose caller, still collecting (read within ``recent`` seconds), has not got
        every result yet: the relay waits for them when it stops, bounded."""
        now = time.monotonic()
        return sum(1 for b in self._batches.values()
                   if (not b.done or b.cursor < len(b.results)) and now - b.read_at < recent)
