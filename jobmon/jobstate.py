"""What users see of a job, derived from HTCondor's own job-ad attributes.

One mapping for every pool, the relay, the CLI and the web pages. The facts it
relies on come from the recordings in shared/condor-fixtures (README, "Job ads
and states"): JobStatus 1 idle, 2 running, 3 removed, 4 completed, 5 held,
6 transferring output, 7 suspended; a job killed by a signal has
``ExitBySignal = true``, ``ExitSignal`` and no ``ExitCode``; ``ExitSignal``
can linger after a hold or vacate, so ``ExitBySignal`` is checked first.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from typing import Any


class State(str, Enum):
    WAITING = "waiting"
    RUNNING = "running"
    HELD = "held"
    FINISHED = "finished"
    REMOVED = "removed"

    @property
    def ended(self) -> bool:
        return self in (State.FINISHED, State.REMOVED)


_BY_STATUS = {
    1: State.WAITING,
    2: State.RUNNING,
    3: State.REMOVED,
    4: State.FINISHED,
    5: State.HELD,
    6: State.RUNNING,  # transferring output
    7: State.RUNNING,  # suspended: still on its slot
}


def state_of(ad: Mapping[str, Any]) -> State:
    """Map ``JobStatus`` to what users see.

    >>> state_of({"JobStatus": 1}).value
    'waiting'
    >>> state_of({"JobStatus": 4}).value
    'finished'
    """
    status = ad.get("JobStatus")
    try:
        return _BY_STATUS[int(status)]  # type: ignore[arg-type]
    except (KeyError, TypeError, ValueError):
        return State.WAITING


def exit_of(ad: Mapping[str, Any]) -> tuple[int | None, int | None]:
    """``(exit_code, signal)`` of an ended job; ``(None, None)`` if not known.

    >>> exit_of({"ExitBySignal": False, "ExitCode": 3, "ExitSignal": 15})
    (3, None)
    >>> exit_of({"ExitBySignal": True, "ExitSignal": 11})
    (None, 11)
    >>> exit_of({"JobStatus": 2})
    (None, None)
    """
    by_signal = ad.get("ExitBySignal")
    if by_signal is True:
        sig = ad.get("ExitSignal")
        return None, int(sig) if isinstance(sig, int) else None
    code = ad.get("ExitCode")
    if by_signal is False and isinstance(code, int):
        return code, None
    if isinstance(code, int) and not isinstance(code, bool):
        return code, None
    return None, None
