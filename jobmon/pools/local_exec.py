"""The local pool's execute node: what a job gets, as an HTCondor starter gives it.

On a real pool a job shares nothing with the relay except what its submit
file transfers and what its environment says. The local pool runs jobs the
same way, so that a job which silently depends on the relay's machine (its
home, its PATH, its state directory, its CA) fails here too, not only on a
real pool. What a job gets, as recorded from HTCondor 25.14 in
``shared/condor-fixtures/sandbox/``:

* a fresh scratch directory ``<execute>/dir_<C>.<P>/scratch`` (0700, the
  job user's) holding only the transferred input files, the executable (when
  transferred), ``.job.ad``, ``.machine.ad``, ``_condor_stdout``,
  ``_condor_stderr``, and ``tmp/`` and ``var/tmp/``. The execute directory
  lies outside the relay's state directory (default: a directory made once in
  the system's temporary directory, recorded in the job table);
* an environment of only what the submit file's ``environment`` / ``getenv``
  gives plus HTCondor's own variables (``_CONDOR_SCRATCH_DIR``,
  ``_CONDOR_JOB_AD``, ``_CONDOR_MACHINE_AD``, ``_CONDOR_JOB_IWD``,
  ``_CONDOR_SLOT``, ``BATCH_SYSTEM``, the ``*_NUM_THREADS`` family set to the
  requested CPUs): no ``PATH``, no ``HOME``, nothing of JobMon's. The one
  difference: ``TMPDIR``/``TMP``/``TEMP`` name ``scratch/tmp`` where HTCondor
  says ``/tmp`` and mounts ``scratch/tmp`` there;
* a user who cannot read the relay's state directory. Run as root, the local
  pool runs jobs as ``nobody`` (HTCondor runs jobs it may not run as their
  owner as ``nobody`` or a slot user, and refuses root's own jobs); run as a
  normal user, jobs run as that user with the state directory covered by an
  empty read-only mount in a private user and mount namespace
  (``local_shepherd --hide``), when the kernel allows unprivileged user
  namespaces (else a warning is logged once and the state directory's 0700
  mode is all that keeps the job out, as on a personal HTCondor pool).
"""

from __future__ import annotations

import os
import pwd
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jobmon.pools.local_jobs import split_environment, split_v2

#: set to the requested CPUs by HTCondor's starter (recorded env of a 1-CPU job)
THREAD_VARIABLES = (
    "CUBACORES", "GOMAXPROCS", "JULIA_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS",
    "OMP_NUM_THREADS", "OMP_THREAD_LIMIT", "OPENBLAS_NUM_THREADS", "PYTHON_CPU_COUNT", "ROOT_MAX_THREADS",
    "TF_LOOP_PARALLEL_ITERATIONS", "TF_NUM_THREADS",
)
DEFAULT_JOB_USER = "nobody"


@dataclass(frozen=True)
class JobUser:
    name: str
    uid: int
    gid: int


