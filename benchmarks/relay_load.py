#!/usr/bin/env python3
"""Load harness for the relay: N simulated daemons (real TLS, real long-polls) in a few
processes, and clients measuring round trips, fan-out (in-process and with the real
``jobmon exec CLUSTER -- true``), throughput, idle cost, memory and a restart burst.

    .venv/bin/python benchmarks/relay_load.py --daemons 10000 --procs 4 --restart

Prints one JSON document with every figure; docs/PERFORMANCE.md ("Relay at scale")
quotes it. The relay runs as ``python -m relay --pool none`` (no pool queries in the
path; jobs are ``C.P`` of one cluster, registered with one per-job credential as a
cluster's jobs are); the simulators are benchmarks/relay_sim.py. ``--root`` runs the
relay and the CLI from another checkout (before/after tables). ``--front haproxy`` puts
HAProxy in front (relay/front.py): daemons and clients then reach the relay through it.
The condor_ssh_to_job anchor is extrapolated from the 10 calls recorded on a real pool
(shared/condor-fixtures/timings/timings.json): HTCondor cannot run on this machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import xmlrpc.client
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(ROOT), str(HERE)]

import aiohttp  # noqa: E402
from relay_front import start_front  # noqa: E402

HEADERS = {"Content-Type": "text/xml"}
TIMINGS = Path("/work/shared/condor-fixtures/timings/timings.json")


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


def client_ctx(paths: dict[str, str]) -> Any:
    import ssl

    ctx = ssl.create_default_context(cafile=paths["ca"])
    ctx.load_cert_chain(paths["user"], paths["user_key"])
    ctx.check_hostname = False
    return ctx


async def rpc(session: aiohttp.ClientSession, url: str, method: str, *params: Any) -> Any:
    body = xmlrpc.client.dumps(params, method)
    async with session.post(url, data=body, headers=HEADERS) as resp:
        data = await resp.read()
    return xmlrpc.client.loads(data)[0][0]


def proc_stats(pid: int) -> tuple[float, float]:
    """(RSS MiB, CPU seconds) of a process."""
    with open(f"/proc/{pid}/status") as fh:
        rss = next(int(line.split()[1]) for line in fh if line.startswith("VmRSS:")) / 1024.0
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return rss, (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100.0 * (len(values) - 1))))]


def load() -> str:
    with open("/proc/loadavg") as fh:
        return " ".join(fh.read().split()[:3])


class Bench:
    def __init__(self, a: argparse.Namespace) -> None:
        self.a = a
        self.tmp = Path(tempfile.mkdtemp(prefix="relay-bench-"))
        self.paths = make_pki(self.tmp)
        self.root = Path(a.root).resolve() if a.root else ROOT
        self.relay: subprocess.Popen[str] | None = None
        self.fronts: list[subprocess.Popen[bytes]] = []
        self.sims: list[subprocess.Popen[str]] = []
        self.sock = str(self.tmp / "front" / "relay.sock")
        self.port = a.port
        self.url = f"https://127.0.0.1:{self.port}/clarens"  # what daemons and clients use
        self.relay_port = a.port + 1 if a.front else a.port
        self.token = ""

    # -- processes ---------------------------------------------------------
    def start_relay(self) -> None:
        runner = ["-m", "relay"]
        if self.a.profile:
            runner = ["-m", "cProfile", "-o", self.a.profile, "-m", "relay"]
        elif self.a.trace:
            runner = [str(HERE / "relay_traced.py"), self.a.trace, "--"]
        cmd = [sys.executable, *runner, "--listen", f"127.0.0.1:{self.relay_port}", "--state-dir", str(self.tmp / "state"),
               "--host-cert", self.paths["host"], "--host-key", self.paths["host_key"],
               "--ca-file", self.paths["ca"], "--pool", "none", "--poll-wait", str(self.a.poll_wait),
               "--rate-per-second", "0", "--log-level", "INFO"]
        env = dict(os.environ, PYTHONPATH=str(self.root))
        if self.a.front:
            (self.tmp / "front").mkdir(mode=0o750, exist_ok=True)
            cmd += ["--config", str(self._front_config())]
        self.relay = subprocess.Popen(cmd, cwd=self.root, env=env, stderr=subprocess.PIPE, text=True)
        threading.Thread(target=self._drain_stderr, args=(self.relay,), daemon=True).start()

    def _front_config(self) -> Path:
        path = self.tmp / "relay.toml"
        path.write_text(f'front_socket = "{self.sock}"\npublic_url = "{self.url}"\n')
        return path

    @staticmethod
    def _drain_stderr(proc: subprocess.Popen[str]) -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            if "Traceback" in line or "ERROR" in line or "drained in" in line or "relay stopped in" in line:
                print("relay:", line.rstrip(), file=sys.stderr)

    def spawn(self, start: int, count: int, markers: str | None = None) -> subprocess.Popen[str]:
        a = self.a
        cmd = [sys.executable, str(HERE / "relay_sim.py"), "--url", self.url, "--ca", self.paths["ca"],
               "--auth", a.auth, "--token", self.token, "--cert", self.paths["user"], "--key", self.paths["user_key"],
               "--cluster", str(a.cluster), "--start", str(start), "--count", str(count),
               "--poll-wait", str(a.poll_wait), "--watched", str(max(0, a.watched - start)),
               "--push-interval", str(a.push_interval), "--heartbeat", str(a.heartbeat)]
        if markers:
            cmd += ["--markers", markers]
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        self.sims.append(p)
        return p

    def stop_all(self) -> None:
        for p in [self.relay, *self.fronts, *self.sims]:
            if p is not None and p.poll() is None:
                p.terminate()
        for p in [self.relay, *self.fronts, *self.sims]:
            if p is not None:
                try:
                    p.wait(60)
                except subprocess.TimeoutExpired:
                    p.kill()
        shutil.rmtree(self.tmp, ignore_errors=True)

    async def wait_answering(self, session: aiohttp.ClientSession) -> float:
        t0 = time.perf_counter()
        for _ in range(600):
            try:
                await rpc(session, self.url, "echo.echo", 1)
                return time.perf_counter() - t0
            except (aiohttp.ClientError, OSError):
                await asyncio.sleep(0.05)
        raise RuntimeError("the relay never answered")

    def rss_cpu(self) -> tuple[float, float]:
        """The relay's, plus the fronts' (RSS MiB, CPU s)."""
        assert self.relay is not None
        rss, cpu = proc_stats(self.relay.pid)
        return rss, cpu

    def front_rss_cpu(self) -> tuple[float, float]:
        stats = [proc_stats(p.pid) for p in self.fronts]
        return sum(s[0] for s in stats), sum(s[1] for s in stats)

    def spy(self, phase: str) -> subprocess.Popen[bytes] | None:
        """py-spy on the relay for one phase (``--spy DIR``): DIR/<phase>.txt, collapsed stacks."""
        if not self.a.spy or self.relay is None:
            return None
        Path(self.a.spy).mkdir(parents=True, exist_ok=True)
        return subprocess.Popen([self.a.spy_exe, "record", "-p", str(self.relay.pid), "-f", "raw", "-r", "200",
                                 "--nolineno", "-o", str(Path(self.a.spy) / f"{phase}.txt")],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    @staticmethod
    def unspy(p: subprocess.Popen[bytes] | None) -> None:
        if p is not None:
            p.send_signal(signal.SIGINT)
            p.wait(60)

    # -- measurements ------------------------------------------------------
    async def round_trips(self, session: aiohttp.ClientSession, jobs: list[str], n: int) -> dict[str, float]:
        lat = []
        for _ in range(n):
            t0 = time.perf_counter()
            res = await rpc(session, self.url, "jobmon.exec", random.choice(jobs), ["true"], {})
            lat.append((time.perf_counter() - t0) * 1000.0)
            assert res["exit_code"] == 0, res
        return {"n": n, "p50_ms": round(pct(lat, 50), 2), "p99_ms": round(pct(lat, 99), 2),
                "mean_ms": round(statistics.mean(lat), 2)}

    async def fanout(self, session: aiohttp.ClientSession, jobs: list[str]) -> dict[str, Any]:
        c0 = self.rss_cpu()[1]
        t0 = time.perf_counter()
        started = await rpc(session, self.url, "jobmon.execMany", {"jobs": jobs}, ["true"], {})
        got = faults = 0
        first = None
        done = False
        while not done:
            reply = await rpc(session, self.url, "jobmon.batchResults", started["batch"], 30.0)
            if reply["results"] and first is None:
                first = time.perf_counter() - t0
            got += len(reply["results"])
            faults += sum(1 for r in reply["results"] if "fault" in r)
            done = reply["done"]
        secs = time.perf_counter() - t0
        return {"jobs": len(jobs), "seconds": round(secs, 3), "first_result_s": round(first or 0, 3),
                "results": got, "faults": faults,
                "relay_cpu_ms_per_job": round(1000.0 * (self.rss_cpu()[1] - c0) / len(jobs), 3)}

    def cli(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "jobmon.cli.main", "--relay", self.url, "--cert", self.paths["user"],
                "--key", self.paths["user_key"], "--ca-file", self.paths["ca"], "--state-dir",
                str(self.tmp / "cli"), *args]

    def cli_fanout(self) -> dict[str, Any]:
        """``jobmon exec CLUSTER -- true`` as a user runs it: whole command, first result line."""
        env = dict(os.environ, PYTHONPATH=str(self.root))
        t0 = time.perf_counter()
        subprocess.run(self.cli("--help"), cwd=self.root, env=env, capture_output=True, check=False)
        startup = time.perf_counter() - t0
        helptext = subprocess.run(self.cli("exec", "--help"), cwd=self.root, env=env, capture_output=True).stdout
        progress_flag = ["--progress"] if b"--progress" in helptext else []  # an older CLI has none
        c0 = self.rss_cpu()[1]
        s0 = self.sims_cpu()
        k0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        p = subprocess.Popen(self.cli("exec", str(self.a.cluster), *progress_flag, "--", "true"), cwd=self.root,
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        err: list[tuple[float, bytes]] = []

        def read_err() -> None:
            assert p.stderr is not None
            for chunk in iter(lambda: p.stderr.read1(4096), b""):  # type: ignore[union-attr]
                err.append((time.perf_counter() - t0, chunk))

        reader = threading.Thread(target=read_err, daemon=True)
        reader.start()
        first = None
        ok = lines = 0
        assert p.stdout is not None
        for line in p.stdout:
            if first is None:
                first = time.perf_counter() - t0
            lines += 1
            ok += line.endswith(b": exit 0\n")
        code = p.wait()
        secs = time.perf_counter() - t0
        k1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        reader.join(5)
        progress = [t for t, chunk in err if b"results" in chunk]
        tail = b"".join(c for _, c in err).decode("utf-8", "replace")
        first_in_batch = None
        if "the first after " in tail:
            first_in_batch = float(tail.rsplit("the first after ", 1)[1].split()[0])
        return {"jobs": self.a.daemons, "seconds": round(secs, 3), "exit": code, "lines": lines, "exit_0": ok,
                "first_result_s": round(first or 0, 3), "cli_startup_s": round(startup, 3),
                "first_result_after_batch_start_s": first_in_batch,
                "progress_updates": len(progress), "first_progress_s": round(progress[0], 3) if progress else None,
                "stderr_tail": b"".join(c for _, c in err)[-300:].decode("utf-8", "replace"),
                "relay_cpu_s": round(self.rss_cpu()[1] - c0, 2), "simulators_cpu_s": round(self.sims_cpu() - s0, 2),
                "cli_cpu_s": round(k1.ru_utime + k1.ru_stime - k0.ru_utime - k0.ru_stime, 2),
                "relay_cpu_ms_per_job": round(1000.0 * (self.rss_cpu()[1] - c0) / max(1, self.a.daemons), 3)}

    def snapshot(self) -> None:
        """``--trace``: the traced relay writes a tracemalloc snapshot (relay_traced.py)."""
        if self.a.trace and self.relay is not None:
            n = len(list(Path(self.a.trace).glob("*.json")))
            self.relay.send_signal(signal.SIGUSR1)
            while not (Path(self.a.trace) / f"{n + 1}.json").exists():
                time.sleep(0.2)

    def sims_cpu(self) -> float:
        return sum(proc_stats(p.pid)[1] for p in self.sims if p.poll() is None)

    async def throughput(self, session: aiohttp.ClientSession, jobs: list[str]) -> dict[str, float]:
        end = time.perf_counter() + self.a.seconds
        count = 0

        async def worker() -> None:
            nonlocal count
            while time.perf_counter() < end:
                await rpc(session, self.url, "jobmon.exec", random.choice(jobs), ["true"], {})
                count += 1

        c0 = self.rss_cpu()[1]
        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(self.a.concurrency)))
        wall = time.perf_counter() - t0
        spent = self.rss_cpu()[1] - c0
        return {"concurrency": self.a.concurrency, "commands_per_s": round(count / wall, 1),
                "relay_cpu_ms_per_command": round(1000.0 * spent / max(1, count), 3)}

    async def restart(self, session: aiohttp.ClientSession, markers: str) -> dict[str, Any]:
        """Commands in flight, SIGTERM, a new relay on the same port and state: every daemon back,
        every command answered once, none run twice; memory after the burst."""
        a = self.a
        jobs = [f"{a.cluster}.{i}" for i in range(min(a.restart_jobs, a.daemons))]
        started = await rpc(session, self.url, "jobmon.execMany", {"jobs": jobs}, ["sleep", "2", "before"], {})
        await asyncio.sleep(1.0)
        collected: list[dict[str, Any]] = []
        collect = asyncio.ensure_future(self._collect(session, started["batch"], collected))
        assert self.relay is not None
        t_stop = time.time()
        self.relay.send_signal(signal.SIGTERM)
        stopped = await asyncio.get_running_loop().run_in_executor(None, self.relay.wait, 60)
        t_down = time.time()
        try:
            await asyncio.wait_for(collect, 10)
        except (asyncio.TimeoutError, aiohttp.ClientError, OSError, xmlrpc.client.Fault):
            pass  # a relay that fails or drops a batch while it stops: the counts below say so
        self.start_relay()
        await self.wait_answering(session)
        t_up = time.time()
        cpu_up = self.rss_cpu()[1]
        spy = self.spy("reconnect")
        lines = await asyncio.get_running_loop().run_in_executor(None, self._rereg_lines, 300.0)
        self.unspy(spy)
        back = max(lines) if lines else None
        peak, cpu_back = self.rss_cpu()
        await asyncio.sleep(a.settle)
        rss_after = self.rss_cpu()[0]
        runs: dict[tuple[str, str], int] = {}
        for line in Path(markers).read_text().splitlines():
            job, mark, _rid = line.split()
            runs[(job, mark)] = runs.get((job, mark), 0) + 1
        answered = {r["job"]: r for r in collected}
        ran_before = {job for job, mark in runs if mark == "before"}
        return {
            "jobs_with_a_command": len(jobs), "relay_exit": stopped,
            "stop_seconds": round(t_down - t_stop, 2), "down_seconds": round(t_up - t_stop, 2),
            "all_reregistered_after_sigterm_s": round(back - t_stop, 2) if back else None,
            "all_reregistered_after_new_relay_up_s": round(back - t_up, 2) if back else None,
            "sim_processes_reporting": len(lines),
            "relay_cpu_s_for_the_burst": round(cpu_back - cpu_up, 2),
            "answered": len(answered), "answered_with_result": sum(1 for r in collected if "result" in r),
            "answered_998_not_run": sum(1 for r in collected if r.get("fault") == 998),
            "answered_700": sum(1 for r in collected if r.get("fault") == 700),
            "run_by_daemons": len(ran_before), "run_twice": sum(1 for n in runs.values() if n > 1),
            "998_but_run": sum(1 for j in ran_before if answered.get(j, {}).get("fault") == 998),
            "rss_mib_burst_peak": round(peak, 1), "rss_mib_after_settle": round(rss_after, 1),
        }

    async def _collect(self, session: aiohttp.ClientSession, batch: str, out: list[dict[str, Any]]) -> None:
        done = False
        while not done:
            reply = await rpc(session, self.url, "jobmon.batchResults", batch, 30.0)
            out.extend(reply["results"])
            done = reply["done"]

    def _rereg_lines(self, timeout: float) -> list[float]:
        """Each simulator process's 'all my daemons registered again' time."""
        got: list[float] = []
        end = time.time() + timeout
        for p in self.sims:
            assert p.stdout is not None
            while time.time() < end:
                line = p.stdout.readline()
                if not line:
                    break
                if line.startswith("REREGISTERED"):
                    got.append(float(line.split()[2]))
                    break
        return got

    # -- the run -----------------------------------------------------------
    async def run(self) -> dict[str, Any]:
        a = self.a
        out: dict[str, Any] = {"daemons": a.daemons, "procs": a.procs, "poll_wait": a.poll_wait, "auth": a.auth,
                               "front": a.front or "none", "heartbeat": a.heartbeat, "watched": a.watched,
                               "load_start": load()}
        self.start_relay()
        conn = aiohttp.TCPConnector(limit=0, ssl=client_ctx(self.paths))
        async with aiohttp.ClientSession(connector=conn) as session:
            if a.front:
                await asyncio.sleep(1.0)
                self.fronts = start_front(a.front_procs, self.port, self.sock, self.paths, self.tmp)
            await self.wait_answering(session)
            out["rss_mib_empty"] = round(self.rss_cpu()[0], 1)
            self.snapshot()
            if a.front:
                out["front_rss_mib_empty"] = round(self.front_rss_cpu()[0], 1)
            self.token = (await rpc(session, self.url, "jobmon.issueCredential", {"cluster": a.cluster}))["token"]
            markers = str(self.tmp / "markers.txt")
            first = self.spawn(0, 1, markers)
            ready(first, 60)
            out["rtt_1_daemon"] = await self.round_trips(session, [f"{a.cluster}.0"], a.rtt)
            spy = self.spy("connect")
            t0 = time.perf_counter()
            n = a.daemons - 1
            per = (n + a.procs - 1) // a.procs
            batch = [self.spawn(1 + i * per, min(per, n - i * per), markers) for i in range(a.procs) if n - i * per > 0]
            for p in batch:
                ready(p, 900)
            out["connect_all_seconds"] = round(time.perf_counter() - t0, 1)
            self.unspy(spy)
            jobs = [f"{a.cluster}.{i}" for i in range(a.daemons)]
            await asyncio.sleep(a.settle)
            rss, cpu0 = self.rss_cpu()
            f_rss, f_cpu0 = self.front_rss_cpu()
            out["rss_mib_connected"] = round(rss, 1)
            out["rss_mib_per_1000_daemons"] = round((rss - out["rss_mib_empty"]) * 1000.0 / a.daemons, 1)
            if a.trace:
                self.snapshot()
                out["memory_breakdown"] = breakdown(Path(a.trace), a.daemons)
                return out
            spy = self.spy("idle")
            await asyncio.sleep(a.idle)
            self.unspy(spy)
            out["idle_cpu_percent_of_one_core"] = round(100.0 * (self.rss_cpu()[1] - cpu0) / a.idle, 2)
            out["idle_seconds_measured"] = a.idle
            if a.front:
                out["front_rss_mib_connected"] = round(f_rss, 1)
                out["front_idle_cpu_percent"] = round(100.0 * (self.front_rss_cpu()[1] - f_cpu0) / a.idle, 2)
            out[f"rtt_{a.daemons}_daemons"] = await self.round_trips(session, jobs, a.rtt)
            out["fanout_in_process"] = [await self.fanout(session, jobs[:k]) for k in a.fanout if k <= len(jobs)]
            if not a.no_cli:
                spy = self.spy("fanout_cli")
                out["fanout_cli"] = await asyncio.get_running_loop().run_in_executor(None, self.cli_fanout)
                self.unspy(spy)
            out["throughput"] = await self.throughput(session, jobs)
            out["rss_mib_end"] = round(self.rss_cpu()[0], 1)
            if a.restart:
                out["restart"] = await self.restart(session, markers)
        out["anchor_condor_ssh_to_job"] = anchor(a.daemons)
        out["load_end"] = load()
        return out


