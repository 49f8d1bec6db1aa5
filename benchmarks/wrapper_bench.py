"""Worker-side figures: RSS and idle CPU of wrapper+daemon, CPU-bound wall-time ratio,
payload-exit -> wrapper-exit latency.

    .venv/bin/python benchmarks/wrapper_bench.py [--idle 10] [--cpu-seconds 3] [--python PY]

The daemon talks to a minimal in-process relay over real TLS (certificates from
jobmon.pki) that answers register/poll/heartbeat/finish like the real one does
when no user is asking anything: polls return [] after ``poll_wait`` (50 s,
the relay's default), heartbeats every 30 s.
Prints one JSON object and a Markdown table.
"""

from __future__ import annotations

import argparse
import http.server
import json
import os
import platform
import socketserver
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import xmlrpc.client
from pathlib import Path
from typing import Any

from jobmon import pki, wrapperzip

CPU_PAYLOAD = ("import sys, time\nt = time.monotonic()\nn = int(sys.argv[1])\ns = 0\n"
               "for i in range(n):\n    s += i * i\nprint(time.monotonic() - t)\n")


class IdleRelay:
    def __init__(self, certdir: Path, poll_wait: float = 50.0, heartbeat: float = 30.0) -> None:
        ca = pki.make_ca("/DC=org/DC=example/CN=Bench CA")
        host = pki.make_host_cert(ca, "localhost")
        self.ca_file = certdir / "ca.pem"
        self.ca_file.write_bytes(ca.cert_pem())
        host.write(certdir / "host.pem", certdir / "host.key")
        self.registered = threading.Event()
        self.finished = threading.Event()
        self.calls: dict[str, int] = {}
        relay = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                params, method = xmlrpc.client.loads(body)
                relay.calls[method or ""] = relay.calls.get(method or "", 0) + 1
                result: Any = True
                if method == "jobmon.register":
                    relay.registered.set()
                    result = {"session": "s1", "poll_wait": poll_wait, "heartbeat": heartbeat,
                              "relay_version": "bench"}
                elif method == "jobmon.poll":
                    time.sleep(min(float(params[1]), poll_wait))  # type: ignore[arg-type]
                    result = []
                elif method == "jobmon.heartbeat":
                    result = {}
                elif method == "jobmon.finish":
                    relay.finished.set()
                out = xmlrpc.client.dumps((result,), methodresponse=True).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/xml")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True

        self.server = Server(("127.0.0.1", 0), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(certdir / "host.pem"), str(certdir / "host.key"))
        self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.server.server_address[1]}/clarens"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def _cpu_ticks(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def _rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def measure_idle(py: str, pyz: Path, env: dict[str, str], relay: IdleRelay,
                 idle: float) -> dict[str, float]:
    proc = subprocess.Popen([py, str(pyz), "--", "sleep", str(idle + 30)], env=env,
                            stderr=subprocess.DEVNULL)
    try:
        assert relay.registered.wait(30), "daemon did not register"
        time.sleep(1.0)  # let the first poll settle
        ticks0, t0 = _cpu_ticks(proc.pid), time.monotonic()
        time.sleep(idle)
        ticks1, t1 = _cpu_ticks(proc.pid), time.monotonic()
        rss = _rss_kb(proc.pid)
    finally:
        proc.terminate()
        proc.wait()
    hz = os.sysconf("SC_CLK_TCK")
    return {"rss_kb": rss, "idle_cpu_percent": 100.0 * (ticks1 - ticks0) / hz / (t1 - t0)}


