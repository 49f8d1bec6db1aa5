"""The relay's state per 2005 daemon, in memory (relay/legacy_state.py): one wake-up at a time,
UDP resends, re-registration, and pairing TCP connections with registrations."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from relay import legacy_wire as wire
from relay.legacy_state import RESEND, SENDS, LegacyJob, Pairings, Work


@dataclass
class FakeFuture:
    finished: bool = False

    def done(self) -> bool:
        return self.finished


@dataclass
class FakeRequest:
    id: str
    future: FakeFuture = field(default_factory=FakeFuture)


def work(rid: str, argv: Any = None) -> Work:
    argv = argv or ["ls", "-l"]
    return Work(FakeRequest(rid), wire.new_request_name(), wire.command_line(argv, 100), 100, argv)


def job(tcp: bool = True, now: float = 1000.0) -> LegacyJob:
    return LegacyJob(job="7.0", dn="/CN=alice", session="s1", peer="10.0.0.5", port=5555, tcp=tcp,
                     reconnect_time=300, registered=now)


def test_tcp_sends_one_wakeup_and_nothing_more_until_the_daemon_fetched_it() -> None:
    lj = job()
    a, b = work("a"), work("b", ["du", "-s"])
    lj.offer(a)
    lj.offer(b)
    assert lj.wakeup(1000.0) is None                  # no connection yet
    lj.channel_up(1000.0, settle=1.0)
    assert lj.wakeup(1000.5) is None                  # settling: a racing connection would show now
    assert lj.next_due(1000.5) == 1001.0
    assert lj.wakeup(1001.0) is a
    assert lj.wakeup(1002.0) is None and lj.wakeup(5000.0) is None   # never a second unread message
    assert lj.take("jm-not-it.fo", 1003.0) is None
    assert lj.take(a.name, 1003.0) is a and lj.running is a
    assert lj.wakeup(1003.0) is None                  # it runs one command at a time
    assert lj.finish(a.name) is None                  # the answer comes back as .fi
    assert lj.finish(a.name.replace(".fo", ".fi")) is a
    assert lj.wakeup(1004.0) is b
    assert lj.live_names() == [b.name]


def test_an_abandoned_request_is_skipped_or_answered_empty() -> None:
    lj = job()
    lj.channel_up(0.0, 0.0)
    a, b = work("a"), work("b")
    lj.offer(a)
    lj.offer(b)
    a.request.future.finished = True                  # the user gave up before the wake-up
    assert lj.wakeup(1.0) is b
    b.request.future.finished = True                  # ... or after it: the fetch gets ""
    assert lj.take(b.name, 2.0) is None and lj.woken is None and lj.running is None


def test_cancel_forgets_queued_work_only() -> None:
    lj = job()
    lj.channel_up(0.0, 0.0)
    a, b = work("a"), work("b")
    lj.offer(a)
    lj.offer(b)
    assert lj.wakeup(1.0) is a
    lj.cancel("b")
    lj.cancel("a")                                    # already sent: it stays until fetched
    assert list(lj.queue) == [] and lj.woken is a


def test_udp_resends_an_unfetched_wakeup_a_few_times() -> None:
    lj = job(tcp=False)
    a = work("a")
    lj.offer(a)
    assert lj.wakeup(1000.0) is a
    assert lj.wakeup(1000.5) is None
    assert lj.next_due(1000.5) == 1000.0 + RESEND
    sent = 1
    t = 1000.0
    while lj.wakeup(t + RESEND) is a:
        t += RESEND
        sent += 1
    assert sent == SENDS and lj.woken is None         # given up; the user's timeout will tell
    assert lj.take(a.name, t) is None


def test_reregistration_keeps_the_queue_and_resends_on_the_new_connection() -> None:
    lj = job()
    lj.channel_up(1000.0, 0.0)
    a = work("a")
    lj.offer(a)
    assert lj.wakeup(1000.0) is a                     # sent on the old connection, never read
    lj.refresh(6000, 1300.0)
    assert lj.port == 6000 and lj.expires == 1300.0 + 600 + 60
    assert lj.woken is None and list(lj.queue) == [a]
    assert lj.wakeup(1300.0) is None                  # the new connection is not there yet
    lj.channel_up(1300.1, 1.0)
    assert lj.wakeup(1301.2) is a


def test_pairing_follows_registration_order_per_address() -> None:
    p = Pairings(window=30.0, settle=1.0)
    assert not p.busy("10.0.0.5", 0.0)
    p.expect("10.0.0.5", "7.0", 0.0)
    assert p.busy("10.0.0.5", 0.1) and not p.busy("10.0.0.6", 0.1)
    assert not p.busy("10.0.0.5", 0.1, job="7.0")             # its own earlier registration
    assert p.claim("10.0.0.6", 0.1) == ("unknown", None)     # another host gets nothing
    assert p.claim("10.0.0.5", 0.1) == ("paired", "7.0")
    assert not p.busy("10.0.0.5", 0.2)
    p.expect("10.0.0.5", "7.1", 0.2)
    assert p.claim("10.0.0.5", 0.3) == ("paired", "7.1")
    assert p.claim("10.0.0.5", 5.0) == ("unknown", None)     # long after: not a race, just a stranger


def test_a_second_connection_right_after_pairing_unpairs_the_registration() -> None:
    p = Pairings(window=30.0, settle=1.0)
    p.expect("10.0.0.5", "7.0", 0.0)
    assert p.claim("10.0.0.5", 0.01) == ("paired", "7.0")
    assert p.expected("10.0.0.5", 0.5)
    assert p.claim("10.0.0.5", 0.5) == ("contested", "7.0")  # who is the daemon? nobody gets wake-ups
    assert p.claim("10.0.0.5", 0.6) == ("unknown", None)


def test_pending_pairings_expire_and_can_be_forgotten() -> None:
    p = Pairings(window=30.0, settle=1.0)
    p.expect("10.0.0.5", "7.0", 0.0)
    assert p.busy("10.0.0.5", 29.0) and not p.busy("10.0.0.5", 31.0)
    p.expect("10.0.0.5", "7.0", 40.0)
    p.forget("7.0")
    assert not p.busy("10.0.0.5", 40.0) and p.claim("10.0.0.5", 40.0) == ("unknown", None)
