"""Progress of the payload: from a regex over its output lines or from a progress file.

A regex names what it captures with groups ``(?P<done>...)`` and
``(?P<total>...)``; without names, group 1 is *done* and group 2 (if any) is
*total*. A progress file holds either ``done total`` (or just ``done``) on its
first line, or ``key=value`` lines with keys ``done``, ``total``, ``rate``,
``eta``, ``text``. Rate is events per second over the last minute; ETA is
``(total - done) / rate``.
"""

import collections
import os
import re
import threading
import time
from typing import Any, Callable, Deque, Dict, List, Optional, Pattern, Tuple

WINDOW = 60.0
MAX_TEXT = 200


def _number(text: str) -> Optional[float]:
    try:
        return float(text.replace(",", "").replace("_", "").strip())
    except (ValueError, AttributeError):
        return None


def parse_progress_file(text: str) -> Dict[str, Any]:
    """Parse the content of a progress file.

    >>> parse_progress_file("12 50\\n")
    {'done': 12.0, 'total': 50.0}
    >>> sorted(parse_progress_file("done=3\\ntotal=9\\ntext=stage 2\\n").items())
    [('done', 3.0), ('text', 'stage 2'), ('total', 9.0)]
    """
    out: Dict[str, Any] = {}
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if not lines:
        return out
    if "=" not in lines[0]:
        parts = lines[0].split()
        if parts:
            done = _number(parts[0])
            if done is not None:
                out["done"] = done
        if len(parts) > 1:
            total = _number(parts[1])
            if total is not None:
                out["total"] = total
        return out
    for line in lines:
        key, sep, value = line.partition("=")
        key = key.strip().lower()
        if not sep:
            continue
        if key in ("done", "total", "rate", "eta"):
            num = _number(value)
            if num is not None:
                out[key] = num
        elif key == "text":
            out["text"] = value.strip()[:MAX_TEXT]
    return out


class Progress(object):
    """Thread-safe progress state fed by the tee (lines) or read from a file."""

    def __init__(self, regex: Optional[str] = None, path: Optional[str] = None) -> None:
        self.pattern: Optional[Pattern[str]] = re.compile(regex) if regex else None
        self.path = path
        self._lock = threading.Lock()
        self._state: Dict[str, Any] = {}
        self._samples: Deque[Tuple[float, float]] = collections.deque()
        self._file_sig: Optional[Tuple[float, int]] = None
        self.version = 0
        self._listeners: List[Callable[[], None]] = []

    def listen(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` after every update (outside the lock; it must be quick)."""
        self._listeners.append(callback)

    # -- input -------------------------------------------------------------
    def feed_line(self, line: bytes) -> bool:
        """Match one output line; True when it carried progress."""
        if self.pattern is None:
            return False
        text = line.decode("utf-8", "replace").rstrip("\r\n")
        m = self.pattern.search(text)
        if m is None:
            return False
        names = m.groupdict()
        if "done" in names or "total" in names:
            done_s, total_s = names.get("done"), names.get("total")
        else:
            groups = m.groups()
            done_s = groups[0] if groups else None
            total_s = groups[1] if len(groups) > 1 else None
        values: Dict[str, Any] = {"text": text[:MAX_TEXT]}
        done = _number(done_s) if done_s is not None else None
        total = _number(total_s) if total_s is not None else None
        if done is not None:
            values["done"] = done
        if total is not None:
            values["total"] = total
        self.update(values)
        return True

    def update(self, values: Dict[str, Any], now: Optional[float] = None) -> None:
        now = time.time() if now is None else now
        with self._lock:
            self._state.update(values)
            self._state["updated"] = now
            done = values.get("done")
            if isinstance(done, float):
                if self._samples and done < self._samples[-1][1]:
                    self._samples.clear()  # restarted counting
                self._samples.append((now, done))
                while len(self._samples) > 2 and now - self._samples[0][0] > WINDOW:
                    self._samples.popleft()
            self.version += 1
        for callback in self._listeners:
            callback()

    def refresh_file(self) -> None:
        """Re-read the progress file if it changed since the last look."""
        if not self.path:
            return
        try:
            st = os.stat(self.path)
            sig = (st.st_mtime, st.st_size)
            if sig == self._file_sig:
                return
            with open(self.path, "r", encoding="utf-8", errors="replace") as f:
                text = f.read(65536)
        except OSError:
            return
        self._file_sig = sig
        values = parse_progress_file(text)
        if values:
            if "text" not in values:
                values["text"] = text.strip()[:MAX_TEXT]
            self.update(values)

    # -- output ------------------------------------------------------------
    def snapshot(self) -> Dict[str, Any]:
        """The progress struct of docs/PROTOCOL.md (only known keys)."""
        self.refresh_file()
        with self._lock:
            out = dict(self._state)
            samples = list(self._samples)
        if "rate" not in out and len(samples) >= 2:
            dt = samples[-1][0] - samples[0][0]
            if dt > 0:
                out["rate"] = (samples[-1][1] - samples[0][1]) / dt
        rate = out.get("rate")
        if "eta" not in out and "done" in out and "total" in out and rate:
            if rate > 0:
                out["eta"] = max(0.0, (out["total"] - out["done"]) / rate)
        return out

    @property
    def enabled(self) -> bool:
        return self.pattern is not None or bool(self.path)
