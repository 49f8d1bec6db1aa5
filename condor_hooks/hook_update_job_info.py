#!/usr/bin/python3
"""STARTER hook UPDATE_JOB_INFO (keyword JOBMON): forward the starter's CPU, memory and pid counts.

HTCondor runs it once when the starter starts, every STARTER_UPDATE_INTERVAL,
and once when the job exits, with the job ad on stdin and no arguments; it
ignores the output and the exit code. It must never hold the starter up: the
relay call has a short timeout (JOBMON_HOOK_TIMEOUT, default 5 s) and any
failure is one line on stderr. Jobs without ``JobMonEnabled = true`` are left alone.
"""

import os
import sys
import time

try:
    from condor_hooks import hookutil
except ImportError:  # copied flat into /usr/libexec/jobmon
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import hookutil  # type: ignore[no-redef]

PROG = "jobmon hook_update_job_info"


def main() -> int:
    ad = hookutil.monitored_job_ad(PROG)
    if ad is None:
        return 0
    report = {
        "kind": "update",
        "time": time.time(),
        "resources": hookutil.resources(ad),
    }
    state = hookutil.get(ad, "JobState")
    if isinstance(state, str):
        report["job_state"] = state
    slot = hookutil.get(ad, "RemoteHost")
    if isinstance(slot, str):
        report["slot"] = slot
    hookutil.send_report(PROG, ad, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
