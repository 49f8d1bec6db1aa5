"""Retry pacing for the daemon's calls to the relay."""

import random

BACKOFF_BASE = 0.5
BACKOFF_CAP = 60.0


class Backoff(object):
    """Capped exponential backoff with full jitter."""

    def __init__(self, base: float = BACKOFF_BASE, cap: float = BACKOFF_CAP) -> None:
        self.base = base
        self.cap = cap
        self.failures = 0

    def next(self) -> float:
        ceiling = min(self.cap, self.base * (2 ** min(self.failures, 30)))
        self.failures += 1
        return random.uniform(ceiling / 2.0, ceiling)

    def reset(self) -> None:
        self.failures = 0
