"""Reconnect backoff: exponential, capped, jittered."""

from __future__ import annotations

from jobmon_wrapper.backoff import Backoff


def test_backoff_grows_caps_and_jitters() -> None:
    b = Backoff(base=0.5, cap=8.0)
    delays = [b.next() for _ in range(12)]
    ceilings = [min(8.0, 0.5 * 2 ** i) for i in range(12)]
    assert all(c / 2 <= d <= c for d, c in zip(delays, ceilings))
    assert max(delays) <= 8.0 and delays[-1] >= 4.0
    b.reset()
    assert b.next() <= 0.5
    # jitter: many daemons do not retry in lock-step
    assert len({round(Backoff(0.5, 8.0).next(), 6) for _ in range(50)}) > 10
