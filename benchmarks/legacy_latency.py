#!/usr/bin/env python3
"""Exec round trip through a 2005 JobMon daemon beside a modern daemon, on the same relay.

    .venv/bin/python benchmarks/legacy_latency.py [--calls 50] [--legacy-daemon PATH] [--python2 PATH]

Starts ``python -m relay --pool none`` (rate limit off) with ``[legacy] enabled``
(TCP wake-ups), a modern daemon (``python -m jobmon_wrapper --attach``) and a
legacy one, each serving its own directory, then times ``jobmon.exec(job,
["ls"])`` from one kept-alive client, ``--calls`` times per daemon after 5
warm-up calls. The legacy daemon is ``--legacy-daemon`` under ``--python2``:
by default the project's stand-in (tests/support/jmtest/legacy_daemon2005.py);
pass the real 2005 ``JobMonDaemon.py`` (its folder needs ``ClarensDpe.py`` and
``Rendezvous.py``) to time the real one. Prints one JSON document.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import xmlrpc.client
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
STAND_IN = ROOT / "tests" / "support" / "jmtest" / "legacy_daemon2005.py"


def make_pki(d: Path) -> dict[str, Path]:
    from jobmon import pki

    ca = pki.make_ca("/DC=org/DC=bench/CN=Bench CA")
    user = pki.make_user_cert(ca, "/DC=org/DC=bench/CN=Bench User")
    (d / "ca.pem").write_bytes(ca.cert_pem())
    pki.make_host_cert(ca, "localhost").write(d / "host.pem", d / "host.key")
    user.write(d / "user.pem", d / "user.key")
    pki.make_proxy(user).write(d / "user.proxy")
    return {n: d / f for n, f in [("ca", "ca.pem"), ("host", "host.pem"), ("host_key", "host.key"),
                                  ("user", "user.pem"), ("user_key", "user.key"), ("proxy", "user.proxy")]}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def python2() -> str:
    found = sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/2.7*/bin/python")))
    return found[-1] if found else "python2.7"


def wait_connected(proxy: Any, job: str, timeout: float = 60.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            if proxy.jobmon.status(job).get("connected"):
                return
        except xmlrpc.client.Fault:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{job} did not connect within {timeout:g} s")


def timed(proxy: Any, job: str, calls: int) -> dict[str, float]:
    for _ in range(5):
        proxy.jobmon.exec(job, ["ls"], {"timeout": 30})
    times = []
    for _ in range(calls):
        t0 = time.perf_counter()
        res = proxy.jobmon.exec(job, ["ls"], {"timeout": 30})
        times.append((time.perf_counter() - t0) * 1000)
        assert b"marker.txt" in res["stdout"].data, res
    times.sort()
    return {"calls": calls, "p50_ms": round(statistics.median(times), 2),
            "p90_ms": round(times[int(0.9 * (calls - 1))], 2), "mean_ms": round(statistics.mean(times), 2),
            "min_ms": round(times[0], 2), "max_ms": round(times[-1], 2)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, default=50)
    ap.add_argument("--legacy-daemon", default=str(STAND_IN))
    ap.add_argument("--python2", default=python2())
    args = ap.parse_args()
    procs: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory(prefix="jobmon-legacy-bench-") as tmp:
        d = Path(tmp)
        paths = make_pki(d)
        port = free_port()
        (d / "relay.toml").write_text(
            f'listen = "127.0.0.1:{port}"\nstate_dir = "{d / "state"}"\nhost_cert = "{paths["host"]}"\n'
            f'host_key = "{paths["host_key"]}"\nca_file = "{paths["ca"]}"\nrate_per_second = 0.0\n'
            f'log_level = "WARNING"\n[legacy]\nenabled = true\ntcp_listen = "127.0.0.1:0"\n')
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        url = f"https://localhost:{port}/clarens"
        try:
            procs.append(subprocess.Popen([sys.executable, "-m", "relay", "--config", str(d / "relay.toml"),
                                           "--pool", "none"], env=env, stdout=subprocess.DEVNULL))
            ctx = ssl.create_default_context(cafile=str(paths["ca"]))
            ctx.load_cert_chain(str(paths["user"]), str(paths["user_key"]))
            proxy = xmlrpc.client.ServerProxy(url, context=ctx)
            end = time.monotonic() + 60
            while True:
                try:
                    proxy.system.listMethods()
                    break
                except OSError:
                    if time.monotonic() > end:
                        raise
                    time.sleep(0.2)
            for name in ("modern", "legacy"):
                (d / name).mkdir()
                (d / name / "marker.txt").write_text("x\n")
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "jobmon_wrapper", "--attach", "--jobname", "modern", "--serverURL", url,
                 "--certfile", str(paths["proxy"]), "--cafile", str(paths["ca"])], cwd=d / "modern", env=env,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            legacy_env = dict(os.environ, HOME=str(d / "legacy"), SSL_CERT_FILE=str(paths["ca"]))
            legacy_env.pop("PYTHONPATH", None)
            procs.append(subprocess.Popen(
                [args.python2, args.legacy_daemon, "--jobname", "legacy", "--serverURL", url,
                 "--certkeyfile", str(paths["proxy"])]
                + (["--cafile", str(paths["ca"])] if Path(args.legacy_daemon) == STAND_IN else []),
                cwd=d / "legacy", env=legacy_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            wait_connected(proxy, "modern")
            wait_connected(proxy, "legacy")
            time.sleep(1.5)  # the legacy daemon's fresh wake-up connection settles (1 s)
            out = {"python": sys.version.split()[0], "legacy_daemon": args.legacy_daemon,
                   "legacy_python": subprocess.run([args.python2, "-V"], capture_output=True,
                                                   text=True).stderr.strip(),
                   "load_average": os.getloadavg()[0],
                   "modern": timed(proxy, "modern", args.calls), "legacy": timed(proxy, "legacy", args.calls)}
            print(json.dumps(out, indent=2))
        finally:
            for p in reversed(procs):
                p.terminate()
            for p in reversed(procs):
                try:
                    p.wait(15)
                except subprocess.TimeoutExpired:
                    p.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
