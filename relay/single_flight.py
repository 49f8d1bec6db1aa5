"""Identical pool reads asked at the same time share one call (no cache: nothing is kept after).

Every open web page re-renders its job list when a job it shows reports, and each
render asks the pool (the schedd's queue and history). Ten pages open on one
busy cluster would ask the schedd the same query ten times within milliseconds.
:class:`SingleFlight` makes those one call: the first caller starts it, the others
wait for the same answer; the next caller after it finished starts a new one, so
an answer is never older than the request that got it. After the relay itself
changes the pool (submit, remove, hold, drain), :meth:`SingleFlight.forget`
makes later readers start anew.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Any


class SingleFlight:
    """Runs at most one call per key at a time; callers of a running key share its outcome."""

    def __init__(self) -> None:
        self._running: dict[Hashable, asyncio.Future[Any]] = {}

    @property
    def running(self) -> int:
        return len(self._running)

    async def run(self, key: Hashable, start: Callable[[], Awaitable[Any]]) -> Any:
        """``await start()``, or the outcome of the call already running for ``key``. A list
        answer is copied for each caller (callers extend what they get). A caller that is
        cancelled leaves the call running for the others.

        >>> async def demo():
        ...     calls = []
        ...     async def read():
        ...         calls.append(1)
        ...         await asyncio.sleep(0.01)
        ...         return ["ad"]
        ...     sf = SingleFlight()
        ...     got = await asyncio.gather(*(sf.run("q", read) for _ in range(5)))
        ...     return len(calls), got[0], sf.running
        >>> asyncio.run(demo())
        (1, ['ad'], 0)
        """
        fut = self._running.get(key)
        if fut is None:
            fut = asyncio.ensure_future(start())
            self._running[key] = fut
            fut.add_done_callback(lambda f: self._finished(key, f))
        result = await asyncio.shield(fut)
        return list(result) if isinstance(result, list) else result

    def forget(self) -> None:
        """Callers from now on start new calls (those running finish for their callers): after
        the relay changed the pool, nobody gets an answer read before the change."""
        self._running.clear()

    def _finished(self, key: Hashable, fut: asyncio.Future[Any]) -> None:
        if self._running.get(key) is fut:
            del self._running[key]
        if not fut.cancelled():
            fut.exception()  # seen: every caller may have gone, the error is theirs to have had
