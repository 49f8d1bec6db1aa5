"""The starter hooks fed what HTCondor fed the recorder hooks (shared/condor-fixtures/hooks)."""

from __future__ import annotations

import json
import os
import select
import shutil
import socket
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import classad2
import pytest
from jmtest.interpreters import oldest_pyenv_python

import jobmon_wrapper

UPDATE = "no_exit_hook/exit0/04_hook_update_job_info.json"
PREPARE = "no_exit_hook/exit0/02_hook_prepare_job.json"
EXIT_EXIT = "job_exit_hook_configured/exit0/08_hook_job_exit_exit.json"
EXIT_EVICT = "job_exit_hook_configured/removed/07_hook_job_exit_evict.json"


def _env(hk: Any, rec: dict[str, Any], scratch: Path, pki: Any, **extra: str) -> dict[str, str]:
    return hk.env_of(rec, scratch, JOBMON_CA_FILE=str(pki.ca_file), **extra)


def test_update_job_info_forwards_resources(hk: Any, condor_fixtures: Path, relay: Any, scratch: Path,
                                            credential: Path, pki: Any) -> None:
    rec = hk.recording(condor_fixtures, UPDATE)
    assert rec["argv"][1:] == []  # HTCondor passes no arguments
    res = hk.run_hook("hook_update_job_info.py", [], hk.with_relay(rec["stdin"], relay.url),
                   _env(hk, rec, scratch, pki), scratch)
    assert res.returncode == 0, res.stderr
    assert res.stdout == ""
    ((method, job, report, auth),) = relay.calls
    assert (method, job) == ("jobmon.nodeReport", "26.0")
    assert hk.basic_token(auth) == hk.TOKEN
    assert report["kind"] == "update" and report["job_state"] == "Running"
    assert report["resources"] == {
        "cpu_user": 0.0, "cpu_sys": 0.0, "cpus_usage": pytest.approx(0.005891773962194428),
        "rss_kb": 8256, "image_size_kb": 0, "disk_kb": 17, "nprocs": 1, "pid": 85162,
    }
    assert report["slot"] == "slot1@node01.example.org"


def test_update_job_info_first_call_before_transfer(hk: Any, condor_fixtures: Path, relay: Any, scratch: Path,
                                                    credential: Path, pki: Any) -> None:
    # the first call comes before input transfer: no NumPids/JobPid yet
    rec = hk.recording(condor_fixtures, "no_exit_hook/exit0/01_hook_update_job_info.json")
    res = hk.run_hook("hook_update_job_info.py", [], hk.with_relay(rec["stdin"], relay.url),
                   _env(hk, rec, scratch, pki), scratch)
    assert res.returncode == 0, res.stderr
    (call,) = relay.calls
    assert "pid" not in call[2]["resources"] and "nprocs" not in call[2]["resources"]


def test_update_job_info_relay_down_is_quiet_and_quick(hk: Any, condor_fixtures: Path, scratch: Path,
                                                       credential: Path, pki: Any) -> None:
    # a relay that accepts connections and never answers: the hook must give up on its own
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(5)
    url = f"https://localhost:{srv.getsockname()[1]}/clarens"
    rec = hk.recording(condor_fixtures, UPDATE)
    try:
        res = hk.run_hook("hook_update_job_info.py", [], hk.with_relay(rec["stdin"], url),
                       _env(hk, rec, scratch, pki, JOBMON_HOOK_TIMEOUT="1"), scratch)
    finally:
        srv.close()
    assert res.returncode == 0
    assert "not reached" in res.stderr and res.stderr.count("\n") == 1


def test_update_job_info_without_credential(hk: Any, condor_fixtures: Path, relay: Any, scratch: Path, pki: Any) -> None:
    rec = hk.recording(condor_fixtures, UPDATE)
    res = hk.run_hook("hook_update_job_info.py", [], hk.with_relay(rec["stdin"], relay.url),
                   _env(hk, rec, scratch, pki), scratch)
    assert res.returncode == 0
    assert "no per-job credential" in res.stderr
    assert relay.calls == []


