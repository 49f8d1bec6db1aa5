"""``jobmon exec JOB -- CMD ...``: one job (exit with its code) or a whole cluster (fan-out)."""

from __future__ import annotations

import sys

from jobmon import routing
from jobmon.cli.common import Context
from jobmon.client import binary
from jobmon.errors import UsageError
from jobmon.jobid import JobId

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def remote_exit(result: dict[str, Any]) -> int:
    """The exit code `jobmon exec` returns for one result: code, or 128+signal."""
    if "signal" in result and result["signal"] is not None:
        return 128 + int(result["signal"])
    return int(result.get("exit_code", 1))


def run(ctx: Context) -> int:
    argv = list(ctx.args.argv)
    if argv and argv[0] == "--":
        argv = argv[1:]
    if not argv:
        raise UsageError("no command given", hint="jobmon exec JOB -- CMD [ARGS...]")
    job = JobId.parse(ctx.args.job)
    options: dict[str, Any] = {"shell": bool(ctx.args.shell)}
    if ctx.args.shell:
        argv = [" ".join(argv)] if len(argv) > 1 else argv
    if ctx.args.timeout is not None:
        options["timeout"] = float(ctx.args.timeout)
    client_timeout = max(120.0, float(ctx.args.timeout or 60) + 30)
    relays = routing.relays_for(ctx, timeout=client_timeout)
    if not job.is_cluster:
        res = routing.on_job_relay(relays, str(job), lambda c: c.exec(str(job), argv, options))
        sys.stdout.buffer.write(binary(res.get("stdout")))
        sys.stdout.buffer.flush()
        sys.stderr.buffer.write(binary(res.get("stderr")))
        sys.stderr.buffer.flush()
        if res.get("truncated"):
            print("jobmon: output truncated", file=sys.stderr)
        if res.get("timed_out"):
            print(f"jobmon: command timed out in {job}", file=sys.stderr)
        return remote_exit(res)
    show = ctx.args.progress if getattr(ctx.args, "progress", None) is not None else ctx.err.isatty()
    from jobmon import fanout

    progress = fanout.Progress(ctx.err) if show else None
    all_ok = True
    count = 0
    for batch in fanout.fan_out(relays, {"cluster": job.cluster}, argv, options, progress):
        lines = []
        for jid, fres, err in batch:
            count += 1
            if err is not None:
                all_ok = False
                lines.append(f"{jid}: error: {err}")
                continue
            assert fres is not None
            code = remote_exit(fres)
            all_ok = all_ok and code == 0
            for stream in ("stdout", "stderr"):
                text = binary(fres.get(stream)).decode("utf-8", "replace")
                lines.extend(f"{jid}: {line}" if stream == "stdout" else f"{jid}! {line}"
                             for line in text.splitlines())
            lines.append(f"{jid}: exit {code}" if "signal" not in fres else f"{jid}: signal {fres['signal']}")
        if progress is not None:
            progress.clear()
        ctx.out.write("\n".join(lines) + "\n")
        ctx.out.flush()
        if progress is not None:
            progress.add(batch)
    if count == 0:
        from jobmon.errors import NotFound

        raise NotFound(f"no jobs of cluster {job.cluster} that you may act on")
    return 0 if all_ok else 1
