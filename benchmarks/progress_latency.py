#!/usr/bin/env python3
"""How fresh is the progress a watcher sees? (issue 13)

    .venv/bin/python benchmarks/progress_latency.py [--updates 100] [--every 0.5] [--heartbeat 30]

Starts `jobmon relay` with the local pool (as a user does; zero-setup PKI in a
temporary state directory, production heartbeat of 30 s), submits a wrapped
job whose payload prints ``Processed event N of M at <epoch>`` every
``--every`` seconds, and watches it the way `jobmon status --watch` does
(``jobmon.watch`` long-polls). For every new value the watcher receives,
latency = arrival time - the epoch the payload wrote into that very line (the
progress struct carries the matched line as ``text``). Prints min/p50/p99/max
over ``--updates`` received values, and the count of values the payload
printed that were coalesced away (a watched daemon sends at most one a second).
``--unwatched S`` first runs S seconds without a watcher, to show that the
watcher-less job's progress is as old as the last heartbeat.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from jobmon.client import Client  # noqa: E402
from jobmon.demo import start_relay  # noqa: E402
from jobmon.settings import load_settings  # noqa: E402

PAYLOAD = """\
    #!/usr/bin/env python3
    import sys, time
    every, n = float(sys.argv[1]), int(sys.argv[2])
    for i in range(1, n + 1):
        print("Processed event %d of %d at %.6f" % (i, n, time.time()), flush=True)
        time.sleep(every)
    """


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100.0 * (len(values) - 1))))]


def stamp(progress: dict[str, Any]) -> float | None:
    text = str(progress.get("text", ""))
    try:
        return float(text.rsplit(" at ", 1)[1])
    except (IndexError, ValueError):
        return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--updates", type=int, default=100, help="values to receive")
    ap.add_argument("--every", type=float, default=0.5, help="the payload prints a value this often (s)")
    ap.add_argument("--heartbeat", type=float, default=30.0, help="the relay's heartbeat (s)")
    ap.add_argument("--unwatched", type=float, default=0.0, help="seconds without a watcher first")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="jobmon-progress-bench-"))
    state = tmp / "state"
    work = tmp / "work"
    work.mkdir()
    (work / "payload.py").write_text(textwrap.dedent(PAYLOAD))
    (work / "payload.py").chmod(0o755)
    total = int((args.updates + 20) / min(1.0, args.every) * 1.2 + args.unwatched / args.every) + 100
    (work / "job.sub").write_text(
        f'executable = payload.py\narguments = "{args.every} {total}"\n'
        '+JobMonProgressRegex = "Processed event ([0-9]+) of ([0-9]+)"\nqueue\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JOBMON_", "X509_"))}
    env.update(JOBMON_NO_CONDOR_CONFIG="1", HOME=str(tmp))
    relay = start_relay(state, config={"heartbeat": args.heartbeat, "submit_roots": [str(tmp)]}, env=env)
    out: dict[str, Any] = {"every_s": args.every, "heartbeat_s": args.heartbeat}
    try:
        cli = [sys.executable, "-m", "jobmon.cli.main", "--state-dir", str(state), "--relay", relay.url]
        res = subprocess.run([*cli, "submit", str(work / "job.sub")], capture_output=True, text=True, env=env,
                             cwd=work, check=True)
        job = res.stdout.strip().rstrip(".").split()[-1] + ".0"
        client = Client.from_settings(load_settings({"state_dir": str(state), "relay": relay.url}))
        deadline = time.monotonic() + 60
        while not client.status(job).get("connected"):
            if time.monotonic() > deadline:
                raise SystemExit(f"{job} never connected: {relay.log_text()[-2000:]}")
            time.sleep(0.1)
        if args.unwatched:
            ages = []
            end = time.monotonic() + args.unwatched
            while time.monotonic() < end:
                p = client.status(job).get("progress") or {}
                t = stamp(p)
                if t is not None:
                    ages.append(time.time() - t)
                time.sleep(0.5)
            out["unwatched_progress_age_s"] = {"p50": round(pct(ages, 50), 2), "max": round(max(ages), 2)} \
                if ages else None
        answer = client.call("jobmon.watch", [job], {"lease": 15})
        latencies: list[float] = []
        seen: list[float] = []
        while len(latencies) < args.updates:
            answer = client.call("jobmon.watch", [job], {"since": answer["since"], "wait": 5, "lease": 15})
            arrived = time.time()
            p = (answer["jobs"].get(job) or {}).get("progress") or {}
            t = stamp(p)
            if t is None or (seen and p.get("done") == seen[-1]):
                continue
            seen.append(float(p["done"]))
            latencies.append((arrived - t) * 1000.0)
        ms = [round(x, 1) for x in latencies]
        out["received"] = len(ms)
        out["latency_ms"] = {"min": min(ms), "p50": round(pct(ms, 50), 1), "p99": round(pct(ms, 99), 1),
                             "max": max(ms)}
        out["printed_between_first_and_last"] = int(seen[-1] - seen[0]) + 1
        out["coalesced_away"] = out["printed_between_first_and_last"] - len(seen)
    finally:
        relay.cleanup()
    out["command"] = " ".join([".venv/bin/python", "benchmarks/progress_latency.py"] + sys.argv[1:])
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
