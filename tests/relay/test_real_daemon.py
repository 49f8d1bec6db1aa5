"""The real worker-side wrapper and daemon (jobmon_wrapper) against a real relay."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

ROOT = Path(__file__).parents[2]


def test_wrapper_daemon_round_trip(relay: Any, fake_pool: Any, pki: Any, tmp_path: Path) -> None:
    fake_pool.add(21, 0, owner_dn=pki.alice.dn)
    alice = relay.client(pki.alice)
    token = alice.jobmon.issueCredential({"cluster": 21})["token"]
    sandbox = tmp_path / "sandbox"
    sandbox.mkdir()
    cred = sandbox / "jobmon.cred"
    cred.write_text(token)
    cred.chmod(0o600)
    payload = "echo started; while [ ! -e stop ]; do sleep 0.05; done; echo leaving; exit 3"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("X509_USER_PROXY", None)
    out_path, err_path = sandbox / "_condor_stdout", sandbox / "_condor_stderr"
    with open(out_path, "w") as out_f, open(err_path, "w") as err_f:  # files, as the starter gives them
        proc = subprocess.Popen(
            [sys.executable, "-m", "jobmon_wrapper", "--relay", relay.url, "--job-id", "21.0",
             "--ca-file", str(pki.ca_file), "--", "/bin/sh", "-c", payload],
            cwd=sandbox, env=env, stdout=out_f, stderr=err_f, start_new_session=True)
    try:
        pause = threading.Event()
        for _ in range(400):
            if alice.jobmon.status("21.0").get("connected"):
                break
            pause.wait(0.05)
        assert alice.jobmon.status("21.0")["connected"] is True
        res = alice.jobmon.exec("21.0", ["echo", "hello world"], {"timeout": 20})
        assert res["exit_code"] == 0 and res["stdout"].data == b"hello world\n"
        head = alice.jobmon.read("21.0", "@stdout", 0.0, 1000.0, 10.0)
        assert head["data"].data.startswith(b"started")
        names = [e["name"] for e in alice.jobmon.listdir("21.0", ".")["entries"]]
        assert "jobmon.cred" in names
        code = None
        try:
            alice.jobmon.stat("21.0", "../../etc/passwd")
        except Exception as exc:  # noqa: BLE001 - xmlrpc.client.Fault
            code = getattr(exc, "faultCode", None)
        assert code == 600
        alice.jobmon.exec("21.0", ["touch", "stop"], {"timeout": 20})
        assert proc.wait(60) == 3, err_path.read_text()
        assert out_path.read_text() == "started\nleaving\n"

        status = alice.jobmon.status("21.0")
        assert status["connected"] is False and status["exit_code"] == 3 and status["state"] == "finished"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
