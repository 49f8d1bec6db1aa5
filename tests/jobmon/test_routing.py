"""Which relay a job is on (jobmon/routing.py) and the fan-out's progress line (jobmon/fanout.py),
without sockets; tests/relay/test_two_relays.py runs them against two real relays."""

from __future__ import annotations

import io

import pytest

from jobmon.fanout import Progress
from jobmon.routing import merge_job_lists, page_elsewhere, same_relay

A = "https://relay-a.example.org:8443/clarens"
B = "https://relay-b.example.org:8443/clarens"


@pytest.mark.parametrize(("x", "y", "same"), [
    (A, A, True),
    (A, "https://RELAY-A.example.org:8443/RPC2", True),          # host case and path do not matter
    (A, "https://relay-a.example.org/clarens", False),           # 443 is another port
    ("https://relay-a.example.org/clarens", "https://relay-a.example.org:443/", True),
    (A, B, False),
    ("https://[::1]:8443/clarens", "https://[::1]:8443", True),
    (A, None, False), (None, None, False), ("", A, False),
])
def test_same_relay(x: str | None, y: str | None, same: bool) -> None:
    assert same_relay(x, y) is same
    assert same_relay(y, x) is same


def test_a_live_job_on_another_relay_gets_that_relays_page() -> None:
    job = {"id": "12.3", "relay": B, "connected": False, "state": "running"}
    assert page_elsewhere(job, A) == "https://relay-b.example.org:8443/jobs/12.3"
    assert page_elsewhere(dict(job, relay="https://[::1]:9443/clarens"), A) == "https://[::1]:9443/jobs/12.3"
    assert page_elsewhere(dict(job, connected=True), A) is None    # its daemon is here after all
    assert page_elsewhere(dict(job, state="completed"), A) is None  # ended: the pool's record is here too
    assert page_elsewhere(job, B) is None


def test_merged_job_lists_keep_what_the_jobs_own_relay_says() -> None:
    home = [{"id": "1.0", "relay": A, "connected": True}, {"id": "1.1", "relay": B, "connected": False}]
    other = [{"id": "1.1", "relay": B, "connected": True, "progress": "42 events"}]
    merged = {j["id"]: j for j in merge_job_lists(A, {A: home, B: other})}
    assert merged["1.0"]["connected"] is True
    assert merged["1.1"] == other[0]


def test_progress_line_counts_results_failures_and_relays() -> None:
    out = io.StringIO()
    p = Progress(out, tty=False)
    p.start(4, 2)
    p.add([("1.0", {"exit_code": 0}, None), ("1.1", {"exit_code": 3}, None)])
    p.finish()
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("jobmon: 0/4 results from 2 relays, ")
    assert lines[-1].startswith("jobmon: 2/4 results (1 failed) from 2 relays, ")
    assert "(the first after " in lines[-1]
