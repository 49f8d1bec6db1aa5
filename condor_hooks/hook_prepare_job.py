#!/usr/bin/python3
"""STARTER hook PREPARE_JOB (keyword JOBMON): get the sandbox ready for JobMon.

Called after input transfer, just before the job starts, with the job ad on
stdin. What it prints (``Attr = value`` lines) is merged into the starter's
copy of the job ad. A non-zero exit puts the job on HOLD (HoldReasonCode 19,
recorded), so this hook exits 0 whatever happens: JobMon never harms a job.

For jobs with ``JobMonEnabled = true`` it makes the transferred per-job
credential (``jobmon.cred``) readable by the job owner only and reports what
the node offers.
"""

import os
import stat
import sys

try:
    from condor_hooks import hookutil
except ImportError:  # copied flat into /usr/libexec/jobmon
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import hookutil  # type: ignore[no-redef]

PROG = "jobmon hook_prepare_job"


def _quote(text: str) -> str:
    return '"' + text.replace('"', '\\"').replace("\n", " ") + '"'


def main() -> int:
    ad = hookutil.monitored_job_ad(PROG)
    if ad is None:
        return 0
    lines = ["JobMonNodePrepared = true"]
    scratch = os.environ.get("_CONDOR_SCRATCH_DIR") or os.getcwd()
    cred = os.path.join(scratch, hookutil.CREDENTIAL_NAME)
    if os.path.isfile(cred):
        try:
            mode = stat.S_IMODE(os.stat(cred).st_mode)
            if mode & 0o077:
                os.chmod(cred, 0o600)
            lines.append("JobMonCredentialPresent = true")
        except OSError as e:
            hookutil.note(PROG, "cannot restrict %s: %s" % (cred, e))
    version = hookutil.wrapper_version()
    if version:
        lines.append("JobMonNodeWrapperVersion = %s" % _quote(version))
    url = os.environ.get("JOBMON_RELAY_URL")
    if url:
        lines.append("JobMonNodeRelay = %s" % _quote(url))
    try:
        sys.stdout.write("\n".join(lines) + "\n")
        sys.stdout.flush()
    except OSError:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
