"""Files of the local pool: sandboxes, input/output transfer, the job ad file, the user log.

Output follows HTCondor's rules: with ``transfer_output_files`` unset, every
file at the top of the sandbox that is new or modified since the input
transfer comes back to ``Iwd``; otherwise exactly the listed paths do (a
listed path that is missing is an error: the job goes on hold, as in HTCondor).
The user log (``log =``) gets HTCondor's event format: ``NNN (CCC.PPP.000)
YYYY-MM-DD HH:MM:SS text``, detail lines indented with a tab, ``...`` last.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from jobmon.pools.local_jobs import input_paths, output_paths

#: files the local pool itself puts in a sandbox; never transferred back
INTERNAL = {".job.ad", ".machine.ad", "_condor_stdout", "_condor_stderr", "jobmon.cred"}
Snapshot = dict[str, tuple[int, int]]


class TransferError(Exception):
    """An input or output file could not be moved (becomes a hold reason)."""


def prepare_sandbox(ad: Mapping[str, Any], sandbox: Path) -> None:
    """Create ``sandbox`` and copy the input files and empty ``_condor_stdout``/``_condor_stderr`` in
    (the executable, ownership and the snapshot of what came in: ``local_exec`` and the pool)."""
    if sandbox.exists():
        shutil.rmtree(sandbox)
    sandbox.mkdir(parents=True, mode=0o700)
    for src in input_paths(ad):
        dest = sandbox / src.name
        try:
            if src.is_dir():
                shutil.copytree(src, dest, symlinks=True)
            else:
                shutil.copy2(src, dest)
        except OSError as exc:
            raise TransferError(
                f"Transfer input files failure: reading from file {src}: "
                f"({exc.errno}) {exc.strerror or exc}") from exc
    (sandbox / "_condor_stdout").touch()
    (sandbox / "_condor_stderr").touch()


def snapshot(sandbox: Path) -> Snapshot:
    out: Snapshot = {}
    for entry in os.scandir(sandbox):
        if entry.is_file(follow_symlinks=False):
            st = entry.stat(follow_symlinks=False)
            out[entry.name] = (st.st_mtime_ns, st.st_size)
    return out


def transfer_output(ad: Mapping[str, Any], sandbox: Path, before: Snapshot) -> list[str]:
    """Copy stdout/stderr and the output files back; returns the names copied."""
    iwd = Path(str(ad["Iwd"]))
    for name, attr in (("_condor_stdout", "Out"), ("_condor_stderr", "Err")):
        dest = str(ad.get(attr, "/dev/null"))
        if dest != "/dev/null" and (sandbox / name).exists():
            Path(dest).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(sandbox / name, dest)
            os.chmod(dest, 0o644)  # as HTCondor returns them, whatever the relay's umask (077)
    listed = output_paths(ad)
    copied: list[str] = []
    if listed:
        for rel in listed:
            src = sandbox / rel
            if not src.exists():
                raise TransferError(
                    f"Transfer output files failure: file {rel} does not exist in the sandbox")
            _copy(src, iwd / src.name)
            copied.append(rel)
        return copied
    now = snapshot(sandbox)
    for name, stamp in sorted(now.items()):
        if name in INTERNAL or before.get(name) == stamp:
            continue
        _copy(sandbox / name, iwd / name)
        copied.append(name)
    return copied


def _copy(src: Path, dest: Path) -> None:
    try:
        if src.is_dir():
            shutil.copytree(src, dest, symlinks=True, dirs_exist_ok=True)
        else:
            shutil.copy2(src, dest)
    except OSError as exc:
        raise TransferError(f"Transfer output files failure: writing {dest}: {exc}") from exc


def write_job_ad_file(ad: Any, sandbox: Path) -> Path:
    """The ``$_CONDOR_JOB_AD`` file: the job ad as the starter sees it (paths in the sandbox)."""
    import classad2

    inner = classad2.parseOne(ad.printOld())
    for private in ("JobMonSandboxSnapshot", "JobMonShepherdPid"):
        if private in inner:
            del inner[private]
    inner["OrigIwd"] = str(ad["Iwd"])
    inner["Iwd"] = str(sandbox)
    inner["OriginalOut"] = str(ad.get("Out", "/dev/null"))
    inner["OriginalErr"] = str(ad.get("Err", "/dev/null"))
    inner["Out"] = "_condor_stdout"
    inner["Err"] = "_condor_stderr"
    inner["OrigCmd"] = str(ad["Cmd"])
    path = sandbox / ".job.ad"
    path.write_text(inner.printOld())
    os.chmod(path, 0o644)
    return path


# ------------------------------------------------------------------ user log
def _stamp(when: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(when if when else time.time()))


def log_event(ad: Mapping[str, Any], code: int, text: str, details: Sequence[str] = (),
              when: float | None = None) -> None:
    """Append one event to the job's user log, if it has one."""
    path = str(ad.get("UserLog", "") or "")
    if not path:
        return
    head = f"{code:03d} ({int(ad['ClusterId']):03d}.{int(ad['ProcId']):03d}.000) {_stamp(when)} {text}"
    body = "".join(f"\t{d}\n" for d in details)
    data = f"{head}\n{body}...\n".encode()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    except OSError:
        return  # the log is a courtesy; a missing directory must not break the job
    try:
        if os.fstat(fd).st_size == 0:
            os.fchmod(fd, 0o644)  # a new log: readable as HTCondor's are, whatever the relay's umask
        os.write(fd, data)
    finally:
        os.close(fd)


def usage_lines() -> list[str]:
    zero = "Usr 0 00:00:00, Sys 0 00:00:00"
    return [f"\t{zero}  -  Run Remote Usage", f"\t{zero}  -  Run Local Usage",
            f"\t{zero}  -  Total Remote Usage", f"\t{zero}  -  Total Local Usage"]


def terminated_details(exit_code: int | None, signal: int | None) -> list[str]:
    if signal is not None:
        return [f"(0) Abnormal termination (signal {signal})", "(0) No core file", *usage_lines()]
    return [f"(1) Normal termination (return value {exit_code})", *usage_lines()]
