"""The whole path on a live HTCondor pool (``make test-condor``; INSTALL.md section 8).

Needs ``CONDOR_CONFIG`` pointing at a personal pool (master, collector,
negotiator, schedd, startd on 127.0.0.1) where the test user may submit and
drain the startd. Without one, this module is skipped with the reason.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.condor, pytest.mark.slow]


def _pool_problem() -> str | None:
    cfg = os.environ.get("CONDOR_CONFIG")
    if not cfg:
        return "no live HTCondor pool: CONDOR_CONFIG is not set (see INSTALL.md, `make test-condor`)"
    if cfg != "ONLY_ENV" and not os.path.exists(cfg):
        return f"no live HTCondor pool: CONDOR_CONFIG={cfg} does not exist"
    import htcondor2

    try:
        htcondor2.Collector().locate(htcondor2.DaemonType.Schedd)
    except (htcondor2.HTCondorException, OSError, ValueError) as e:
        return f"no live HTCondor pool: no schedd found through the collector ({e})"
    return None


_PROBLEM = _pool_problem()
if _PROBLEM:
    pytest.skip(_PROBLEM, allow_module_level=True)

import htcondor2  # noqa: E402

from jobmon.jobstate import exit_of  # noqa: E402
from jobmon.pools.base import JobAction, NodeAction  # noqa: E402
from jobmon.pools.condor import CondorPool  # noqa: E402

JOBMON = [sys.executable, "-m", "jobmon.cli.main"]
DEADLINE = 300.0

JOB_SH = """#!/bin/sh
echo "argv: $*"
i=0
while [ $i -lt "$RUNTIME" ]; do echo "tick $i"; i=$((i+1)); sleep 1; done
case "$MODE" in
  exit3) echo "failing" >&2; exit 3 ;;
  segv) kill -SEGV $$ ;;
