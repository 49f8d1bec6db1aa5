#!/usr/bin/env python3
"""Run the relay (``python -m relay`` arguments) under tracemalloc for a memory breakdown.

    python benchmarks/relay_traced.py DIR -- --listen ... --pool none ...

``kill -USR1 <pid>`` writes DIR/<n>.snapshot (tracemalloc) and DIR/<n>.json (RSS, C heap
from mallinfo2, traced Python bytes); benchmarks/relay_load.py ``--trace DIR`` takes one
with the relay empty and one with every daemon connected and prints the bytes per
connection: Python's share by allocation site. tracemalloc's own records inflate RSS and
the C heap, so those come from a second run with ``RELAY_TRACE=0`` (no tracing).
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import sys
import tracemalloc
from pathlib import Path
from typing import Any


class _MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                               "fsmblks", "uordblks", "fordblks", "keepcost")]


def c_heap() -> int:
    """Bytes malloc has handed out (OpenSSL, and Python's objects over 512 bytes)."""
    fn = ctypes.CDLL("libc.so.6").mallinfo2
    fn.restype = _MallInfo2
    info = fn()
    return int(info.uordblks + info.hblkhd)


def rss() -> int:
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) * 1024 for line in fh if line.startswith("VmRSS:"))


def main() -> None:
    out, args = Path(sys.argv[1]), sys.argv[sys.argv.index("--") + 1:]
    out.mkdir(parents=True, exist_ok=True)
    traced = os.environ.get("RELAY_TRACE", "1") != "0"  # 0: RSS and C heap only (tracemalloc costs RSS)
    if traced:
        tracemalloc.start(12)
    count = [0]

    def dump(_sig: int, _frame: Any) -> None:
        count[0] += 1
        python = 0
        if traced:
            tracemalloc.take_snapshot().dump(str(out / f"{count[0]}.snapshot"))
            python = tracemalloc.get_traced_memory()[0]
        (out / f"{count[0]}.json").write_text(json.dumps({"rss": rss(), "c_heap": c_heap(), "traced": python}))

    signal.signal(signal.SIGUSR1, dump)
    sys.argv = ["relay", *args]
    from relay.__main__ import main as relay_main

    sys.exit(relay_main(args))


if __name__ == "__main__":
    main()
