"""One-line diagnostics on the wrapper's stderr, each prefixed ``jobmon:``.

A message is written at most once per key so that a broken relay cannot fill
the job's stderr.
"""

import os
import threading
from typing import Optional, Set

_seen: Set[str] = set()
_lock = threading.Lock()


def say(message: str, key: Optional[str] = None) -> None:
    """Write ``jobmon: message`` to stderr; with ``key``, only the first time."""
    if key is not None:
        with _lock:
            if key in _seen:
                return
            _seen.add(key)
    line = ("jobmon: " + message.replace("\n", " ") + "\n").encode("utf-8", "replace")
    try:
        os.write(2, line)
    except OSError:
        pass


def debug_enabled() -> bool:
    return os.environ.get("JOBMON_DEBUG", "") not in ("", "0")
