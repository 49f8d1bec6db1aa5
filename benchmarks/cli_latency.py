"""What a user waits for: whole `jobmon` commands against a local relay (issue 12).

    .venv/bin/python benchmarks/cli_latency.py [--runs 50] [--tail-lines 100] [--importtime FILE]

It does what a user does on one machine, in a temporary directory (HOME and
JOBMON_STATE_DIR point there; X509_* and JOBMON_* of the caller are dropped):

0. byte-compiles the installed packages (``compileall``) and drops
   ``PYTHONDONTWRITEBYTECODE`` from the commands' environment: a user's install
   has its bytecode (pip compiles it), and a command that compiles jobmon's
   sources on every start measures the compiler, not the command;
1. `jobmon relay --pool local --listen 127.0.0.1:0` (the zero-setup local CA
   and user certificate are made by this first start);
2. `jobmon submit job.sub` of a long-running job whose payload prints
   timestamped lines on demand, and waits until its daemon is connected;
3. runs each measured command ``--runs`` times as a subprocess, interleaved
   (one of each per round, so load from elsewhere spreads evenly), after two
   warm-up rounds, and prints min / p50 / p99 / max wall time per command;
   `python -c pass` of the same interpreter is the floor;
4. `jobmon tail -f JOB`: the payload prints ``--tail-lines`` lines, each with
   the time it was written, at random gaps of 20-200 ms; the latency of a line
   is the time `jobmon tail -f`'s output pipe delivered it minus that stamp;
5. `jobmon exec JOB -- ls -l` once more under ``PYTHONPROFILEIMPORTTIME=1``
   (= ``python -X importtime``): the slowest imports, raw output to
   ``--importtime FILE``.

Quantiles are nearest-rank: with 50 runs p99 is the 50th of 50 sorted values,
i.e. the slowest run. Prints a Markdown table and one JSON object.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

from jobmon.demo import RelayProcess, start_relay

PAYLOAD = textwrap.dedent("""\
    #!/usr/bin/env python3
    import os, random, sys, time
    go, stop = sys.argv[1], sys.argv[2]
    print("payload started", flush=True)
    n = 0
    while not os.path.exists(stop):
        if os.path.exists(go):
            n += 1
            print("line %d %.6f" % (n, time.time()), flush=True)
            time.sleep(random.uniform(0.02, 0.2))
        else:
            time.sleep(0.05)
    """)


def quantile(values: list[float], q: float) -> float:
    """Nearest-rank quantile."""
    s = sorted(values)
    return s[max(0, math.ceil(q * len(s)) - 1)]


def summary(values: list[float]) -> dict[str, float]:
    return {"min": min(values), "p50": statistics.median(values), "p99": quantile(values, 0.99),
            "max": max(values), "n": len(values)}


def user_env(home: Path, state: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("X509_", "JOBMON_", "PYTEST_"))}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.update(HOME=str(home), JOBMON_STATE_DIR=str(state))
    return env


def compile_packages() -> list[str]:
    """Byte-compile jobmon and its siblings where they are imported from (a user's install is)."""
    import compileall
    import importlib

    dirs = []
    for name in ("jobmon", "relay", "jobmon_wrapper", "submit_templates"):
        mod = importlib.import_module(name)
        d = str(Path(mod.__file__ or "").parent)
        compileall.compile_dir(d, quiet=1)
        dirs.append(d)
    return dirs


def jobmon_exe() -> list[str]:
    exe = Path(sys.executable).parent / "jobmon"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "jobmon.cli.main"]


def condor_config_present() -> bool:
    return "CONDOR_CONFIG" in os.environ or any(
        os.path.isfile(p) for p in ("/etc/condor/condor_config", "/usr/local/etc/condor_config",
                                    os.path.expanduser("~condor/condor_config")))


