"""Run the payload unchanged, beside the daemon, and end exactly as it ended.

* The payload runs in its own process group; TERM INT HUP QUIT USR1 USR2 sent
  to the wrapper are forwarded to that whole group.
* stdin/stdout/stderr are the payload's own, except that stdout goes through
  a pass-through tee when a progress regex is configured.
* When the payload has ended the wrapper reports to the relay (waiting at most
  FINISH_WAIT seconds), then exits with the payload's code, or restores the
  default disposition of the payload's fatal signal and raises it on itself.
* Exec failures: 127 (not found) or 126 (not executable), one line on stderr.
  That line and "no relay configured" are the only ones the wrapper writes to
  fd 2; the daemon's diagnostics go to its log (see log.py).
"""

import errno
import os
import resource
import select
import signal
import subprocess
import sys
import threading
import time
from typing import Any, Dict, List, Optional

from jobmon_wrapper import config as config_mod
from jobmon_wrapper import log
from jobmon_wrapper.progress import Progress
from jobmon_wrapper.terminal import Terminal

FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT,
             signal.SIGUSR1, signal.SIGUSR2)
FINISH_WAIT = 1.5
SAFETY_POLL = 1.0


class Forwarder(object):
    """Signal handlers that pass the wrapper's signals on to the payload's group."""

    def __init__(self) -> None:
        self.pgid: Optional[int] = None
        self.pending: List[int] = []
        self.installed: List[int] = []

    def install(self) -> None:
        for sig in FORWARDED:
            try:
                if signal.getsignal(sig) == signal.SIG_IGN:
                    continue  # the payload inherits the ignore, as it would bare
                signal.signal(sig, self._handle)
                self.installed.append(sig)
            except (OSError, ValueError):
                pass

    def _handle(self, signum: int, frame: Any) -> None:
        if self.pgid is None:
            self.pending.append(signum)
            return
        try:
            os.killpg(self.pgid, signum)
        except OSError:
            pass
        if log.debug_enabled():
            log.say("forwarded signal %d to process group %d" % (signum, self.pgid))

    def attach(self, pgid: int) -> None:
        self.pgid = pgid
        while self.pending:
            self._handle(self.pending.pop(0), None)


def payload_executable(name: str) -> Optional[str]:
    """A bare name that is a file in the working directory is that file, as HTCondor's
    ``executable = job.sh`` means the transferred file; otherwise PATH decides."""
    if "/" not in name and os.path.isfile(name):
        return os.path.abspath(name)
    return None


def exec_failure_code(exc: OSError) -> int:
    return 127 if exc.errno in (errno.ENOENT, errno.ENOTDIR) else 126


def die_like(status: int) -> None:
    """Exit with the payload's wait status: same code, or the same fatal signal."""
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        try:
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        except (OSError, ValueError):
            pass
        try:
            signal.signal(sig, signal.SIG_DFL)
        except (OSError, ValueError, RuntimeError):
            pass
        try:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, [sig])
        except (OSError, ValueError):
            pass
        try:
            os.kill(os.getpid(), sig)
        except OSError:
            pass
        deadline = time.time() + 2.0
        while time.time() < deadline:
            time.sleep(0.05)
        os._exit(128 + sig)  # last resort: the signal did not end us
    os._exit(os.WEXITSTATUS(status) if os.WIFEXITED(status) else 1)


def final_status(status: int, ru: Any, started: float, ended: float,
                 progress: Optional[Progress]) -> Dict[str, Any]:
    final: Dict[str, Any] = {
        "wall_time": ended - started,
        "end_time": ended,
        "cpu_user": float(ru.ru_utime),
        "cpu_sys": float(ru.ru_stime),
        "max_rss_kb": int(ru.ru_maxrss),
    }
    if os.WIFSIGNALED(status):
        final["signal"] = os.WTERMSIG(status)
    else:
        final["exit_code"] = os.WEXITSTATUS(status)
    if progress is not None and progress.enabled:
        final["progress"] = progress.snapshot()
    return final


class Waiter(object):
    """Wait for the payload without missing a signal.

    A handler can only run in the main thread between bytecodes; a signal that
    lands just before a blocking ``wait4`` would sit unhandled until the
    payload ends. So the main thread sleeps in ``select`` on the signal wakeup
    fd (written by the C-level handler, whichever thread takes the signal) and
    SIGCHLD has a no-op handler so that the payload's end wakes it too.
    """

    def __init__(self) -> None:
        self.rfd, self.wfd = os.pipe()
        for fd in (self.rfd, self.wfd):
            os.set_blocking(fd, False)
        signal.set_wakeup_fd(self.wfd)
        signal.signal(signal.SIGCHLD, _ignore)

    def wait(self, pid: int, terminal: Optional[Terminal] = None) -> Any:
        flags = os.WNOHANG
        if terminal is not None and terminal.active:
            flags |= os.WUNTRACED
        while True:
            try:
                got, status, ru = os.wait4(pid, flags)
            except InterruptedError:
                continue
            if got == pid and os.WIFSTOPPED(status) and terminal is not None:
                terminal.stopped(pid)
                continue
            if got == pid:
                return got, status, ru
            select.select([self.rfd], [], [], SAFETY_POLL)
            try:
                while os.read(self.rfd, 512):
                    pass
            except (BlockingIOError, InterruptedError):
                pass


