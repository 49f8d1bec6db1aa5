"""Who is watching which job, so that watched jobs report progress live (issue 13).

A daemon sends its progress with the heartbeat (every ``heartbeat`` seconds,
30 by default): cheap for 10,000 jobs nobody looks at, but half a minute
behind the payload for the one someone is looking at. So the relay keeps
*leases*: a holder (an open web page or event stream, a ``jobmon status
--watch`` / ``q --watch``) holds a job until its lease expires or it lets go.
When a job gains its first holder or loses its last one, :class:`Watchers`
calls ``on_change(job, watched)``; the core passes that to the job's daemon
as a ``watch`` control request on its long-poll (docs/PROTOCOL.md), and a
watched daemon sends changed progress at once, at most once per second.

:class:`Watchers` is plain bookkeeping (no event loop, no sockets), driven by
the core: ``hold`` / ``release`` from the callers, ``expire`` from the core's
half-second housekeeping loop.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable

#: a lease taken through ``jobmon.watch`` lasts this long unless the caller says otherwise
DEFAULT_LEASE = 10.0
MAX_LEASE = 120.0
#: a watched daemon's shortest interval between progress reports (seconds)
PUSH_INTERVAL = 1.0

OnChange = Callable[[str, bool], None]


class Watchers:
    def __init__(self, on_change: OnChange | None = None) -> None:
        self.on_change = on_change
        self._leases: dict[str, dict[str, float]] = {}   # job -> holder -> expiry (inf: until released)
        self._held: dict[str, set[str]] = {}             # holder -> jobs

    def watched(self, job: str) -> bool:
        return bool(self._leases.get(job))

    def count(self) -> int:
        """How many jobs are watched now."""
        return len(self._leases)

    def hold(self, holder: str, jobs: Iterable[str], until: float = math.inf) -> None:
        """``holder`` watches ``jobs`` until ``until`` (epoch seconds) or until released."""
        mine = self._held.setdefault(holder, set())
        for job in jobs:
            leases = self._leases.setdefault(job, {})
            first = not leases
            leases[holder] = max(until, leases.get(holder, 0.0))
            mine.add(job)
            if first:
                self._changed(job, True)

    def hold_only(self, holder: str, jobs: Iterable[str], until: float = math.inf) -> None:
        """``holder`` watches exactly ``jobs`` now (a list page whose rows changed)."""
        wanted = set(jobs)
        self.release(holder, self._held.get(holder, set()) - wanted)
        self.hold(holder, wanted, until)

    def release(self, holder: str, jobs: Iterable[str] | None = None) -> None:
        """``holder`` stops watching ``jobs`` (default: everything it holds)."""
        mine = self._held.get(holder)
        if not mine:
            return
        for job in list(mine if jobs is None else jobs):
            if job not in mine:
                continue
            mine.discard(job)
            self._drop(job, holder)
        if not mine:
            self._held.pop(holder, None)

    def expire(self, now: float | None = None) -> None:
        """Let go of every lease that ran out."""
        now = time.time() if now is None else now
        for job, leases in list(self._leases.items()):
            for holder, until in list(leases.items()):
                if until <= now:
                    mine = self._held.get(holder)
                    if mine is not None:
                        mine.discard(job)
                        if not mine:
                            self._held.pop(holder, None)
                    self._drop(job, holder)

    def _drop(self, job: str, holder: str) -> None:
        leases = self._leases.get(job)
        if leases is None or holder not in leases:
            return
        del leases[holder]
        if not leases:
            del self._leases[job]
            self._changed(job, False)

    def _changed(self, job: str, watched: bool) -> None:
        if self.on_change is not None:
            self.on_change(job, watched)


def lease_seconds(value: object) -> float:
    """A caller's lease length, bounded: ``lease_seconds(None)`` is the default."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        return DEFAULT_LEASE
    return min(float(value), MAX_LEASE)
