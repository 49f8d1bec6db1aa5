"""The daemon against a minimal relay over real TLS: register, poll, ops, heartbeat,
re-register after a relay restart, finish. Run with the oldest and newest interpreter."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from jmtest.waiting import wait_for as _wait_for

PAYLOAD = ("echo started; echo 'Processed event 5 of 10'; echo err-line >&2; "
           "while [ ! -e stop ]; do sleep 0.05; done; exit 3")


@pytest.fixture
def sandbox(tmp_path: Path) -> Path:
    box = tmp_path / "scratch"
    box.mkdir()
    (box / "input.txt").write_text("hello\n")
    return box


def test_protocol_end_to_end(python_ends: str, wrapper_pyz: Path, fake_relay: Any,
                             relay_env: dict[str, str], sandbox: Path) -> None:
    env = dict(relay_env, JOBMON_RELAY_URL=fake_relay.url,
               JOBMON_PROGRESS_REGEX=r"Processed event (\d+) of (\d+)")
    with open(sandbox / "_condor_stdout", "wb") as out, \
            open(sandbox / "_condor_stderr", "wb") as err:
        proc = subprocess.Popen([python_ends, str(wrapper_pyz), "--", "sh", "-c", PAYLOAD],
                                cwd=str(sandbox), env=env, stdout=out, stderr=err)
    try:
        assert fake_relay.registered.wait(30)
        info = fake_relay.registers[0]
        assert info["job"] == "42.0" and info["wrapper_pid"] == proc.pid
        assert os.path.realpath(info["sandbox"]) == os.path.realpath(sandbox)
        assert info["argv"] == ["sh", "-c", PAYLOAD]
        assert set(info["capabilities"]) >= {"exec", "read", "list", "stat", "ps"}
        assert isinstance(info["pid"], int) and info["pid"] != proc.pid
        version = subprocess.run([python_ends, "-c", "import sys; print(sys.version.split()[0])"],
                                 stdout=subprocess.PIPE, check=True).stdout.decode().strip()
        assert info["python"] == version

        r = fake_relay.request("42.0", "exec", {"argv": ["sh", "-c", "echo hi; cat input.txt"]})
        assert r["exit_code"] == 0 and r["stdout"].data == b"hi\nhello\n"
        assert r["truncated"] is False and r["timed_out"] is False

        r = fake_relay.request("42.0", "read", {"path": "@stdout", "offset": 0.0, "wait": 20.0})
        assert r["data"].data.startswith(b"started\n")
        r = fake_relay.request("42.0", "read", {"path": "@stderr", "wait": 20.0})
        assert b"err-line\n" in r["data"].data

        r = fake_relay.request("42.0", "list", {"path": "."})
        names = {e["name"] for e in r["entries"]}
        assert {"input.txt", "_condor_stdout", "_condor_stderr"} <= names
        r = fake_relay.request("42.0", "stat", {"path": "input.txt"})
        assert r["type"] == "file" and r["size"] == 6.0

        r = fake_relay.request("42.0", "ps")
        pids = {p["pid"] for p in r["processes"]}
        assert proc.pid in pids and info["pid"] in pids

        r = fake_relay.request("42.0", "read", {"path": "../../etc/passwd"})
        assert r["fault"] == 600

        hb = _wait_for(lambda: [h for h in fake_relay.heartbeats
                                if h.get("progress", {}).get("done") == 5.0])
        assert hb[0]["progress"]["total"] == 10.0
        assert hb[0]["resources"]["nprocs"] >= 1

        # A relay restart: every session is unknown; the daemon registers again.
        fake_relay.forget_sessions()
        assert fake_relay.registered.wait(30)
        assert len(fake_relay.registers) == 2
        r = fake_relay.request("42.0", "exec", {"argv": ["echo", "again"]})
        assert r["stdout"].data == b"again\n"

        (sandbox / "stop").touch()
        assert proc.wait(timeout=30) == 3
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert fake_relay.finished.is_set()
    final = fake_relay.finals[0]
    assert final["exit_code"] == 3 and "signal" not in final
    assert final["wall_time"] > 0 and final["end_time"] > info["start_time"]
    assert final["max_rss_kb"] > 0 and "cpu_user" in final and "cpu_sys" in final
    assert final["progress"]["done"] == 5.0
    # every call carried the per-job credential
    assert all(auth and auth.startswith("Basic ") for _m, _p, auth in fake_relay.calls)
    assert (sandbox / "_condor_stdout").read_bytes().startswith(
        b"started\nProcessed event 5 of 10\n")


def test_signalled_payload_reports_signal(wrapper_pyz: Path, fake_relay: Any,
                                          relay_env: dict[str, str], sandbox: Path) -> None:
    env = dict(relay_env, JOBMON_RELAY_URL=fake_relay.url)
    proc = subprocess.Popen(
        ["python3", str(wrapper_pyz), "--", "sh", "-c",
         "while [ ! -e stop ]; do sleep 0.05; done; kill -USR1 $$"],
        cwd=str(sandbox), env=env, stderr=subprocess.DEVNULL)
    try:
        assert fake_relay.registered.wait(30)
        (sandbox / "stop").touch()
        assert proc.wait(timeout=30) == -signal.SIGUSR1
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert fake_relay.finals and fake_relay.finals[0]["signal"] == signal.SIGUSR1
    assert "exit_code" not in fake_relay.finals[0]


def test_proxy_certificate_and_ca_directory(wrapper_pyz: Path, fake_relay: Any,
                                            relay_env: dict[str, str], pki: Any,
                                            sandbox: Path) -> None:
    env = {k: v for k, v in relay_env.items() if k != "JOBMON_CA_FILE"}
    env.update(JOBMON_RELAY_URL=fake_relay.url, X509_CERT_DIR=str(pki.ca_dir),
               X509_USER_PROXY=str(pki.alice.proxy_path))
    proc = subprocess.Popen(["python3", str(wrapper_pyz), "--", "sh", "-c",
                             "while [ ! -e stop ]; do sleep 0.05; done"],
                            cwd=str(sandbox), env=env, stderr=subprocess.DEVNULL)
    try:
        assert fake_relay.registered.wait(30)
        assert fake_relay.peers and fake_relay.peers[0]["commonName"] == "Alice Smith"
        (sandbox / "stop").touch()
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_relay_restart_mid_command_leaves_payload_alone(wrapper_pyz: Path, fake_relay: Any,
                                                        relay_env: dict[str, str],
                                                        sandbox: Path) -> None:
    env = dict(relay_env, JOBMON_RELAY_URL=fake_relay.url)
    payload = "echo payload-out; while [ ! -e stop ]; do sleep 0.05; done; echo done; exit 9"
    proc = subprocess.Popen(["python3", str(wrapper_pyz), "--", "sh", "-c", payload],
                            cwd=str(sandbox), env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL)
    try:
        assert fake_relay.registered.wait(30)
        rid = fake_relay.submit("42.0", "exec", {
            "argv": ["sh", "-c", "touch cmd-started; while [ ! -e go ]; do sleep 0.05; done"]})
        _wait_for(lambda: (sandbox / "cmd-started").exists())
        fake_relay.forget_sessions()          # the relay "restarts" while the command runs
        (sandbox / "go").touch()
        assert fake_relay.registered.wait(30)  # the daemon registered again
        assert len(fake_relay.registers) == 2
        assert rid not in fake_relay.results   # the old session's result was refused
        (sandbox / "stop").touch()
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 9 and out == b"payload-out\ndone\n"


def test_renewed_proxy_is_picked_up(pki: Any, tmp_path: Path) -> None:
    from jobmon_wrapper.transport import ContextSource

    proxy = tmp_path / "x509up"
    proxy.write_bytes(pki.alice.proxy_path.read_bytes())
    source = ContextSource(str(pki.ca_file), None, str(proxy), str(proxy))
    first = source.get()
    assert source.get() is first
    proxy.write_bytes(pki.bob.proxy_path.read_bytes())
    os.utime(proxy, (time.time() + 5, time.time() + 5))
    assert source.get() is not first


def test_big_results_fit_the_relays_body_cap(wrapper_pyz: Path, fake_relay: Any,
                                             relay_env: dict[str, str], sandbox: Path) -> None:
    (sandbox / "big.bin").write_bytes(b"B" * (1 << 20))
    env = dict(relay_env, JOBMON_RELAY_URL=fake_relay.url)
    proc = subprocess.Popen(["python3", str(wrapper_pyz), "--", "sh", "-c",
                             "while [ ! -e stop ]; do sleep 0.05; done"],
                            cwd=str(sandbox), env=env, stderr=subprocess.DEVNULL)
    try:
        assert fake_relay.registered.wait(30)
        r = fake_relay.request("42.0", "exec", {"argv": ["head", "-c", "3000000", "/dev/zero"]})
        assert r["exit_code"] == 0 and r["truncated"] is True
        assert 300000 < len(r["stdout"].data) < (1 << 20)
        r = fake_relay.request("42.0", "read", {"path": "big.bin", "length": float(1 << 20)})
        got = len(r["data"].data)
        assert 0 < got < (1 << 20) and r["next_offset"] == float(got) and r["eof"] is False
        (sandbox / "stop").touch()
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_short_payload_still_reports_its_end(wrapper_pyz: Path, fake_relay: Any,
                                             relay_env: dict[str, str], sandbox: Path) -> None:
    env = dict(relay_env, JOBMON_RELAY_URL=fake_relay.url)
    r = subprocess.run(["python3", str(wrapper_pyz), "--", "sh", "-c", "echo quick; exit 7"],
                       cwd=str(sandbox), env=env, stdout=subprocess.PIPE, timeout=60)
    assert r.returncode == 7 and r.stdout == b"quick\n"
    assert fake_relay.finals and fake_relay.finals[0]["exit_code"] == 7
