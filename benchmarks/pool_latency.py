"""The user's latencies on the path a real pool takes (issue 9): job start -> daemon connected,
``jobmon exec`` round trips, new line -> seen by ``jobmon tail -f``; on an HTCondor pool the
same job measured with ``condor_ssh_to_job`` and ``condor_tail`` too.

    .venv/bin/python benchmarks/pool_latency.py                  # the embedded local pool
    .venv/bin/python benchmarks/pool_latency.py --pool condor    # this host's HTCondor pool (a normal user)
    ... [--calls 100] [--lines 100] [--ssh-calls 10] [--drain] [--json] [--save FILE] [--keep]

It does what a user does (INSTALL.md, "Single-host quick start"): starts
``jobmon relay --pool POOL --listen 127.0.0.1:0 --submit-root WORKDIR`` with
a fresh state directory, submits a cluster of 4 wrapped jobs with ``jobmon
submit`` (the live tests' ``ticker.py``: a line ``tick N <epoch>`` every 0.1 s;
job 0 is the one measured), and then:

* job start -> daemon connected: the job's start as the pool records it (its
  EXECUTE event in the user log, whole seconds, so up to 1 s too high) and as
  the payload records it (the time in its first line, exact), against the
  first moment the relay shows ``connected`` (polled every 20 ms);
* ``jobmon exec JOB -- ls -l``: ``--calls`` runs of the whole command as a
  subprocess, and the same call in-process (``jobmon.client.Client.exec``);
* ``jobmon tail -f``: for ``--lines`` new lines, arrival on its stdout minus
  the time written in the line;
* each quick-start command once, ``jobmon exec CLUSTER`` over the 4 jobs, and
  ``jobmon nodes drain``/``undrain`` (local pool; ``--drain`` on a real pool);
* with ``--pool condor`` and the tools on PATH: ``condor_ssh_to_job JOB ls -l``
  (``--ssh-calls`` runs after one warm-up), ``condor_tail JOB`` one-shot, and
  ``condor_tail -f JOB`` (first arrival of each distinct line; it re-sends).

Prints a Markdown table (``--json``: one JSON object). Exit 0 when every
measurement ran.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "support"))

from jmtest.livepool import TICKER_PY, Deadline, LiveSession, execute_times, jobmon_command  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cli_latency import compile_packages  # noqa: E402

TICK = re.compile(r"tick (\d+) (\d+\.\d+)")

SUBMIT = """\
universe                = vanilla
executable              = ticker.py
arguments               = "exit0 {runtime} 0.1 'hello world'"
should_transfer_files   = YES
when_to_transfer_output = ON_EXIT
output                  = ticker.$(Cluster).$(Process).out
error                   = ticker.$(Cluster).$(Process).err
log                     = ticker.log
request_cpus            = 1
request_memory          = 128M
request_disk            = 10M
queue 4
"""


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    data = sorted(values)
    if not data:
        return float("nan")
    rank = max(1, math.ceil(q / 100.0 * len(data)))
    return data[rank - 1]


def summary(values: list[float]) -> dict[str, Any]:
    return {"n": len(values), "min": min(values), "p50": statistics.median(values),
            "p99": percentile(values, 99), "max": max(values)} if values else {"n": 0}


def client_for(live: LiveSession) -> Any:
    from jobmon.client import Client, make_ssl_context
    from jobmon.settings import local_pki_paths

    p = local_pki_paths(live.state_dir)
    return Client(live.url, make_ssl_context(p["user_cert"], p["user_key"], p["ca"], None), 120.0)


def first_tick(client: Any, job: str) -> float | None:
    """The epoch in the payload's first line (when it really started)."""
    from jobmon.client import binary

    res = client.read(job, "@stdout", 0.0, 4096.0, 0.0)
    for line in binary(res.get("data")).decode("utf-8", "replace").splitlines():
        m = TICK.fullmatch(line)
        if m and m.group(1) == "1":
            return float(m.group(2))
    return None


