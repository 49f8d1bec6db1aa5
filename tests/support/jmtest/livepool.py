"""The live-pool tests' helpers (tests/condor_live) and benchmarks/pool_latency.py.

Pure parts, unit-tested against the recorded ads (tests/condor_live/test_live_helpers.py):

* ``pool_problem(env)``: why there is no live pool to test against, or None.
* ``root_refusal(euid, env, repo)``: the one line that stops the live tests run as root
  (HTCondor will not run root's jobs), naming a user to run them as.
* ``Deadline``: a per-test deadline inside the module's budget.
* ``describe_job(job, queue_ad, history_ad)`` / ``diagnose(jobs, query, history)``: what the
  schedd says about the jobs a wait was for: ``JobStatus``, ``HoldReason``,
  ``LastRejMatchReason``, ... from the queue, else from the history.
* ``execute_times(log)``: when each job started executing, from its user log (EXECUTE events).

Runtime: ``LiveSession`` runs ``jobmon relay`` and the ``jobmon`` command in
subprocesses exactly as a user does (INSTALL.md, "Single-host quick start"),
with its own state directory, and fails every wait that times out with the
jobs' diagnosis and the relay's last log lines.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import subprocess
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Callable, TypeVar

T = TypeVar("T")

#: HTCondor's JobStatus values (condor_q's letters in the manual)
JOB_STATUS = {1: "idle", 2: "running", 3: "removed", 4: "completed", 5: "held",
              6: "transferring output", 7: "suspended"}

#: what a failed wait reports about each job
DIAG_PROJECTION = [
    "ClusterId", "ProcId", "JobStatus", "HoldReason", "HoldReasonCode", "HoldReasonSubCode",
    "LastRejMatchReason", "LastRejMatchTime", "RemoveReason", "RemoteHost", "LastRemoteHost",
    "NumJobStarts", "EnteredCurrentStatus", "ExitCode", "ExitBySignal", "ExitSignal",
]


# ---------------------------------------------------------------- the jobs (INSTALL.md shows the same)

TICKER_PY = '''\
#!/usr/bin/env python3
"""Live-test payload: MODE SECONDS INTERVAL [LABEL...].

