"""Running a 2005-style JobMon daemon in tests: the interpreters and ``LegacyDaemon``.

``legacy_daemon2005.py`` (beside this file) speaks the 2005 daemon's wire
protocol under Python 2.7 and 3.x. ``LegacyDaemon(python, relay_url, cred,
ca_file, jobname, cwd)`` runs it as a subprocess and lets a test wait for
its event lines (``REGISTERED``, ``WOKEN``, ``RAN``, ``UNREGISTERED``...).
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

CLIENT = Path(__file__).with_name("legacy_daemon2005.py")


def python27() -> str:
    """The Python 2.7 interpreter (CI machines have it under pyenv; never skipped)."""
    found = os.environ.get("JOBMON_TEST_PYTHON27")
    if not found:
        root = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
        candidates = sorted(glob.glob(os.path.join(root, "versions", "2.7*", "bin", "python")))
        found = candidates[-1] if candidates else shutil.which("python2.7") or ""
    assert found and os.access(found, os.X_OK), (
        "no Python 2.7 found (pyenv versions/2.7*/bin/python or JOBMON_TEST_PYTHON27): "
        "the legacy daemon tests need it")
    return found


def interpreters() -> list[str]:
    """Python 2.7 (the 2005 daemon's world) and this interpreter (3.x)."""
    return [python27(), sys.executable]


class LegacyDaemon:
    def __init__(self, python: str, url: str, cred: Any, ca_file: Path, jobname: str, cwd: Path,
                 *, source: str | None = None, hostname: str | None = None) -> None:
        args = [python, str(CLIENT), "--jobname", jobname, "--serverURL", url,
                "--certkeyfile", str(cred.proxy_path), "--cafile", str(ca_file)]
        if source:
            args += ["--source", source]
        if hostname:
            args += ["--hostname", hostname]
        env = dict(os.environ, HOME=str(cwd))
        env.pop("PYTHONPATH", None)
        self.proc = subprocess.Popen(args, cwd=cwd, env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        self.lines: list[str] = []
        self._cv = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            with self._cv:
                self.lines.append(raw.decode("utf-8", "replace").rstrip("\n"))
                self._cv.notify_all()

    def wait_line(self, prefix: str, timeout: float = 30.0, after: int = 0) -> str:
        """The first line from index ``after`` on that starts with ``prefix``."""
        end = time.monotonic() + timeout
        with self._cv:
            while True:
                for line in self.lines[after:]:
                    if line.startswith(prefix):
                        return line
                left = end - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not self._cv.wait(0.2)):
                    raise AssertionError(f"no {prefix!r} from the legacy daemon; it said: {self.lines}")
                self._cv.wait(min(left, 0.2))

    def terminate(self, timeout: float = 30.0) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
