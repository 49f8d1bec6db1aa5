#!/usr/bin/python3
"""USER_JOB_WRAPPER: watch every JobMon-enabled job on this node, then exec the job.

HTCondor runs ``wrapper <job executable> <args...>`` (arguments already split)
as the job owner in the scratch directory, with the job's environment plus
``_CONDOR_WRAPPER_ERROR_FILE``, and requires the wrapper to exec the job. So:

1. read ``$_CONDOR_JOB_AD``; if the job has ``JobMonEnabled = true`` and is not
   wrapped already (``JobMonWrapped = true`` jobs run their own daemon),
   start the JobMon daemon in attach mode, fully detached (double fork, new
   session, stdio to ``.jobmon-daemon.log``), serving the scratch directory;
2. ``exec`` the job, which keeps this process id. Its exit status reaches
   HTCondor untouched; the relay learns the end from the schedd.

Nothing here may stop the job from running: any JobMon problem is one line
on stderr. Only a failing exec is reported the HTCondor way (the message in
``_CONDOR_WRAPPER_ERROR_FILE``, exit 1), which puts the job on hold.
"""

import os
import sys

try:
    from condor_hooks import hookutil
except ImportError:  # copied flat into /usr/libexec/jobmon
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import hookutil  # type: ignore[no-redef]

PROG = "jobmon user_job_wrapper"
DAEMON_LOG = ".jobmon-daemon.log"


def daemon_argv(ad: dict, scratch: str) -> list:
    """``python3 jobmon-wrapper.pyz --attach --jobname C.P --serverURL URL [--credential F]``."""
    pyz = os.environ.get("JOBMON_WRAPPER_PYZ") or os.path.join(hookutil.HERE, "jobmon-wrapper.pyz")
    python = os.environ.get("JOBMON_PYTHON") or sys.executable or "/usr/bin/python3"
    argv = [python, pyz, "--attach", "--jobname", hookutil.job_id(ad)]
    url = hookutil.relay_url(ad)
    if url:
        argv += ["--serverURL", url]
    cred = os.path.join(scratch, hookutil.CREDENTIAL_NAME)
    if os.path.isfile(cred):
        argv += ["--credential", cred]
    ca = os.environ.get("JOBMON_CA_FILE")
    if ca:
        argv += ["--cafile", ca]
    return argv


def start_detached(argv: list, cwd: str, log_path: str) -> None:
    """Double fork so the daemon is neither our child (no zombie under the job) nor in our session."""
    pid = os.fork()
    if pid == 0:
        try:
            os.setsid()
            if os.fork() != 0:
                os._exit(0)
            os.chdir(cwd)
            devnull = os.open(os.devnull, os.O_RDONLY)
            log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            os.dup2(devnull, 0)
            os.dup2(log, 1)
            os.dup2(log, 2)
            os.execv(argv[0], argv)
        except OSError as e:
            try:
                os.write(2, ("%s: cannot start the JobMon daemon: %s\n" % (PROG, e)).encode())
            except OSError:
                pass
        os._exit(127)
    os.waitpid(pid, 0)


def maybe_start_daemon(scratch: str) -> None:
    path = os.environ.get("_CONDOR_JOB_AD")
    if not path:
        return
    try:
        with open(path, "r", encoding="utf-8", errors="replace") as f:
            ad = hookutil.parse_old_ad(f.read())
    except (OSError, hookutil.MalformedAd) as e:
        hookutil.note(PROG, "not starting JobMon: job ad %s: %s" % (path, e))
        return
    if not hookutil.enabled(ad) or hookutil.get(ad, "JobMonWrapped") is True:
        return
    argv = daemon_argv(ad, scratch)
    if not os.path.isfile(argv[1]):
        hookutil.note(PROG, "not starting JobMon: %s is missing" % argv[1])
        return
    try:
        start_detached(argv, scratch, os.path.join(scratch, DAEMON_LOG))
    except OSError as e:
        hookutil.note(PROG, "not starting JobMon: %s" % e)


def fail(message: str) -> int:
    err = os.environ.get("_CONDOR_WRAPPER_ERROR_FILE")
    if err:
        try:
            with open(err, "w", encoding="utf-8") as f:
                f.write(message + "\n")
        except OSError:
            pass
    hookutil.note(PROG, message)
    return 1


def main(argv: list) -> int:
    if len(argv) < 2:
        return fail("no job to run: HTCondor passes the job's executable as the first argument")
    scratch = os.environ.get("_CONDOR_SCRATCH_DIR") or os.getcwd()
    maybe_start_daemon(scratch)
    job = argv[1:]
    try:
        os.execv(job[0], job)
    except OSError as e:
        return fail("cannot execute %s: %s" % (job[0], e.strerror or e))
    return 1  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv))
