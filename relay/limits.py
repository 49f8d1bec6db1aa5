"""Limits that answer with a fault, never a hang: request rate, commands per job."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from relay.faults import Fault, RelayFault


class RateLimiter:
    """A token bucket per caller DN: ``rate`` requests per second, bursts of ``burst``."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = float(rate)
        self.burst = float(max(1, burst))
        self._buckets: dict[str, tuple[float, float]] = {}

    def check(self, key: str, now: float | None = None) -> None:
        if self.rate <= 0:
            return
        now = time.monotonic() if now is None else now
        tokens, last = self._buckets.get(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        if tokens < 1.0:
            self._buckets[key] = (tokens, now)
            wait = (1.0 - tokens) / self.rate
            raise RelayFault(
                Fault.RATE_LIMITED,
                f"too many requests from you ({self.rate:g}/s allowed, bursts of {self.burst:g}); retry in {wait:.2f} s",
            )
        self._buckets[key] = (tokens - 1.0, now)
        if len(self._buckets) > 100000:
            self._buckets.clear()


class JobConcurrency:
    """At most ``limit`` commands in flight per job."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._running: dict[str, int] = {}

    @contextmanager
    def slot(self, job: str) -> Iterator[None]:
        n = self._running.get(job, 0)
        if self.limit > 0 and n >= self.limit:
            raise RelayFault(
                Fault.TOO_MANY_COMMANDS,
                f"job {job} already runs {n} commands from the relay (limit {self.limit}); wait for one to finish",
            )
        self._running[job] = n + 1
        try:
            yield
        finally:
            left = self._running.get(job, 1) - 1
            if left <= 0:
                self._running.pop(job, None)
            else:
                self._running[job] = left

    def running(self, job: str) -> int:
        return self._running.get(job, 0)
