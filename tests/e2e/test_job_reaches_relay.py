"""A job reaches and trusts its relay only through what its submit file carries (issue 9).

The local pool runs jobs as an execute node does (no HOME, no PATH, no way into
the relay's state), so these are the real pool's conditions: a job given the
relay's CA (``jobmon-ca.pem`` beside its credential) connects; the same job
from a relay that ships nothing (``job_ca_file = "none"``) cannot, its daemon
log says why, and ``jobmon status``/``q`` say "daemon cannot verify the
relay's certificate" instead of "not connected (yet)".
"""

from __future__ import annotations

import json
import sqlite3
import stat
import textwrap
from pathlib import Path
from typing import Any

import pytest
from jmtest.relay import jobmon, start_relay, wait_for

pytestmark = pytest.mark.timeout(240)

JOB = """\
    #!/bin/sh
    echo started
    while [ ! -e gate ]; do sleep 0.1; done
    """


def write_job(d: Path) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    (d / "job.sh").write_text(textwrap.dedent(JOB))
    (d / "job.sh").chmod(0o755)
    sub = d / "job.sub"
    sub.write_text("executable = job.sh\noutput = out.$(Cluster)\nerror = err.$(Cluster)\nqueue\n")
    return sub


def status(relay: Any, pki: Any, job: str) -> dict[str, Any]:
    res = jobmon(relay, pki.alice, "status", job, "--json", ca_file=pki.ca_file)
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    return data[0] if isinstance(data, list) else data


def scratch_of(relay: Any, job: str) -> Path:
    with sqlite3.connect(str(relay.state_dir / "localpool" / "jobs.sqlite")) as db:
        (execute,) = db.execute("SELECT value FROM meta WHERE key = 'execute_dir'").fetchone()
    return Path(execute) / f"dir_{job}" / "scratch"


def test_shipped_ca_connects_and_is_public(pki: Any, tmp_path: Path) -> None:
    with start_relay(tmp_path / "relay", pki) as relay:
        sub = write_job(tmp_path / "w")

        def run(*args: str) -> Any:
            return jobmon(relay, pki.alice, *args, ca_file=pki.ca_file, cwd=sub.parent)

        dry = run("submit", "--dry-run", str(sub))
        assert dry.returncode == 0, dry.stderr
        inputs = next(ln for ln in dry.stdout.splitlines() if ln.startswith("transfer_input_files"))
        assert "jobmon.cred" in inputs and "jobmon-ca.pem" in inputs
        assert "# the relay's CA" in dry.stdout  # the relay said why it travels
        res = run("submit", str(sub))
        assert res.returncode == 0, res.stderr
        job = res.stdout.strip().rstrip(".").split()[-1] + ".0"
        wait_for(lambda: status(relay, pki, job).get("connected"), 60, f"{job} connected")
        # what travelled: the credential (0600) and the relay's CA (0644), nothing else of the relay
        scratch = scratch_of(relay, job)
        ls = run("exec", job, "--", "ls", "-A")
        assert ls.returncode == 0, ls.stderr
        assert {"jobmon.cred", "jobmon-ca.pem", "job.sh"} <= set(ls.stdout.split())
        creds = list((relay.state_dir / "cli" / "credentials").glob("*/jobmon-ca.pem"))
        assert len(creds) == 1 and stat.S_IMODE(creds[0].stat().st_mode) == 0o644
        assert stat.S_IMODE((creds[0].parent / "jobmon.cred").stat().st_mode) == 0o600
        assert "PRIVATE KEY" not in creds[0].read_text() and "BEGIN CERTIFICATE" in creds[0].read_text()
        assert (scratch / "jobmon-ca.pem").read_text() == creds[0].read_text()
        assert run("exec", job, "--", "touch", "gate").returncode == 0
        wait_for(lambda: status(relay, pki, job).get("state") == "finished", 60, f"{job} finished")


def test_without_the_ca_the_daemon_cannot_connect_and_everyone_is_told_why(pki: Any, tmp_path: Path) -> None:
    with start_relay(tmp_path / "relay", pki, config={"job_ca_file": "none"}) as relay:
        sub = write_job(tmp_path / "w")
        res = jobmon(relay, pki.alice, "submit", str(sub), ca_file=pki.ca_file, cwd=sub.parent)
        assert res.returncode == 0, res.stderr
        job = res.stdout.strip().rstrip(".").split()[-1] + ".0"
        assert "jobmon-ca.pem" not in {p.name for p in (relay.state_dir / "cli" / "credentials").glob("*/*")}
        st = wait_for(lambda: (s := status(relay, pki, job)).get("monitor_problem") and s, 60,
                      f"{job}'s refused handshakes to show")
        assert st["state"] == "running" and st["connected"] is False
        assert "cannot verify the relay's certificate" in st["monitor_problem"]
        assert "unknown ca" in st["monitor_problem"]
        text = jobmon(relay, pki.alice, "status", job, ca_file=pki.ca_file).stdout
        assert "running (daemon cannot verify the relay's certificate)" in text
        q = jobmon(relay, pki.alice, "q", ca_file=pki.ca_file).stdout
        assert "running!" in q and "cannot verify the relay's certificate" in q
        # the daemon's own log names the reason and what it trusted
        log = scratch_of(relay, job) / ".jobmon" / "daemon.log"
        wait_for(log.exists, 30, "the daemon log")
        line = log.read_text()
        assert "cannot verify the relay's certificate: " in line
        # OpenSSL's reason: the test host certificate carries its CA in its chain, so "self-signed"
        assert "self-signed certificate in certificate chain" in line or "unable to get local issuer" in line
        assert "no jobmon-ca.pem was shipped" in line
        assert "refused: TLSV1_ALERT_UNKNOWN_CA" in relay.log_text()
        # the job itself is unharmed: it runs, and ends as it would without JobMon
        (scratch_of(relay, job) / "gate").touch()
        wait_for(lambda: status(relay, pki, job).get("state") == "finished", 60, f"{job} finished")
        assert (sub.parent / f"out.{job.split('.')[0]}").read_text() == "started\n"


def test_template_render_with_a_credential_is_complete_for_condor_submit(pki: Any, tmp_path: Path) -> None:
    import htcondor2

    with start_relay(tmp_path / "relay", pki) as relay:
        res = jobmon(relay, pki.alice, "template", "render", "wrapped", "--set", "executable=job.sh",
                     "--credential", ca_file=pki.ca_file)
        assert res.returncode == 0, res.stderr
    sub = htcondor2.Submit(res.stdout)
    inputs = [p.strip() for p in sub["transfer_input_files"].split(",")]
    cred, ca = (Path(p) for p in inputs[-2:])
    assert cred.name == "jobmon.cred" and ca.name == "jobmon-ca.pem" and cred.parent == ca.parent
    assert stat.S_IMODE(cred.stat().st_mode) == 0o600 and stat.S_IMODE(ca.stat().st_mode) == 0o644
    assert "--credential jobmon.cred" in sub["arguments"]
    assert relay.url in res.stdout and pki.alice.dn in res.stdout  # JobMonRelay, JobMonOwnerDN
