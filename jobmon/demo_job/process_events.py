#!/usr/bin/env python3
"""A small stand-in for an event-processing job (the payload of `jobmon demo`).

Usage: process_events.py INPUT OUTPUT [--delay SECONDS]

Reads one event per line from INPUT (``id energy``), "processes" each one
(waits DELAY seconds, sums the energies), prints ``Processed event N of M``
on stdout, writes a line per event to ``analysis.log``, and writes a summary
to OUTPUT. Exit status 0, or 2 if the input has no events.
"""

import argparse
import sys
import time


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("input")
    p.add_argument("output")
    p.add_argument("--delay", type=float, default=0.25)
    a = p.parse_args()
    with open(a.input) as f:
        events = [line.split() for line in f if line.strip() and not line.startswith("#")]
    if not events:
        print("no events in " + a.input, file=sys.stderr)
        return 2
    total = 0.0
    with open("analysis.log", "w") as log:
        log.write("analysis of %d events from %s\n" % (len(events), a.input))
        for n, (event_id, energy) in enumerate(events, 1):
            time.sleep(a.delay)
            total += float(energy)
            log.write("event %s: energy %s GeV, running total %.1f\n" % (event_id, energy, total))
            log.flush()
            print("Processed event %d of %d" % (n, len(events)), flush=True)
    with open(a.output, "w") as out:
        out.write("events: %d\ntotal energy: %.1f GeV\nmean energy: %.2f GeV\n"
                  % (len(events), total, total / len(events)))
    print("done: summary written to " + a.output, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