def measure_connect(live: LiveSession, client: Any, deadline: Deadline) -> dict[str, Any]:
    t = time.monotonic()
    cluster = live.submit(live.workdir / "ticker.sub", deadline)
    submit_took = time.monotonic() - t
    submitted = time.time()
    job = f"{cluster}.0"
    connected_at = None
    while not deadline.expired:
        try:
            st = client.status(job)
        except Exception:  # not known yet
            st = {}
        if st.get("monitor_problem"):
            raise SystemExit(f"the relay reports a monitor problem for {job}: {st['monitor_problem']}")
        if st.get("connected"):
            connected_at = time.time()
            break
        time.sleep(0.02)
    if connected_at is None:
        raise SystemExit(f"{job} never connected ({deadline.describe()}):\n{live.diagnose([job])}\n"
                         f"{live.relay_log_tail()}")
    execute = None
    for _ in range(50):
        execute = execute_times(live.workdir / "ticker.log").get(job)
        if execute is not None:
            break
        time.sleep(0.1)
    started = None
    for _ in range(50):
        started = first_tick(client, job)
        if started is not None:
            break
        time.sleep(0.1)
    return {"job": job, "submit_command": submit_took, "submit_to_connected": connected_at - submitted,
            "execute_event_to_connected": None if execute is None else connected_at - execute,
            "payload_start_to_connected": None if started is None else connected_at - started}


def measure_exec(live: LiveSession, client: Any, job: str, calls: int) -> dict[str, Any]:
    cli: list[float] = []
    failures = 0
    cmd = [*jobmon_command(), *live.cred_args, "exec", job, "--", "ls", "-l"]
    for _ in range(calls):
        t = time.monotonic()
        res = subprocess.run(cmd, env=live.env, cwd=str(live.workdir), capture_output=True, timeout=120)
        cli.append(time.monotonic() - t)
        failures += res.returncode != 0
    inproc: list[float] = []
    for _ in range(calls):
        t = time.monotonic()
        res2 = client.exec(job, ["ls", "-l"], {})
        inproc.append(time.monotonic() - t)
        failures += int(res2.get("exit_code", 1)) != 0
    return {"cli": summary(cli), "in_process": summary(inproc), "failures": failures}


def measure_steps(live: LiveSession, job: str) -> dict[str, float]:
    """How long each command of INSTALL.md's quick start takes (one run each)."""
    out: dict[str, float] = {}
    for name, args in (("status", ["status", job]), ("q", ["q"]), ("ps", ["ps", job]), ("ls", ["ls", job]),
                       ("tail", ["tail", "-n", "5", job])):
        t = time.monotonic()
        live.jm(*args)
        out[name] = time.monotonic() - t
    return out


def measure_cluster_and_nodes(live: LiveSession, job: str, drain: bool) -> dict[str, Any]:
    """``jobmon exec CLUSTER`` over the 4 jobs (5 runs); ``jobmon nodes drain/undrain`` if asked."""
    cluster = job.split(".")[0]
    runs = []
    for _ in range(5):
        t = time.monotonic()
        res = live.jm("exec", cluster, "--", "sh", "-c", 'grep "^ProcId = " "$_CONDOR_JOB_AD"')
        runs.append(time.monotonic() - t)
        if res.stdout.count(": exit 0") != 4:
            raise SystemExit(f"fan-out did not reach 4 jobs: {res.stdout}")
    out: dict[str, Any] = {"fanout_4": summary(runs)}
    if drain:
        node = live.jm_json("nodes", "list")[0]["name"]
        for action in ("drain", "undrain"):
            t = time.monotonic()
            live.jm("nodes", action, node)
            out[f"nodes_{action}"] = time.monotonic() - t
    return out


def measure_rm(live: LiveSession, client: Any, job: str) -> dict[str, float]:
    """``jobmon rm JOB`` and until the relay shows the job removed with its daemon gone."""
    t = time.monotonic()
    live.jm("rm", job)
    out = {"rm_command": time.monotonic() - t}
    while time.monotonic() - t < 60:
        st = client.status(job)
        if st.get("state") == "removed" and not st.get("connected"):
            out["rm_to_removed"] = time.monotonic() - t
            break
        time.sleep(0.02)
    return out


def follow(cmd: list[str], env: dict[str, str] | None, cwd: Path, want: int, limit: float) -> list[float]:
    """Run a follower; delay (arrival - written) of the first arrival of each new ``tick`` line."""
    proc = subprocess.Popen(cmd, env=env, cwd=str(cwd), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            stdin=subprocess.DEVNULL)
    started = time.time()
    seen: dict[int, float] = {}

    def read() -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            now = time.time()
            m = TICK.fullmatch(raw.decode("utf-8", "replace").strip())
            if m and float(m.group(2)) >= started and int(m.group(1)) not in seen:
                seen[int(m.group(1))] = now - float(m.group(2))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    end = time.monotonic() + limit
    while len(seen) < want and time.monotonic() < end and proc.poll() is None:
        time.sleep(0.1)
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    reader.join(5)
    return [seen[n] for n in sorted(seen)]


