"""The quick commands against a real relay and job (issue 12): lean imports, one connection,
all output out before the fast exit. Timings: benchmarks/cli_latency.py."""

from __future__ import annotations

import subprocess
import textwrap
from pathlib import Path

import pytest
from jmtest.relay import client, jobmon, jobmon_command, start_relay, wait_for
from jmtest.relay import test_env as subprocess_env

pytestmark = pytest.mark.timeout(300)

FORBIDDEN = ("htcondor2", "classad2", "jinja2", "aiohttp", "rich", "cryptography", "OpenSSL",
             "http.client", "xmlrpc.client", "email", "dataclasses", "relay")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, pki):
    relay = start_relay(tmp_path_factory.mktemp("relay"), pki, slots=2)
    work = tmp_path_factory.mktemp("job")
    gate = work / "gate"
    (work / "job.sh").write_text("#!/bin/sh\necho started\n"
                                 f"while [ ! -e {gate} ]; do sleep 0.1; done\n")
    (work / "job.sh").chmod(0o755)
    (work / "job.sub").write_text(textwrap.dedent("""\
        executable = job.sh
        output = out
        error = err
        queue 2
        """))
    res = jobmon(relay, pki.alice, "submit", str(work / "job.sub"), cwd=work, ca_file=pki.ca_file)
    assert res.returncode == 0, res.stderr
    cluster = int(res.stdout.strip().rstrip(".").split()[-1])
    c = client(relay, pki.alice, pki.ca_file)
    for proc in (0, 1):
        wait_for(lambda p=proc: c.status(f"{cluster}.{p}").get("connected"), 60, f"{cluster}.{proc} connected")
    yield relay, cluster
    gate.touch()
    relay.cleanup()


def run_with_imports(relay, pki, *args: str) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    env = dict(subprocess_env(), PYTHONPROFILEIMPORTTIME="1")
    cmd = [*jobmon_command(), "--state-dir", str(relay.state_dir / "cli"), "--relay", relay.url,
           "--cert", str(pki.alice.cert_path), "--key", str(pki.alice.key_path), "--ca-file", str(pki.ca_file)]
    res = subprocess.run([*cmd, *args], capture_output=True, text=True, env=env, timeout=60,
                         stdin=subprocess.DEVNULL)
    names = {ln.rsplit("|", 1)[1].strip() for ln in res.stderr.splitlines() if ln.startswith("import time:")}
    res.stderr = "\n".join(ln for ln in res.stderr.splitlines() if not ln.startswith("import time:"))
    return res, names


@pytest.mark.parametrize("args,expect", [
    (("exec", "{job}", "--", "ls"), "job.sh"),
    (("tail", "{job}"), "started"),
    (("ps", "{job}"), "job.sh"),
    (("ls", "{job}"), "job.sh"),
    (("status", "{job}"), "running"),
])
def test_quick_commands_work_and_import_nothing_heavy(site, pki, args: tuple[str, ...], expect: str) -> None:
    relay, cluster = site
    res, names = run_with_imports(relay, pki, *(a.format(job=f"{cluster}.0") for a in args))
    assert res.returncode == 0 and expect in res.stdout, res.stderr
    assert "jobmon.client" in names
    bad = sorted(n for n in names if any(n == f or n.startswith(f + ".") for f in FORBIDDEN))
    assert bad == []


def test_all_output_is_out_before_the_fast_exit(site, pki) -> None:
    relay, cluster = site
    res = jobmon(relay, pki.alice, "exec", f"{cluster}.0", "--", "seq", "1", "100000", ca_file=pki.ca_file)
    assert res.returncode == 0 and res.stdout == "".join(f"{i}\n" for i in range(1, 100001))
    res = jobmon(relay, pki.alice, "exec", f"{cluster}.0", "--", "sh", "-c", "echo out; echo err >&2; exit 7",
                 ca_file=pki.ca_file)
    assert (res.returncode, res.stdout, res.stderr) == (7, "out\n", "err\n")


def test_a_fan_out_and_a_cluster_status_use_one_connection(site, pki, monkeypatch: pytest.MonkeyPatch,
                                                           tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from jobmon import https as client_mod
    from jobmon.cli.main import main

    relay, cluster = site
    handshakes: list[str] = []
    real = client_mod.Connection._handshake

    def counted(self, context, timeout):  # type: ignore[no-untyped-def]
        handshakes.append(self.host)
        return real(self, context, timeout)

    monkeypatch.setattr(client_mod.Connection, "_handshake", counted)
    for var in ("JOBMON_RELAY_URL", "JOBMON_STATE_DIR", "X509_USER_PROXY", "X509_CERT_DIR"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("JOBMON_NO_CONDOR_CONFIG", "1")
    base = ["--state-dir", str(tmp_path), "--relay", relay.url, "--cert", str(pki.alice.cert_path),
            "--key", str(pki.alice.key_path), "--ca-file", str(pki.ca_file)]
    assert main([*base, "exec", str(cluster), "--", "echo", "hi"]) == 0
    out = capsys.readouterr().out
    assert f"{cluster}.0: hi" in out and f"{cluster}.1: hi" in out
    assert len(handshakes) == 1
    assert main([*base, "status", str(cluster)]) == 0
    assert len(handshakes) == 2  # one more command, one more connection: joblist + two status calls on it
