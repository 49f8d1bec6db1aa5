#!/usr/bin/env python3
"""Load harness for the relay: N simulated daemons (real TLS, real long-polls) in a few
processes, and clients measuring command round trips, fan-out and throughput.

    .venv/bin/python benchmarks/relay_load.py --daemons 10000 --procs 4

Prints one JSON document with every figure; docs/PERFORMANCE.md ("Relay") quotes it.
The relay runs as ``python -m relay --pool none`` (attach-mode job names, so no pool
queries are in the path); daemons and the client share one test certificate, so the
client owns every job. No heartbeats are sent: "idle" means held long-polls only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
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

import aiohttp  # noqa: E402

HEADERS = {"Content-Type": "text/xml"}


def make_pki(d: Path) -> dict[str, str]:
    from jobmon import pki

    ca = pki.make_ca("/DC=org/DC=bench/CN=Bench CA")
    host = pki.make_host_cert(ca, "localhost")
    user = pki.make_user_cert(ca, "/DC=org/DC=bench/CN=Bench User")
    (d / "ca.pem").write_bytes(ca.cert_pem())
    host.write(d / "host.pem", d / "host.key")
    user.write(d / "user.pem", d / "user.key")
    return {k: str(d / f) for k, f in [("ca", "ca.pem"), ("host", "host.pem"), ("host_key", "host.key"),
                                        ("user", "user.pem"), ("user_key", "user.key")]}


def client_ctx(paths: dict[str, str]) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=paths["ca"])
    ctx.load_cert_chain(paths["user"], paths["user_key"])
    return ctx


async def rpc(session: aiohttp.ClientSession, url: str, method: str, *params: Any) -> Any:
    body = xmlrpc.client.dumps(params, method)
    async with session.post(url, data=body, headers=HEADERS) as resp:
        data = await resp.read()
    return xmlrpc.client.loads(data)[0][0]


# -- daemon processes -----------------------------------------------------------------
async def run_daemons(url: str, paths: dict[str, str], start: int, count: int, poll_wait: float,
                      piggyback: bool = False, watched: int = 0, push_interval: float = 1.0) -> None:
    import asyncio.sslproto

    asyncio.sslproto.SSLProtocol.max_size = 32 * 1024  # type: ignore[attr-defined]  # as the relay does
    conn = aiohttp.TCPConnector(limit=0, ssl=client_ctx(paths), keepalive_timeout=300)
    timeout = aiohttp.ClientTimeout(total=None, sock_read=poll_wait + 60)
    ok = {"exit_code": 0, "stdout": xmlrpc.client.Binary(b"ok\n"), "stderr": xmlrpc.client.Binary(b""),
          "duration": 0.0, "truncated": False, "timed_out": False}
    registered = 0
    sem = asyncio.Semaphore(50)  # bound concurrent TLS handshakes while connecting

    async with aiohttp.ClientSession(connector=conn, timeout=timeout) as session:
        async def pushes(sess: str) -> None:
            await asyncio.sleep(random.uniform(0, push_interval))  # spread over the second
            done = 0.0
            while True:
                done += 1.0
                try:
                    await rpc(session, url, "jobmon.heartbeat", sess,
                              {"time": time.time(), "progress": {"done": done, "total": 1e6, "rate": 1.0}})
                except (aiohttp.ClientError, asyncio.TimeoutError, xmlrpc.client.Fault):
                    return
                await asyncio.sleep(push_interval)

        async def one(i: int) -> None:
            nonlocal registered
            name = f"bench-{i}"
            async with sem:
                sess = (await rpc(session, url, "jobmon.register", {"job": name, "host": "sim"}))["session"]
            registered += 1
            if registered == count:
                print("READY", flush=True)
            if i < watched:  # as a watched daemon does: fresh progress once a second (issue 13)
                asyncio.ensure_future(pushes(sess))
            outbox: list[dict[str, Any]] = []
            while True:
                try:
                    if piggyback:
                        reqs = await rpc(session, url, "jobmon.poll", sess, poll_wait, outbox)
                        outbox = []
                    else:
                        reqs = await rpc(session, url, "jobmon.poll", sess, poll_wait)
                except (aiohttp.ClientError, asyncio.TimeoutError, xmlrpc.client.Fault):
                    return
                for req in reqs:
                    if req["op"] != "exec":
                        continue
                    if piggyback:
                        outbox.append({"id": req["id"], "result": ok})
                    else:
                        await rpc(session, url, "jobmon.result", sess, req["id"], ok)

        await asyncio.gather(*(one(i) for i in range(start, start + count)), return_exceptions=True)


# -- measurements -----------------------------------------------------------------------
def proc_stats(pid: int) -> tuple[float, float]:
    """(RSS MiB, CPU seconds) of a process."""
    with open(f"/proc/{pid}/status") as fh:
        rss = next(int(line.split()[1]) for line in fh if line.startswith("VmRSS:")) / 1024.0
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return rss, cpu


def open_sockets(pid: int) -> int:
    """Sockets the relay process holds (its TLS connections, plus the listener)."""
    n = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            n += os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:")
        except OSError:
            continue
    return n


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100.0 * (len(values) - 1))))]


async def round_trips(session: aiohttp.ClientSession, url: str, jobs: list[str], n: int) -> dict[str, float]:
    lat = []
    for _ in range(n):
        job = random.choice(jobs)
        t0 = time.perf_counter()
        res = await rpc(session, url, "jobmon.exec", job, ["true"], {})
        lat.append((time.perf_counter() - t0) * 1000.0)
        assert res["exit_code"] == 0
    return {"n": n, "p50_ms": round(pct(lat, 50), 2), "p99_ms": round(pct(lat, 99), 2),
            "mean_ms": round(statistics.mean(lat), 2)}


async def fanout(session: aiohttp.ClientSession, url: str, jobs: list[str]) -> dict[str, float]:
    t0 = time.perf_counter()
    started = await rpc(session, url, "jobmon.execMany", {"jobs": jobs}, ["true"], {})
    got, faults = 0, 0
    done = False
    while not done:
        reply = await rpc(session, url, "jobmon.batchResults", started["batch"], 30.0)
        got += len(reply["results"])
        faults += sum(1 for r in reply["results"] if "fault" in r)
        done = reply["done"]
    return {"jobs": len(jobs), "seconds": round(time.perf_counter() - t0, 3), "results": got, "faults": faults}


async def throughput(session: aiohttp.ClientSession, url: str, jobs: list[str], seconds: float,
                     concurrency: int) -> dict[str, float]:
    end = time.perf_counter() + seconds
    count = 0

    async def worker() -> None:
        nonlocal count
        while time.perf_counter() < end:
            await rpc(session, url, "jobmon.exec", random.choice(jobs), ["true"], {})
            count += 1

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return {"concurrency": concurrency, "commands_per_s": round(count / (time.perf_counter() - t0), 1)}


async def coordinator(args: argparse.Namespace) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="relay-bench-"))
    paths = make_pki(tmp)
    port = args.port
    prefix = ["-m", "cProfile", "-o", args.profile] if args.profile else []
    relay = subprocess.Popen(
        [sys.executable, *prefix, "-m", "relay", "--listen", f"127.0.0.1:{port}", "--state-dir", str(tmp / "state"),
         "--host-cert", paths["host"], "--host-key", paths["host_key"], "--ca-file", paths["ca"],
         "--pool", "none", "--poll-wait", str(args.poll_wait), "--rate-per-second", "0",
         "--log-level", "WARNING"],
        cwd=ROOT, stderr=subprocess.PIPE, text=True)
    url = f"https://127.0.0.1:{port}/clarens"
    out: dict[str, Any] = {"daemons_target": args.daemons, "procs": args.procs, "poll_wait": args.poll_wait,
                           "results_on_poll": args.piggyback, "watched": args.watched,
                           "push_interval": args.push_interval}
    children: list[subprocess.Popen[str]] = []
    conn = aiohttp.TCPConnector(limit=0, ssl=client_ctx(paths))
    try:
        async with aiohttp.ClientSession(connector=conn) as session:
            for _ in range(200):
                try:
                    await rpc(session, url, "echo.echo", 1)
                    break
                except aiohttp.ClientError:
                    await asyncio.sleep(0.1)
            base_rss, _ = proc_stats(relay.pid)
            out["rss_mib_empty"] = round(base_rss, 1)

            def spawn(start: int, count: int) -> subprocess.Popen[str]:
                p = subprocess.Popen([sys.executable, __file__, "--role", "daemons", "--url", url,
                                      "--pki", str(tmp), "--start", str(start), "--count", str(count),
                                      "--poll-wait", str(args.poll_wait), "--watched", str(args.watched),
                                      "--push-interval", str(args.push_interval)]
                                     + (["--piggyback"] if args.piggyback else []),
                                     stdout=subprocess.PIPE, text=True)
                children.append(p)
                return p

            # one daemon
            first = spawn(0, 1)
            assert first.stdout is not None and first.stdout.readline().strip() == "READY"
            out["rtt_1_daemon"] = await round_trips(session, url, ["bench-0"], args.rtt)
            # scale up
            t0 = time.perf_counter()
            n = args.daemons - 1
            per = (n + args.procs - 1) // args.procs
            batch = [spawn(1 + i * per, min(per, n - i * per)) for i in range(args.procs) if n - i * per > 0]
            for p in batch:
                assert p.stdout is not None and p.stdout.readline().strip() == "READY"
            out["connect_all_seconds"] = round(time.perf_counter() - t0, 1)
            jobs = [f"bench-{i}" for i in range(args.daemons)]
            await asyncio.sleep(2.0)
            rss, cpu0 = proc_stats(relay.pid)
            out["rss_mib_connected"] = round(rss, 1)
            out["rss_mib_per_1000_daemons"] = round((rss - base_rss) * 1000.0 / args.daemons, 1)
            out["relay_sockets_connected"] = open_sockets(relay.pid)
            await asyncio.sleep(args.idle)
            _, cpu1 = proc_stats(relay.pid)
            out["idle_cpu_percent_of_one_core"] = round(100.0 * (cpu1 - cpu0) / args.idle, 2)
            out["idle_seconds_measured"] = args.idle
            out[f"rtt_{args.daemons}_daemons"] = await round_trips(session, url, jobs, args.rtt)
            out["fanout"] = []
            for k in args.fanout:
                if k <= len(jobs):
                    c0 = proc_stats(relay.pid)[1]
                    f = await fanout(session, url, jobs[:k])
                    f["relay_cpu_ms_per_job"] = round(1000.0 * (proc_stats(relay.pid)[1] - c0) / k, 3)
                    out["fanout"].append(f)
            c0 = proc_stats(relay.pid)[1]
            out["throughput"] = await throughput(session, url, jobs, args.seconds, args.concurrency)
            spent = proc_stats(relay.pid)[1] - c0
            done = out["throughput"]["commands_per_s"] * args.seconds
            out["throughput"]["relay_cpu_ms_per_command"] = round(1000.0 * spent / max(1.0, done), 3)
            out["throughput"]["relay_cpu_percent"] = round(100.0 * spent / args.seconds, 1)
            out["rss_mib_end"] = round(proc_stats(relay.pid)[0], 1)
    finally:
        relay.terminate()
        try:
            relay.wait(60)
        except subprocess.TimeoutExpired:
            relay.kill()
        for p in children:
            p.terminate()
        for p in children:
            p.wait(30)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--role", default="coordinator", choices=("coordinator", "daemons"))
    ap.add_argument("--daemons", type=int, default=1000)
    ap.add_argument("--procs", type=int, default=4)
    ap.add_argument("--poll-wait", type=float, default=50.0)
    ap.add_argument("--rtt", type=int, default=300, help="round trips per latency figure")
    ap.add_argument("--fanout", type=int, nargs="*", default=[1000, 10000])
    ap.add_argument("--seconds", type=float, default=10.0, help="throughput run length")
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--idle", type=float, default=20.0, help="seconds of idle CPU measurement")
    ap.add_argument("--port", type=int, default=18443)
    ap.add_argument("--piggyback", action="store_true",
                    help="daemons send results with their next poll (jobmon.poll's results argument)")
    ap.add_argument("--profile", help="run the relay under cProfile, stats to this file")
    ap.add_argument("--watched", type=int, default=0,
                    help="the first N daemons report progress every --push-interval s, as watched daemons do")
    ap.add_argument("--push-interval", type=float, default=1.0)
    ap.add_argument("--url")
    ap.add_argument("--pki")
    ap.add_argument("--start", type=int, default=0)
    ap.add_argument("--count", type=int, default=0)
    args = ap.parse_args()
    if args.role == "daemons":
        paths = {k: str(Path(args.pki) / f) for k, f in [("ca", "ca.pem"), ("user", "user.pem"),
                                                         ("user_key", "user.key")]}
        asyncio.run(run_daemons(args.url, paths, args.start, args.count, args.poll_wait, args.piggyback,
                                args.watched, args.push_interval))
        return
    result = asyncio.run(coordinator(args))
    result["command"] = " ".join([".venv/bin/python", "benchmarks/relay_load.py"] + sys.argv[1:])
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