def measure_cpu_ratio(py: str, pyz: Path, env: dict[str, str], seconds: float) -> dict[str, float]:
    """One bare and one wrapped run of the same CPU-bound loop.

    ``cpu_ratio`` compares the payload's own wall time (measured inside it);
    ``cpu_total_ratio`` compares the whole command including the wrapper's
    start-up (interpreter, TLS set-up) and final report.
    """
    n = 1_000_000
    calib = subprocess.run([py, "-c", CPU_PAYLOAD, str(n)], check=True, stdout=subprocess.PIPE,
                           text=True)
    n = int(seconds / (float(calib.stdout) / n))
    argv = [py, "-c", CPU_PAYLOAD, str(n)]
    t = time.monotonic()
    bare = subprocess.run(argv, check=True, env=env, stdout=subprocess.PIPE, text=True)
    bare_total = time.monotonic() - t
    t = time.monotonic()
    wrapped = subprocess.run([py, str(pyz), "--"] + argv, check=True, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    wrapped_total = time.monotonic() - t
    b, w = float(bare.stdout), float(wrapped.stdout)
    return {"cpu_bare_s": b, "cpu_wrapped_s": w, "cpu_ratio": w / b,
            "cpu_bare_total_s": bare_total, "cpu_wrapped_total_s": wrapped_total,
            "cpu_total_ratio": wrapped_total / bare_total}


def measure_exit_latency(py: str, pyz: Path, env: dict[str, str], runs: int) -> float:
    """Median seconds from the payload's last instruction to the wrapper's exit."""
    lags = []
    with tempfile.TemporaryDirectory() as tmp:
        mark = Path(tmp) / "mark"
        payload = f"import time; open({str(mark)!r}, 'w').write(repr(time.time()))"
        for _ in range(runs):
            subprocess.run([py, str(pyz), "--", py, "-c", payload], env=env,
                           stderr=subprocess.DEVNULL, check=True)
            lags.append(time.time() - float(mark.read_text()))
    return statistics.median(lags)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--idle", type=float, default=35.0,
                    help="idle measurement, seconds (covers one heartbeat)")
    ap.add_argument("--cpu-seconds", type=float, default=3.0)
    ap.add_argument("--runs", type=int, default=5, help="runs for the exit latency median")
    ap.add_argument("--python", default=sys.executable, help="interpreter running the wrapper")
    ns = ap.parse_args()
    pyz = wrapperzip.wrapper_path()
    base_env = {k: v for k, v in os.environ.items() if not k.startswith(("JOBMON_", "_CONDOR_"))}
    with tempfile.TemporaryDirectory() as tmp:
        relay = IdleRelay(Path(tmp))
        cred = Path(tmp) / "jobmon.cred"
        cred.write_text("jm1.bench.token")
        env = dict(base_env, JOBMON_RELAY_URL=relay.url, JOBMON_CA_FILE=str(relay.ca_file),
                   JOBMON_CREDENTIAL_FILE=str(cred), JOBMON_JOB_ID="1.0")
        out: dict[str, Any] = {
            "python": subprocess.run([ns.python, "-c", "import platform;"
                                      "print(platform.python_version())"],
                                     stdout=subprocess.PIPE, text=True).stdout.strip(),
            "host": platform.node(), "cpus": os.cpu_count(),
        }
        out.update(measure_idle(ns.python, pyz, env, relay, ns.idle))
        out.update(measure_cpu_ratio(ns.python, pyz, env, ns.cpu_seconds))
        finishes = relay.calls.get("jobmon.finish", 0)
        out["exit_latency_relay_s"] = measure_exit_latency(ns.python, pyz, env, ns.runs)
        out["finish_posted"] = f"{relay.calls.get('jobmon.finish', 0) - finishes}/{ns.runs}"
        out["exit_latency_no_relay_s"] = measure_exit_latency(ns.python, pyz, base_env, ns.runs)
        dead = dict(env, JOBMON_RELAY_URL="https://127.0.0.1:9/clarens")
        out["exit_latency_unreachable_s"] = measure_exit_latency(ns.python, pyz, dead, ns.runs)
    print(json.dumps(out, indent=2))
    print()
    print("| figure | value |\n|---|---|")
    print(f"| RSS of wrapper+daemon (registered, idle) | {out['rss_kb'] / 1024:.1f} MiB |")
    print(f"| CPU while idle ({ns.idle:.0f} s) | {out['idle_cpu_percent']:.3f} % of a core |")
    print(f"| CPU-bound payload's own wall time, wrapped / bare | {out['cpu_ratio']:.4f} "
          f"({out['cpu_wrapped_s']:.3f} s / {out['cpu_bare_s']:.3f} s) |")
    print(f"| same, whole command incl. wrapper start-up and report | "
          f"{out['cpu_total_ratio']:.4f} ({out['cpu_wrapped_total_s']:.3f} s / "
          f"{out['cpu_bare_total_s']:.3f} s) |")
    for key, label in (("relay", "relay reachable, finish posted"), ("no_relay", "no relay"),
                       ("unreachable", "relay unreachable")):
        print(f"| payload exit -> wrapper exit, {label} (median of {ns.runs}) | "
              f"{out['exit_latency_' + key + '_s'] * 1000:.0f} ms |")
    print(f"| runs whose final status reached the relay | {out['finish_posted']} |")


if __name__ == "__main__":
    main()
