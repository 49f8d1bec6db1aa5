"""LocalPool: the embedded default pool — wrapped jobs as local processes on this host.

One node (this host) with N slots; idle jobs start by priority (``JobPrio``,
higher first) then in submission order. Each job runs as on an HTCondor
execute node (``local_exec``): a fresh scratch directory outside the relay's
state directory with only its transferred files, an environment with only
what its submit file gives plus HTCondor's own variables, and a user that
cannot read the relay's state. Its output is copied back by HTCondor's rules
(see ``local_files``). Job ads are ``classad2.ClassAd`` objects with
HTCondor's attribute names and codes, so constraints are evaluated by
classad2 as condor_q would.

Jobs run under a shepherd process (``local_shepherd``) in their own session,
so ``rm`` can kill the whole process group and a job survives a relay restart:
the job table is in SQLite (``<state_dir>/localpool/jobs.sqlite``); on start, a
job recorded as running whose shepherd is still alive is adopted and finishes
normally; one whose shepherd died without recording an exit goes back to idle
and runs again (like a vacated HTCondor job). Held jobs stay held.

It is an embedded stand-in for a pool, not a scheduler to grow.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import classad2
import htcondor2

from jobmon.errors import JobmonError, NotFound, PoolError, UsageError
from jobmon.pools import local_exec
from jobmon.pools import local_files as files
from jobmon.pools.base import JobAction, NodeAction, NodeInfo, Pool, SubmitResult
from jobmon.pools.local_jobs import expand_procs

log = logging.getLogger(__name__)

QUEUE_STATES = (1, 2, 5)
KILL_GRACE = 5.0


class LocalPool(Pool):
    kind = "local"

    def __init__(self, state_dir: Path | str, slots: int | None = None, *,
                 hostname: str | None = None, start: bool = True, execute_dir: str | None = None,
                 job_user: str | None = None, private: Sequence[Path | str] = ()) -> None:
        """``state_dir`` holds the job table; jobs can read neither it nor the ``private`` directories.

        ``execute_dir``: where scratch directories are made (default: a new directory in the
        system's temp dir, kept for the pool's life); ``job_user``: whom jobs run as when the
        pool runs as root (default ``nobody``).
        """
        self.root = Path(state_dir) / "localpool"
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "shepherd").mkdir(mode=0o700, exist_ok=True)
        self.slots = max(1, slots or os.cpu_count() or 1)
        self.hostname = hostname or socket.gethostname()
        self.user = local_exec.job_user(job_user)
        self.hidden = [str(Path(p).resolve()) for p in (state_dir, *private)] if self.user is None else []
        self._warned_hide = False
        self._lock = threading.RLock()
        self._wake = threading.Condition(self._lock)
        self._db = sqlite3.connect(str(self.root / "jobs.sqlite"), check_same_thread=False,
                                   isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS jobs (cluster INTEGER, proc INTEGER, "
                         "status INTEGER, ad TEXT, PRIMARY KEY (cluster, proc))")
        self._db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
        self._ads: dict[tuple[int, int], classad2.ClassAd] = {}
        self._procs: dict[tuple[int, int], subprocess.Popen[bytes] | int] = {}
        self._snapshots: dict[tuple[int, int], files.Snapshot] = {}
        self._pending: dict[tuple[int, int], tuple[int, str]] = {}  # key -> (status, reason)
        self._slot_of: dict[tuple[int, int], int] = {}
        self._closing = False
        for cluster, proc, text in self._db.execute("SELECT cluster, proc, ad FROM jobs"):
            self._ads[(cluster, proc)] = classad2.parseOne(text)
        known = self._meta("execute_dir", "")
        if known and Path(known).is_dir():
            self.execute = Path(known)
        else:
            self.execute = local_exec.make_execute_dir(execute_dir)
            self._set_meta("execute_dir", str(self.execute))
        self._recover()
        self._thread = threading.Thread(target=self._schedule_loop, name="localpool", daemon=True)
        if start:
            self._thread.start()

    # ----------------------------------------------------------------- Pool API
    @property
    def address(self) -> str:
        return f"local pool in {self.root}"

    def submit(self, submit: htcondor2.Submit, *, iwd: str, owner_dn: str | None = None,
               count: int | None = None) -> SubmitResult:
        with self._lock:
            cluster = int(self._meta("next_cluster", "1"))
            ads = expand_procs(submit, cluster=cluster, iwd=iwd, owner_dn=owner_dn,
                               hostname=self.hostname, count=count)
            if not ads:
                raise UsageError("the submit description queues no jobs")
            self._set_meta("next_cluster", str(cluster + 1))
            for ad in ads:
                self._save(ad)
            for ad in ads:
                files.log_event(ad, 0, f"Job submitted from host: <127.0.0.1:0?alias={self.hostname}>")
            self._wake.notify_all()
            return SubmitResult(cluster, tuple(int(ad["ProcId"]) for ad in ads))

    def query(self, constraint: str = "true", projection: Sequence[str] = ()) -> list[classad2.ClassAd]:
        return self._select(constraint, projection, lambda st: st in QUEUE_STATES)

    def history(self, constraint: str = "true", projection: Sequence[str] = (),
                match: int = -1) -> list[classad2.ClassAd]:
        ads = self._select(constraint, projection, lambda st: st not in QUEUE_STATES)
        ads.sort(key=lambda a: (int(a.get("CompletionDate", 0) or a.get("EnteredCurrentStatus", 0)),
                                int(a.get("ClusterId", 0)), int(a.get("ProcId", 0))), reverse=True)
        return ads if match < 0 else ads[:match]

    def act(self, action: JobAction, constraint: str, reason: str | None = None) -> int:
        expr = _parse(constraint)
        by = f" (by user {os.environ.get('USER', 'jobmon')})"
        n = 0
        with self._lock:
            for key, ad in sorted(self._ads.items()):
                if not _matches(expr, ad):
                    continue
                status = int(ad["JobStatus"])
                if action is JobAction.REMOVE and status in QUEUE_STATES:
                    text = (reason or "via jobmon rm") + by
                    if key in self._procs:
                        self._pending[key] = (3, text)
                        self._kill(key)
                    else:
                        ad["RemoveReason"] = text
                        self._finish_removed(key, ad, text)
                    n += 1
                elif action is JobAction.HOLD and status in (1, 2):
                    text = (reason or "via jobmon hold") + by
                    if key in self._procs:
                        self._pending[key] = (5, text)
                        self._kill(key)
                    else:
                        self._hold(key, ad, text, 1)
                    n += 1
                elif action is JobAction.RELEASE and status == 5:
                    ad["LastHoldReason"] = ad.get("HoldReason", "")
                    del ad["HoldReason"]
                    ad["ReleaseReason"] = (reason or "via jobmon release") + by
                    self._set_status(ad, 1)
                    files.log_event(ad, 13, "Job was released.", [str(ad["ReleaseReason"])])
                    n += 1
            self._wake.notify_all()
        return n

    def nodes(self) -> list[NodeInfo]:
        with self._lock:
            mode = self._meta("node_mode", "up")
            running = tuple(f"{c}.{p}" for (c, p) in sorted(self._procs))
            if mode == "up":
                state = "up"
            elif mode == "off":
                state = "off"
            else:
                state = "draining" if running else "drained"
            return [NodeInfo(
                name=self.hostname, state=state, activity="Busy" if running else "Idle",
                slots_total=self.slots, slots_busy=len(running), load=os.getloadavg()[0],
                running_jobs=running, has_jobmon=True, draining=mode == "drain")]

    def node_action(self, node: str, action: NodeAction) -> str:
        if node not in (self.hostname, "localhost", ""):
            raise NotFound(f"no node {node!r} in the {self.address}", hint=f"it has {self.hostname}")
        new = {NodeAction.DRAIN: "drain", NodeAction.UNDRAIN: "up",
               NodeAction.OFF: "off", NodeAction.ON: "up"}[action]
        with self._lock:
            self._set_meta("node_mode", new)
            self._wake.notify_all()
        return {
            NodeAction.DRAIN: f"draining {self.hostname}: running jobs finish, no new ones start",
            NodeAction.UNDRAIN: f"cancelled draining on {self.hostname}",
            NodeAction.OFF: f"{self.hostname} is off: running jobs finish, no new ones start",
            NodeAction.ON: f"{self.hostname} is on",
        }[action]

    def close(self) -> None:
        """Stop scheduling and recording. Running jobs keep running (adopted on restart)."""
        with self._lock:
            self._closing = True
            self._wake.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        with self._lock:
            if not self._procs:
                try:
                    self.execute.rmdir()  # only when empty: a running job keeps its scratch directory
                except OSError:
                    pass

    def kill_all(self) -> None:
        """Kill every running job (tests and `jobmon demo` clean-up)."""
        with self._lock:
            for key in list(self._procs):
                self._pending.setdefault(key, (3, "pool shut down"))
                self._kill(key, grace=0)

    # --------------------------------------------------------------- internals
    def _select(self, constraint: str, projection: Sequence[str], want: Any) -> list[classad2.ClassAd]:
        expr = _parse(constraint)
        out = []
        with self._lock:
            for _key, ad in sorted(self._ads.items()):
                if want(int(ad["JobStatus"])) and _matches(expr, ad):
                    out.append(_project(ad, projection))
        return out

    def _meta(self, key: str, default: str) -> str:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return str(row[0]) if row else default

    def _set_meta(self, key: str, value: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def _save(self, ad: classad2.ClassAd) -> None:
        key = (int(ad["ClusterId"]), int(ad["ProcId"]))
        self._ads[key] = ad
        self._db.execute("INSERT OR REPLACE INTO jobs VALUES (?, ?, ?, ?)",
                         (key[0], key[1], int(ad["JobStatus"]), ad.printOld()))

    def _set_status(self, ad: classad2.ClassAd, status: int) -> None:
        ad["JobStatus"] = status
        ad["EnteredCurrentStatus"] = int(time.time())
        self._save(ad)

    def sandbox_path(self, cluster: int, proc: int) -> Path:
        """The scratch directory job ``cluster.proc`` runs (or would run) in."""
        return local_exec.scratch_dir(self.execute, (cluster, proc))

    def _sandbox(self, key: tuple[int, int]) -> Path:
        return local_exec.scratch_dir(self.execute, key)

    def _status_file(self, key: tuple[int, int]) -> Path:
        return self.root / "shepherd" / f"{key[0]}.{key[1]}.json"

    def _recover(self) -> None:
        for key, ad in self._ads.items():
            if int(ad["JobStatus"]) != 2:
                continue
            pid = int(ad.get("JobMonShepherdPid", 0) or 0)
            status_file = self._status_file(key)
            if pid and _shepherd_alive(pid, status_file):
                self._procs[key] = pid
                self._slot_of[key] = int(str(ad.get("RemoteHost", "slot1@")).split("@")[0][4:] or 1)
                self._snapshots[key] = _load_snapshot(ad)
                threading.Thread(target=self._watch, args=(key,), daemon=True).start()
                log.info("adopted running job %d.%d (shepherd pid %d)", key[0], key[1], pid)
            elif status_file.exists():
                self._procs[key] = pid
                self._snapshots[key] = _load_snapshot(ad)
                threading.Thread(target=self._watch, args=(key,), daemon=True).start()
            else:
                log.info("job %d.%d lost its process while the relay was down: back to idle", *key)
                ad["LastVacateTime"] = int(time.time())
                files.log_event(ad, 4, "Job was evicted.", ["(0) Job was not checkpointed.",
                                                            "Reason: local pool restarted"])
                self._set_status(ad, 1)

    def _schedule_loop(self) -> None:
        with self._lock:
            while not self._closing:
                started = self._start_next()
                if not started:
                    self._wake.wait(timeout=5)

    def _start_next(self) -> bool:
        if self._meta("node_mode", "up") != "up" or len(self._procs) >= self.slots:
            return False
        idle = [(k, a) for k, a in self._ads.items() if int(a["JobStatus"]) == 1]
        if not idle:
            return False
        key, ad = min(idle, key=lambda ka: (-int(ka[1].get("JobPrio", 0) or 0), ka[0]))
        used = set(self._slot_of.values())
        slot = next(i for i in range(1, self.slots + 1) if i not in used)
        try:
            self._start(key, ad, slot)
        except files.TransferError as exc:
            self._hold(key, ad, str(exc), 13)
        except (OSError, JobmonError) as exc:
            self._hold(key, ad, f"Failed to start the job: {exc}", 6)
        return True

    def _start(self, key: tuple[int, int], ad: classad2.ClassAd, slot: int) -> None:
        sandbox = self._sandbox(key)
        if sandbox.parent.exists():
            shutil.rmtree(sandbox.parent)
        sandbox.parent.mkdir(parents=True)
        self._status_file(key).unlink(missing_ok=True)
        files.prepare_sandbox(ad, sandbox)
        now = int(time.time())
        ad["RemoteHost"] = f"slot{slot}@{self.hostname}"
        ad["StartdIpAddr"] = f"<127.0.0.1:0?alias={self.hostname}>"
        ad["JobStartDate"] = int(ad.get("JobStartDate", now) or now)
        ad["JobCurrentStartDate"] = now
        ad["JobRunCount"] = int(ad.get("JobRunCount", 0) or 0) + 1
        ad["NumJobStarts"] = int(ad.get("NumJobStarts", 0) or 0) + 1
        ad["CondorScratchDir"] = str(sandbox)
        files.write_job_ad_file(ad, sandbox)
        local_exec.write_machine_ad(sandbox, self.hostname, slot, self.slots)
        local_exec.finish_scratch(ad, sandbox, self.user)
        snap = files.snapshot(sandbox)
        ad["JobMonSandboxSnapshot"] = repr(snap)
        env = local_exec.environment(ad, sandbox, slot, os.environ)
        stdin = str(ad.get("In", "/dev/null") or "/dev/null")
        opts: list[str] = ["--user", f"{self.user.uid}:{self.user.gid}"] if self.user else []
        for path in self.hidden:
            opts += ["--hide", path]
        argv = [sys.executable, "-m", "jobmon.pools.local_shepherd", str(self._status_file(key)),
                stdin, str(sandbox / "_condor_stdout"), str(sandbox / "_condor_stderr"), *opts, "--",
                *local_exec.job_command(ad, sandbox)]
        proc = subprocess.Popen(argv, cwd=sandbox, env=env, start_new_session=True,
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, close_fds=True)
        ad["JobMonShepherdPid"] = proc.pid
        self._procs[key] = proc
        self._slot_of[key] = slot
        self._snapshots[key] = snap
        self._set_status(ad, 2)
        files.log_event(ad, 1, f"Job executing on host: <127.0.0.1:0?alias={self.hostname}>",
                        [f"SlotName: slot{slot}@{self.hostname}",
                         f'CondorScratchDir = "{sandbox}"', "Cpus = 1"])
        threading.Thread(target=self._watch, args=(key,), daemon=True).start()

    def _kill(self, key: tuple[int, int], grace: float = KILL_GRACE) -> None:
        proc = self._procs.get(key)
        pid = proc.pid if isinstance(proc, subprocess.Popen) else proc
        if not pid:
            return
        _killpg(pid, signal.SIGTERM if grace else signal.SIGKILL)
        if grace:
            timer = threading.Timer(grace, _killpg, args=(pid, signal.SIGKILL))
            timer.daemon = True
            timer.start()

    def _watch(self, key: tuple[int, int]) -> None:
        proc = self._procs.get(key)
        status_file = self._status_file(key)
        if isinstance(proc, subprocess.Popen):
            proc.wait()
        else:
            while proc and _shepherd_alive(proc, status_file):
                time.sleep(0.5)
        with self._lock:
            if self._closing:
                return  # a closed pool changes nothing: the next one adopts or requeues the job
            self._finish(key, status_file)
            self._wake.notify_all()

    def _finish(self, key: tuple[int, int], status_file: Path) -> None:
        ad = self._ads[key]
        self._procs.pop(key, None)
        self._slot_of.pop(key, None)
        snap = self._snapshots.pop(key, {})
        pending = self._pending.pop(key, None)
        result = _read_json(status_file)
        status_file.unlink(missing_ok=True)
        if result.get("hidden") is False and not self._warned_hide:
            self._warned_hide = True
            log.warning("local pool: jobs can read the relay's state directory (%s): %s",
                        ", ".join(self.hidden), result.get("hide_error", "user namespaces unavailable"))
        sandbox = self._sandbox(key)
        now = int(time.time())
        if pending is not None:
            status, reason = pending
            if status == 3:
                ad["RemoveReason"] = reason
                self._finish_removed(key, ad, reason)
            else:
                self._hold(key, ad, reason, 1)
        elif "error" in result:
            self._hold(key, ad, str(result["error"]), 6)
        elif "returncode" not in result:
            ad["LastVacateTime"] = now
            files.log_event(ad, 4, "Job was evicted.", ["Reason: the job's shepherd died"])
            self._set_status(ad, 1)
        else:
            rc = int(result["returncode"])
            if rc < 0:
                ad["ExitBySignal"] = True
                ad["ExitSignal"] = -rc
                if "ExitCode" in ad:
                    del ad["ExitCode"]
            else:
                ad["ExitBySignal"] = False
                ad["ExitCode"] = rc
            try:
                files.transfer_output(ad, sandbox, snap)
            except files.TransferError as exc:
                self._hold(key, ad, str(exc), 12)
                shutil.rmtree(sandbox.parent, ignore_errors=True)
                return
            ad["CompletionDate"] = now
            ad["RemoteWallClockTime"] = float(now - int(ad.get("JobCurrentStartDate", now)))
            self._set_status(ad, 4)
            files.log_event(ad, 5, "Job terminated.", files.terminated_details(
                None if rc < 0 else rc, -rc if rc < 0 else None))
        shutil.rmtree(sandbox.parent, ignore_errors=True)

    def _finish_removed(self, key: tuple[int, int], ad: classad2.ClassAd, reason: str) -> None:
        if int(ad["JobStatus"]) == 2 or "JobCurrentStartDate" in ad:
            ad["ExitBySignal"] = True
            ad["ExitSignal"] = int(signal.SIGTERM)
            if "ExitCode" in ad:
                del ad["ExitCode"]
        ad["CompletionDate"] = int(time.time())
        self._set_status(ad, 3)
        files.log_event(ad, 9, "Job was aborted.", [reason])

    def _hold(self, key: tuple[int, int], ad: classad2.ClassAd, reason: str, code: int) -> None:
        ad["HoldReason"] = reason
        ad["HoldReasonCode"] = code
        ad["HoldReasonSubCode"] = 0
        ad["NumHolds"] = int(ad.get("NumHolds", 0) or 0) + 1
        self._set_status(ad, 5)
        files.log_event(ad, 12, "Job was held.", [reason, f"Code {code} Subcode 0"])


def _parse(constraint: str) -> classad2.ExprTree:
    try:
        return classad2.ExprTree(constraint or "true")
    except (classad2.ClassAdException, ValueError) as exc:
        raise UsageError(f"invalid constraint {constraint!r}: {exc}") from exc


def _matches(expr: classad2.ExprTree, ad: classad2.ClassAd) -> bool:
    try:
        return expr.eval(ad) is True
    except (classad2.ClassAdException, ValueError, TypeError):
        return False


def _project(ad: classad2.ClassAd, projection: Sequence[str]) -> classad2.ClassAd:
    copy = classad2.parseOne(ad.printOld())
    for name in ("JobMonSandboxSnapshot", "JobMonShepherdPid"):
        if name in copy:
            del copy[name]
    if not projection:
        return copy
    out = classad2.ClassAd()
    for name in projection:
        if name in copy:
            out[name] = copy[name]
    return out


def _killpg(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _shepherd_alive(pid: int, status_file: Path) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"local_shepherd" in cmdline and str(status_file).encode() in cmdline


def _read_json(path: Path) -> dict[str, Any]:
    import json

    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _load_snapshot(ad: classad2.ClassAd) -> files.Snapshot:
    import ast

    try:
        value = ast.literal_eval(str(ad.get("JobMonSandboxSnapshot", "{}")))
    except (ValueError, SyntaxError):
        return {}
    return value if isinstance(value, dict) else {}


__all__ = ["LocalPool", "PoolError"]
