"""``jobmon tail [-f] [-n N] JOB [PATH]``: the last lines of a file in a job, and follow it.

Following uses ``jobmon.read(..., wait)``: the relay holds the request until
the file grows, so there is no busy polling. It stops when the job ends (the
relay answers JOB_ENDED / JOB_NOT_CONNECTED after the job's status says ended)
or on Ctrl-C.
"""

from __future__ import annotations

import sys
import time

from jobmon import routing
from jobmon.cli.common import Context, parse_job
from jobmon.client import binary
from jobmon.errors import RemoteFault

CHUNK = 65536
WAIT = 10.0
RETRY = 1.0
ENDED = ("finished", "removed")


def last_lines(data: bytes, n: int, at_start: bool) -> bytes:
    """The last ``n`` lines of ``data`` (dropping a partial first line unless at the file start)."""
    if n <= 0:
        return b""
    lines = data.splitlines(keepends=True)
    if not at_start and lines:
        lines = lines[1:]
    return b"".join(lines[-n:])


def run(ctx: Context) -> int:
    job = str(parse_job(ctx.args.job))
    path = ctx.args.path
    relays = routing.relays_for(ctx, timeout=WAIT + 60)
    client = relays.home
    while True:
        try:
            res = client.read(job, path, -float(CHUNK), float(CHUNK), 0.0)
            break
        except RemoteFault as exc:
            # imported here only: the fault table costs a quick command ~0.6 ms
            from jobmon.faults import Fault

            if exc.code == Fault.JOB_NOT_CONNECTED and client is relays.home:
                client = routing.client_for_job(relays, job)  # another relay has the job's daemon?
                if client is not relays.home:
                    continue
            # with -f, a job whose monitor has not connected yet (or reconnects) is waited for
            if not (ctx.args.follow and exc.code == Fault.JOB_NOT_CONNECTED) or _ended(ctx, job):
                raise
            time.sleep(RETRY)
    data = binary(res.get("data"))
    _write(last_lines(data, ctx.args.lines, float(res.get("offset", 0)) <= 0))
    if not ctx.args.follow:
        return 0
    offset = float(res.get("next_offset", len(data)))
    while True:
        try:
            res = client.read(job, path, offset, float(CHUNK), WAIT)
        except RemoteFault as exc:
            from jobmon.faults import Fault

            if exc.code in (Fault.JOB_ENDED, Fault.JOB_NOT_CONNECTED) and _ended(ctx, job):
                return 0
            if exc.code == Fault.JOB_NOT_CONNECTED:
                time.sleep(RETRY)  # the relay restarted or the daemon reconnects: keep following
                continue
            raise
        chunk = binary(res.get("data"))
        if chunk:
            _write(chunk)
            offset = float(res.get("next_offset", offset + len(chunk)))
        elif _ended(ctx, job):
            return 0


def _ended(ctx: Context, job: str) -> bool:
    return str(ctx.client().status(job).get("state")) in ENDED


def _write(data: bytes) -> None:
    if data:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
