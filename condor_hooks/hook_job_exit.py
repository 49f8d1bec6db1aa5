#!/usr/bin/python3
"""STARTER hook JOB_EXIT (keyword JOBMON): tell the relay the job left its node.

argv[1] is ``exit`` when the job ended by itself (exit code or signal) and
``evict`` for condor_rm, condor_hold and condor_vacate_job alike (recorded: the
hook cannot tell them apart), so the report says only what the starter
knows; the relay asks the schedd (query, then history) for the real reason.

SHIPPED OFF (see config.d/50-jobmon.conf and INSTALL.md): on HTCondor 25.14.0
configuring any JOB_EXIT hook made every job that exits by itself requeue
forever (the starter exits before output transfer). Without this hook the
relay learns job ends by polling the schedd for jobs whose daemon went away.
"""

import os
import sys
import time

try:
    from condor_hooks import hookutil
except ImportError:  # copied flat into /usr/libexec/jobmon
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import hookutil  # type: ignore[no-redef]

PROG = "jobmon hook_job_exit"


def main(argv: list) -> int:
    how = argv[1] if len(argv) > 1 else ""
    if how not in ("exit", "evict"):
        hookutil.note(PROG, "expected 'exit' or 'evict' as argument, got %r; reporting 'unknown'" % how)
        how = "unknown"
    ad = hookutil.monitored_job_ad(PROG)
    if ad is None:
        return 0
    report = {"kind": "exit", "reason": how, "time": time.time(), "resources": hookutil.resources(ad)}
    if how == "exit":
        if hookutil.get(ad, "ExitBySignal") is True:
            sig = hookutil.get(ad, "ExitSignal")
            if isinstance(sig, int):
                report["signal"] = sig
        else:
            code = hookutil.get(ad, "ExitCode")
            if isinstance(code, int) and not isinstance(code, bool):
                report["exit_code"] = code
    else:
        vacate = hookutil.get(ad, "VacateReason")
        if isinstance(vacate, str):
            report["vacate_reason"] = vacate
    hookutil.send_report(PROG, ad, report)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
