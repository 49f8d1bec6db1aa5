"""Live progress while someone watches the job (issue 13).

Unwatched, progress rides on the heartbeat (every ``heartbeat`` seconds, 30 by
default): 10,000 jobs nobody looks at cost the relay nothing more. When the
relay says the job is watched (``watched`` in the register reply, or a
``watch`` control request on the long-poll), changed progress is sent at once,
then at most once per ``interval`` (1 s): values printed in between are
coalesced, the newest one goes. When the last watcher leaves, the daemon is
back to heartbeat pace.

:class:`ProgressPush` decides *when*; the daemon's heartbeat thread sends.
"""

import threading
import time
from typing import Optional

from jobmon_wrapper.progress import Progress

BEAT = "beat"
PUSH = "push"
MIN_INTERVAL = 0.2
FILE_POLL = 0.25   # a progress *file* has no change signal: look this often while watched


class ProgressPush(object):
    def __init__(self, progress: Optional[Progress], interval: float = 1.0) -> None:
        self.progress = progress
        self.interval = interval
        self.watched = False
        self.pushes = 0
        self._cond = threading.Condition()
        self._sent_version = -1
        self._sent_at = -1e9
        if progress is not None:
            progress.listen(self.wake)

    def set_watched(self, watched: bool, interval: Optional[float] = None) -> None:
        with self._cond:
            if watched and not self.watched:
                self._sent_version = -1   # the watcher gets the current value at once
            self.watched = watched
            if isinstance(interval, (int, float)) and not isinstance(interval, bool) and interval > 0:
                self.interval = max(MIN_INTERVAL, float(interval))
            self._cond.notify_all()

    def wake(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def next_action(self, beat_at: float, stopping: threading.Event) -> str:
        """Block until the heartbeat is due (``BEAT``, at monotonic ``beat_at``) or a watched job
        has changed progress to send (``PUSH``); ``""`` once ``stopping`` is set."""
        with self._cond:
            while not stopping.is_set():
                now = time.monotonic()
                if now >= beat_at:
                    return BEAT
                timeout = beat_at - now
                progress = self.progress
                if self.watched and progress is not None and progress.enabled:
                    if progress.path:
                        progress.refresh_file()
                        timeout = min(timeout, FILE_POLL)
                    if progress.version != self._sent_version:
                        due = self._sent_at + self.interval
                        if now >= due:
                            return PUSH
                        timeout = min(timeout, due - now)
                self._cond.wait(timeout)
            return ""

    def sent(self, version: int, push: bool) -> None:
        """A report carrying progress ``version`` left (or failed: it is not retried before the next change)."""
        with self._cond:
            self._sent_version = version
            self._sent_at = time.monotonic()
            if push:
                self.pushes += 1