Prints "tick N <epoch>" every INTERVAL seconds (flushed at once, so the time
in the line is when it was written), "Processed event N of M" every 10th tick,
then exits 0 (exit0), 3 (exit3) or dies of SIGSEGV (segv).
"""
import os
import signal
import sys
import time

mode, seconds, interval = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
print("argv: %r" % (tuple(sys.argv[1:]),), flush=True)
total = int(round(seconds / interval))
end = time.time() + seconds
n = 0
while time.time() < end:
    n += 1
    print("tick %d %.6f" % (n, time.time()), flush=True)
    if n % 10 == 0:
        print("Processed event %d of %d" % (n, total), flush=True)
    time.sleep(interval)
if mode == "exit3":
    print("failing on purpose", file=sys.stderr, flush=True)
    sys.exit(3)
if mode == "segv":
    os.kill(os.getpid(), signal.SIGSEGV)
    time.sleep(10)
sys.exit(0)
'''

#: the main job: 4 copies that tick every 0.1 s for up to 240 s (removed at the end)
TICKER_SUB = """\
universe                = vanilla
executable              = ticker.py
arguments               = "exit0 240 0.1 'hello world'"
should_transfer_files   = YES
when_to_transfer_output = ON_EXIT
output                  = ticker.$(Cluster).$(Process).out
error                   = ticker.$(Cluster).$(Process).err
log                     = ticker.log
request_cpus            = 1
request_memory          = 128M
request_disk            = 10M
+JobMonProgressRegex    = "Processed event ([0-9]+) of ([0-9]+)"
queue 4
"""

MODES = ("exit0", "exit3", "segv")

#: jobs that end by themselves; priority -5: they wait for slots the main job leaves free
EXITS_SUB = """\
universe                = vanilla
executable              = ticker.py
arguments               = "$(MODE) 2 0.5 'hello world'"
should_transfer_files   = YES
when_to_transfer_output = ON_EXIT
output                  = {tag}.$(Cluster).$(Process).out
error                   = {tag}.$(Cluster).$(Process).err
log                     = {tag}.log
request_cpus            = 1
request_memory          = 128M
request_disk            = 10M
priority                = -5
queue MODE in (exit0, exit3, segv)
"""


# ---------------------------------------------------------------- is there a pool, who runs

def pool_problem(env: Mapping[str, str] | None = None) -> str | None:
    """Why the live tests cannot run here (skip reason), or None when a schedd answers."""
    env = os.environ if env is None else env
    cfg = env.get("CONDOR_CONFIG")
    if not cfg or cfg == "/dev/null":  # importing htcondor2 sets /dev/null when it was unset
        return "no live HTCondor pool: CONDOR_CONFIG is not set (see INSTALL.md, `make test-condor`)"
    if cfg != "ONLY_ENV" and not os.path.exists(cfg):
        return f"no live HTCondor pool: CONDOR_CONFIG={cfg} does not exist"
    try:
        import htcondor2
    except ImportError as exc:  # pragma: no cover - the bindings are a dependency
        return f"no live HTCondor pool: the htcondor2 bindings do not import ({exc})"
    try:
        htcondor2.Collector().locate(htcondor2.DaemonType.Schedd)
    except (htcondor2.HTCondorException, OSError, ValueError, RuntimeError) as exc:
        return f"no live HTCondor pool: no schedd found through the collector ({exc})"
    return None


def _accounts() -> list[tuple[str, int, str]]:
    try:
        return [(p.pw_name, p.pw_uid, p.pw_shell) for p in pwd.getpwall()]
    except OSError:  # pragma: no cover
        return []


def _owner(path: Path) -> str | None:
    try:
        return pwd.getpwuid(path.stat().st_uid).pw_name
    except (OSError, KeyError):
        return None


def suggest_user(env: Mapping[str, str], repo: Path,
                 accounts: Iterable[tuple[str, int, str]] | None = None) -> str | None:
    """A normal user to run the live tests as: whoever used sudo, the clone's owner, else the
    first ordinary login account (uid 1000-59999 with a real shell)."""
    for name in (env.get("SUDO_USER"), _owner(repo)):
        if name and name != "root":
            return name
    for name, uid, shell in sorted(_accounts() if accounts is None else accounts, key=lambda a: a[1]):
        if 1000 <= uid < 60000 and not shell.endswith(("nologin", "false")):
            return name
    return None


def root_refusal(euid: int, env: Mapping[str, str], repo: Path,
                 accounts: Iterable[tuple[str, int, str]] | None = None) -> str | None:
    """The one line that stops the live tests run as root, or None for a normal user."""
    if euid != 0:
        return None
    user = suggest_user(env, repo, accounts)
    how = (f"`su {user} -c 'make test-condor'`" if user
           else "`su USER -c 'make test-condor'` with a normal account")
    return ("HTCondor will not run root's jobs (the schedd refuses them: \"Failed to create new "
            f"User record\"): run `make test-condor` as a normal user, e.g. {how}")


# ---------------------------------------------------------------- deadlines

class Deadline:
    """``seconds`` from now, never past ``parent`` (the module's budget)."""

    def __init__(self, seconds: float, what: str, parent: Deadline | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = float(seconds)
        self.what = what
        self.parent = parent
        self.clock = clock
        self.start = clock()

    def own_remaining(self) -> float:
        return self.seconds - (self.clock() - self.start)

    def remaining(self) -> float:
        mine = self.own_remaining()
        return mine if self.parent is None else min(mine, self.parent.remaining())

    @property
    def expired(self) -> bool:
        return self.remaining() <= 0

    def binding(self) -> Deadline:
        """The deadline that runs out first: this one or an ancestor."""
        if self.parent is None:
            return self
        up = self.parent.binding()
        return self if self.own_remaining() <= up.remaining() else up

    def describe(self) -> str:
        b = self.binding()
        return f"{b.what}: {b.seconds:g} s"

    def sub(self, seconds: float, what: str) -> Deadline:
        return Deadline(seconds, what, self, self.clock)


# ---------------------------------------------------------------- diagnosis

def job_id(ad: Mapping[str, Any]) -> str | None:
    c, p = ad.get("ClusterId"), ad.get("ProcId")
    return f"{c}.{p}" if isinstance(c, int) and isinstance(p, int) else None


def _text(value: Any) -> str:
    return json.dumps(value) if isinstance(value, str) else ("-" if value is None else str(value))


def describe_job(job: str, queue_ad: Mapping[str, Any] | None, history_ad: Mapping[str, Any] | None,
                 now: float | None = None) -> str:
    """One line: where the schedd has the job, its JobStatus, HoldReason, LastRejMatchReason..."""
    if queue_ad is not None:
        ad, where = queue_ad, "in the queue"
    elif history_ad is not None:
        ad, where = history_ad, "in the history"
    else:
        return f"{job}: neither in the schedd's queue nor in its history"
    status = ad.get("JobStatus")
    name = JOB_STATUS.get(status, "?") if isinstance(status, int) else "?"
    parts = [f"{job}: JobStatus {_text(status)} ({name}) {where}"]
    hold = f"HoldReason {_text(ad.get('HoldReason'))}"
    if ad.get("HoldReason") is not None and ad.get("HoldReasonCode") is not None:
        hold += f" (code {ad.get('HoldReasonCode')}/{ad.get('HoldReasonSubCode', '-')})"
    parts.append(hold)
    rej = f"LastRejMatchReason {_text(ad.get('LastRejMatchReason'))}"
    when = ad.get("LastRejMatchTime")
    if isinstance(when, (int, float)) and ad.get("LastRejMatchReason") is not None:
        rej += f" ({(time.time() if now is None else now) - when:.0f} s ago)"
    parts.append(rej)
    if ad.get("RemoveReason") is not None:
        parts.append(f"RemoveReason {_text(ad.get('RemoveReason'))}")
    host = ad.get("RemoteHost") or ad.get("LastRemoteHost")
    if host:
        parts.append(f"host {host}")
    if ad.get("NumJobStarts") is not None:
        parts.append(f"NumJobStarts {ad.get('NumJobStarts')}")
    if status in (3, 4):
        if ad.get("ExitBySignal") is True:
            parts.append(f"ExitBySignal true, ExitSignal {_text(ad.get('ExitSignal'))}")
        elif ad.get("ExitCode") is not None:
            parts.append(f"ExitCode {ad.get('ExitCode')}")
    if status == 1 and ad.get("LastRejMatchReason") is None:
        parts.append("(not matched yet: is the negotiator running, are there free slots?)")
    return "; ".join(parts)


Query = Callable[[str, Sequence[str]], Sequence[Mapping[str, Any]]]
History = Callable[[str, Sequence[str], int], Sequence[Mapping[str, Any]]]


def diagnose(jobs: Iterable[str], query: Query, history: History, now: float | None = None) -> str:
    """What the schedd (queue, then history) says about ``jobs`` ("C.P", or "C" for a cluster)."""
    wanted = [str(j) for j in jobs]
    if not wanted:
        return "(no jobs to diagnose)"
    clusters = sorted({int(j.split(".")[0]) for j in wanted if j.split(".")[0].isdigit()})
    constraint = " || ".join(f"ClusterId == {c}" for c in clusters) or "false"
    lines: list[str] = []
    queue: dict[str, Mapping[str, Any]] = {}
    past: dict[str, Mapping[str, Any]] = {}
    try:
        for ad in query(constraint, DIAG_PROJECTION):
            jid = job_id(ad)
            if jid:
                queue[jid] = ad
    except Exception as exc:  # a diagnosis never hides the real failure
        lines.append(f"(could not query the schedd: {exc})")
    try:
        for ad in history(constraint, DIAG_PROJECTION, -1):
            jid = job_id(ad)
            if jid and jid not in past:
                past[jid] = ad
    except Exception as exc:
        lines.append(f"(could not read the schedd's history: {exc})")
    ids: list[str] = []
    for j in wanted:
        if "." in j:
            ids.append(j)
        else:
            found = sorted({*queue, *past}, key=lambda x: tuple(int(p) for p in x.split(".")))
            ids += [x for x in found if x.split(".")[0] == j] or [j]
    for jid in dict.fromkeys(ids):
        lines.append(describe_job(jid, queue.get(jid), past.get(jid), now))
    return "\n".join(lines)


def execute_times(log: Path) -> dict[str, float]:
    """``{"C.P": epoch}`` of each job's first EXECUTE event in an HTCondor user log."""
    import htcondor2

    out: dict[str, float] = {}
    try:
        events = htcondor2.JobEventLog(str(log)).events(stop_after=0)
        for ev in events:
            if ev.type == htcondor2.JobEventType.EXECUTE:
                out.setdefault(f"{ev.cluster}.{ev.proc}", float(ev.timestamp))
    except (OSError, htcondor2.HTCondorException):
        pass
    return out


# ---------------------------------------------------------------- the user's commands

def jobmon_command() -> list[str]:
    """The ``jobmon`` a user runs: the one beside this Python, else on PATH."""
    import sys

    exe = Path(sys.executable).parent / "jobmon"
    if exe.exists():
        return [str(exe)]
    found = shutil.which("jobmon")
    return [found] if found else [sys.executable, "-m", "jobmon.cli.main"]


def user_env(state_dir: Path, config_file: Path, pool: str) -> dict[str, str]:
    """The environment of the user's commands: theirs, without grid credentials, other relays
    or a personal jobmon config leaking in, with the session's own state directory."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("X509_", "JOBMON_", "PYTEST_"))}
    env["JOBMON_STATE_DIR"] = str(state_dir)
    env["JOBMON_CONFIG"] = str(config_file)
    if pool != "condor":
        env["JOBMON_NO_CONDOR_CONFIG"] = "1"  # a local-pool run ignores this host's HTCondor knobs
    return env


def grid_credential_present(env: Mapping[str, str]) -> bool:
    """A grid credential the CLI would pick before the relay's local certificate."""
    home = Path(env.get("HOME") or str(Path.home()))
    return (Path(f"/tmp/x509up_u{os.getuid()}").is_file()
            or ((home / ".globus" / "usercert.pem").is_file() and (home / ".globus" / "userkey.pem").is_file()))


class LiveError(AssertionError):
    """A live step failed; the message says what, for which jobs, and what the pool says."""


class LiveSession:
    """One relay (``jobmon relay --pool POOL``) and the ``jobmon`` command, as a user runs them.

    ``workdir`` holds the submit files, the jobs' output and the state directory;
    ``budget`` is the deadline of the whole module (or benchmark).
    """

    def __init__(self, workdir: Path, budget: Deadline, pool: str = "condor", slots: int = 4) -> None:
        self.workdir = Path(workdir)
        self.budget = budget
        self.pool = pool
        self.slots = slots
        self.state_dir = self.workdir / "state"
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.config_file = self.workdir / "jobmon-cli.toml"
        self.config_file.write_text("# empty: the tests' CLI settings come from the environment\n")
        self.env = user_env(self.state_dir, self.config_file, pool)
        self.log_path = self.workdir / "relay.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""
        self.relay_command: list[str] = []
        self.clusters: list[int] = []
        self._condor: Any = None
        self.cred_args: list[str] = []

    # -- the relay ------------------------------------------------------------
    def start_relay(self, timeout: float = 60.0) -> str:
        cmd = [*jobmon_command(), "relay", "--pool", self.pool, "--listen", "127.0.0.1:0",
               "--submit-root", str(self.workdir)]
        if self.pool == "local":
            cmd += ["--slots", str(self.slots)]
        self.relay_command = cmd
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(cmd, env=self.env, cwd=str(self.workdir), stdout=log,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = self.budget.sub(timeout, "the relay's start")
        while True:
            if self.proc.poll() is not None:
                raise LiveError(f"`{' '.join(cmd)}` exited with status {self.proc.returncode}:\n"
                                f"{self.relay_log_tail(40)}")
            url = self._served_url()
            if url and self._answers(url):
                self.url = url
                break
            if deadline.expired:
                raise LiveError(f"`{' '.join(cmd)}` did not serve within {deadline.describe()}:\n"
                                f"{self.relay_log_tail(40)}")
            time.sleep(0.1)
        self.env["JOBMON_RELAY_URL"] = self.url  # as the quick start exports it
        if grid_credential_present(self.env):
            # a grid proxy or ~/.globus certificate would be used first, and this relay trusts
            # only its own local CA: use the certificate it made for this user (INSTALL.md)
            from jobmon.settings import local_pki_paths

            paths = local_pki_paths(self.state_dir)
            self.cred_args = ["--cert", str(paths["user_cert"]), "--key", str(paths["user_key"])]
        return self.url

    def _answers(self, url: str) -> bool:
        """The relay answers ``jobmon.whoami`` over TLS with the certificate it made for this user
        (a bare TCP probe would only leave a refused handshake in its log)."""
        from jobmon.client import Client, make_ssl_context
        from jobmon.errors import JobmonError
        from jobmon.settings import local_pki_paths

        p = local_pki_paths(self.state_dir)
        try:
            Client(url, make_ssl_context(p["user_cert"], p["user_key"], p["ca"], None), 5.0).whoami()
            return True
        except (JobmonError, OSError):
            return False

    def _served_url(self) -> str:
        """The URL from the relay's first line ``jobmon relay: serving URL with the ... pool``."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        for line in text.splitlines():
            words = line.split()
            if len(words) > 3 and words[:3] == ["jobmon", "relay:", "serving"]:
                return words[3]
        return ""

    def relay_log_tail(self, lines: int = 25) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no relay log)"
        tail = text.splitlines()[-lines:]
        return f"--- last {len(tail)} lines of {self.log_path} ---\n" + "\n".join(tail)

    def stop_relay(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.pool == "local":
            from jobmon.demo import _kill_leftovers

            _kill_leftovers(self.state_dir)

    # -- the jobmon command ------------------------------------------------------
    def jm(self, *args: str, timeout: float = 30.0, check: bool = True,
           deadline: Deadline | None = None) -> subprocess.CompletedProcess[str]:
        """Run ``jobmon ARGS`` in the work directory; fail (with context) on a non-zero exit."""
        limit = max(1.0, min(timeout, (deadline or self.budget).remaining()))
        cmd = [*jobmon_command(), *self.cred_args, *args]
        try:
            res = subprocess.run(cmd, env=self.env, cwd=str(self.workdir), capture_output=True,
                                 text=True, timeout=limit, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired as exc:
            raise LiveError(f"`jobmon {' '.join(args)}` did not return within {limit:.0f} s"
                            f" ({(deadline or self.budget).describe()})\n{self.relay_log_tail()}") from exc
        if check and res.returncode != 0:
            raise LiveError(f"`jobmon {' '.join(args)}` exited {res.returncode}\nstdout: {res.stdout}"
                            f"\nstderr: {res.stderr}")
        return res

    def jm_json(self, *args: str, deadline: Deadline | None = None) -> Any:
        return json.loads(self.jm(*args, "--json", deadline=deadline).stdout)

    def submit(self, subfile: Path, deadline: Deadline | None = None) -> int:
        """``jobmon submit [--pool condor] FILE`` -> the cluster id it printed."""
        args = ["submit", str(subfile)] + (["--pool", "condor"] if self.pool == "condor" else [])
        out = self.jm(*args, timeout=60, deadline=deadline).stdout.strip().splitlines()
        last = out[-1] if out else ""
        if "submitted to cluster" not in last:
            raise LiveError(f"`jobmon {' '.join(args)}` printed {out!r}")
        cluster = int(last.rstrip(".").split()[-1])
        self.clusters.append(cluster)
        return cluster

    def jobs(self, cluster: int, deadline: Deadline | None = None) -> dict[str, dict[str, Any]]:
        """``jobmon q CLUSTER --json`` by job id (an empty dict while the relay cannot answer)."""
        res = self.jm("q", str(cluster), "--json", check=False, deadline=deadline)
        if res.returncode != 0:
            return {}
        return {str(j.get("id")): j for j in json.loads(res.stdout)}

    def status(self, job: str, deadline: Deadline | None = None) -> dict[str, Any]:
        res = self.jm("status", job, "--json", check=False, deadline=deadline)
        if res.returncode != 0:
            return {}
        data = json.loads(res.stdout)
        return dict(data[0] if isinstance(data, list) else data)

    # -- the pool's own view ---------------------------------------------------
    @property
    def condor(self) -> Any:
        """A ``CondorPool`` for the tests' own look at the schedd and collector (as condor_q does)."""
        if self._condor is None:
            from jobmon.pools.condor import CondorPool

            self._condor = CondorPool()
        return self._condor

    def diagnose(self, jobs: Iterable[str]) -> str:
        if self.pool != "condor":
            lines = []
            for j in jobs:
                st = self.status(j) if "." in j else {}
                lines.append(f"{j}: relay says {json.dumps(st, sort_keys=True) if st else '(nothing)'}")
            return "\n".join(lines)
        return diagnose(jobs, self.condor.query, self.condor.history)

    def wait(self, what: str, pred: Callable[[], T | None], jobs: Iterable[str],
             deadline: Deadline, interval: float = 0.5) -> T:
        """``pred()``'s first truthy value; on timeout a ``LiveError`` with the jobs' diagnosis."""
        jobs = list(jobs)
        while True:
            value = pred()
            if value:
                return value
            if deadline.expired:
                raise LiveError(f"timed out waiting for {what} ({deadline.describe()}); "
                                f"the jobs it waited for:\n{self.diagnose(jobs)}\n{self.relay_log_tail()}")
            time.sleep(max(0.05, min(interval, deadline.remaining())))

    def remove_all(self) -> None:
        """Remove every cluster this session submitted (teardown; errors are ignored)."""
        if not self.clusters or self.pool != "condor":
            return
        constraint = " || ".join(f"ClusterId == {c}" for c in self.clusters)
        try:
            self.condor.act("remove", constraint, "jobmon live tests: cleanup")
        except Exception:  # jobs already gone
            pass
