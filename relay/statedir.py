"""The relay's state directory is private: it holds the audit log (every user's DN
and argv), the per-job credential table and the relay's secret key.

``serve`` sets the process umask to :data:`PRIVATE_UMASK` before opening anything,
so every file the relay creates is owner-only; :func:`secure_state_dir` creates
the directory 0700, or narrows an existing one that group or others can reach
(logged once).
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

log = logging.getLogger("relay.statedir")

#: the relay's umask: files 0600, directories 0700
PRIVATE_UMASK = 0o077


def private_umask() -> int:
    """Set the process umask to :data:`PRIVATE_UMASK`; returns the previous one."""
    return os.umask(PRIVATE_UMASK)


def secure_state_dir(path: Path) -> Path:
    """Create ``path`` (and parents) with mode 0700; chmod an existing ``path``
    that group or others may access to 0700, with one warning."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        os.chmod(path, mode & 0o700 | 0o700)
        log.warning("state directory %s was open to group/others (mode %03o); made it 0700 (it holds the "
                    "audit log and credentials)", path, mode)
    return path
