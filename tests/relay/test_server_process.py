"""The relay as a real process: logs its address and config, stops cleanly on SIGTERM."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import xmlrpc.client
from pathlib import Path
from typing import Any

import pytest


def start(pki: Any, state: Path, *extra: str) -> tuple[subprocess.Popen[str], int, list[str]]:
    cmd = [sys.executable, "-m", "relay", "--listen", "127.0.0.1:0", "--state-dir", str(state),
           "--host-cert", str(pki.host.cert_path), "--host-key", str(pki.host.key_path),
           "--ca-file", str(pki.ca_file), "--pool", "none", *extra]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, cwd=Path(__file__).parents[2])
    lines: list[str] = []
    assert proc.stderr is not None
    for line in proc.stderr:
        lines.append(line)
        m = re.search(r"serving https://127\.0\.0\.1:(\d+)/clarens", line)
        if m:
            port = int(m.group(1))
            break
    else:
        pytest.fail("relay did not start:\n" + "".join(lines))
    rest = threading.Thread(target=lambda: lines.extend(proc.stderr or ()), daemon=True)
    rest.start()
    return proc, port, lines


def client(pki: Any, port: int, cred: Any = None, basic: str = "") -> Any:
    import ssl

    ctx = ssl.create_default_context(cafile=str(pki.ca_file))
    if cred is not None:
        ctx.load_cert_chain(str(cred.cert_path), str(cred.key_path))
    return xmlrpc.client.ServerProxy(f"https://{basic}127.0.0.1:{port}/clarens", context=ctx)


def test_sigterm_answers_polls_and_flushes_audit(pki: Any, tmp_path: Path) -> None:
    proc, port, lines = start(pki, tmp_path / "state", "--poll-wait", "120", "--log-level", "DEBUG")
    try:
        assert any("effective configuration" in line and '"max_body_bytes": 1048576' in line for line in lines)
        alice = client(pki, port, pki.alice)
        token = alice.jobmon.issueCredential({})["token"]
        daemon = client(pki, port, basic=f"jobmon-job:{token}@")
        session = daemon.jobmon.register({"job": "77.0", "host": "h"})["session"]
        answered: list[Any] = []
        t = threading.Thread(target=lambda: answered.append(daemon.jobmon.poll(session, 120.0)))
        t.start()
        # wait until the relay says it holds the poll open
        pause = threading.Event()
        while not any("holding the long-poll of job 77.0" in line for line in lines):
            pause.wait(0.05)
        assert alice.jobmon.status("77.0")["connected"] is True
        proc.send_signal(signal.SIGTERM)
        t.join(60)
        assert answered == [[]]
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert any("relay stopped" in line for line in lines)
    db = sqlite3.connect(str(tmp_path / "state" / "audit.sqlite"))
    methods = {row[0] for row in db.execute("SELECT method FROM audit")}
    assert {"jobmon.issueCredential", "jobmon.register"} <= methods
    assert oct(os.stat(tmp_path / "state" / "relay.key").st_mode & 0o777) == "0o600"


def test_bad_config_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "relay.toml"
    bad.write_text('listen = "nowhere"\n')
    res = subprocess.run([sys.executable, "-m", "relay", "--config", str(bad), "--pool", "none"],
                         capture_output=True, text=True, cwd=Path(__file__).parents[2], timeout=60)
    assert res.returncode == 2 and "listen must be HOST:PORT" in res.stderr and "Traceback" not in res.stderr
