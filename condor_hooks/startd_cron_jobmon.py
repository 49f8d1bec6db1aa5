#!/usr/bin/python3
"""STARTD_CRON job JOBMON: advertise JobMon in every slot ad of this node.

Prints ``HasJobMon``, ``JobMonRelay`` and ``JobMonWrapperVersion`` (templates
require ``HasJobMon`` to land on nodes that run JobMon). ``HasJobMon`` is
false, with ``JobMonProblem`` saying why, when the wrapper is missing or
the node's Python is too old. Runs as user condor with the startd's
environment; ``--relay URL`` comes from ``STARTD_CRON_JOBMON_ARGS``.
"""

import argparse
import os
import sys

try:
    from condor_hooks import hookutil
except ImportError:  # copied flat into /usr/libexec/jobmon
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import hookutil  # type: ignore[no-redef]


def _quote(text: str) -> str:
    return '"' + text.replace('"', '\\"').replace("\n", " ") + '"'


def main(argv: list) -> int:
    parser = argparse.ArgumentParser(prog="startd_cron_jobmon")
    parser.add_argument("--relay", default=None, help="the relay URL to advertise")
    args, unknown = parser.parse_known_args(argv[1:])
    problems = []
    if unknown:
        problems.append("unknown arguments %s" % " ".join(unknown))
    version = hookutil.wrapper_version()
    if version is None:
        problems.append("jobmon-wrapper.pyz not found next to %s" % hookutil.HERE)
    if sys.version_info < (3, 6):
        problems.append("python %d.%d is older than 3.6" % sys.version_info[:2])
    relay = args.relay or hookutil.relay_url()
    if not relay:
        problems.append("no relay URL (set JOBMON_RELAY_URL)")
    ok = version is not None and sys.version_info >= (3, 6) and bool(relay)
    lines = ["HasJobMon = %s" % ("true" if ok else "false")]
    if relay:
        lines.append("JobMonRelay = %s" % _quote(relay))
    if version:
        lines.append("JobMonWrapperVersion = %s" % _quote(version))
    if problems:
        lines.append("JobMonProblem = %s" % _quote("; ".join(problems)))
    sys.stdout.write("\n".join(lines) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
