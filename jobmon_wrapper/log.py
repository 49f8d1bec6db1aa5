"""Where the wrapper and its daemon write their own diagnostics.

stdin, stdout and stderr belong to the payload (issue 2): the only lines the
wrapper itself may put on fd 2 are ``tell()`` (the single "no relay
configured" line) and the exec-failure line of wrapper.py, which stands in for
the payload's own failure message. Everything the daemon has to say (relay not
reachable, heartbeat failed, chirp failed, a thread crashed...) goes through
``say()`` to the daemon log:

* ``JOBMON_LOG_FILE=PATH``: that file, appended to and kept after the job.
* ``-v`` / ``--verbose`` / ``JOBMON_DEBUG=1``: the wrapper's stderr (for a
  person debugging the wrapper; the payload's stderr is then shared).
* otherwise ``.jobmon/daemon.log`` in the sandbox, created on the first
  message only (a healthy run leaves nothing), readable during the run with
  the daemon's ``read`` op or condor_ssh_to_job, and removed with its
  directory when the wrapper ends (``cleanup()``). HTCondor with
  ``transfer_output_files`` unset returns new files at the top of the scratch
  directory and may return new directories too; removing ``.jobmon`` before
  the wrapper exits keeps the job's output exactly what the payload produced.

A message is written at most once per key, so a broken relay cannot fill the
log; each line is ``<UTC time> jobmon: message``.
"""

import os
import shutil
import threading
import time
from typing import Optional, Set

LOG_DIR = ".jobmon"
LOG_NAME = "daemon.log"

_seen: Set[str] = set()
_lock = threading.Lock()


class _Target(object):
    def __init__(self) -> None:
        self.to_stderr = False
        self.path: Optional[str] = None
        self.owned_dir: Optional[str] = None  # .jobmon: removed by cleanup() if created here
        self.created_dir = False
        self.created_file = False
        self.fd: Optional[int] = None
        self.failed = False


_target = _Target()


def debug_enabled() -> bool:
    return os.environ.get("JOBMON_DEBUG", "") not in ("", "0")


_target.to_stderr = debug_enabled()  # until configure(): library use, unit tests


def configure(sandbox: str, verbose: bool = False, log_file: Optional[str] = None) -> None:
    """Choose where ``say()`` writes; call once, before the daemon starts."""
    with _lock:
        _close_locked()
        _target.to_stderr = bool(verbose)
        _target.created_dir = _target.created_file = False
        _target.failed = False
        if log_file:
            _target.path = os.path.join(sandbox, log_file)
            _target.owned_dir = None
        else:
            _target.owned_dir = os.path.join(sandbox, LOG_DIR)
            _target.path = os.path.join(_target.owned_dir, LOG_NAME)


def log_path() -> Optional[str]:
    """The log file ``say()`` writes to (None when diagnostics go to stderr)."""
    return None if _target.to_stderr else _target.path


def _open_locked() -> Optional[int]:
    if _target.fd is not None or _target.failed or _target.path is None:
        return _target.fd
    try:
        if _target.owned_dir is not None:
            if not os.path.lexists(_target.owned_dir):
                os.mkdir(_target.owned_dir, 0o700)
                _target.created_dir = True
            try:
                _target.fd = os.open(_target.path,
                                     os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
                _target.created_file = True
            except FileExistsError:
                _target.fd = os.open(_target.path, os.O_WRONLY | os.O_APPEND | os.O_NOFOLLOW)
            return _target.fd
        _target.fd = os.open(_target.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    except OSError:
        _target.failed = True  # a read-only sandbox: diagnostics are dropped, never stderr
    return _target.fd


def _close_locked() -> None:
    if _target.fd is not None:
        try:
            os.close(_target.fd)
        except OSError:
            pass
        _target.fd = None


def say(message: str, key: Optional[str] = None) -> None:
    """Write a diagnostic to the daemon log; with ``key``, only the first time."""
    with _lock:
        if key is not None:
            if key in _seen:
                return
            _seen.add(key)
        text = "jobmon: " + message.replace("\n", " ") + "\n"
        if _target.to_stderr:
            _write(2, text)
            return
        fd = _open_locked()
        if fd is not None:
            stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ ", time.gmtime())
            _write(fd, stamp + text)


def tell(message: str, key: Optional[str] = None) -> None:
    """One line for the person running the job, on fd 2 (use sparingly: issue 2)."""
    if key is not None:
        with _lock:
            if key in _seen:
                return
            _seen.add(key)
    _write(2, "jobmon: " + message.replace("\n", " ") + "\n")


def _write(fd: int, text: str) -> None:
    try:
        os.write(fd, text.encode("utf-8", "replace"))
    except OSError:
        pass


def cleanup() -> None:
    """Close the log; remove ``.jobmon/`` from the sandbox (not an explicit JOBMON_LOG_FILE)."""
    with _lock:
        _close_locked()
        _target.failed = True  # late messages from daemon threads are dropped
        owned = _target.owned_dir if _target.created_dir else None
        mine = _target.path if _target.created_file else None
    if owned is not None and os.path.isdir(owned) and not os.path.islink(owned):
        shutil.rmtree(owned, ignore_errors=True)
    elif mine is not None:
        try:
            os.unlink(mine)  # a .jobmon/ the job made itself keeps everything else
        except OSError:
            pass