def measure_condor_tools(job: str, calls: int, lines: int, cwd: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    ssh = shutil.which("condor_ssh_to_job")
    if ssh:
        warm = subprocess.run([ssh, "-auto-retry", job, "true"], capture_output=True, timeout=120)
        times, failures = [], 0
        for _ in range(calls):
            t = time.monotonic()
            res = subprocess.run([ssh, job, "ls -l"], capture_output=True, timeout=120)
            times.append(time.monotonic() - t)
            failures += res.returncode != 0
        out["condor_ssh_to_job"] = {**summary(times), "failures": failures, "warmup_rc": warm.returncode}
    tail = shutil.which("condor_tail")
    if tail:
        times = []
        for _ in range(calls):
            t = time.monotonic()
            subprocess.run([tail, job], capture_output=True, timeout=60)
            times.append(time.monotonic() - t)
        out["condor_tail_oneshot"] = summary(times)
        out["condor_tail_f"] = summary(follow([tail, "-f", job], None, cwd, lines, lines * 0.1 + 20))
    return out


def fmt(seconds: Any) -> str:
    if not isinstance(seconds, (int, float)) or math.isnan(seconds):
        return "-"
    return f"{seconds * 1000:.0f} ms" if seconds < 10 else f"{seconds:.1f} s"


def table(r: dict[str, Any]) -> str:
    c, e, t = r["connect"], r["exec"], r["tail_f"]
    rows = [
        ("job start (EXECUTE event, 1 s resolution) -> daemon connected", fmt(c["execute_event_to_connected"])),
        ("payload's first line -> daemon connected", fmt(c["payload_start_to_connected"])),
        ("`jobmon submit` returned -> daemon connected", fmt(c["submit_to_connected"])),
        (f"`jobmon exec JOB -- ls -l`, whole command, p50 / p99 (n={e['cli']['n']})",
         f"{fmt(e['cli']['p50'])} / {fmt(e['cli']['p99'])}"),
        (f"same call in-process (`Client.exec`), p50 / p99 (n={e['in_process']['n']})",
         f"{fmt(e['in_process']['p50'])} / {fmt(e['in_process']['p99'])}"),
        (f"new line -> seen by `jobmon tail -f`, p50 / max (n={t['n']})", f"{fmt(t.get('p50'))} / {fmt(t.get('max'))}"),
    ]
    st = r.get("steps") or {}
    rows.append(("`jobmon relay` start -> answering", fmt(r.get("relay_start"))))
    rows.append(("`jobmon submit` (whole command)", fmt(c.get("submit_command"))))
    for name in ("status", "q", "ps", "ls", "tail"):
        if name in st:
            rows.append((f"`jobmon {name}` (whole command, one run)", fmt(st[name])))
    cl = r.get("cluster") or {}
    if "fanout_4" in cl:
        f = cl["fanout_4"]
        rows.append((f"`jobmon exec CLUSTER -- ...` over 4 jobs, p50 / max (n={f['n']})",
                     f"{fmt(f['p50'])} / {fmt(f['max'])}"))
    for action in ("drain", "undrain"):
        if f"nodes_{action}" in cl:
            rows.append((f"`jobmon nodes {action} NODE` (whole command)", fmt(cl[f"nodes_{action}"])))
    if "rm_command" in st:
        rows.append(("`jobmon rm JOB` (whole command)", fmt(st["rm_command"])))
    if "rm_to_removed" in st:
        rows.append(("`jobmon rm` issued -> relay shows removed, daemon gone", fmt(st["rm_to_removed"])))
    ct = r.get("condor_tools") or {}
    if "condor_ssh_to_job" in ct:
        s = ct["condor_ssh_to_job"]
        rows.append((f"`condor_ssh_to_job JOB ls -l`, p50 / max (n={s['n']})", f"{fmt(s['p50'])} / {fmt(s['max'])}"))
        if s.get("p50") and e["cli"].get("p50"):
            rows.append(("`jobmon exec` speed-up over condor_ssh_to_job (p50, whole commands)",
                         f"{s['p50'] / e['cli']['p50']:.1f}x"))
            rows.append(("`jobmon exec` speed-up over condor_ssh_to_job (p50, in-process call)",
                         f"{s['p50'] / e['in_process']['p50']:.1f}x"))
    if "condor_tail_oneshot" in ct:
        s = ct["condor_tail_oneshot"]
        rows.append((f"`condor_tail JOB` one-shot, p50 (n={s['n']})", fmt(s["p50"])))
    if "condor_tail_f" in ct:
        s = ct["condor_tail_f"]
        rows.append((f"new line -> seen by `condor_tail -f`, p50 / max (n={s['n']})",
                     f"{fmt(s.get('p50'))} / {fmt(s.get('max'))}"))
    head = f"pool: {r['pool']} ({r['pool_address']}), {r['python']}, load {r['load']}\n\n"
    return head + "| figure | value |\n|---|---|\n" + "\n".join(f"| {a} | {b} |" for a, b in rows) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pool", choices=("local", "condor"), default="local")
    ap.add_argument("--calls", type=int, default=100, help="exec round trips (default 100)")
    ap.add_argument("--lines", type=int, default=100, help="new lines followed by tail -f (default 100)")
    ap.add_argument("--ssh-calls", type=int, default=10, help="condor_ssh_to_job / condor_tail runs (default 10)")
    ap.add_argument("--json", action="store_true", help="one JSON object instead of the table")
    ap.add_argument("--drain", action="store_true",
                    help="with --pool condor: also time `jobmon nodes drain/undrain` (needs ADMINISTRATOR)")
    ap.add_argument("--save", metavar="FILE", help="also write the JSON object to FILE")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    a = ap.parse_args(argv)
    if a.pool == "condor" and os.geteuid() == 0:
        print("pool_latency: HTCondor will not run root's jobs; run this as a normal user", file=sys.stderr)
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="jobmon-latency-"))
    budget = Deadline(900, "the benchmark's 900 s")
    compile_packages()  # as a user's install has them: no source compiled at every command
    live = LiveSession(workdir, budget, a.pool, slots=4)
    live.env.pop("PYTHONDONTWRITEBYTECODE", None)
    runtime = int(60 + a.calls * 1.5 + a.lines * 0.1 + a.ssh_calls * 3 + 60)
    (workdir / "ticker.py").write_text(TICKER_PY)
    (workdir / "ticker.py").chmod(0o755)
    (workdir / "ticker.sub").write_text(SUBMIT.format(runtime=runtime))
    result: dict[str, Any] = {"pool": a.pool, "python": platform.python_version(),
                              "load": " ".join(f"{x:.2f}" for x in os.getloadavg()),
                              "when": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())}
    t = time.monotonic()
    try:
        live.start_relay()
        result["relay_start"] = time.monotonic() - t
        result["relay_command"] = " ".join(["jobmon", *live.relay_command[live.relay_command.index("relay"):]])
        result["pool_address"] = live.relay_log_tail(200).split(f"with the {a.pool} pool (", 1)[-1].split(")")[0]
        client = client_for(live)
        result["connect"] = measure_connect(live, client, budget.sub(180, "the job connecting"))
        job = result["connect"]["job"]
        result["exec"] = measure_exec(live, client, job, a.calls)
        result["tail_f"] = summary(follow([*jobmon_command(), *live.cred_args, "tail", "-f", "-n", "0", job],
                                          live.env, workdir, a.lines, a.lines * 0.1 + 30))
        result["steps"] = measure_steps(live, job)
        live.wait("the 4 jobs connected", lambda: sum(1 for j in live.jobs(int(job.split(".")[0])).values()
                                                      if j.get("connected")) == 4,
                  [job.split(".")[0]], budget.sub(120, "the cluster connecting"))
        result["cluster"] = measure_cluster_and_nodes(live, job, a.pool == "local" or a.drain)
        if a.pool == "condor":
            result["condor_tools"] = measure_condor_tools(job, a.ssh_calls, a.lines, workdir)
        result["steps"].update(measure_rm(live, client, job))
    finally:
        live.remove_all()
        live.stop_relay()
        if not a.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    if a.save:
        Path(a.save).write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    if a.json:
        print(json.dumps(result, indent=2, sort_keys=True))
    else:
        print(table(result))
    failed = result["exec"]["failures"] or result["tail_f"]["n"] < a.lines
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
