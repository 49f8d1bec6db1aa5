"""Attach mode: ``jobmon-daemon --jobname NAME --serverURL URL`` serves the current directory."""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any


def test_attach_serves_cwd_and_finishes_on_term(wrapper_pyz: Path, fake_relay: Any,
                                                relay_env: dict[str, str], pki: Any,
                                                tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / "notes.txt").write_text("attached\n")
    cred = relay_env["JOBMON_CREDENTIAL_FILE"]
    env = {k: v for k, v in relay_env.items() if not k.startswith("JOBMON_")}
    proc = subprocess.Popen(["python3", str(wrapper_pyz), "--attach", "--jobname", "my-task",
                             "--serverURL", fake_relay.url, "--cafile", str(pki.ca_file),
                             "--credential", cred], cwd=str(work), env=env)
    try:
        assert fake_relay.registered.wait(30)
        assert fake_relay.registers[0]["job"] == "my-task"
        r = fake_relay.request("my-task", "read", {"path": "notes.txt"})
        assert r["data"].data == b"attached\n"
        listing = subprocess.run(
            ["python3", str(wrapper_pyz), "--attach", "--joblist", "--serverURL", fake_relay.url,
             "--cafile", str(pki.ca_file), "--credential", cred],
            stdout=subprocess.PIPE, env=env, timeout=60, check=True).stdout.decode()
        assert "my-task" in listing and "connected" in listing
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert fake_relay.finished.is_set() and fake_relay.finals[0]["exit_code"] == 0


def test_attach_refuses_an_untrusted_relay(wrapper_pyz: Path, fake_relay: Any,
                                           relay_env: dict[str, str], pki: Any) -> None:
    env = {k: v for k, v in relay_env.items() if not k.startswith("JOBMON_")}
    r = subprocess.run(["python3", str(wrapper_pyz), "--attach", "--joblist", "--serverURL",
                        fake_relay.url, "--cafile", str(pki.foreign_ca_file)],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, timeout=60)
    assert r.returncode != 0
    assert b"CERTIFICATE_VERIFY_FAILED" in r.stderr or b"certificate verify failed" in r.stderr
    assert fake_relay.calls == []


def test_attach_keeps_diagnostics_off_the_jobs_stderr(wrapper_pyz: Path,
                                                      relay_env: dict[str, str], pki: Any,
                                                      tmp_path: Path) -> None:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    url = f"https://127.0.0.1:{s.getsockname()[1]}/clarens"
    s.close()                                   # nobody listens there
    work = tmp_path / "work"
    work.mkdir()
    env = {k: v for k, v in relay_env.items() if not k.startswith("JOBMON_")}
    proc = subprocess.Popen(["python3", str(wrapper_pyz), "--attach", "--jobname", "t",
                             "--serverURL", url, "--cafile", str(pki.ca_file),
                             "--credential", relay_env["JOBMON_CREDENTIAL_FILE"]],
                            cwd=str(work), env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    log = work / ".jobmon" / "daemon.log"
    try:
        deadline = time.time() + 30
        while not (log.exists() and b"not reachable" in log.read_bytes()):
            assert time.time() < deadline, "no diagnostic in .jobmon/daemon.log"
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0 and out == b"" and err == b""
    assert not (work / ".jobmon").exists()
