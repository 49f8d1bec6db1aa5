#!/usr/bin/env python3
"""Summarise py-spy's collapsed stacks (``record -f raw``): where the relay's time goes.

    .venv/bin/python benchmarks/spy_summary.py /tmp/spy/fanout_cli.txt [--top 25]

Prints the share of samples per function, self (the innermost frame) and inclusive
(anywhere on the stack), as quoted in docs/PERFORMANCE.md.
"""

from __future__ import annotations

import argparse
from collections import Counter


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("file")
    ap.add_argument("--top", type=int, default=25)
    a = ap.parse_args()
    own: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    total = 0
    with open(a.file) as fh:
        for line in fh:
            stack, _, count = line.rstrip("\n").rpartition(" ")
            if not stack:
                continue
            n = int(count)
            frames = stack.split(";")
            total += n
            own[frames[-1]] += n
            for f in set(frames):
                incl[f] += n
    print(f"{total} samples")
    print("self:")
    for f, n in own.most_common(a.top):
        print(f"  {100 * n / total:5.1f}%  {f}")
    print("inclusive:")
    for f, n in incl.most_common(a.top):
        print(f"  {100 * n / total:5.1f}%  {f}")


if __name__ == "__main__":
    main()
