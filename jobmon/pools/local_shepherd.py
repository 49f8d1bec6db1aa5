"""Runs one local-pool job and records how it ended (the local starter).

``python -m jobmon.pools.local_shepherd STATUS IN OUT ERR -- ARGV...`` starts
ARGV in the current directory (the job's sandbox) with stdin/stdout/stderr
connected to the named files, waits, and writes ``{"returncode": N}`` (negative
N: killed by signal -N) or ``{"error": "..."}`` to STATUS atomically. Because the
shepherd, not the relay, is the job's parent, a job keeps running while the
relay restarts; the restarted relay adopts it and reads STATUS when it ends.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys


def _write(path: str, data: dict[str, object]) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(data, f)
    os.replace(tmp, path)


def main(argv: list[str]) -> int:
    if len(argv) < 6 or argv[4] != "--":
        print("usage: local_shepherd STATUS IN OUT ERR -- ARGV...", file=sys.stderr)
        return 2
    status, stdin, stdout, stderr = argv[:4]
    cmd = argv[5:]
    os.umask(0o022)  # the job's umask, as under HTCondor's starter, not its parent's (a relay runs with 077)
    try:
        with open(stdin, "rb") as fin, open(stdout, "ab") as fout, open(stderr, "ab") as ferr:
            proc = subprocess.Popen(cmd, stdin=fin, stdout=fout, stderr=ferr)
    except OSError as exc:
        _write(status, {"error": f"Failed to execute '{cmd[0]}': {exc.strerror or exc}"})
        return 0
    rc = proc.wait()
    _write(status, {"returncode": rc})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