def breakdown(trace: Path, daemons: int, top: int = 15) -> dict[str, Any]:
    """Bytes per connected daemon: RSS, C heap (malloc: OpenSSL and big Python objects), traced
    Python allocations and their top sites; OpenSSL and allocator overhead by difference."""
    import tracemalloc

    a, b = (json.loads((trace / f"{i}.json").read_text()) for i in (1, 2))
    per = {k: round((b[k] - a[k]) / daemons / 1024, 2) for k in ("rss", "c_heap", "traced")}
    if not (trace / "2.snapshot").exists():  # RELAY_TRACE=0: the true RSS and C heap
        return {"kib_per_daemon": {"rss": per["rss"], "c_heap_malloc": per["c_heap"]}}
    s1, s2 = (tracemalloc.Snapshot.load(str(trace / f"{i}.snapshot")) for i in (1, 2))
    stats = s2.filter_traces([tracemalloc.Filter(False, tracemalloc.__file__)]).compare_to(s1, "lineno")
    sites = [(f"{s.traceback[0].filename.split('/')[-1]}:{s.traceback[0].lineno}", round(s.size_diff / daemons))
             for s in stats[:top]]
    return {"kib_per_daemon": {"python_traced": per["traced"]}, "top_python_sites_bytes_per_daemon": sites}