def test_job_not_enabled_is_left_alone(hk: Any, condor_fixtures: Path, relay: Any, scratch: Path,
                                       credential: Path, pki: Any) -> None:
    rec = hk.recording(condor_fixtures, UPDATE)
    stdin = hk.with_relay(rec["stdin"], relay.url).replace("JobMonEnabled = true", "JobMonEnabled = false")
    for prog in ("hook_update_job_info.py", "hook_prepare_job.py"):
        res = hk.run_hook(prog, [], stdin, _env(hk, rec, scratch, pki), scratch)
        assert (res.returncode, res.stdout, res.stderr) == (0, "", "")
    assert relay.calls == []


@pytest.mark.parametrize("prog,argv", [
    ("hook_update_job_info.py", []), ("hook_prepare_job.py", []), ("hook_job_exit.py", ["exit"]),
])
@pytest.mark.parametrize("stdin", ["", "this is not a classad\n", 'Owner = "alice"\nJobStatus = 2\n'])
def test_malformed_ad_clear_message_nonfatal(hk: Any, condor_fixtures: Path, scratch: Path, pki: Any,
                                             prog: str, argv: list[str], stdin: str) -> None:
    rec = hk.recording(condor_fixtures, UPDATE)
    res = hk.run_hook(prog, argv, stdin, _env(hk, rec, scratch, pki), scratch)
    assert res.returncode == 0  # PREPARE_JOB non-zero would hold the job
    assert res.stdout == ""
    assert "malformed job ad" in res.stderr and res.stderr.count("\n") == 1
    assert "Traceback" not in res.stderr


def test_prepare_job_output_and_credential_mode(hk: Any, condor_fixtures: Path, scratch: Path, credential: Path,
                                                pki: Any) -> None:
    rec = hk.recording(condor_fixtures, PREPARE)
    assert rec["argv"][1:] == []
    env = _env(hk, rec, scratch, pki, JOBMON_RELAY_URL="https://relay.example.org:8443/clarens")
    res = hk.run_hook("hook_prepare_job.py", [], rec["stdin"], env, scratch)
    assert res.returncode == 0, res.stderr
    ad = classad2.parseOne(res.stdout, parser=classad2.ParserType.Old)
    assert ad["JobMonNodePrepared"] is True
    assert ad["JobMonCredentialPresent"] is True
    assert ad["JobMonNodeRelay"] == "https://relay.example.org:8443/clarens"
    assert ad["JobMonNodeWrapperVersion"] == jobmon_wrapper.__version__
    assert stat.S_IMODE(credential.stat().st_mode) == 0o600


def test_job_exit_exit_reports_exit_code(hk: Any, condor_fixtures: Path, relay: Any, scratch: Path,
                                         credential: Path, pki: Any) -> None:
    rec = hk.recording(condor_fixtures, EXIT_EXIT)
    assert rec["argv"][1:] == ["exit"]
    res = hk.run_hook("hook_job_exit.py", rec["argv"][1:], hk.with_relay(rec["stdin"], relay.url),
                   _env(hk, rec, scratch, pki), scratch)
    assert res.returncode == 0, res.stderr
    ((_, job, report, _),) = relay.calls
    assert job.endswith(".0")
    assert report["kind"] == "exit" and report["reason"] == "exit" and report["exit_code"] == 0
    assert "signal" not in report


def test_job_exit_segv_reports_signal(hk: Any, condor_fixtures: Path, relay: Any, scratch: Path,
                                      credential: Path, pki: Any) -> None:
    rec = hk.recording(condor_fixtures, "job_exit_hook_configured/segv/06_hook_job_exit_exit.json")
    res = hk.run_hook("hook_job_exit.py", rec["argv"][1:], hk.with_relay(rec["stdin"], relay.url),
                   _env(hk, rec, scratch, pki), scratch)
    assert res.returncode == 0, res.stderr
    ((_, _, report, _),) = relay.calls
    assert report["reason"] == "exit" and report["signal"] == 11 and "exit_code" not in report


