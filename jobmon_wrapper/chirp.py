"""Publish progress into the job ad with condor_chirp, so ``condor_q -af`` shows it.

Choice (from the recordings in condor-fixtures/sandbox and its README):

* ``set_job_attr_delayed`` with the ``Chirp`` prefix (``ChirpJobMonEventsDone``,
  ``ChirpJobMonEventsTotal``, ``ChirpJobMonRate``, ``ChirpJobMonEta``,
  ``ChirpJobMonUpdated``). It works with and without ``want_io_proxy``
  (``set_job_attr`` fails with rc 255 without it), it costs ~3 ms in the job and
  nothing at the shadow or schedd at call time: the starter carries the values
  in its next periodic update, so the schedd's load does not grow with how
  often jobs report. The price is lag: seconds with fast intervals, up to
  ``STARTER_UPDATE_INTERVAL`` + ``SHADOW_QUEUE_UPDATE_INTERVAL`` with packaged
  defaults; the values always reach the history ad at exit.
* ``set_job_attr`` (direct, ~0.1 s to the schedd) is not used: each call is a
  synchronous round trip through the shadow into the schedd's queue, which
  10,000 jobs would turn into a steady load.
* Rate limit: at most one round of calls per ``JOBMON_CHIRP_INTERVAL`` seconds
  (default 60) and only for values that changed, plus one final round when
  the payload ends (bounded by the wrapper's exit deadline).

condor_chirp is looked up in ``$JOBMON_CONDOR_CHIRP``, ``$_CONDOR_LIBEXEC``,
``/usr/libexec/condor``, ``$_CONDOR_BIN`` and PATH; nothing is done unless
``$_CONDOR_CHIRP_CONFIG`` is set (HTCondor sets it for every job).
"""

import os
import subprocess
import threading
import time
from typing import Dict, List, Mapping, Optional

from jobmon_wrapper import config, log
from jobmon_wrapper.progress import Progress

ATTRS = (
    ("done", "ChirpJobMonEventsDone"),
    ("total", "ChirpJobMonEventsTotal"),
    ("rate", "ChirpJobMonRate"),
    ("eta", "ChirpJobMonEta"),
    ("updated", "ChirpJobMonUpdated"),
)
CALL_TIMEOUT = 5.0


def find_chirp(environ: Optional[Mapping[str, str]] = None) -> Optional[str]:
    env = os.environ if environ is None else environ
    explicit = env.get("JOBMON_CONDOR_CHIRP")
    if explicit:
        return explicit if os.access(explicit, os.X_OK) else None
    dirs: List[str] = []
    for var in ("_CONDOR_LIBEXEC",):
        if env.get(var):
            dirs.append(env[var])
    dirs.append("/usr/libexec/condor")
    if env.get("_CONDOR_BIN"):
        dirs.append(env["_CONDOR_BIN"])
    dirs.extend((env.get("PATH") or config.DEFAULT_PATH).split(":"))
    for d in dirs:
        if not d:
            continue
        path = os.path.join(d, "condor_chirp")
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return None


def format_value(value: float) -> str:
    """A ClassAd literal: integers without a fraction, reals with 3 decimals."""
    if value == int(value) and abs(value) < 2 ** 53:
        return str(int(value))
    return "%.3f" % value


class Chirper(object):
    def __init__(self, chirp: str, progress: Progress, interval: float = 60.0) -> None:
        self.chirp = chirp
        self.progress = progress
        self.interval = interval
        self.sent: Dict[str, str] = {}
        self.calls = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()

    @classmethod
    def from_environment(cls, progress: Progress, interval: float) -> Optional["Chirper"]:
        if not os.environ.get("_CONDOR_CHIRP_CONFIG"):
            return None
        chirp = find_chirp()
        if chirp is None:
            return None
        return cls(chirp, progress, interval)

    def start(self) -> None:
        t = threading.Thread(target=self._loop, name="jobmon-chirp")
        t.daemon = True
        t.start()

    def _loop(self) -> None:
        try:
            while not self._stop.wait(self.interval):
                self.publish(time.time() + CALL_TIMEOUT)
        except Exception as exc:  # noqa: BLE001 - loop boundary
            log.say("chirp stopped (%s: %s)" % (type(exc).__name__, exc), key="chirp-loop")

    def publish(self, deadline: float) -> int:
        """Send the values that changed since the last round; returns calls made."""
        with self._lock:
            snap = self.progress.snapshot()
            made = 0
            for key, attr in ATTRS:
                value = snap.get(key)
                if not isinstance(value, (int, float)):
                    continue
                text = format_value(float(value))
                if self.sent.get(attr) == text:
                    continue
                remaining = deadline - time.time()
                if remaining <= 0:
                    break
                rc = self._call(["set_job_attr_delayed", attr, text], remaining)
                made += 1
                if rc == 0:
                    self.sent[attr] = text
                else:
                    log.say("condor_chirp set_job_attr_delayed %s failed (rc %s)" % (attr, rc),
                            key="chirp-rc")
            self.calls += made
            return made

    def final(self, deadline: float) -> None:
        self._stop.set()
        self.publish(deadline)

    def _call(self, args: List[str], timeout: float) -> int:
        try:
            proc = subprocess.Popen([self.chirp] + args, stdin=subprocess.DEVNULL,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                    env=config.command_env(), start_new_session=True)
        except OSError:
            return -1
        try:
            return proc.wait(timeout=min(timeout, CALL_TIMEOUT))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            return -1
