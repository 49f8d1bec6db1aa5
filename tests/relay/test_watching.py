"""Watched jobs report progress live (issue 13): leases, the daemon's ``watch`` request, jobmon.watch."""

from __future__ import annotations

import threading
import time
import xmlrpc.client
from typing import Any

import pytest

from relay.watching import Watchers, lease_seconds


def test_watchers_report_first_and_last_holder_only() -> None:
    seen: list[tuple[str, bool]] = []
    w = Watchers(lambda job, on: seen.append((job, on)))
    w.hold("page-1", ["1.0", "1.1"])
    w.hold("page-2", ["1.0"])                 # a second watcher: no news for the daemon
    assert seen == [("1.0", True), ("1.1", True)] and w.count() == 2
    w.release("page-1")
    assert seen[-1] == ("1.1", False) and w.watched("1.0") and not w.watched("1.1")
    w.hold_only("page-2", ["2.0"])            # the list page now shows other jobs
    assert seen[-2:] == [("1.0", False), ("2.0", True)]
    w.hold("cli", ["3.0"], until=100.0)
    w.expire(now=99.0)
    assert w.watched("3.0")
    w.expire(now=100.0)                       # the lease ran out
    assert not w.watched("3.0") and seen[-1] == ("3.0", False)
    w.release("nobody-holds-this")            # harmless
    w.release("page-2")
    assert w.count() == 0
    assert lease_seconds(None) == 10.0 and lease_seconds(1e9) == 120.0 and lease_seconds(True) == 10.0


def _heartbeat(rpc: Any, session: str, done: float) -> None:
    rpc.jobmon.heartbeat(session, {"time": time.time(), "progress": {"done": done, "total": 300.0}})


def test_watch_tells_the_daemon_and_returns_at_its_next_report(relay: Any, pki: Any, kit: Any) -> None:
    token, _ = relay.core.credentials.issue(pki.alice.dn, 7)
    daemon = kit.SimDaemon(relay, "7.0", token=token).start()
    alice = relay.client(pki.alice)
    try:
        first = alice.jobmon.watch(["7.0", "8.0"], {"lease": 5})
        assert set(first["jobs"]) == {"7.0"}        # 8.0 has no daemon here: nothing to watch
        assert first["jobs"]["7.0"]["connected"] is True
        # the daemon hears about its first watcher on its long-poll, as a control request
        deadline = time.monotonic() + 10
        while not [r for r in daemon.seen if r["op"] == "watch"] and time.monotonic() < deadline:
            time.sleep(0.02)
        (watch,) = [r for r in daemon.seen if r["op"] == "watch"]
        assert watch["args"] == {"watched": True, "interval": 1.0}

        # a waiting watch returns as soon as the daemon reports, with the new value
        reporter = relay.client(basic=("jobmon-job", token))
        threading.Timer(0.3, _heartbeat, args=(reporter, daemon.session, 42.0)).start()
        started = time.monotonic()
        news = alice.jobmon.watch(["7.0"], {"since": first["since"], "wait": 10})
        waited = time.monotonic() - started
        assert news["jobs"]["7.0"]["progress"]["done"] == 42.0 and news["since"] > first["since"]
        assert 0.2 < waited < 5.0
        # nothing new: the wait runs out and the answer is the same
        quiet = alice.jobmon.watch(["7.0"], {"since": news["since"], "wait": 0.3})
        assert quiet["since"] == news["since"]

        # someone else's job is not theirs to watch; bad options are one clear fault
        assert relay.client(pki.bob).jobmon.watch(["7.0"])["jobs"] == {}
        with pytest.raises(xmlrpc.client.Fault) as exc:
            alice.jobmon.watch(["7.0"], {"wait": "soon"})
        assert exc.value.faultCode == 201 and "wait" in exc.value.faultString
        with pytest.raises(xmlrpc.client.Fault) as exc:
            alice.jobmon.watch(["7.0"], {"colour": 1})
        assert exc.value.faultCode == 201 and "colour" in exc.value.faultString

        # when the lease runs out the daemon is told it is no longer watched
        relay.run(_expire_all(relay.core))
        deadline = time.monotonic() + 10
        while len([r for r in daemon.seen if r["op"] == "watch"]) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert [r["args"]["watched"] for r in daemon.seen if r["op"] == "watch"] == [True, False]
    finally:
        daemon.stop()


async def _expire_all(core: Any) -> None:
    core.watchers.expire(now=time.time() + 3600)


def test_register_reply_says_whether_someone_already_watches(relay: Any, pki: Any) -> None:
    token, _ = relay.core.credentials.issue(pki.alice.dn, 9)
    rpc = relay.client(basic=("jobmon-job", token))
    info = {"job": "9.0", "host": "node01.example.org", "sandbox": "/s", "pid": 1, "wrapper_pid": 1,
            "wrapper_version": "t", "start_time": 1.0, "argv": ["x"], "user": "alice", "python": "3",
            "capabilities": ["exec", "watch"]}
    assert rpc.jobmon.register(info)["watched"] is False
    relay.run(_hold(relay.core, "9.0"))       # a job page opened before the daemon reconnected
    reply = rpc.jobmon.register(info)
    assert reply["watched"] is True and reply["watch_interval"] == 1.0


async def _hold(core: Any, job: str) -> None:
    core.watchers.hold("web:test", [job])
