"""Job control when the wrapper runs in the foreground of a terminal.

The payload has its own process group (so that forwarded signals reach all of
it). In a terminal that group must also own the terminal, or the payload
would be stopped by SIGTTIN the moment it reads. So, only when stdin is a
terminal whose foreground group is ours: the payload's group is made the
foreground group, a Ctrl-Z that stops the payload stops the wrapper too (and
``fg`` continues both), and the terminal is handed back before the wrapper
exits. Batch jobs have no terminal and never take this path.
"""

import os
import signal
from typing import Optional


class Terminal(object):
    def __init__(self, fd: int = 0) -> None:
        self.fd: Optional[int] = None
        try:
            if os.isatty(fd) and os.tcgetpgrp(fd) == os.getpgrp():
                self.fd = fd
        except OSError:
            self.fd = None

    @property
    def active(self) -> bool:
        return self.fd is not None

    def child_setup(self) -> None:
        """``preexec_fn`` of the payload: own process group, in the foreground if we were."""
        os.setpgrp()
        if self.fd is not None:
            self._hand_to(os.getpgrp())

    def _hand_to(self, pgid: int) -> None:
        if self.fd is None:
            return
        old = signal.signal(signal.SIGTTOU, signal.SIG_IGN)
        try:
            os.tcsetpgrp(self.fd, pgid)
        except OSError:
            pass
        finally:
            signal.signal(signal.SIGTTOU, old)

    def give(self, pgid: int) -> None:
        self._hand_to(pgid)

    def take_back(self) -> None:
        self._hand_to(os.getpgrp())

    def stopped(self, pgid: int) -> None:
        """The payload was stopped (Ctrl-Z): stop ourselves; on ``fg`` continue it."""
        self.take_back()
        os.kill(os.getpid(), signal.SIGSTOP)
        # continued by the shell
        self.give(pgid)
        try:
            os.killpg(pgid, signal.SIGCONT)
        except OSError:
            pass
