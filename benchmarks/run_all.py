#!/usr/bin/env python3
"""``make bench``: every benchmark once, one after the other, with short sizes.

    .venv/bin/python benchmarks/run_all.py [--only NAME ...]

Each harness runs as its own process (so one failing does not stop the rest)
and prints its own figures; this prints a line per harness with its exit
status and wall time at the end. Sizes here are for a quick look; the figures
in docs/PERFORMANCE.md come from the full commands written next to them. Run
on a quiet machine: two cores shared with anything else give other numbers.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

#: name -> arguments for a short run
QUICK: dict[str, list[str]] = {
    "wrapper_bench.py": ["--idle", "10", "--runs", "3"],
    "relay_load.py": ["--daemons", "1000", "--procs", "2", "--rtt", "100", "--fanout", "1000",
                      "--seconds", "5", "--idle", "10"],
    "pool_latency.py": ["--calls", "30", "--lines", "30", "--ssh-calls", "3"],
    "progress_latency.py": ["--updates", "20"],
    "legacy_latency.py": ["--calls", "20"],
    "cli_latency.py": [],
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", nargs="*", metavar="NAME", help="run only these (file names)")
    args = ap.parse_args()
    summary = []
    for name, extra in QUICK.items():
        path = HERE / name
        if not path.exists() or (args.only and name not in args.only):
            continue
        print(f"== {name} {' '.join(extra)}", flush=True)
        started = time.monotonic()
        rc = subprocess.call([sys.executable, str(path), *extra])
        summary.append(f"{name}: exit {rc}, {time.monotonic() - started:.0f} s")
    print("\n".join(["== summary", *summary]))
    return 0 if all(": exit 0," in line for line in summary) else 1


if __name__ == "__main__":
    sys.exit(main())
