"""How results travel back (docs/PROTOCOL.md): riding on the next ``jobmon.poll`` when
they are ready before it starts, by ``jobmon.result`` while a poll is open or when the
relay does not take results on the poll, retried once on a fresh connection."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable

import pytest
from jmtest.waiting import wait_for as _wait_for

HOLD = "while [ ! -e stop ]; do sleep 0.05; done"




@pytest.fixture
def job(wrapper_pyz: Path, relay_env: dict[str, str],
        tmp_path: Path) -> Iterator[Callable[[Any], subprocess.Popen[bytes]]]:
    box = tmp_path / "scratch"
    box.mkdir()
    (box / "input.txt").write_text("hello\n")
    procs: list[subprocess.Popen[bytes]] = []

    def start(relay: Any) -> subprocess.Popen[bytes]:
        env = dict(relay_env, JOBMON_RELAY_URL=relay.url)
        proc = subprocess.Popen(["python3", str(wrapper_pyz), "--", "sh", "-c", HOLD],
                                cwd=str(box), env=env, stderr=subprocess.PIPE)
        procs.append(proc)
        assert relay.registered.wait(30)
        return proc

    yield start
    (box / "stop").touch()
    for proc in procs:
        try:
            _out, err = proc.communicate(timeout=30)
            assert proc.returncode == 0 and err == b""
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def test_quick_results_ride_on_the_next_poll(job: Any, fake_relay: Any) -> None:
    job(fake_relay)
    for _ in range(5):
        r = fake_relay.request("42.0", "stat", {"path": "input.txt"})
        assert r["type"] == "file" and r["size"] == 6.0
    # stat takes microseconds: the poll loop waits for it and sends it with the poll
    assert fake_relay.piggybacked, (fake_relay.piggybacked, fake_relay.posted)
    polls_with_results = [p for m, p, _a in fake_relay.calls if m == "jobmon.poll" and len(p) > 2]
    assert polls_with_results and all(isinstance(p[2], list) for p in polls_with_results)


def test_result_ready_while_a_poll_is_open_is_posted_at_once(job: Any, fake_relay: Any,
                                                             tmp_path: Path) -> None:
    job(fake_relay)
    box = tmp_path / "scratch"
    rid = fake_relay.submit("42.0", "exec", {
        "argv": ["sh", "-c", "touch started; while [ ! -e go ]; do sleep 0.02; done; echo ok"]})
    _wait_for(lambda: (box / "started").exists())
    polls = sum(1 for m, _p, _a in fake_relay.calls if m == "jobmon.poll")
    _wait_for(lambda: sum(1 for m, _p, _a in fake_relay.calls if m == "jobmon.poll") > polls)
    (box / "go").touch()                   # the poll is open now (fake poll_wait 2 s)
    assert fake_relay.result_events[rid].wait(30)
    assert fake_relay.results[rid]["stdout"].data == b"ok\n"
    assert rid in fake_relay.posted


def test_relay_without_results_on_poll_gets_jobmon_result(job: Any,
                                                          make_relay: Callable[..., Any]) -> None:
    relay = make_relay("old")
    job(relay)
    for _ in range(3):
        r = relay.request("42.0", "stat", {"path": "input.txt"})
        assert r["type"] == "file"
    assert relay.piggybacked == [] and len(relay.posted) == 3
    refused = [p for m, p, _a in relay.calls if m == "jobmon.poll" and len(p) > 2]
    assert len(refused) <= 1   # tried once, then jobmon.result for good


def test_result_retried_on_a_fresh_connection(job: Any, make_relay: Callable[..., Any]) -> None:
    relay = make_relay("old")
    relay.drop_after_result = True   # each kept-alive result connection dies after use
    job(relay)
    for _ in range(4):
        r = relay.request("42.0", "exec", {"argv": ["echo", "x"]}, timeout=30)
        assert r["stdout"].data == b"x\n"
    assert len(relay.posted) == 4


def test_max_body_from_the_register_reply_is_honoured(job: Any, fake_relay: Any) -> None:
    fake_relay.max_body = 200_000      # a relay configured below the 1 MiB default
    job(fake_relay)
    r = fake_relay.request("42.0", "exec", {"argv": ["head", "-c", "3000000", "/dev/zero"]})
    assert r["exit_code"] == 0 and r["truncated"] is True
    assert 50_000 < len(r["stdout"].data) < 150_000
    r = fake_relay.request("42.0", "read", {"path": "input.txt"})
    assert r["data"].data == b"hello\n"


def test_finish_is_retried_after_998(wrapper_pyz: Path, fake_relay: Any,
                                     relay_env: dict[str, str], tmp_path: Path) -> None:
    fake_relay.finish_faults = 1       # the relay was stopping when the payload ended
    env = dict(relay_env, JOBMON_RELAY_URL=fake_relay.url)
    r = subprocess.run(["python3", str(wrapper_pyz), "--", "sh", "-c", "sleep 0.5; exit 6"],
                       cwd=str(tmp_path), env=env, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=60)
    assert r.returncode == 6 and r.stderr == b""
    assert fake_relay.finals and fake_relay.finals[0]["exit_code"] == 6
    assert sum(1 for m, _p, _a in fake_relay.calls if m == "jobmon.finish") == 2