class Bench:
    def __init__(self, tmp: Path, jobmon: list[str] | None = None) -> None:
        self.tmp = tmp
        self.home = tmp / "home"
        self.state = tmp / "state"
        self.work = self.home / "job"
        self.work.mkdir(parents=True)
        self.env = user_env(self.home, self.state)
        self.jobmon = jobmon or jobmon_exe()
        self.relay: RelayProcess | None = None
        self.job = ""

    def run(self, *args: str, check: bool = True, **kw: Any) -> subprocess.CompletedProcess[str]:
        kw.setdefault("cwd", self.home)
        res = subprocess.run([*self.jobmon, *args], capture_output=True, text=True, env=self.env,
                             stdin=subprocess.DEVNULL, timeout=120, **kw)
        if check and res.returncode != 0:
            raise SystemExit(f"jobmon {' '.join(args)}: exit {res.returncode}: {res.stderr.strip()}")
        return res

    def start(self) -> None:
        self.relay = start_relay(self.state, slots=2, extra_args=["--pool", "local"], env=self.env)
        (self.work / "payload.py").write_text(PAYLOAD)
        (self.work / "payload.py").chmod(0o755)
        (self.work / "job.sub").write_text(textwrap.dedent("""\
            executable = payload.py
            arguments = go stop
            output = out.txt
            error = err.txt
            log = job.log
            queue
            """))
        out = self.run("submit", "job.sub", cwd=self.work).stdout.strip().splitlines()[-1]
        cluster = int(out.rstrip(".").split()[-1])
        self.job = f"{cluster}.0"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            st = json.loads(self.run("status", "--json", self.job).stdout)
            if st.get("state") == "running" and st.get("connected"):
                return
            time.sleep(0.2)
        raise SystemExit(f"job {self.job} did not connect within 60 s")

    def gate(self, *argv: str) -> None:
        """The payload's go/stop files are in its sandbox, which only the job can see (as on an
        execute node): they are made and removed through the job itself."""
        self.run("exec", self.job, "--", *argv, check=False)

    def finish(self) -> None:
        if self.job:
            self.gate("touch", "stop")
        if self.relay is not None:
            self.relay.cleanup()

    def commands(self) -> dict[str, list[str]]:
        j = self.job
        main = [sys.executable, "-m", "jobmon.cli.main"]
        return {
            "python -c pass": [sys.executable, "-c", "pass"],
            "jobmon exec JOB -- ls -l": [*self.jobmon, "exec", j, "--", "ls", "-l"],
            "jobmon tail JOB": [*self.jobmon, "tail", j],
            "jobmon ps JOB": [*self.jobmon, "ps", j],
            "jobmon ls JOB": [*self.jobmon, "ls", j],
            "jobmon status JOB": [*self.jobmon, "status", j],
            "python -m jobmon.cli.main exec JOB -- ls -l": [*main, "exec", j, "--", "ls", "-l"],
            "jobmon exec --help": [*self.jobmon, "exec", "--help"],
        }

    def measure(self, runs: int, warmup: int = 2) -> dict[str, list[float]]:
        cmds = self.commands()
        times: dict[str, list[float]] = {name: [] for name in cmds}
        for rnd in range(warmup + runs):
            for name, argv in cmds.items():
                t0 = time.perf_counter()
                res = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=self.home,
                                     stdin=subprocess.DEVNULL, env=self.env, timeout=120)
                elapsed = (time.perf_counter() - t0) * 1000.0
                if res.returncode != 0:
                    raise SystemExit(f"{name}: exit {res.returncode}: {res.stderr.decode(errors='replace')}")
                if rnd >= warmup:
                    times[name].append(elapsed)
        return times

    def tail_follow(self, lines: int) -> list[float]:
        """Latency (ms) from the payload writing a line to `jobmon tail -f` delivering it."""
        proc = subprocess.Popen([*self.jobmon, "tail", "-f", "-n", "1", self.job], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, env=self.env, cwd=self.home)
        assert proc.stdout is not None
        got: list[tuple[float, bytes]] = []
        ready = threading.Event()
        done = threading.Event()

        def reader() -> None:
            assert proc.stdout is not None
            for raw in iter(proc.stdout.readline, b""):
                now = time.time()
                if raw.startswith(b"line "):
                    got.append((now, raw))
                    if len(got) >= lines:
                        done.set()
                else:
                    ready.set()  # the last line before following: tail is now following
            done.set()

        t = threading.Thread(target=reader, daemon=True)
        t.start()
        if not ready.wait(30):
            proc.kill()
            raise SystemExit("jobmon tail -f printed nothing within 30 s")
        self.gate("touch", "go")
        done.wait(60 + lines * 0.3)
        self.gate("rm", "-f", "go")
        proc.send_signal(2)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        if len(got) < lines:
            raise SystemExit(f"jobmon tail -f delivered {len(got)} of {lines} lines")
        return [(now - float(raw.split()[2])) * 1000.0 for now, raw in got[:lines]]

    def importtime(self, raw_file: Path | None) -> list[tuple[int, int, str]]:
        env = dict(self.env, PYTHONPROFILEIMPORTTIME="1")
        res = subprocess.run([*self.jobmon, "exec", self.job, "--", "ls", "-l"], capture_output=True,
                             text=True, env=env, stdin=subprocess.DEVNULL, timeout=120, cwd=self.home)
        lines = [ln for ln in res.stderr.splitlines() if ln.startswith("import time:")]
        if raw_file is not None:
            raw_file.write_text("\n".join(lines) + "\n")
        rows = []
        for ln in lines[1:]:
            m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \| (\s*)(\S+)", ln)
            if m:
                rows.append((int(m.group(1)), int(m.group(2)), m.group(3) + m.group(4)))
        return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--tail-lines", type=int, default=100)
    ap.add_argument("--importtime", type=Path, metavar="FILE", help="write the raw -X importtime output here")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    ap.add_argument("--jobmon", metavar="PATH", help="the jobmon program to measure (default: the one beside "
                    "this interpreter); with PYTHONPATH pointing at another checkout, measures that one")
    a = ap.parse_args()
    uid_proxy = Path(f"/tmp/x509up_u{os.getuid()}")
    if uid_proxy.exists():
        print(f"warning: {uid_proxy} exists; jobmon will present it instead of the local certificate",
              file=sys.stderr)
    condor = condor_config_present()  # before anything here could load the bindings (they set CONDOR_CONFIG)
    compiled = compile_packages()
    tmp = Path(tempfile.mkdtemp(prefix="jobmon-cli-bench-"))
    os.chdir(tmp)  # `python -m` puts the working directory first on sys.path: a checkout here would win
    b = Bench(tmp, [a.jobmon] if a.jobmon else None)
    try:
        t0 = time.monotonic()
        b.start()
        print(f"relay {b.relay.url if b.relay else '?'}, job {b.job} connected "
              f"({time.monotonic() - t0:.1f} s)", file=sys.stderr)
        times = b.measure(a.runs)
        tail = b.tail_follow(a.tail_lines)
        imports = b.importtime(a.importtime)
    finally:
        b.finish()
        if not a.keep:
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)
    stats = {name: summary(v) for name, v in times.items()}
    floor = stats["python -c pass"]["p50"]
    print(f"\n{platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.2f}, HTCondor config present: {condor}, "
          f"{a.runs} runs each, bytecode compiled in {', '.join(compiled)}\n")
    print("| command | min | p50 | p99 | max | p50 − floor |")
    print("|---|---|---|---|---|---|")
    for name, s in stats.items():
        print(f"| `{name}` | {s['min']:.0f} ms | {s['p50']:.0f} ms | {s['p99']:.0f} ms | {s['max']:.0f} ms "
              f"| {s['p50'] - floor:+.0f} ms |")
    ts = summary(tail)
    print(f"| `jobmon tail -f JOB`: line written → printed ({len(tail)} lines) | {ts['min']:.1f} ms "
          f"| {ts['p50']:.1f} ms | {ts['p99']:.1f} ms | {ts['max']:.1f} ms | |")
    top = sorted(((cum, name) for _, cum, name in imports if not name.startswith(" ")), reverse=True)[:12]
    total = sum(cum for _, cum, name in imports if not name.startswith(" "))
    print(f"\n`jobmon exec JOB -- ls -l` imports (-X importtime): {len(imports)} modules, "
          f"{total / 1000:.1f} ms cumulative at top level; largest top-level imports:")
    for cum, name in top:
        print(f"    {cum / 1000:7.1f} ms  {name}")
    print(json.dumps({"commands": stats, "tail_follow_ms": ts, "imports": len(imports),
                      "import_ms": total / 1000}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
