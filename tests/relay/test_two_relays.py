"""Two relays, one pool, one cluster split between them (issue 11): every job's ad names its relay
(``JobMonRelay``), the real ``jobmon`` command routes to it, a fan-out spans both relays and
``jobmon q`` merges them. The daemons are the real wrapper, authenticating with the user's proxy
(a per-job credential is verified only by the relay that issued it)."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).parents[2]
pytestmark = pytest.mark.timeout(180)


def _wrapper(relay: Any, pki: Any, tmp_path: Path, job: str) -> subprocess.Popen[bytes]:
    sandbox = tmp_path / f"sandbox-{job}"
    sandbox.mkdir()
    (sandbox / f"marker-{job}").write_text(job)
    env = dict(os.environ, PYTHONPATH=str(ROOT), X509_USER_PROXY=str(pki.alice.proxy_path))
    return subprocess.Popen(
        [sys.executable, "-m", "jobmon_wrapper", "--relay", relay.url, "--job-id", job,
         "--ca-file", str(pki.ca_file), "--", "/bin/sh", "-c", "exec sleep 120"],
        cwd=sandbox, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def _jobmon(home: Any, pki: Any, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "jobmon.cli.main", "--relay", home.url, "--cert", str(pki.alice.cert_path),
           "--key", str(pki.alice.key_path), "--ca-file", str(pki.ca_file), "--state-dir", str(tmp_path / "cli"),
           *args]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("JOBMON_RELAY_URL", None)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path)


def _get(relay: Any, pki: Any, path: str) -> tuple[int, Any, str]:
    conn = http.client.HTTPSConnection("127.0.0.1", relay.port, context=relay.ssl_context(pki.alice), timeout=30)
    conn.request("GET", path)
    resp = conn.getresponse()
    body = resp.read().decode()
    conn.close()
    return resp.status, resp.headers, body


def test_a_cluster_split_between_two_relays(relay_factory: Any, fake_pool: Any, pki: Any, tmp_path: Path) -> None:
    a = relay_factory(state="state-a")
    b = relay_factory(state="state-b")
    where = {0: a, 1: a, 2: b, 3: b}
    for proc, relay in where.items():  # the schedd: one cluster, each job's ad naming its relay
        fake_pool.add(40, proc, owner_dn=pki.alice.dn, JobMonRelay=relay.url)
    wrappers = {p: _wrapper(relay, pki, tmp_path, f"40.{p}") for p, relay in where.items()}
    payloads: list[int] = []
    try:
        deadline = time.monotonic() + 60
        for p, relay in where.items():
            while f"40.{p}" not in relay.core.registry.by_job or not relay.core.registry.connected(f"40.{p}"):
                assert time.monotonic() < deadline and wrappers[p].poll() is None, f"40.{p} never connected"
                time.sleep(0.05)
            payloads.append(int(relay.core.registry.by_job[f"40.{p}"].info["pid"]))
        assert "40.2" not in a.core.registry.by_job and "40.0" not in b.core.registry.by_job

        # fan-out from relay A's user: all four jobs answer, two through B
        res = _jobmon(a, pki, tmp_path, "exec", "40", "--progress", "--", "echo", "hi")
        assert res.returncode == 0, res.stdout + res.stderr
        for p in range(4):
            assert f"40.{p}: hi" in res.stdout and f"40.{p}: exit 0" in res.stdout, res.stdout
        assert "4/4 results from 2 relays" in res.stderr, res.stderr
        assert any(r.method == "jobmon.execMany" for r in b.core.audit_log.query(user=pki.alice.dn))

        # one job of B, asked through A
        res = _jobmon(a, pki, tmp_path, "exec", "40.3", "--", "echo", "on b")
        assert res.returncode == 0 and res.stdout == "on b\n", res.stdout + res.stderr
        res = _jobmon(a, pki, tmp_path, "ls", "40.2")
        assert res.returncode == 0 and "marker-40.2" in res.stdout, res.stdout + res.stderr
        res = _jobmon(a, pki, tmp_path, "ps", "40.3")
        assert res.returncode == 0 and "sleep" in res.stdout, res.stdout + res.stderr

        # the list merges both relays: every job connected, where it is connected
        res = _jobmon(a, pki, tmp_path, "q", "40", "--json")
        assert res.returncode == 0, res.stderr
        jobs = {j["id"]: j for j in json.loads(res.stdout)}
        assert sorted(jobs) == ["40.0", "40.1", "40.2", "40.3"]
        assert all(j["connected"] for j in jobs.values()), jobs
        assert jobs["40.2"]["host"] and jobs["40.2"]["relay"] == b.url

        res = _jobmon(a, pki, tmp_path, "status", "40.2", "--json")
        assert res.returncode == 0 and json.loads(res.stdout)["connected"] is True, res.stdout + res.stderr

        # the web pages of A send the browser to B for B's jobs
        b_page = f"https://127.0.0.1:{b.port}/jobs/40.2"
        status, headers, _ = _get(a, pki, "/jobs/40.2")
        assert status == 302 and headers["Location"] == b_page, (status, headers)
        status, _, page = _get(a, pki, "/jobs/40.1")
        assert status == 200 and "40.1" in page
        status, _, page = _get(a, pki, "/")
        assert status == 200 and f'href="{b_page}"' in page and 'href="/jobs/40.1"' in page
    finally:
        for proc in wrappers.values():
            proc.send_signal(signal.SIGTERM)
        for proc in wrappers.values():
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        for pid in payloads:
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
