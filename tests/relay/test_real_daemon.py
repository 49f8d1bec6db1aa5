"""The real worker-side wrapper and daemon (jobmon_wrapper) against a real relay."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

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


# -- the 2005 JobMon daemon's wire protocol (jmtest/legacy_daemon2005.py), under 2.7 and 3.x --------

LEGACY_TCP = {"enabled": True, "tcp_listen": "127.0.0.1:0", "reconnect_time": 30}


def _interpreter(which: str) -> str:
    from jmtest.legacy import python27

    return python27() if which == "2.7" else sys.executable


def _sandbox(tmp_path: Path) -> Path:
    sandbox = tmp_path / "sandbox"
    sandbox.mkdir()
    (sandbox / "data.txt").write_text("first line\nlast line\n")
    (sandbox / "bin.dat").write_bytes(b"a\xff\x01b&<>\r\n\x00z")
    return sandbox


def _jobmon_legacy_form(relay: Any, pki: Any, *args: str) -> subprocess.CompletedProcess[str]:
    from jmtest.relay import jobmon_command, test_env

    return subprocess.run(
        [*jobmon_command(), "--serverURL", relay.url, *args, "--certfile", str(pki.alice.cert_path),
         "--keyfile", str(pki.alice.key_path), "--ca-file", str(pki.ca_file)],
        capture_output=True, text=True, timeout=60, env=test_env(), stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("which", ["2.7", "3"])
def test_legacy_2005_daemon_over_tcp_wakeups(which: str, relay_factory: Any, fake_pool: Any, pki: Any,
                                             tmp_path: Path) -> None:
    """Register, TCP wake-up, getJobToDo, outputJobResult, unregister on SIGTERM; auth2 and
    logout around every exchange; the six commands; what the relay refuses; the 2005 user form."""
    import ssl
    import urllib.request

    from jmtest.legacy import LegacyDaemon
    from jmtest.waiting import wait_for

    fake_pool.add(51, 0, owner_dn=pki.alice.dn)
    relay = relay_factory(legacy=LEGACY_TCP)
    sandbox = _sandbox(tmp_path)
    url = relay.url.replace("127.0.0.1", "localhost")  # Python 2.7 checks host names by DNS name only
    daemon = LegacyDaemon(_interpreter(which), url, pki.alice_proxy, pki.ca_file, "51.0", sandbox)
    try:
        assert "JobMon_wakeup_method=TCPbroadcast" in daemon.wait_line("REGISTERED")
        daemon.wait_line("LISTENING TCPbroadcast")
        alice = relay.client(pki.alice)
        wait_for(lambda: alice.jobmon.status("51.0").get("connected"), what="the legacy daemon")
        assert alice.jobmon.status("51.0")["daemon"] == "legacy"

        def run(*argv: str) -> bytes:
            res = alice.jobmon.exec("51.0", list(argv), {"timeout": 20})
            assert res["exit_code"] == 0 and res["stderr"].data == b"", res
            return bytes(res["stdout"].data)

        assert b"data.txt" in run("ls", "-l") and run("ls", "-l").startswith(b"total ")
        assert run("cat", "data.txt") == b"first line\nlast line\n"
        assert run("tail", "-n", "1", "data.txt") == b"last line\n"
        assert run("head", "-c", "5", "data.txt") == b"first"
        assert run("du", "-s", "data.txt").split(b"\t")[1] == b"data.txt\n"
        assert b"PID" in run("ps")
        assert run("cat", "bin.dat") == b"a\xff\x01b&<>\r\n\x00z"       # raw bytes, byte for byte
        out = run("cat", "data.txt; touch pwned", "$(touch pwned)")
        assert b"data.txt; touch pwned" in out and not (sandbox / "pwned").exists()
        code = None
        try:
            alice.jobmon.exec("51.0", ["rm", "data.txt"], {"timeout": 20})
        except Exception as exc:  # noqa: BLE001 - xmlrpc.client.Fault
            code = getattr(exc, "faultCode", None)
        assert code == 604 and (sandbox / "data.txt").exists()
        ran = [x for x in daemon.lines if x.startswith("RAN ")]
        assert len(ran) == 9 and not any(x.startswith("RAN 'rm") for x in ran)   # rm never reached it

        # the 2005 user side: --command and --joblist
        seed = _jobmon_legacy_form(relay, pki, "--jobname", "51.0", "--command", "tail -n 1 data.txt")
        assert seed.returncode == 0 and seed.stdout == "last line\n", seed.stderr
        listed = _jobmon_legacy_form(relay, pki, "--joblist")
        assert listed.returncode == 0, listed.stderr
        assert any(line.split()[:1] == ["51.0"] and "legacy daemon" in line for line in listed.stdout.splitlines())
        # the web job list says so too
        ctx = ssl.create_default_context(cafile=str(pki.ca_file))
        ctx.load_cert_chain(str(pki.alice.cert_path), str(pki.alice.key_path))
        page = urllib.request.urlopen(f"https://localhost:{relay.port}/", context=ctx, timeout=30).read().decode()
        assert "51.0" in page and "legacy daemon" in page

        assert daemon.terminate() == 0
        assert daemon.wait_line("UNREGISTERED") == "UNREGISTERED 0 job 51.0 unregistered"
        assert alice.jobmon.status("51.0")["connected"] is False
    finally:
        daemon.kill()


def test_legacy_udp_wakeup_goes_only_to_the_daemons_own_address(relay_factory: Any, pki: Any,
                                                                tmp_path: Path) -> None:
    """The datagram goes to the address the daemon's TLS connection came from (here 127.0.0.3),
    whatever host name it registers (127.0.0.2), and nowhere else."""
    import socket

    from jmtest.legacy import LegacyDaemon

    relay = relay_factory(legacy={"enabled": True, "wakeup": "udp"})
    sandbox = _sandbox(tmp_path)
    url = relay.url.replace("127.0.0.1", "localhost")
    daemon = LegacyDaemon(sys.executable, url, pki.alice_proxy, pki.ca_file, "udp-job", sandbox,
                          source="127.0.0.3", hostname="127.0.0.2")
    decoys = []
    try:
        assert "JobMon_wakeup_method=UDPbroadcast" in daemon.wait_line("REGISTERED")
        port = int(daemon.wait_line("LISTENING UDPbroadcast").split()[-1])
        for addr in ("127.0.0.1", "127.0.0.2"):   # the relay's own host and the claimed host name
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind((addr, port))
            s.settimeout(0.2)
            decoys.append(s)
        alice = relay.client(pki.alice)
        res = alice.jobmon.exec("udp-job", ["cat", "data.txt"], {"timeout": 20})
        assert res["stdout"].data == b"first line\nlast line\n"
        assert daemon.wait_line("WOKEN")
        for s in decoys:
            try:
                got = s.recv(1024)
            except socket.timeout:
                got = b""
            assert got == b"", f"a wake-up reached {s.getsockname()}: {got!r}"
    finally:
        for s in decoys:
            s.close()
        daemon.kill()