esac
exit 0
"""

SUB = """universe = vanilla
executable = job.sh
arguments = "--label 'hello world'"
environment = "MODE={mode} RUNTIME={runtime}"
should_transfer_files = YES
when_to_transfer_output = ON_EXIT
output = {tag}.$(Cluster).out
error = {tag}.$(Cluster).err
log = {tag}.log
request_cpus = 1
request_memory = 64M
request_disk = 10M
queue
"""


def wait_for(what: str, check: Any, timeout: float = DEADLINE, every: float = 1.0) -> Any:
    """Poll the live pool (no event to await across HTCondor daemons) until ``check()`` is truthy."""
    end = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(every)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("live")
    (d / "job.sh").write_text(JOB_SH)
    (d / "job.sh").chmod(0o755)
    return d


@pytest.fixture(scope="module")
def env(workdir: Path) -> dict[str, str]:
    e = dict(os.environ)
    e["JOBMON_STATE_DIR"] = str(workdir / "state")
    e.pop("JOBMON_RELAY_URL", None)
    return e


@pytest.fixture(scope="module")
def relay(env: dict[str, str], workdir: Path) -> Iterator[str]:
    proc = subprocess.Popen([*JOBMON, "relay", "--pool", "condor", "--listen", "127.0.0.1:0"],
                            env=env, cwd=str(workdir), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()  # "jobmon relay: serving URL with the condor pool (...)"
    assert "serving" in line, line
    try:
        yield line.split()[3]
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def jm(env: dict[str, str], cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    res = subprocess.run([*JOBMON, *args], env=env, cwd=str(cwd), capture_output=True, text=True, timeout=120)
    if check:
        assert res.returncode == 0, f"jobmon {' '.join(args)}: rc {res.returncode}\n{res.stdout}\n{res.stderr}"
    return res


def final_ad(pool: CondorPool, cluster: int) -> Any:
    def gone() -> Any:
        if pool.query(f"ClusterId == {cluster}", ["JobStatus"]):
            return None
        ads = pool.history(f"ClusterId == {cluster}", [], 1)
        return ads[0] if ads else None

    return wait_for(f"cluster {cluster} in the history", gone)


def submit_unwrapped(workdir: Path, mode: str, runtime: int) -> int:
    sub = htcondor2.Submit(SUB.format(mode=mode, runtime=runtime, tag=f"plain-{mode}"))
    sub["initialdir"] = str(workdir)
    return int(htcondor2.Schedd().submit(sub).cluster())


def submit_wrapped(env: dict[str, str], workdir: Path, mode: str, runtime: int) -> int:
    path = workdir / f"wrapped-{mode}.sub"
    path.write_text(SUB.format(mode=mode, runtime=runtime, tag=f"wrapped-{mode}"))
    out = jm(env, workdir, "submit", str(path), "--pool", "condor").stdout
    # "1 job(s) submitted to cluster N."
    return int(out.strip().rstrip(".").split()[-1])


def status(env: dict[str, str], workdir: Path, job: str) -> dict[str, Any]:
    res = jm(env, workdir, "status", job, "--json", check=False)
    if res.returncode != 0:
        return {}
    data = json.loads(res.stdout)
    return data[0] if isinstance(data, list) else data


def test_wrapped_job_exec_tail_ps_drain(relay: str, env: dict[str, str], workdir: Path) -> None:
    pool = CondorPool()
    cluster = submit_wrapped(env, workdir, "exit0", 90)
    job = f"{cluster}.0"
    wait_for(f"{job} running with its daemon connected",
             lambda: (lambda s: s.get("state") == "running" and s.get("connected"))(status(env, workdir, job)))

    out = jm(env, workdir, "exec", job, "--", "echo", "hello from the sandbox").stdout
    assert "hello from the sandbox" in out
    assert "tick" in wait_for("ticks in stdout", lambda: jm(env, workdir, "tail", "-n", "5", job).stdout)
    assert "job.sh" in jm(env, workdir, "ps", job).stdout

    (ad,) = pool.query(f"ClusterId == {cluster}", ["RemoteHost", "JobMonEnabled", "JobMonRelay"])
    assert ad.get("JobMonEnabled") is True
    node = str(ad["RemoteHost"]).rpartition("@")[2]
    msg = jm(env, workdir, "nodes", "drain", node).stdout
    assert "draining" in msg or "drain" in msg.lower()
    wait_for(f"{node} draining", lambda: any(n.name == node and n.draining for n in pool.nodes()), timeout=60)
    jm(env, workdir, "nodes", "undrain", node)
    wait_for(f"{node} back up", lambda: any(n.name == node and n.state == "up" for n in pool.nodes()), timeout=60)
    pool.act(JobAction.REMOVE, f"ClusterId == {cluster}", "live test done")


@pytest.mark.parametrize("mode", ["exit0", "exit3", "segv"])
def test_exit_status_same_as_unwrapped(relay: str, env: dict[str, str], workdir: Path, mode: str) -> None:
    pool = CondorPool()
    plain = submit_unwrapped(workdir, mode, 3)
    wrapped = submit_wrapped(env, workdir, mode, 3)
    a, b = final_ad(pool, plain), final_ad(pool, wrapped)
    assert a["JobStatus"] == b["JobStatus"] == 4
    assert exit_of(a) == exit_of(b)
    assert a.get("ExitBySignal") == b.get("ExitBySignal")
    assert ("ExitCode" in a) == ("ExitCode" in b)
    expected = {"exit0": (0, None), "exit3": (3, None), "segv": (None, 11)}[mode]
    assert exit_of(b) == expected


def test_node_actions_through_the_pool(relay: str) -> None:
    pool = CondorPool()
    nodes = pool.nodes()
    assert nodes, "the pool has no execute node"
    node = nodes[0].name
    message = pool.node_action(node, NodeAction.DRAIN)
    assert node in message
    wait_for("drain visible", lambda: any(n.name == node and n.draining for n in pool.nodes()), timeout=60)
    pool.node_action(node, NodeAction.UNDRAIN)
    wait_for("undrain visible", lambda: any(n.name == node and not n.draining for n in pool.nodes()), timeout=60)
