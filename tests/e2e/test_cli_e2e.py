"""The real `jobmon` command in subprocesses, a real relay, the local pool, real TLS, wrapped jobs."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from jmtest.relay import client, jobmon, start_relay, wait_for

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def relay(tmp_path_factory: pytest.TempPathFactory, pki):
    r = start_relay(tmp_path_factory.mktemp("relay"), pki, slots=4)
    yield r
    r.cleanup()


@pytest.fixture(scope="module")
def run(relay, pki):
    def _run(*args: str, cred=None, timeout: float = 90.0, cwd: Path | None = None):
        return jobmon(relay, cred or pki.alice, *args, timeout=timeout, cwd=cwd, ca_file=pki.ca_file)
    return _run


def write_job(d: Path, body: str, sub_extra: str = "", queue: str = "queue") -> Path:
    d.mkdir(parents=True, exist_ok=True)
    (d / "job.sh").write_text("#!/bin/sh\n" + textwrap.dedent(body))
    (d / "job.sh").chmod(0o755)
    (d / "input.txt").write_text("hello from the input file\n")
    sub = d / "job.sub"
    sub.write_text(textwrap.dedent("""\
        executable = job.sh
        transfer_input_files = input.txt
        output = out.$(Cluster).$(Process)
        error = err.$(Cluster).$(Process)
        log = job.log
        """) + sub_extra + queue + "\n")
    return sub


def submit(run, sub: Path) -> int:
    res = run("submit", str(sub), cwd=sub.parent)
    assert res.returncode == 0, res.stderr
    line = res.stdout.strip().splitlines()[-1]
    assert line.endswith(".") and "job(s) submitted to cluster" in line, res.stdout
    return int(line.rstrip(".").split()[-1])


def wait_connected(relay, pki, job: str, timeout: float = 60.0) -> dict:
    c = client(relay, pki.alice, pki.ca_file)
    return wait_for(lambda: (st := c.status(job)).get("connected") and st, timeout, f"{job} connected")


def wait_ended(relay, pki, job: str, timeout: float = 90.0) -> dict:
    c = client(relay, pki.alice, pki.ca_file)
    return wait_for(lambda: (st := c.status(job)).get("state") in ("finished", "removed") and st,
                    timeout, f"{job} to end")


# A job that waits until the test opens its gate. The job cannot see the test's directories (it runs
# as on an execute node), so the gate is a file in its sandbox, made with `jobmon exec JOB -- touch gate`.
GATED = """\
    echo started
    while [ ! -e gate ]; do sleep 0.1; done
    echo finished
    """


def open_gate(run, job: str) -> None:
    res = run("exec", job, "--", "touch", "gate")
    assert res.returncode == 0, res.stdout + res.stderr


def test_submit_status_exec_ls_ps_rm(run, relay, pki, tmp_path: Path) -> None:
    sub = write_job(tmp_path / "w", GATED)
    cluster = submit(run, sub)
    job = f"{cluster}.0"
    wait_connected(relay, pki, job)

    st = run("status", job)
    assert st.returncode == 0 and "running" in st.stdout
    res = run("exec", job, "--", "cat", "input.txt")
    assert res.returncode == 0 and res.stdout == "hello from the input file\n"
    res = run("exec", job, "--", "sh", "-c", "echo oops >&2; exit 3")
    assert res.returncode == 3 and "oops" in res.stderr
    res = run("exec", job, "--", "sh", "-c", "kill -TERM $$")
    assert res.returncode == 128 + 15, res.stdout + res.stderr  # signalled: 128+N, as a shell reports it
    # the documented order: options after JOB, the command after --
    res = run("exec", job, "--timeout", "20", "--", "echo", "hi")
    assert res.returncode == 0 and res.stdout == "hi\n", res.stdout + res.stderr
    res = run("exec", job, "--shell", "--", "echo hi | tr a-z A-Z")  # --shell reached the relay,
    assert res.returncode == 4 and "shell" in res.stderr  # which refuses it by default (allow_shell)
    res = run("exec", job, "--", "echo", "--shell", "--timeout")  # after --: the command's own words
    assert res.returncode == 0 and res.stdout == "--shell --timeout\n", res.stdout + res.stderr
    res = run("exec", job, "--timeout", "abc", "--", "ls")
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and "--timeout" in res.stderr
    res = run("ls", job)
    assert res.returncode == 0 and "input.txt" in res.stdout and "job.sh" in res.stdout
    res = run("ps", job)
    assert res.returncode == 0 and "job.sh" in res.stdout
    q = run("q", "--json")
    assert q.returncode == 0 and f'"{job}"' in q.stdout

    res = run("rm", job)
    assert res.returncode == 0 and job in res.stdout
    assert wait_ended(relay, pki, job)["state"] == "removed"


def test_exec_fan_out_over_a_cluster(run, relay, pki, tmp_path: Path) -> None:
    sub = write_job(tmp_path / "w", GATED, queue="queue 2")
    cluster = submit(run, sub)
    for p in (0, 1):
        wait_connected(relay, pki, f"{cluster}.{p}")
    res = run("exec", str(cluster), "--", "sh", "-c", 'echo "id=$JOBMON_JOB_ID"')
    assert res.returncode == 0, res.stdout + res.stderr
    assert f"{cluster}.0: id={cluster}.0" in res.stdout
    assert f"{cluster}.1: id={cluster}.1" in res.stdout
    res = run("exec", str(cluster), "--", "sh", "-c", '[ "$JOBMON_JOB_ID" = "%d.0" ]' % cluster)
    assert res.returncode == 1
    assert f"{cluster}.1: exit 1" in res.stdout and f"{cluster}.0: exit 0" in res.stdout
    st = run("status", str(cluster))
    assert st.returncode == 0 and f"{cluster}.0:" in st.stdout and f"{cluster}.1:" in st.stdout
    open_gate(run, str(cluster))
    for p in (0, 1):
        assert wait_ended(relay, pki, f"{cluster}.{p}").get("exit_code") == 0
    out = sub.parent / f"out.{cluster}.1"
    wait_for(out.exists, what="stdout to come back")
    assert out.read_text() == "started\nfinished\n"


def test_tail_follows_until_the_job_ends(run, relay, pki, tmp_path: Path) -> None:
    body = """\
        for i in 1 2 3; do echo "line $i"; sleep 0.2; done
        while [ ! -e gate ]; do sleep 0.1; done
        for i in 4 5 6; do echo "line $i"; sleep 0.2; done
        """
    cluster = submit(run, write_job(tmp_path / "w", body))
    job = f"{cluster}.0"  # followed at once: tail -f waits for the job's monitor to connect
    import subprocess

    from jmtest.relay import jobmon_command, test_env

    follower = subprocess.Popen(
        [*jobmon_command(), "--state-dir", str(relay.state_dir / "cli"), "--relay", relay.url,
         "--cert", str(pki.alice.cert_path), "--key", str(pki.alice.key_path), "--ca-file", str(pki.ca_file),
         "tail", "-f", job], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=test_env())
    seen = []
    try:
        assert follower.stdout is not None
        while len(seen) < 3:  # lines 1-3 arrive while the job waits at its gate
            line = follower.stdout.readline()
            assert line, follower.stderr.read() if follower.stderr else "tail ended early"
            seen.append(line.rstrip("\n"))
        open_gate(run, job)
        out, err = follower.communicate(timeout=120)
    finally:
        follower.kill()
    assert follower.returncode == 0, err
    seen += out.splitlines()
    assert [ln for ln in seen if ln.startswith("line")] == [f"line {i}" for i in range(1, 7)]


def test_other_users_certificate_is_refused(run, relay, pki, tmp_path: Path) -> None:
    cluster = submit(run, write_job(tmp_path / "w", GATED))
    job = f"{cluster}.0"
    wait_connected(relay, pki, job)
    res = run("exec", job, "--", "ls", cred=pki.bob)
    assert res.returncode == 4, res.stderr
    assert res.stderr.startswith("jobmon: ") and len(res.stderr.strip().splitlines()) == 1
    assert "Traceback" not in res.stderr
    res = run("tail", job, cred=pki.bob)
    assert res.returncode == 4
    open_gate(run, job)
    wait_ended(relay, pki, job)


def test_syntax_error_submits_nothing(run, relay, pki, tmp_path: Path) -> None:
    before = client(relay, pki.alice, pki.ca_file).joblist({"all": True})
    d = tmp_path / "w"
    d.mkdir()
    (d / "bad.sub").write_text("executable = /bin/true\narguments = x\nthis line is wrong\nqueue\n")
    res = run("submit", str(d / "bad.sub"))
    assert res.returncode == 2
    assert "line 3" in res.stderr and "this line is wrong" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    after = client(relay, pki.alice, pki.ca_file).joblist({"all": True})
    assert len(after) == len(before)


def test_unknown_job_and_bad_job_id(run) -> None:
    res = run("status", "99999.0")
    assert res.returncode == 5 and res.stderr.startswith("jobmon: ")
    res = run("exec", "99999.0", "--", "ls")
    assert res.returncode == 5
    res = run("status", "not-a-job")
    assert res.returncode == 2 and "not a job id" in res.stderr


def test_whoami_and_seed_command_form(run, relay, pki, tmp_path: Path) -> None:
    res = run("whoami")
    assert res.returncode == 0 and res.stdout.strip() == pki.alice.dn
    cluster = submit(run, write_job(tmp_path / "w", GATED))
    job = f"{cluster}.0"
    wait_connected(relay, pki, job)
    import subprocess

    from jmtest.relay import jobmon_command, test_env

    legacy = subprocess.run(
        [*jobmon_command(), "--serverURL", relay.url, "--jobname", job, "--command", "cat input.txt",
         "--certfile", str(pki.alice.cert_path), "--keyfile", str(pki.alice.key_path),
         "--ca-file", str(pki.ca_file)], capture_output=True, text=True, timeout=60, env=test_env())
    assert legacy.returncode == 0, legacy.stderr
    assert legacy.stdout == "hello from the input file\n"
    # exactly the seed's form
    seed = subprocess.run(
        [*jobmon_command(), "--serverURL", relay.url, "--jobname", job, "--command", "ls -l",
         "--certfile", str(pki.alice.cert_path), "--keyfile", str(pki.alice.key_path),
         "--ca-file", str(pki.ca_file)], capture_output=True, text=True, timeout=60, env=test_env())
    assert seed.returncode == 0, seed.stderr
    assert "input.txt" in seed.stdout and seed.stdout.startswith("total ")
    # and the seed daemon's job list
    daemon = Path(jobmon_command()[0]).parent / "jobmon-daemon"
    if daemon.exists():
        listed = subprocess.run(
            [str(daemon), "--joblist", "--serverURL", relay.url, "--certfile", str(pki.alice.cert_path),
             "--keyfile", str(pki.alice.key_path), "--cafile", str(pki.ca_file)],
            capture_output=True, text=True, timeout=60, env=test_env())
        assert listed.returncode == 0, listed.stderr
        assert any(line.split()[:1] == [job] and "connected" in line for line in listed.stdout.splitlines()), \
            listed.stdout
    open_gate(run, job)
    wait_ended(relay, pki, job)


def test_relay_restart_while_a_job_runs(pki, tmp_path: Path) -> None:
    state = tmp_path / "relay"
    first = start_relay(state, pki)
    port = first.port

    def run(relay, *args: str):
        return jobmon(relay, pki.alice, *args, ca_file=pki.ca_file, timeout=90)

    sub = write_job(tmp_path / "w", GATED)
    res = run(first, "submit", str(sub))
    assert res.returncode == 0, res.stderr
    cluster = int(res.stdout.strip().rstrip(".").split()[-1])
    job = f"{cluster}.0"
    try:
        wait_connected(first, pki, job)
        assert first.stop() == 0
        second = start_relay(state, pki, listen=f"127.0.0.1:{port}")
    except BaseException:
        first.cleanup()
        raise
    try:
        assert second.url == first.url
        # the job kept running; its monitor connects again to the new relay
        wait_connected(second, pki, job)
        res = run(second, "exec", job, "--", "cat", "input.txt")
        assert res.returncode == 0 and "hello" in res.stdout
        assert run(second, "exec", job, "--", "touch", "gate").returncode == 0
        st = wait_ended(second, pki, job)
        assert st["state"] == "finished" and st.get("exit_code") == 0
        out = sub.parent / f"out.{cluster}.0"  # returned by the pool just after the job's own report
        wait_for(out.exists, what="stdout to come back")
        assert out.read_text() == "started\nfinished\n"
    finally:
        second.cleanup()


@pytest.mark.slow
def test_jobmon_demo_exits_zero(tmp_path: Path) -> None:
    import subprocess

    from jmtest.relay import jobmon_command, test_env

    res = subprocess.run([*jobmon_command(), "demo"], capture_output=True, text=True, timeout=180,
                         env=test_env({"HOME": str(tmp_path)}))
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert "summary.txt | events: 48" in res.stdout
    assert "exit code 0" in res.stdout


def test_watch_modes_return_when_the_jobs_end(run, relay, pki, tmp_path: Path) -> None:
    body = """\
        for i in 1 2 3 4 5 6; do echo "Processed event $i of 6"; sleep 0.3; done
        exit $EXIT
        """
    sub = write_job(tmp_path / "w", body.replace("$EXIT", "0"),
                    sub_extra='+JobMonProgressRegex = "Processed event ([0-9]+) of ([0-9]+)"\n', queue="queue 2")
    cluster = submit(run, sub)
    res = run("status", "--watch", str(cluster), timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
    assert f"{cluster}.0" in res.stdout and f"{cluster}.1" in res.stdout and "finished" in res.stdout
    res = run("q", "--watch", str(cluster), timeout=120)
    assert res.returncode == 0 and "2 job(s): 2 finished" in res.stdout

    failing = write_job(tmp_path / "f", body.replace("$EXIT", "4"))
    cluster = submit(run, failing)
    res = run("status", "--watch", f"{cluster}.0", timeout=120)
    assert res.returncode == 1 and "exit 4" in res.stdout


def test_admin_commands(run, relay, pki) -> None:
    res = run("nodes", cred=pki.admin)
    assert res.returncode == 0, res.stderr
    assert "up" in res.stdout and "/" in res.stdout
    res = run("nodes", cred=pki.alice)
    assert res.returncode == 4 and res.stderr.startswith("jobmon: ")
    res = run("audit", "--since", "1h", cred=pki.admin)
    assert res.returncode == 0
    denied = [ln for ln in res.stdout.splitlines() if "DENIED" in ln and "jobmon.nodes" in ln]
    assert denied and pki.alice.dn in denied[-1]  # alice's refused attempt is in the audit log
    res = run("audit", cred=pki.bob)
    assert res.returncode == 4
    res = run("nodes", "drain", "no-such-node.example.org", cred=pki.admin)
    assert res.returncode == 5
    res = run("web")
    assert res.returncode == 0 and res.stdout.startswith(relay.url.split("/clarens")[0])
