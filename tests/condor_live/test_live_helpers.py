"""The live tests' own machinery, without a pool (these run in `make test`).

A live wait that times out must say which jobs it waited for and what the
schedd says about them; here that is checked against ads recorded from a real
HTCondor 25 pool (shared/condor-fixtures/jobs). Also: the root refusal, the
deadlines, the skip reason without a pool, the test payload and submit files,
and that INSTALL.md's quick start is what the live module runs.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import classad2
import htcondor2
import pytest
from jmtest.livepool import (
    EXITS_SUB,
    TICKER_PY,
    TICKER_SUB,
    Deadline,
    LiveError,
    LiveSession,
    describe_job,
    diagnose,
    execute_times,
    jobmon_command,
    pool_problem,
    root_refusal,
    suggest_user,
)

REPO = Path(__file__).resolve().parents[2]


def _ads(fixtures: Path, *names: str) -> list[classad2.ClassAd]:
    out: list[classad2.ClassAd] = []
    for name in names:
        out += list(classad2.parseAds((fixtures / "jobs" / f"{name}.ad").read_text()))
    return out


class FakeSchedd:
    """query/history over recorded ads, constraints evaluated by the ClassAd library."""

    def __init__(self, queue: list[classad2.ClassAd], history: list[classad2.ClassAd],
                 broken: bool = False) -> None:
        self.queue, self.past, self.broken = queue, history, broken

    @staticmethod
    def _match(ads: list[classad2.ClassAd], constraint: str) -> list[classad2.ClassAd]:
        expr = classad2.ExprTree(constraint)
        return [ad for ad in ads if expr.eval(ad) is True]

    def query(self, constraint: str, projection: Sequence[str]) -> list[Mapping[str, Any]]:
        if self.broken:
            raise RuntimeError("schedd at <127.0.0.1:5335>: Failed to connect")
        return self._match(self.queue, constraint)

    def history(self, constraint: str, projection: Sequence[str], match: int) -> list[Mapping[str, Any]]:
        return self._match(self.past, constraint)


def test_a_held_job_is_described_with_its_hold_reason(condor_fixtures: Path) -> None:
    (held,) = _ads(condor_fixtures, "held_released/2_held")
    line = describe_job("3.0", held, None)
    assert line.startswith("3.0: JobStatus 5 (held) in the queue"), line
    assert 'HoldReason "jobmon fixture: held by alice for inspection (by user alice)" (code 1/0)' in line
    assert "LastRejMatchReason -" in line and "\n" not in line


def test_an_idle_job_says_why_it_does_not_match(condor_fixtures: Path) -> None:
    (idle,) = _ads(condor_fixtures, "exit0/1_idle")
    line = describe_job("2.0", idle, None)
    assert "JobStatus 1 (idle)" in line and "not matched yet" in line, line
    idle["LastRejMatchReason"] = "no match found"
    idle["LastRejMatchTime"] = 1795295000
    line = describe_job("2.0", idle, None, now=1795295030)
    assert 'LastRejMatchReason "no match found" (30 s ago)' in line and "not matched yet" not in line, line


def test_diagnose_asks_the_queue_then_the_history(condor_fixtures: Path) -> None:
    schedd = FakeSchedd(
        queue=_ads(condor_fixtures, "held_released/2_held", "cluster3/2_running"),
        history=_ads(condor_fixtures, "removed/3_history", "segv/2_history", "exit3/2_history"),
    )
    text = diagnose(["3.0", "6.0", "5.0", "4.0", "8", "99.0"], schedd.query, schedd.history)
    lines = text.splitlines()
    assert lines[0].startswith("3.0: JobStatus 5 (held) in the queue") and "HoldReason" in lines[0]
    assert lines[1].startswith("6.0: JobStatus 3 (removed) in the history")
    assert 'RemoveReason "jobmon fixture: removed by alice (by user alice)"' in lines[1]
    assert "ExitBySignal true, ExitSignal 11" in lines[2] and "(completed)" in lines[2]
    assert "ExitCode 3" in lines[3]
    assert [ln.split(":")[0] for ln in lines[4:7]] == ["8.0", "8.1", "8.2"]  # a cluster: every proc
    assert all("JobStatus 2 (running)" in ln and "host slot" in ln for ln in lines[4:7]), lines[4:7]
    assert lines[7] == "99.0: neither in the schedd's queue nor in its history"


def test_diagnose_survives_a_schedd_that_does_not_answer(condor_fixtures: Path) -> None:
    schedd = FakeSchedd(queue=[], history=_ads(condor_fixtures, "removed/3_history"), broken=True)
    text = diagnose(["6.0"], schedd.query, schedd.history)
    assert text.splitlines()[0] == "(could not query the schedd: schedd at <127.0.0.1:5335>: Failed to connect)"
    assert "6.0: JobStatus 3 (removed) in the history" in text


def test_a_timed_out_wait_names_the_jobs_and_their_hold_reason(condor_fixtures: Path, tmp_path: Path) -> None:
    session = LiveSession(tmp_path, Deadline(60, "the module's budget"), "condor")
    session._condor = FakeSchedd(queue=_ads(condor_fixtures, "held_released/2_held"), history=[])
    (tmp_path / "relay.log").write_text("jobmon relay: serving https://127.0.0.1:1/clarens with the condor pool\n"
                                        "the last thing the relay said\n")
    calls = []
    with pytest.raises(LiveError) as err:
        session.wait("3.0 running", lambda: calls.append(1), ["3.0"], Deadline(0.3, "this test's 0.3 s"),
                     interval=0.05)
    msg = str(err.value)
    assert msg.startswith("timed out waiting for 3.0 running (this test's 0.3 s: 0.3 s)"), msg
    assert "3.0: JobStatus 5 (held)" in msg and "held by alice for inspection" in msg
    assert "the last thing the relay said" in msg
    assert len(calls) > 2  # it polled until the deadline


def test_deadlines_nest_in_the_module_budget() -> None:
    now = [0.0]
    module = Deadline(100, "module", clock=lambda: now[0])
    test = module.sub(30, "test")
    assert test.remaining() == 30 and test.describe() == "test: 30 s"
    now[0] = 80.0
    assert test.expired and module.remaining() == 20
    late = module.sub(60, "late test")
    assert late.remaining() == 20 and late.describe() == "module: 100 s"
    now[0] = 101.0
    assert late.expired and module.expired


def test_root_is_refused_in_one_line_naming_a_user(tmp_path: Path) -> None:
    accounts = [("root", 0, "/bin/bash"), ("daemon", 1, "/usr/sbin/nologin"),
                ("nobody", 65534, "/usr/sbin/nologin"), ("svc", 1001, "/bin/false"), ("bob", 1002, "/bin/bash")]
    assert root_refusal(1002, {}, tmp_path, accounts) is None
    msg = root_refusal(0, {"SUDO_USER": "alice"}, Path("/"), accounts)
    assert msg is not None and "\n" not in msg
    assert msg.startswith("HTCondor will not run root's jobs")
    assert "`su alice -c 'make test-condor'`" in msg
    if Path("/").stat().st_uid == 0:
        assert suggest_user({}, Path("/"), accounts) == "bob"  # the first real login account
        msg = root_refusal(0, {}, Path("/"), [("root", 0, "/bin/bash")])
        assert msg is not None and "`su USER -c 'make test-condor'` with a normal account" in msg


def test_without_a_pool_the_reason_is_given() -> None:
    assert "CONDOR_CONFIG is not set" in str(pool_problem({}))
    assert "CONDOR_CONFIG is not set" in str(pool_problem({"CONDOR_CONFIG": "/dev/null"}))  # the bindings' default
    assert "does not exist" in str(pool_problem({"CONDOR_CONFIG": "/nonexistent/condor_config"}))


def test_execute_times_come_from_the_user_log(condor_fixtures: Path, tmp_path: Path) -> None:
    times = execute_times(condor_fixtures / "events" / "cluster3.log")
    assert sorted(times) == ["8.0", "8.1", "8.2"]
    assert all(isinstance(t, float) and t > 1.7e9 for t in times.values())
    held = execute_times(condor_fixtures / "events" / "held_released.log")
    (only,) = held.values()  # the first EXECUTE of a job that ran twice
    assert execute_times(tmp_path / "missing.log") == {}
    assert only == min(e.timestamp for e in htcondor2.JobEventLog(
        str(condor_fixtures / "events" / "held_released.log")).events(stop_after=0)
        if e.type == htcondor2.JobEventType.EXECUTE)


@pytest.mark.parametrize(("mode", "code"), [("exit0", 0), ("exit3", 3), ("segv", -11)])
def test_the_payload_ticks_and_ends_as_asked(tmp_path: Path, mode: str, code: int) -> None:
    script = tmp_path / "ticker.py"
    script.write_text(TICKER_PY)
    script.chmod(0o755)
    res = subprocess.run([sys.executable, str(script), mode, "0.35", "0.05", "hello world"],
                         capture_output=True, text=True, timeout=30, cwd=str(tmp_path))
    assert res.returncode == code, res
    lines = res.stdout.splitlines()
    assert lines[0] == f"argv: ('{mode}', '0.35', '0.05', 'hello world')"
    ticks = [ln for ln in lines if ln.startswith("tick ")]
    assert len(ticks) >= 5 and ticks[0].startswith("tick 1 ")
    assert "Processed event 10 of 7" not in res.stdout  # a progress line only every 10th tick
    assert ("failing on purpose" in res.stderr) == (mode == "exit3")


def test_the_submit_files_survive_the_wrapping(tmp_path: Path) -> None:
    """`jobmon submit --dry-run` keeps the queue statements and the quoted argument."""
    (tmp_path / "ticker.py").write_text(TICKER_PY)
    (tmp_path / "ticker.sub").write_text(TICKER_SUB)
    (tmp_path / "exits.sub").write_text(EXITS_SUB.format(tag="exits"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JOBMON_", "X509_"))}
    env.update(JOBMON_NO_CONDOR_CONFIG="1", JOBMON_STATE_DIR=str(tmp_path / "state"))
    for name, queue in (("ticker.sub", "queue 4"), ("exits.sub", "queue MODE in (exit0, exit3, segv)")):
        res = subprocess.run([*jobmon_command(), "submit", "--dry-run", name], capture_output=True, text=True,
                             timeout=60, cwd=str(tmp_path), env=env)
        assert res.returncode == 0, res.stderr
        assert res.stdout.rstrip().splitlines()[-1] == queue, res.stdout
        assert "'hello world'" in res.stdout and "./ticker.py" in res.stdout, res.stdout
        assert "+JobMonEnabled" in res.stdout or "JobMonEnabled" in res.stdout
    assert list(htcondor2.Submit(EXITS_SUB.format(tag="x")).itemdata()) == [
        {"MODE": "exit0"}, {"MODE": "exit3"}, {"MODE": "segv"}]


def test_install_quick_start_is_what_the_live_module_runs() -> None:
    install = (REPO / "INSTALL.md").read_text()
    assert "## 9. Single-host quick start" in install
    quick = install.split("## 9. Single-host quick start", 1)[1].split("\n## ", 1)[0]
    assert "jobmon relay --pool condor --listen 127.0.0.1:0 --submit-root" in quick
    assert TICKER_SUB.strip() in quick, "INSTALL.md shows the submit file the live tests submit"
    assert TICKER_PY.strip() in quick, "INSTALL.md shows the program the live tests run"
    for step in ("jobmon submit --pool condor ticker.sub", "jobmon status", "jobmon exec", "jobmon tail -f",
                 "jobmon ps", "jobmon ls", "jobmon rm", "jobmon nodes drain", "jobmon nodes undrain"):
        assert step in quick, step
    live = (REPO / "tests" / "condor_live" / "test_live_pool.py").read_text()
    for test in ("connect_within_10s", "exec_one_job_and_the_whole_cluster", "tail_follow", "status_progress",
                 "rm_ends_the_daemon", "hold_and_release", "ends_by_itself", "drain_and_undrain",
                 "hasjobmon"):
        assert re.search(rf"def test_\w*{test}", live), test