def job_user(name: str | None = None) -> JobUser | None:
    """The account jobs run as: ``name`` (default ``nobody``) when we are root, else None (ourselves)."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam(name or DEFAULT_JOB_USER)
    except KeyError:
        from jobmon.errors import ConfigError

        raise ConfigError(f"the local pool runs root's jobs as {name or DEFAULT_JOB_USER!r}, and there is no such user",
                          hint="run the relay as a normal user") from None
    if entry.pw_uid == 0:
        from jobmon.errors import ConfigError

        raise ConfigError(f"the local pool will not run jobs as root ({entry.pw_name})")
    return JobUser(entry.pw_name, entry.pw_uid, entry.pw_gid)


def make_execute_dir(base: str | None = None) -> Path:
    """A new execute directory (0755, like HTCondor's EXECUTE) in ``base`` or the system temp dir."""
    path = Path(tempfile.mkdtemp(prefix="jobmon-execute-", dir=base))
    os.chmod(path, 0o755)
    return path


def job_dir(execute: Path, key: tuple[int, int]) -> Path:
    return execute / f"dir_{key[0]}.{key[1]}"


def scratch_dir(execute: Path, key: tuple[int, int]) -> Path:
    return job_dir(execute, key) / "scratch"


def executable_name(ad: Mapping[str, Any]) -> str | None:
    """The executable's name in the scratch directory when it is transferred, else None."""
    if ad.get("TransferExecutable") is False:
        return None
    return os.path.basename(str(ad["Cmd"]))


def job_command(ad: Mapping[str, Any], scratch: Path) -> list[str]:
    """The argv the starter executes: the transferred executable (or ``Cmd`` as is) and the arguments."""
    name = executable_name(ad)
    program = str(scratch / name) if name else str(ad["Cmd"])
    return [program, *split_v2(str(ad.get("Arguments", "")))]


def finish_scratch(ad: Mapping[str, Any], scratch: Path, user: JobUser | None) -> None:
    """After input transfer: the executable, ``tmp/`` and ``var/tmp/``, ownership and modes."""
    name = executable_name(ad)
    if name:
        src = Path(str(ad["Cmd"]))
        dest = scratch / name
        try:
            shutil.copyfile(src, dest)
        except OSError as exc:
            from jobmon.pools.local_files import TransferError

            raise TransferError(f"Transfer input files failure: reading executable {src}: "
                                f"({exc.errno}) {exc.strerror or exc}") from exc
        os.chmod(dest, 0o755)
    (scratch / "tmp").mkdir(mode=0o700, exist_ok=True)
    (scratch / "var" / "tmp").mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(scratch.parent, 0o755)
    os.chmod(scratch, 0o700)
    if user is not None:
        for root, dirs, files in os.walk(scratch):
            for name in (*dirs, *files):
                os.lchown(os.path.join(root, name), user.uid, user.gid)
        os.chown(scratch, user.uid, user.gid)


def write_machine_ad(scratch: Path, hostname: str, slot: int, slots: int) -> Path:
    """``.machine.ad``: the slot's ad as the starter writes it (the few attributes jobs read)."""
    import classad2

    ad = classad2.ClassAd()
    ad["Machine"] = hostname
    ad["Name"] = f"slot{slot}@{hostname}"
    ad["SlotID"] = slot
    ad["Cpus"] = 1
    ad["TotalSlots"] = slots
    ad["OpSys"] = "LINUX"
    path = scratch / ".machine.ad"
    path.write_text(ad.printOld())
    return path


def environment(ad: Mapping[str, Any], scratch: Path, slot: int, relay_env: Mapping[str, str]) -> dict[str, str]:
    """The job's environment: ``getenv``, ``environment``, then HTCondor's own variables."""
    env: dict[str, str] = dict(relay_env) if ad.get("GetEnv") is True else {}
    env.update(split_environment(str(ad.get("Environment", "") or "")))
    cpus = ad.get("RequestCpus", 1)
    cpus = cpus if isinstance(cpus, int) and not isinstance(cpus, bool) and cpus > 0 else 1
    for name in THREAD_VARIABLES:
        env[name] = str(cpus)
    tmp = str(scratch / "tmp")
    env.update({
        "BATCH_SYSTEM": "HTCondor",
        "TMPDIR": tmp, "TMP": tmp, "TEMP": tmp,
        "APPTAINER_CACHEDIR": str(scratch), "SINGULARITY_CACHEDIR": str(scratch),
        "_CONDOR_SCRATCH_DIR": str(scratch),
        "_CONDOR_JOB_IWD": str(scratch),
        "_CONDOR_JOB_AD": str(scratch / ".job.ad"),
        "_CONDOR_MACHINE_AD": str(scratch / ".machine.ad"),
        "_CONDOR_SLOT": f"slot{slot}",
        "_CONDOR_JOB_PIDS": "",
        "_CHIRP_DELAYED_UPDATE_PREFIX": "Chirp*",
    })
    return env
