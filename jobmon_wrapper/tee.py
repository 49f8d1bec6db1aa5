"""Sit in the payload's stdout only to parse progress; pass every byte through.

Bytes are written to the wrapper's own stdout in the order and with the
content they were read, as soon as they are read: a complete line is
forwarded at once, and a partial line (no newline yet) is forwarded by the
same read, so the "short timer" for partial lines is zero. Lines are matched
against the progress regex after they have been forwarded.
"""

import os
import threading
from typing import Callable, Optional

CHUNK = 65536
MAX_LINE = 65536


def _write_all(fd: int, data: bytes) -> bool:
    view = memoryview(data)
    while view:
        try:
            n = os.write(fd, view)
        except InterruptedError:
            continue
        except OSError:
            return False  # reader gone: keep draining so the payload sees no change
        view = view[n:]
    return True


def pump(src: int, dst: int, on_line: Optional[Callable[[bytes], object]]) -> None:
    """Copy ``src`` to ``dst`` until EOF, calling ``on_line`` for each line."""
    pending = b""
    writable = True
    while True:
        try:
            data = os.read(src, CHUNK)
        except InterruptedError:
            continue
        except OSError:
            break
        if not data:
            break
        if writable:
            writable = _write_all(dst, data)
        if on_line is None:
            continue
        pending += data
        while True:
            nl = pending.find(b"\n")
            if nl < 0:
                break
            line, pending = pending[:nl + 1], pending[nl + 1:]
            _safe(on_line, line)
        if len(pending) > MAX_LINE:
            pending = pending[-MAX_LINE:]
    if pending and on_line is not None:
        _safe(on_line, pending)


def _safe(fn: Callable[[bytes], object], line: bytes) -> None:
    try:
        fn(line)
    except Exception:  # noqa: BLE001 - a bad regex match must not stop the copy
        pass


class Tee(object):
    def __init__(self, src: int, dst: int, on_line: Optional[Callable[[bytes], object]]) -> None:
        self.src = src
        self.thread = threading.Thread(target=self._run, args=(src, dst, on_line),
                                       name="jobmon-tee")
        self.thread.daemon = True

    def _run(self, src: int, dst: int, on_line: Optional[Callable[[bytes], object]]) -> None:
        try:
            pump(src, dst, on_line)
        finally:
            try:
                os.close(src)
            except OSError:
                pass

    def start(self) -> None:
        self.thread.start()

    def join(self, timeout: float) -> bool:
        self.thread.join(timeout)
        return not self.thread.is_alive()