def ready(p: subprocess.Popen[str], timeout: float) -> None:
    """Wait for a simulator's READY line (all its daemons registered)."""
    assert p.stdout is not None
    if not select.select([p.stdout], [], [], timeout)[0]:
        raise RuntimeError(f"simulated daemons not registered within {timeout:g} s")
    line = p.stdout.readline().strip()
    if line != "READY":
        raise RuntimeError(f"a simulator said {line!r} instead of READY (exit {p.poll()})")


def anchor(jobs: int) -> dict[str, Any]:
    """The same fan-out done the HTCondor way: one condor_ssh_to_job per job, one after another,
    extrapolated from the 10 calls recorded on a real pool (HTCondor cannot run here)."""
    try:
        rec = json.loads(TIMINGS.read_text())["condor_ssh_to_job_ls_l_s"]
    except (OSError, ValueError, KeyError):
        return {"note": f"no recorded timings at {TIMINGS}"}
    return {"source": str(TIMINGS), "calls_recorded": rec["n"], "per_call_s": {k: rec[k] for k in ("min", "median", "max")},
            "jobs": jobs, "sequential_s_at_median": round(jobs * rec["median"], 1),
            "sequential_s_at_min": round(jobs * rec["min"], 1),
            "sequential_s_at_mean": round(jobs * statistics.mean(rec["all"]), 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--daemons", type=int, default=1000)
    ap.add_argument("--procs", type=int, default=4)
    ap.add_argument("--cluster", type=int, default=1000)
    ap.add_argument("--auth", choices=("credential", "certificate"), default="credential",
                    help="how simulated daemons authenticate (jobs use a per-job credential)")
    ap.add_argument("--poll-wait", type=float, default=50.0)
    ap.add_argument("--rtt", type=int, default=300, help="round trips per latency figure")
    ap.add_argument("--fanout", type=int, nargs="*", default=[1000, 10000], help="in-process fan-out sizes")
    ap.add_argument("--no-cli", action="store_true", help="skip the `jobmon exec CLUSTER -- true` fan-out")
    ap.add_argument("--seconds", type=float, default=10.0, help="throughput run length")
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--idle", type=float, default=60.0, help="seconds of idle CPU measurement")
    ap.add_argument("--settle", type=float, default=5.0, help="seconds to wait before memory figures")
    ap.add_argument("--port", type=int, default=18443)
    ap.add_argument("--heartbeat", type=float, default=0.0,
                    help="daemons send heartbeats every S s on a second connection, as the wrapper does (0: none)")
    ap.add_argument("--watched", type=int, default=0,
                    help="the first N daemons report progress every --push-interval s, as watched daemons do")
    ap.add_argument("--push-interval", type=float, default=1.0)
    ap.add_argument("--restart", action="store_true",
                    help="then: commands in flight, SIGTERM, a new relay; reconnect burst, loss, memory")
    ap.add_argument("--restart-jobs", type=int, default=1000, help="jobs running a 2 s command at the restart")
    ap.add_argument("--front", choices=("haproxy",), help="terminate TLS in HAProxy (relay/front.py)")
    ap.add_argument("--front-procs", type=int, default=2, help="HAProxy processes (the fd limit is per process)")
    ap.add_argument("--root", help="run the relay and the CLI from this checkout (default: this one)")
    ap.add_argument("--profile", help="run the relay under cProfile, stats to this file")
    ap.add_argument("--trace", metavar="DIR", help="run the relay under tracemalloc; stop after the memory "
                                                   "breakdown (benchmarks/relay_traced.py)")
    ap.add_argument("--spy", metavar="DIR", help="py-spy the relay in each phase: DIR/<phase>.txt (collapsed stacks)")
    ap.add_argument("--spy-exe", default="py-spy", help="the py-spy command (pip install py-spy)")
    a = ap.parse_args()
    bench = Bench(a)
    try:
        result = asyncio.run(bench.run())
    finally:
        bench.stop_all()
    result["command"] = " ".join([".venv/bin/python", "benchmarks/relay_load.py"] + sys.argv[1:])
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