def test_job_exit_evict_leaves_the_reason_to_the_schedd(hk: Any, condor_fixtures: Path, relay: Any, scratch: Path,
                                                        credential: Path, pki: Any) -> None:
    rec = hk.recording(condor_fixtures, EXIT_EVICT)
    assert rec["argv"][1:] == ["evict"]
    res = hk.run_hook("hook_job_exit.py", ["evict"], hk.with_relay(rec["stdin"], relay.url),
                   _env(hk, rec, scratch, pki), scratch)
    assert res.returncode == 0, res.stderr
    ((_, _, report, _),) = relay.calls
    assert report["reason"] == "evict"
    assert report["vacate_reason"] == "Claim deactivated"
    # signal 15 here is the starter killing the job, not how it ended: not reported
    assert "signal" not in report and "exit_code" not in report


def test_startd_cron_output(hk: Any, condor_fixtures: Path, tmp_path: Path) -> None:
    rec = hk.recording(condor_fixtures, "startd_cron/01_startd-cron-jobmon.json")
    env = hk.env_of(rec, tmp_path)
    res = hk.run_hook("startd_cron_jobmon.py", rec["argv"][1:], "", env, tmp_path)
    assert res.returncode == 0, res.stderr
    ad = classad2.parseOne(res.stdout, parser=classad2.ParserType.Old)
    assert ad["HasJobMon"] is True
    assert ad["JobMonRelay"] == "https://relay.example.org:8443/clarens"
    assert ad["JobMonWrapperVersion"] == jobmon_wrapper.__version__
    assert "JobMonProblem" not in ad
    # same attribute names and relay value as the recorded cron published
    recorded = (condor_fixtures / "hooks/startd_cron/condor_status_af.txt").read_text()
    assert "HasJobMon" in recorded and "https://relay.example.org:8443/clarens" in recorded


def test_startd_cron_without_wrapper_says_why(hk: Any, condor_fixtures: Path, tmp_path: Path) -> None:
    # only the two programs, no zipapp, Python isolated from the venv's packages
    flat = tmp_path / "libexec"
    flat.mkdir()
    for name in ("startd_cron_jobmon.py", "hookutil.py"):
        shutil.copy2(hk.HOOKS_DIR / name, flat / name)
    rec = hk.recording(condor_fixtures, "startd_cron/01_startd-cron-jobmon.json")
    res = subprocess.run([sys.executable, "-I", "-S", str(flat / "startd_cron_jobmon.py"), *rec["argv"][1:]],
                         capture_output=True, text=True, env=hk.env_of(rec, tmp_path), cwd=str(tmp_path), timeout=60)
    assert res.returncode == 0, res.stderr
    ad = classad2.parseOne(res.stdout, parser=classad2.ParserType.Old)
    assert ad["HasJobMon"] is False
    assert "jobmon-wrapper.pyz not found" in ad["JobMonProblem"]
    assert ad["JobMonRelay"] == "https://relay.example.org:8443/clarens"


def test_flat_install_uses_the_zipapp(hk: Any, condor_fixtures: Path, relay: Any, tmp_path: Path, scratch: Path,
                                      credential: Path, pki: Any) -> None:
    # as installed on a node: programs and jobmon-wrapper.pyz in one directory, no jobmon package
    flat = hk.install_flat(tmp_path / "libexec")
    rec = hk.recording(condor_fixtures, UPDATE)
    res = subprocess.run(
        [sys.executable, "-I", "-S", str(flat / "hook_update_job_info.py")],
        input=hk.with_relay(rec["stdin"], relay.url), capture_output=True, text=True,
        env=_env(hk, rec, scratch, pki), cwd=str(scratch), timeout=60,
    )
    assert res.returncode == 0, res.stderr
    assert len(relay.calls) == 1 and relay.calls[0][1] == "26.0"


def _payload(scratch: Path, body: str) -> Path:
    job = scratch / "job.sh"
    job.write_text("#!/bin/sh\n" + body)
    job.chmod(0o755)
    return job


