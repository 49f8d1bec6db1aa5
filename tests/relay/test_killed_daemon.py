"""A wrapper killed with SIGKILL: the relay notices its poll connection close and, after the
reconnect allowance, answers commands for that job at once with 501 instead of letting them wait
out their timeout (live-pool review finding)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import xmlrpc.client
from pathlib import Path
from typing import Any

ROOT = Path(__file__).parents[2]
ALLOWANCE = 2.0


def _start_wrapper(relay: Any, alice: Any, pki: Any, tmp_path: Path, job: str) -> subprocess.Popen[bytes]:
    token = alice.jobmon.issueCredential({"cluster": int(job.split(".")[0])})["token"]
    sandbox = tmp_path / f"sandbox-{job}"
    sandbox.mkdir()
    cred = sandbox / "jobmon.cred"
    cred.write_text(token)
    cred.chmod(0o600)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("X509_USER_PROXY", None)
    return subprocess.Popen(
        [sys.executable, "-m", "jobmon_wrapper", "--relay", relay.url, "--job-id", job,
         "--ca-file", str(pki.ca_file), "--", "/bin/sh", "-c", "exec sleep 300"],
        cwd=sandbox, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def _fault(fn: Any, *args: Any) -> tuple[int, float]:
    start = time.monotonic()
    try:
        fn(*args)
    except xmlrpc.client.Fault as f:
        return f.faultCode, time.monotonic() - start
    raise AssertionError("no fault")


def test_sigkilled_wrapper_fails_commands_at_once(relay_factory: Any, fake_pool: Any, pki: Any,
                                                  tmp_path: Path) -> None:
    relay = relay_factory(reconnect_allowance=ALLOWANCE, command_timeout=120.0, poll_wait=30.0)
    fake_pool.add(31, 0, owner_dn=pki.alice.dn)
    alice = relay.client(pki.alice)
    proc = _start_wrapper(relay, alice, pki, tmp_path, "31.0")
    payload = 0
    try:
        deadline = time.monotonic() + 30
        while not alice.jobmon.status("31.0").get("connected"):
            assert time.monotonic() < deadline, "the wrapper never connected"
            time.sleep(0.05)
        assert alice.jobmon.exec("31.0", ["true"], {"timeout": 20})["exit_code"] == 0
        payload = int(relay.core.registry.by_job["31.0"].info["pid"])  # in a process group of its own
        os.killpg(proc.pid, signal.SIGKILL)  # the wrapper and its daemon threads; the payload has its own group
        proc.wait(10)
        # a command sent right after the kill waits at most the allowance, not its 120 s timeout
        code, took = _fault(alice.jobmon.exec, "31.0", ["true"], {"timeout": 120})
        assert code == 501 and took < ALLOWANCE + 5, (code, took)
        # after that: at once, and the job shows disconnected
        code, took = _fault(alice.jobmon.exec, "31.0", ["true"], {"timeout": 120})
        assert code == 501 and took < 2.0, (code, took)
        assert alice.jobmon.status("31.0")["connected"] is False
    finally:
        for pgid in (proc.pid, payload):
            try:
                if pgid:
                    os.killpg(pgid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        proc.wait(10)
