"""LocalPool with real subprocesses, real files, real SQLite."""

from __future__ import annotations

import os
import re
import signal
import textwrap
import time
from pathlib import Path

import classad2
import htcondor2
import pytest

from jobmon.errors import NotFound, SubmitFileError, UsageError
from jobmon.jobstate import exit_of, state_of
from jobmon.pools.base import JobAction, NodeAction
from jobmon.pools.local import LocalPool


def wait_for(pred, timeout: float = 30.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def ad_of(pool: LocalPool, job: str) -> classad2.ClassAd | None:
    c, p = job.split(".")
    cons = f"ClusterId == {c} && ProcId == {p}"
    found = pool.query(cons) or pool.history(cons)
    return found[0] if found else None


def ended(pool: LocalPool, job: str) -> classad2.ClassAd:
    def done():
        ad = ad_of(pool, job)
        return ad if ad is not None and state_of(ad).ended else None
    return wait_for(done, what=f"job {job} to end")


@pytest.fixture()
def workdir(tmp_path: Path) -> Path:
    d = tmp_path / "submitdir"
    d.mkdir()
    return d


@pytest.fixture()
def pool(tmp_path: Path):
    p = LocalPool(tmp_path / "state", slots=2, hostname="node01.example.org")
    yield p
    p.kill_all()
    p.close()


#: a job that waits for the test to create ``gate`` in its scratch directory (the job cannot see the
#: test's own directories, as on a real execute node)
GATED = "while [ ! -e gate ]; do sleep 0.1; done\n"


def open_gate(pool: LocalPool, cluster: int, proc: int = 0) -> None:
    (pool.sandbox_path(cluster, proc) / "gate").touch()


def script(d: Path, name: str, body: str) -> Path:
    path = d / name
    path.write_text("#!/bin/sh\n" + textwrap.dedent(body))
    path.chmod(0o755)
    return path


def sub(text: str) -> htcondor2.Submit:
    return htcondor2.Submit(textwrap.dedent(text))


def test_exit_code_output_files_and_log(pool: LocalPool, workdir: Path) -> None:
    script(workdir, "job.sh", """\
        echo "args: $1|$2"
        cat input.txt > copied.txt
        echo err >&2
        mkdir subdir; echo x > subdir/inner.txt
        exit 3
        """)
    (workdir / "input.txt").write_text("payload input\n")
    res = pool.submit(sub("""\
        executable = job.sh
        arguments = "one 'two words'"
        transfer_input_files = input.txt
        output = out.$(Cluster).$(Process)
        error = err.$(Cluster).$(Process)
        log = job.log
        +JobMonEnabled = true
        queue
        """), iwd=str(workdir), owner_dn="/CN=Alice")
    assert res.count == 1
    ad = ended(pool, f"{res.cluster}.0")
    assert ad["JobStatus"] == 4
    assert exit_of(ad) == (3, None)
    assert ad["ExitBySignal"] is False
    assert ad["JobMonEnabled"] is True
    assert ad["JobMonOwnerDN"] == "/CN=Alice"
    assert ad["RemoteHost"].endswith("@node01.example.org")
    assert (workdir / f"out.{res.cluster}.0").read_text() == "args: one|two words\n"
    assert (workdir / f"err.{res.cluster}.0").read_text() == "err\n"
    # new top-level files come back; the unchanged input and subdirectories do not
    assert (workdir / "copied.txt").read_text() == "payload input\n"
    assert not (workdir / "subdir").exists()
    events = (workdir / "job.log").read_text()
    assert events.startswith(f"000 ({res.cluster:03d}.000.000) ")
    assert "001 (" in events and "(1) Normal termination (return value 3)" in events
    assert events.rstrip().endswith("...")


def test_listed_output_files_only_and_missing_one_holds(pool: LocalPool, workdir: Path) -> None:
    script(workdir, "job.sh", "echo a > a.txt; echo b > b.txt\n")
    res = pool.submit(sub("executable = job.sh\ntransfer_output_files = b.txt\nqueue\n"),
                      iwd=str(workdir))
    ended(pool, f"{res.cluster}.0")
    assert (workdir / "b.txt").exists() and not (workdir / "a.txt").exists()
    res2 = pool.submit(sub("executable = job.sh\ntransfer_output_files = nope.txt\nqueue\n"),
                       iwd=str(workdir))
    held = wait_for(lambda: [a for a in pool.query(f"ClusterId == {res2.cluster}")
                             if a["JobStatus"] == 5], what="hold")
    assert "nope.txt" in held[0]["HoldReason"]


def test_signal_has_no_exit_code(pool: LocalPool, workdir: Path) -> None:
    script(workdir, "job.sh", "kill -SEGV $$\n")
    res = pool.submit(sub("executable = job.sh\nqueue\n"), iwd=str(workdir))
    ad = ended(pool, f"{res.cluster}.0")
    assert ad["JobStatus"] == 4
    assert ad["ExitBySignal"] is True and ad["ExitSignal"] == signal.SIGSEGV
    assert "ExitCode" not in ad
    assert exit_of(ad) == (None, signal.SIGSEGV)


def test_queue_from_macros_and_constraint(pool: LocalPool, workdir: Path) -> None:
    res = pool.submit(sub("""\
        executable = /bin/echo
        arguments = "$(Process) $(name)"
        output = o.$(Process).txt
        +Tag = "$(name)"
        queue name from (
          alpha
          beta
        )
        """), iwd=str(workdir))
    assert res.procs == (0, 1)
    for p in res.procs:
        ended(pool, f"{res.cluster}.{p}")
    assert (workdir / "o.0.txt").read_text() == "0 alpha\n"
    assert (workdir / "o.1.txt").read_text() == "1 beta\n"
    beta = pool.history(f'Tag == "beta" && ClusterId == {res.cluster}')
    assert [a["ProcId"] for a in beta] == [1]
    with pytest.raises(UsageError):
        pool.query("ClusterId ==")


def test_priority_then_fifo(tmp_path: Path, workdir: Path) -> None:
    pool = LocalPool(tmp_path / "state", slots=1, start=False)
    try:
        pool.node_action(pool.hostname, NodeAction.DRAIN)
        clusters = {}
        for name, prio in (("low1", 0), ("low2", 0), ("high", 5)):
            clusters[pool.submit(sub(f"executable = /bin/true\nlog = order.log\npriority = {prio}\nqueue\n"),
                                 iwd=str(workdir)).cluster] = name
        pool._thread.start()
        pool.node_action(pool.hostname, NodeAction.UNDRAIN)
        for c in clusters:
            ended(pool, f"{c}.0")
        started = [e.cluster for e in htcondor2.JobEventLog(str(workdir / "order.log")).events(0)
                   if e.type == htcondor2.JobEventType.EXECUTE]
        assert [clusters[c] for c in started] == ["high", "low1", "low2"]
    finally:
        pool.close()


def test_remove_kills_process_group(pool: LocalPool, workdir: Path) -> None:
    script(workdir, "job.sh", "sleep 300 & echo $! > child.pid; wait\n")
    res = pool.submit(sub("executable = job.sh\nqueue\n"), iwd=str(workdir))
    pid_file = pool.sandbox_path(res.cluster, 0) / "child.pid"
    wait_for(lambda: pid_file.exists() and pid_file.read_text().strip(), what="child pid")
    child = int(pid_file.read_text())
    assert pool.act(JobAction.REMOVE, f"ClusterId == {res.cluster}", "test") == 1
    ad = ended(pool, f"{res.cluster}.0")
    assert ad["JobStatus"] == 3 and "test" in ad["RemoveReason"]
    assert ad["ExitBySignal"] is True and "ExitCode" not in ad

    def gone() -> bool:
        try:
            return Path(f"/proc/{child}/stat").read_text().split()[2] == "Z"
        except OSError:
            return True
    wait_for(gone, what="child killed")


def test_restart_adopts_running_job(tmp_path: Path, workdir: Path) -> None:
    state = tmp_path / "state"
    script(workdir, "job.sh", GATED + "echo done > result.txt\n")
    first = LocalPool(state, slots=1)
    res = first.submit(sub("executable = job.sh\nqueue\n"), iwd=str(workdir))
    wait_for(lambda: ad_of(first, f"{res.cluster}.0")["JobStatus"] == 2, what="running")
    first.close()
    second = LocalPool(state, slots=1)
    try:
        ad = ad_of(second, f"{res.cluster}.0")
        assert ad is not None and ad["JobStatus"] == 2
        assert second.sandbox_path(res.cluster, 0) == first.sandbox_path(res.cluster, 0)
        open_gate(second, res.cluster)
        ad = ended(second, f"{res.cluster}.0")
        assert exit_of(ad) == (0, None)
        assert (workdir / "result.txt").read_text() == "done\n"
        # cluster ids keep counting after a restart
        assert second.submit(sub("executable = /bin/true\nqueue\n"), iwd=str(workdir)).cluster == res.cluster + 1
    finally:
        second.kill_all()
        second.close()


def test_restart_requeues_job_whose_process_died(tmp_path: Path, workdir: Path) -> None:
    state = tmp_path / "state"
    # the first run waits for ever; the run after the requeue (JobRunCount 2 in its job ad) ends at once
    script(workdir, "job.sh", "grep -q '^JobRunCount = 1$' .job.ad && while :; do sleep 0.1; done; exit 0\n")
    first = LocalPool(state, slots=1)
    res = first.submit(sub("executable = job.sh\nqueue\n"), iwd=str(workdir))
    wait_for(lambda: ad_of(first, f"{res.cluster}.0")["JobStatus"] == 2, what="running")
    first.close()
    pid = int(ad_of_raw(first, res.cluster)["JobMonShepherdPid"])
    os.killpg(pid, signal.SIGKILL)
    wait_for(lambda: not Path(f"/proc/{pid}/cmdline").exists()
             or not Path(f"/proc/{pid}/cmdline").read_bytes(), what="shepherd gone")
    second = LocalPool(state, slots=1)
    try:
        ad = ended(second, f"{res.cluster}.0")
        assert ad["JobStatus"] == 4 and ad["JobRunCount"] == 2
    finally:
        second.close()


def ad_of_raw(pool: LocalPool, cluster: int) -> classad2.ClassAd:
    return pool._ads[(cluster, 0)]


def test_hold_release_and_nodes(pool: LocalPool, workdir: Path) -> None:
    pool.node_action("node01.example.org", NodeAction.OFF)
    res = pool.submit(sub("executable = /bin/true\nqueue 2\n"), iwd=str(workdir))
    assert res.procs == (0, 1)
    assert pool.nodes()[0].state in ("off",)
    assert pool.act(JobAction.HOLD, f"ClusterId == {res.cluster} && ProcId == 0") == 1
    assert pool.query(f"ClusterId == {res.cluster} && JobStatus == 5", ["HoldReason"])
    assert pool.act(JobAction.RELEASE, f"ClusterId == {res.cluster}") == 1
    pool.node_action("node01.example.org", NodeAction.ON)
    for p in res.procs:
        assert ended(pool, f"{res.cluster}.{p}")["ExitCode"] == 0
    with pytest.raises(NotFound):
        pool.node_action("elsewhere", NodeAction.DRAIN)
    info = pool.nodes()[0]
    assert info.slots_total == 2 and info.state == "up"


def test_program_runs_by_its_own_interpreter_line_without_path(pool: LocalPool, workdir: Path) -> None:
    # no PATH in the job's environment: "#!/usr/bin/env python3" still finds the system's python3
    # (env falls back to the C library's default path), as on an execute node
    prog = workdir / "prog.py"
    prog.write_text("#!/usr/bin/env python3\nimport os\nprint(os.path.realpath(\"/proc/self/exe\"))\nraise SystemExit(7)\n")
    prog.chmod(0o755)
    res = pool.submit(sub("executable = prog.py\noutput = prog.out\nqueue\n"), iwd=str(workdir))
    assert ended(pool, f"{res.cluster}.0")["ExitCode"] == 7
    assert (workdir / "prog.out").read_text().strip().startswith(("/usr/bin/python3", "/bin/python3"))  # /usr/bin/python3.11 here


def test_projection_keeps_values(pool: LocalPool, workdir: Path) -> None:
    res = pool.submit(sub("executable = /bin/true\n+Label = \"x y\"\nqueue\n"), iwd=str(workdir))
    ended(pool, f"{res.cluster}.0")
    (ad,) = pool.history(f"ClusterId == {res.cluster}", ["QDate", "Label", "Missing"])
    assert isinstance(ad["QDate"], int) and ad["Label"] == "x y"
    assert set(ad.keys()) == {"QDate", "Label"}


def test_job_sees_what_an_execute_node_gives_and_nothing_of_the_relay(tmp_path: Path, workdir: Path) -> None:
    # as recorded from HTCondor 25.14 (shared/condor-fixtures/sandbox/fast_intervals/report/env.txt,
    # ls_la_scratch.txt): only HTCondor's variables and the submit file's environment, no HOME, no
    # PATH; a scratch directory with the transferred files only; the relay's state out of reach
    state = tmp_path / "state"
    secret = state / "relay.key"
    pool = LocalPool(state, slots=1, hostname="node01.example.org")
    try:
        secret.write_text("not for jobs\n")
        creds = tmp_path / "creds"
        creds.mkdir()
        (creds / "jobmon.cred").write_text("secret\n")
        (workdir / "input.txt").write_text("in\n")
        script(workdir, "job.sh", f"""\
            env | sort > env.txt
            ls -A > ls.txt
            id -u > uid.txt
            if cat {secret} > /dev/null 2>&1; then echo readable; else echo unreadable; fi > secret.txt
            ls {state} > /dev/null 2>&1 && echo listable > state.txt || echo unlistable > state.txt
            pwd > pwd.txt
            cp "$_CONDOR_JOB_AD" job_ad_copy.txt
            """)
        res = pool.submit(sub(f"executable = job.sh\ntransfer_input_files = input.txt, {creds / 'jobmon.cred'}\n"
                              "environment = \"MINE=1 OTHER='a b'\"\nrequest_cpus = 1\n"
                              "+JobMonEnabled = true\nqueue\n"), iwd=str(workdir))
        ended(pool, f"{res.cluster}.0")
        scratch = pool.sandbox_path(res.cluster, 0)
    finally:
        pool.close()
    env = dict(line.split("=", 1) for line in (workdir / "env.txt").read_text().splitlines())
    assert "HOME" not in env and "PATH" not in env
    assert not [k for k in env if k.startswith("JOBMON_")]
    assert env["MINE"] == "1" and env["OTHER"] == "a b"
    assert env["_CONDOR_SCRATCH_DIR"] == str(scratch) == (workdir / "pwd.txt").read_text().strip()
    assert env["_CONDOR_JOB_AD"] == str(scratch / ".job.ad") and env["_CONDOR_SLOT"] == "slot1"
    assert env["BATCH_SYSTEM"] == "HTCondor" and env["OMP_NUM_THREADS"] == "1"
    assert env["TMPDIR"] == str(scratch / "tmp")
    assert state not in scratch.parents  # the scratch directory is not inside the relay's state
    listed = set((workdir / "ls.txt").read_text().split())
    assert listed == {".job.ad", ".machine.ad", "_condor_stdout", "_condor_stderr", "input.txt", "jobmon.cred",
                      "job.sh", "tmp", "var", "env.txt", "ls.txt"}
    assert (workdir / "secret.txt").read_text() == "unreadable\n"
    assert (workdir / "state.txt").read_text() == "unlistable\n"
    if os.geteuid() == 0:  # root's jobs run as nobody, as HTCondor never runs a job as root
        import pwd

        assert int((workdir / "uid.txt").read_text()) == pwd.getpwnam("nobody").pw_uid
    job_ad = classad2.parseOne((workdir / "job_ad_copy.txt").read_text())
    assert job_ad["ClusterId"] == res.cluster and job_ad["JobMonEnabled"] is True
    assert job_ad["Out"] == "_condor_stdout" and job_ad["OrigIwd"] == str(workdir)
    assert "JobMonShepherdPid" not in job_ad
    # the credential and the unchanged input went in but never come back out; new files do
    assert not (workdir / "jobmon.cred").exists() and (workdir / "input.txt").read_text() == "in\n"
    assert not (workdir / ".job.ad").exists() and not (workdir / "tmp").exists()


def test_queue_in_and_matching_use_the_submit_directory(pool: LocalPool, workdir: Path) -> None:
    for name in ("b.dat", "a.dat", "c.txt"):
        (workdir / name).write_text(name)
    res = pool.submit(sub("executable = /bin/cat\narguments = $(f)\ntransfer_executable = false\n"
                          "transfer_input_files = $(f)\noutput = $(f).out\nqueue f matching *.dat\n"),
                      iwd=str(workdir))
    res2 = pool.submit(sub("executable = /bin/echo\narguments = $(w)\noutput = w.$(Process)\n"
                           "queue w in (red, green)\n"), iwd=str(workdir))
    for r in (res, res2):
        for p in r.procs:
            ended(pool, f"{r.cluster}.{p}")
    assert (workdir / "a.dat.out").read_text() == "a.dat" and (workdir / "b.dat.out").read_text() == "b.dat"
    assert not (workdir / "c.txt.out").exists()
    assert [(workdir / f"w.{p}").read_text() for p in res2.procs] == ["red\n", "green\n"]


def test_user_log_is_readable_by_htcondor(pool: LocalPool, workdir: Path) -> None:
    script(workdir, "job.sh", "sleep 60\n")
    ok = pool.submit(sub("executable = /bin/true\nlog = events.log\nqueue\n"), iwd=str(workdir))
    ended(pool, f"{ok.cluster}.0")
    rm = pool.submit(sub("executable = job.sh\nlog = events.log\nqueue\n"), iwd=str(workdir))
    wait_for(lambda: ad_of(pool, f"{rm.cluster}.0")["JobStatus"] == 2, what="running")
    pool.act(JobAction.REMOVE, f"ClusterId == {rm.cluster}", "enough")
    ended(pool, f"{rm.cluster}.0")
    events = [(e.cluster, int(e.type)) for e in htcondor2.JobEventLog(str(workdir / "events.log")).events(0)]
    ET = htcondor2.JobEventType
    assert events == [(ok.cluster, ET.SUBMIT), (ok.cluster, ET.EXECUTE), (ok.cluster, ET.JOB_TERMINATED),
                      (rm.cluster, ET.SUBMIT), (rm.cluster, ET.EXECUTE), (rm.cluster, ET.JOB_ABORTED)]


def test_drain_lets_running_jobs_finish_and_starts_none(pool: LocalPool, workdir: Path) -> None:
    script(workdir, "job.sh", GATED)
    first = pool.submit(sub("executable = job.sh\nqueue\n"), iwd=str(workdir))
    wait_for(lambda: ad_of(pool, f"{first.cluster}.0")["JobStatus"] == 2, what="running")
    pool.node_action("node01.example.org", NodeAction.DRAIN)
    later = pool.submit(sub("executable = /bin/true\nqueue\n"), iwd=str(workdir))
    node = pool.nodes()[0]
    assert node.state == "draining" and node.draining and node.running_jobs == (f"{first.cluster}.0",)
    open_gate(pool, first.cluster)
    assert exit_of(ended(pool, f"{first.cluster}.0")) == (0, None)
    wait_for(lambda: pool.nodes()[0].state == "drained", what="drained")
    assert ad_of(pool, f"{later.cluster}.0")["JobStatus"] == 1
    pool.node_action("node01.example.org", NodeAction.UNDRAIN)
    assert ended(pool, f"{later.cluster}.0")["ExitCode"] == 0


def test_plus_attrs_use_old_classad_syntax_backslash_is_literal(tmp_path: Path, workdir: Path) -> None:
    # condor_submit reads "+Attr = value" in the OLD ClassAd syntax: a backslash is an ordinary
    # character, so "\d" stays "\d" (the new-syntax parser would drop the backslash).
    text = textwrap.dedent("""\
        executable = /bin/true
        +JobMonProgressRegex = "Processed event (\\d+)"
        +WinPath = "C:\\data\\in.txt"
        +Quoted = "say \\"hi\\""
        +Sum = 1 + 2
        queue
        """)
    assert "(\\d+)" in text  # the submit file itself has one backslash before d
    pool = LocalPool(tmp_path / "state", slots=1, hostname="node01.example.org")
    try:
        res = pool.submit(htcondor2.Submit(text), iwd=str(workdir))
        ad = ended(pool, f"{res.cluster}.0")
    finally:
        pool.close()
    assert ad["JobMonProgressRegex"] == "Processed event (\\d+)"
    assert re.search(ad["JobMonProgressRegex"], "Processed event 42").group(1) == "42"
    assert ad["WinPath"] == "C:\\data\\in.txt"
    assert ad["Quoted"] == 'say "hi"'
    assert ad.eval("Sum") == 3
    # the same values after the job table is read back from SQLite by a new pool
    again = LocalPool(tmp_path / "state", slots=1, hostname="node01.example.org")
    try:
        (back,) = again.history(f"ClusterId == {res.cluster}", ["JobMonProgressRegex", "WinPath"])
    finally:
        again.close()
    assert back["JobMonProgressRegex"] == "Processed event (\\d+)"
    assert back["WinPath"] == "C:\\data\\in.txt"


def test_plus_attr_that_is_not_an_expression_is_a_submit_error(pool: LocalPool, workdir: Path) -> None:
    with pytest.raises(SubmitFileError, match="Broken"):
        pool.submit(sub("executable = /bin/true\n+Broken = \"unterminated\nqueue\n"), iwd=str(workdir))
    assert pool.query() == []
