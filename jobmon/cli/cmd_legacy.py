"""The 2005 JobMon client forms: ``jobmon --serverURL URL --jobname NAME --command "ls -l"`` and
``jobmon --serverURL URL --joblist``.

The first runs the command in the job through the relay at URL and prints its
output; the exit status is the command's. The second lists the jobs you may
see (``jobmon q``'s table). Credentials are found as for every command
(``--certfile``/``--keyfile`` are accepted as the old names of --cert/--key).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Sequence

from jobmon.cli.cmd_exec import remote_exit
from jobmon.client import Client, binary
from jobmon.errors import UsageError
from jobmon.settings import load_settings


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(message, hint="jobmon --serverURL URL --jobname NAME --command CMD | --joblist")


def run(argv: Sequence[str]) -> int:
    p = _Parser(prog="jobmon", add_help=True)
    p.add_argument("--serverURL", required=True)
    p.add_argument("--jobname")
    p.add_argument("--command")
    p.add_argument("--joblist", action="store_true")
    p.add_argument("--certfile", "--cert", dest="cert")
    p.add_argument("--keyfile", "--key", dest="key")
    p.add_argument("--proxy")
    p.add_argument("--ca-dir", dest="ca_dir")
    p.add_argument("--ca-file", dest="ca_file")
    p.add_argument("--state-dir", dest="state_dir")
    p.add_argument("--timeout", type=float)
    p.add_argument("-v", "--verbose", action="count", default=0)
    a = p.parse_args(list(argv))
    if not a.joblist and not (a.jobname and a.command):
        raise UsageError("give --jobname and --command, or --joblist",
                         hint="jobmon --serverURL URL --jobname NAME --command CMD")
    settings = load_settings({"relay": a.serverURL, "cert": a.cert, "key": a.key, "proxy": a.proxy,
                              "ca_dir": a.ca_dir, "ca_file": a.ca_file, "state_dir": a.state_dir,
                              "verbose": a.verbose})
    client = Client.from_settings(settings, url=a.serverURL)
    if a.joblist:
        from jobmon.cli.cmd_q import job_table, table_console

        jobs = client.joblist({})
        if jobs:
            table_console(sys.stdout).print(job_table(jobs))
        print(f"{len(jobs)} job(s)")
        return 0
    options: dict[str, object] = {}
    if a.timeout:
        options["timeout"] = a.timeout
    res = client.exec(a.jobname, shlex.split(a.command), options)
    sys.stdout.buffer.write(binary(res.get("stdout")))
    sys.stdout.buffer.flush()
    sys.stderr.buffer.write(binary(res.get("stderr")))
    sys.stderr.buffer.flush()
    return remote_exit(res)