def _wrapper_env(hk: Any, condor_fixtures: Path, scratch: Path, tmp_path: Path, pki: Any) -> dict[str, str]:
    rec = hk.recording(condor_fixtures, "no_exit_hook/exit0/03_user_job_wrapper.json")
    (scratch / ".job.ad").write_text(rec["job_ad_file"])
    fake_daemon = tmp_path / "fake-daemon.py"
    # it tells the test it started through a FIFO, and gives up after a minute when no test
    # reads it (a blocking open would keep it alive for ever after the test)
    fake_daemon.write_text(
        "import os, sys, time\n"
        "with open(os.path.join(os.getcwd(), 'daemon-started'), 'w') as f:\n"
        "    f.write(repr([sys.argv[1:], os.getppid(), os.getsid(0)]))\n"
        "end = time.monotonic() + 60\n"
        "while time.monotonic() < end:\n"
        "    try:\n"
        "        fd = os.open(os.environ['DAEMON_TRACE'], os.O_WRONLY | os.O_NONBLOCK)\n"
        "    except OSError:\n"
        "        time.sleep(0.05)\n"
        "        continue\n"
        "    os.write(fd, b'started')\n"
        "    os.close(fd)\n"
        "    break\n"
    )
    trace = tmp_path / "daemon-trace"
    os.mkfifo(trace)
    return hk.env_of(rec, scratch, JOBMON_WRAPPER_PYZ=str(fake_daemon), JOBMON_CA_FILE=str(pki.ca_file),
                     DAEMON_TRACE=str(trace))