def _ignore(signum: int, frame: Any) -> None:
    pass


def run(cfg: config_mod.Config) -> None:
    """Run the payload under ``cfg`` and end like it; never returns."""
    forwarder = Forwarder()
    forwarder.install()
    waiter = Waiter()
    terminal = Terminal()
    progress = Progress(cfg.progress_regex, cfg.progress_file)
    use_tee = cfg.progress_regex is not None
    log.configure(cfg.sandbox, cfg.verbose, cfg.log_file)
    if not cfg.relay:
        log.tell("no relay configured; running the payload only", key="norelay")
    started = time.time()
    try:
        proc = subprocess.Popen(cfg.argv, executable=payload_executable(cfg.argv[0]),
                                preexec_fn=terminal.child_setup, close_fds=False,
                                stdout=subprocess.PIPE if use_tee else None)
    except OSError as exc:
        os.write(2, ("jobmon: cannot run %s: %s\n" % (cfg.argv[0], exc.strerror or exc))
                 .encode("utf-8", "replace"))
        os._exit(exec_failure_code(exc))
    forwarder.attach(proc.pid)
    tee = None
    daemon = None
    chirper = None
    if use_tee and proc.stdout is not None:
        from jobmon_wrapper.tee import Tee
        fd = os.dup(proc.stdout.fileno())
        proc.stdout.close()
        tee = Tee(fd, 1, progress.feed_line)
        tee.start()
    if cfg.relay:
        daemon = _start_daemon(cfg, proc.pid, started, progress)
    if progress.enabled:
        chirper = _start_chirp(cfg, progress)
    _pid, status, ru = waiter.wait(proc.pid, terminal)
    terminal.take_back()
    proc.returncode = -1  # reaped here; keep subprocess from reaping again
    ended = time.time()
    deadline = ended + FINISH_WAIT
    final = final_status(status, ru, started, ended, progress)
    waiters: List[threading.Thread] = []
    if daemon is not None:
        waiters.append(_background(daemon.finish, final, deadline))
    if chirper is not None:
        waiters.append(_background(chirper.final, deadline))
    if tee is not None:
        tee.join(max(0.0, deadline - time.time()))
    for t in waiters:
        t.join(max(0.0, deadline - time.time()))
    log.cleanup()
    die_like(status)


def _background(fn: Any, *args: Any) -> threading.Thread:
    def target() -> None:
        try:
            fn(*args)
        except Exception as exc:  # noqa: BLE001 - the payload's exit must not depend on this
            log.say("final report failed: %s" % (exc,), key="final")
    t = threading.Thread(target=target, name="jobmon-final")
    t.daemon = True
    t.start()
    return t


class DaemonLauncher(object):
    """Builds and starts the daemon in a thread of its own.

    Building it resolves the host name and loads certificates, which can be
    slow (DNS); the main thread must be waiting on the payload meanwhile.
    """

    def __init__(self, cfg: config_mod.Config, pid: int, started: float,
                 progress: Progress) -> None:
        self.daemon: Any = None
        self.thread = threading.Thread(target=self._run, args=(cfg, pid, started, progress),
                                       name="jobmon-start")
        self.thread.daemon = True
        self.thread.start()

    def _run(self, cfg: config_mod.Config, pid: int, started: float,
             progress: Progress) -> None:
        try:
            from jobmon_wrapper.daemon import Daemon
            d = Daemon(cfg, payload_pid=pid, start_time=started, progress=progress)
            d.start()
            self.daemon = d
        except Exception as exc:  # noqa: BLE001 - the daemon must never harm the payload
            log.say("daemon did not start: %s" % (exc,), key="daemon-start")

    def finish(self, final: Dict[str, Any], deadline: float) -> None:
        """Post the final status; a short payload may end while the daemon is still starting."""
        self.thread.join(max(0.0, deadline - time.time() - 0.3))
        d = self.daemon
        if d is not None:
            d.finish(final, deadline)


def _start_daemon(cfg: config_mod.Config, pid: int, started: float,
                  progress: Progress) -> DaemonLauncher:
    return DaemonLauncher(cfg, pid, started, progress)


def _start_chirp(cfg: config_mod.Config, progress: Progress) -> Any:
    try:
        from jobmon_wrapper.chirp import Chirper
        c = Chirper.from_environment(progress, cfg.chirp_interval)
        if c is not None:
            c.start()
        return c
    except Exception as exc:  # noqa: BLE001 - Chirp is optional
        log.say("chirp disabled: %s" % (exc,), key="chirp-start")
        return None
