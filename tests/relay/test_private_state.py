"""The relay's state is private (umask 077, state dir 0700) while LocalPool jobs keep umask 022."""

from __future__ import annotations

import logging
import os
import signal
import ssl
import stat
import subprocess
import sys
import threading
import xmlrpc.client
from pathlib import Path
from typing import Any

from relay.statedir import secure_state_dir

ROOT = Path(__file__).parents[2]


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_secure_state_dir_creates_0700_and_narrows_an_open_one(tmp_path: Path, caplog: Any) -> None:
    fresh = secure_state_dir(tmp_path / "a" / "state")
    assert _mode(fresh) == 0o700
    old = tmp_path / "old"
    old.mkdir()
    os.chmod(old, 0o755)
    with caplog.at_level(logging.WARNING, logger="relay.statedir"):
        secure_state_dir(old)
        secure_state_dir(old)
    assert _mode(old) == 0o700
    warnings = [r for r in caplog.records if "made it 0700" in r.getMessage()]
    assert len(warnings) == 1 and str(old) in warnings[0].getMessage()


def test_shepherd_gives_jobs_umask_022_under_a_077_parent(tmp_path: Path) -> None:
    status = tmp_path / "status.json"
    script = "umask > umask.txt; echo data > made.txt"
    cmd = [sys.executable, "-m", "jobmon.pools.local_shepherd", str(status), "/dev/null", str(tmp_path / "out"),
           str(tmp_path / "err"), "--", "/bin/sh", "-c", script]

    def strict_umask() -> None:
        os.umask(0o077)

    subprocess.run(cmd, cwd=tmp_path, check=True, timeout=60, preexec_fn=strict_umask)
    assert (tmp_path / "umask.txt").read_text().strip() == "0022"
    assert _mode(tmp_path / "made.txt") == 0o644
    assert _mode(tmp_path / "out") == 0o644  # the job's stdout in its sandbox


def test_relay_process_files_are_private_and_job_outputs_normal(pki: Any, tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    os.chmod(state, 0o755)
    iwd = tmp_path / "iwd"
    iwd.mkdir()
    cmd = [sys.executable, "-m", "relay", "--listen", "127.0.0.1:0", "--state-dir", str(state),
           "--host-cert", str(pki.host.cert_path), "--host-key", str(pki.host.key_path),
           "--ca-file", str(pki.ca_file), "--submit-root", str(tmp_path)]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    lines: list[str] = []
    assert proc.stderr is not None
    port = 0
    for line in proc.stderr:
        lines.append(line)
        if "serving https://127.0.0.1:" in line:
            port = int(line.split("serving https://127.0.0.1:", 1)[1].split("/", 1)[0])
            break
    assert port, "relay did not start:\n" + "".join(lines)
    threading.Thread(target=lambda: lines.extend(proc.stderr or ()), daemon=True).start()
    try:
        ctx = ssl.create_default_context(cafile=str(pki.ca_file))
        ctx.load_cert_chain(str(pki.alice.cert_path), str(pki.alice.key_path))
        alice = xmlrpc.client.ServerProxy(f"https://127.0.0.1:{port}/clarens", context=ctx)
        sub = alice.jobmon.submit(
            "executable = /bin/sh\n"
            "arguments = \"-c 'umask > umask.txt; echo data > made.txt; echo out'\"\n"
            f"environment = \"JOBMON_CA_FILE={pki.ca_file}\"\n"
            "output = out.txt\nlog = job.log\nqueue\n", {"iwd": str(iwd)})
        job = f"{sub['cluster']}.0"
        pause = threading.Event()
        for _ in range(1200):  # until the pool has seen the end and returned the files
            if alice.jobmon.status(job).get("state") == "finished" and (iwd / "made.txt").exists() \
                    and (iwd / "out.txt").exists():
                break
            pause.wait(0.05)
        assert alice.jobmon.status(job)["state"] == "finished"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert _mode(state) == 0o700
    assert sum("made it 0700" in line for line in lines) == 1
    private = [p for p in state.rglob("*") if p.name.endswith((".sqlite", ".sqlite-wal", ".sqlite-shm"))
               or p.name == "relay.key"]
    names = {p.name for p in private}
    assert {"audit.sqlite", "credentials.sqlite", "jobs.sqlite", "relay.key"} <= names, names
    for path in private:
        assert _mode(path) & 0o077 == 0, f"{path} is {oct(_mode(path))}"
    assert (iwd / "umask.txt").read_text().strip() == "0022"  # the job did not inherit the relay's 077
    assert _mode(iwd / "made.txt") == 0o644
    assert _mode(iwd / "out.txt") == 0o644  # stdout copied back keeps the job's mode, not the relay's umask
    assert _mode(iwd / "job.log") == 0o644  # the user log is readable as HTCondor's are