def _await_trace(path: str, timeout: float = 60.0) -> str:
    """Wait for the detached fake daemon to write its FIFO (an event, not a sleep)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    data = b""
    try:
        while True:
            ready, _, _ = select.select([fd], [], [], timeout)
            assert ready, "the detached daemon never started"
            chunk = os.read(fd, 4096)
            if not chunk and data:
                return data.decode()
            data += chunk
    finally:
        os.close(fd)


def test_user_job_wrapper_execs_the_job(hk: Any, condor_fixtures: Path, scratch: Path, tmp_path: Path,
                                        credential: Path, pki: Any) -> None:
    env = _wrapper_env(hk, condor_fixtures, scratch, tmp_path, pki)
    job = _payload(scratch, 'echo "$$" > pid.txt; for a in "$@"; do echo "[$a]"; done; exit 3\n')
    proc = subprocess.Popen([sys.executable, str(hk.HOOKS_DIR / "user_job_wrapper.py"), str(job),
                             "--mode", "exit0", "--label", "hello world"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=str(scratch))
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 3, err  # the job's own exit status
    assert out.splitlines() == ["[--mode]", "[exit0]", "[--label]", "[hello world]"]
    assert int((scratch / "pid.txt").read_text()) == proc.pid  # exec: same process
    assert _await_trace(env["DAEMON_TRACE"]) == "started"
    argv, ppid, sid = eval((scratch / "daemon-started").read_text())
    assert argv == ["--attach", "--jobname", "26.0", "--serverURL", "https://relay.example.org:8443/clarens",
                    "--credential", str(credential), "--cafile", str(pki.ca_file)]
    assert ppid != proc.pid  # not a child of the job (double fork)
    assert sid != os.getsid(0)  # its own session


def test_user_job_wrapper_signal_passes_through(hk: Any, condor_fixtures: Path, scratch: Path,
                                                tmp_path: Path, pki: Any) -> None:
    env = _wrapper_env(hk, condor_fixtures, scratch, tmp_path, pki)
    job = _payload(scratch, "kill -SEGV $$\n")
    res = subprocess.run([sys.executable, str(hk.HOOKS_DIR / "user_job_wrapper.py"), str(job)],
                         capture_output=True, text=True, env=env, cwd=str(scratch), timeout=60)
    assert res.returncode == -11


def test_user_job_wrapper_skips_jobs_without_jobmon(hk: Any, condor_fixtures: Path, scratch: Path,
                                                    tmp_path: Path, pki: Any) -> None:
    env = _wrapper_env(hk, condor_fixtures, scratch, tmp_path, pki)
    ad = scratch / ".job.ad"
    ad.write_text(ad.read_text().replace("JobMonEnabled = true", "JobMonEnabled = false"))
    job = _payload(scratch, "exit 0\n")
    res = subprocess.run([sys.executable, str(hk.HOOKS_DIR / "user_job_wrapper.py"), str(job)],
                         capture_output=True, text=True, env=env, cwd=str(scratch), timeout=60)
    assert res.returncode == 0 and res.stderr == ""
    assert not (scratch / "daemon-started").exists()


def test_user_job_wrapper_exec_failure_goes_to_the_error_file(hk: Any, condor_fixtures: Path, scratch: Path,
                                                              tmp_path: Path, pki: Any) -> None:
    env = _wrapper_env(hk, condor_fixtures, scratch, tmp_path, pki)
    assert env["_CONDOR_WRAPPER_ERROR_FILE"].startswith(str(scratch))
    res = subprocess.run([sys.executable, str(hk.HOOKS_DIR / "user_job_wrapper.py"), str(scratch / "missing")],
                         capture_output=True, text=True, env=env, cwd=str(scratch), timeout=60)
    assert res.returncode == 1
    message = Path(env["_CONDOR_WRAPPER_ERROR_FILE"]).read_text()
    assert message.startswith("cannot execute ") and "missing" in message


def test_hookutil_doctests_and_ad_parsing(condor_fixtures: Path) -> None:
    import doctest

    from condor_hooks import hookutil

    assert doctest.testmod(hookutil).failed == 0
    rec = json.loads((condor_fixtures / "hooks" / UPDATE).read_text())
    ad = hookutil.parse_old_ad(rec["stdin"])
    # same values as HTCondor's own old-syntax parser gives
    ref = classad2.parseOne(rec["stdin"], parser=classad2.ParserType.Old)
    for key in ("ClusterId", "ProcId", "Arguments", "JobMonEnabled", "ResidentSetSize", "CpusUsage", "Cmd"):
        assert hookutil.get(ad, key) == ref[key], key
    assert hookutil.get(ad, "clusterid") == 26
    assert isinstance(hookutil.get(ad, "MemoryUsage"), str)  # an expression stays text


def _oldest_python() -> str | None:
    # never raises: an unreadable pyenv root (another user's home) means "none here"
    return oldest_pyenv_python("3.6")


@pytest.mark.skipif(_oldest_python() is None, reason="no Python 3.6 interpreter (pyenv) on this machine")
def test_flat_install_on_python36(hk: Any, condor_fixtures: Path, relay: Any, tmp_path: Path, scratch: Path,
                                  credential: Path, pki: Any) -> None:
    # EL8 execute nodes: python3.6 and the zipapp, nothing else
    py36 = _oldest_python()
    assert py36 is not None
    flat = hk.install_flat(tmp_path / "libexec")
    rec = hk.recording(condor_fixtures, UPDATE)
    res = subprocess.run([py36, str(flat / "hook_update_job_info.py")], input=hk.with_relay(rec["stdin"], relay.url),
                         capture_output=True, text=True, env=_env(hk, rec, scratch, pki), cwd=str(scratch), timeout=60)
    assert res.returncode == 0, res.stderr
    assert relay.calls and relay.calls[0][1] == "26.0" and hk.basic_token(relay.calls[0][3]) == hk.TOKEN
    cron = hk.recording(condor_fixtures, "startd_cron/01_startd-cron-jobmon.json")
    res = subprocess.run([py36, str(flat / "startd_cron_jobmon.py"), *cron["argv"][1:]], capture_output=True,
                         text=True, env=hk.env_of(cron, tmp_path), cwd=str(tmp_path), timeout=60)
    assert res.returncode == 0, res.stderr
    assert classad2.parseOne(res.stdout, parser=classad2.ParserType.Old)["HasJobMon"] is True
