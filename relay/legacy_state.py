"""The relay's side of each 2005 JobMon daemon, as plain objects (no sockets, no tasks).

* :class:`LegacyJob` — one registration: where its wake-ups go and the one
  request the daemon may be working on. The daemon serves one command at a
  time (wake-up, ``getJobToDo``, run, ``outputJobResult``), so at most one
  wake-up is outstanding: on a TCP connection a second unread message would
  run into the first (the daemon reads up to 1024 bytes and splits on
  spaces), so nothing more is written until the daemon fetched the first.
  A UDP datagram may be lost, so an unfetched one is sent again.
* :class:`Pairings` — which TCP wake-up connection belongs to which
  registration. The daemon's connection says only ``register``; it comes
  from the worker right after the daemon's (TLS-authenticated) registration
  was answered. The relay answers one registration per source address at a
  time, pairs the next ``register`` from that address with it, and holds
  wake-ups for ``settle`` seconds: a second ``register`` from that address in
  that time (another process racing the daemon) unpairs both, so nothing is
  sent to a connection that might not be the daemon's.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from relay import legacy_wire as wire

RESEND = 2.0      # seconds before an unfetched UDP wake-up is sent again
SENDS = 3         # UDP datagrams per wake-up at most
SLACK = 60.0      # a registration outlives 2 x reconnect_time by this much


@dataclass
class Work:
    """A user's ``exec`` queued for a legacy daemon."""

    request: Any          # relay.registry.Request (its future gets the result)
    name: str             # the request name the daemon fetches it by
    line: str             # what getJobToDo answers
    cap: int              # stdout bytes the line lets through
    argv: list[str]
    handed_at: float = 0.0

    @property
    def abandoned(self) -> bool:
        """The user stopped waiting (timeout, relay stopping)."""
        return bool(self.request.future.done())


@dataclass
class LegacyJob:
    job: str
    dn: str
    session: str          # the registry session of this registration
    peer: str             # address the daemon's TLS connection came from
    port: int             # UDP port it registered
    tcp: bool             # wake-ups over its TCP connection (else UDP datagrams to peer:port)
    reconnect_time: int
    registered: float
    queue: deque[Work] = field(default_factory=deque)
    woken: Work | None = None
    woken_at: float = 0.0
    sends: int = 0
    running: Work | None = None
    ready_at: float | None = None   # when wake-ups may go out (TCP: paired and settled)

    def __post_init__(self) -> None:
        if not self.tcp:
            self.ready_at = self.registered

    @property
    def expires(self) -> float:
        """The daemon registers again at least every 2 x reconnect_time while it lives."""
        return self.registered + 2 * self.reconnect_time + SLACK

    def refresh(self, port: int, now: float) -> None:
        """The same daemon registered again (every reconnect_time): TCP daemons open a new
        connection, so wake-ups wait for it; an unfetched one is sent again there."""
        self.port = port
        self.registered = now
        if self.tcp:
            self.channel_down()

    # -- requests -------------------------------------------------------
    def offer(self, work: Work) -> None:
        self.queue.append(work)

    def cancel(self, request_id: str) -> None:
        """The relay gave up on a request: forget it unless the daemon already has it."""
        self.queue = deque(w for w in self.queue if w.request.id != request_id)

    def wakeup(self, now: float) -> Work | None:
        """The work whose wake-up must be sent now, if any (mark it sent)."""
        while self.queue and self.queue[0].abandoned:
            self.queue.popleft()
        if self.running is not None:
            return None
        if self.woken is not None:
            if self.tcp:
                return None   # it is unread in the daemon's socket, or the connection will be replaced
            if self.woken.abandoned or self.sends >= SENDS:
                self.woken = None
            elif now - self.woken_at >= RESEND and self.ready(now):
                self.woken_at, self.sends = now, self.sends + 1
                return self.woken
            else:
                return None
        if not self.queue or not self.ready(now):
            return None
        self.woken = self.queue.popleft()
        self.woken_at, self.sends = now, 1
        return self.woken

    def next_due(self, now: float) -> float | None:
        """When :meth:`wakeup` may have something to send although nothing else happens."""
        if self.running is None and self.ready_at is not None and self.ready_at > now and (self.queue or self.woken):
            return self.ready_at
        if not self.tcp and self.woken is not None and self.sends < SENDS:
            return self.woken_at + RESEND
        return None

    def take(self, name: str, now: float) -> Work | None:
        """``getJobToDo(name)``: the work the daemon was woken for (or one whose wake-up went to a
        connection it replaced since, and is queued again); None if ``name`` is stale."""
        work = self.woken
        if work is not None and work.name == name:
            self.woken = None
        else:
            work = next((w for w in self.queue if w.name == name), None)
            if work is None or self.running is not None:
                return None
            self.queue.remove(work)
        if work.abandoned:
            return None
        work.handed_at = now
        self.running = work
        return work

    def finish(self, result_name: str) -> Work | None:
        """``outputJobResult(name)``: the work it answers, or None."""
        name = wire.request_of_result(result_name)
        work = self.running
        if work is None or name is None or work.name != name:
            return None
        self.running = None
        return work

    def live_names(self) -> list[str]:
        """The request names this registration answers to (queued, woken, running)."""
        return [w.name for w in (*self.queue, self.woken, self.running) if w is not None]

    # -- the wake-up channel ----------------------------------------------
    def ready(self, now: float) -> bool:
        return self.ready_at is not None and now >= self.ready_at

    def channel_up(self, now: float, settle: float) -> None:
        self.ready_at = now + settle
        if self.woken is not None:
            self.sends = 0      # the daemon never saw it: send it on the new connection

    def channel_down(self) -> None:
        self.ready_at = None
        if self.woken is not None:
            if not self.woken.abandoned:
                self.queue.appendleft(self.woken)
            self.woken = None


class Pairings:
    """TCP wake-up connections ↔ registrations, by source address and order (see module doc)."""

    def __init__(self, window: float = 30.0, settle: float = 1.0) -> None:
        self.window = window
        self.settle = settle
        self._pending: dict[str, list[tuple[str, float]]] = {}
        self._last: dict[str, tuple[str, float]] = {}

    def busy(self, peer: str, now: float, job: str | None = None) -> bool:
        """A registration from ``peer`` (of another job than ``job``) was answered and its
        connection has not come yet."""
        self._expire(peer, now)
        return any(j != job for j, _ in self._pending.get(peer, ()))

    def expect(self, peer: str, job: str, now: float) -> None:
        self.forget(job)
        self._pending.setdefault(peer, []).append((job, now))

    def expected(self, peer: str, now: float) -> bool:
        """Would a connection from ``peer`` be paired (or be evidence of a race) now?"""
        self._expire(peer, now)
        last = self._last.get(peer)
        return bool(self._pending.get(peer)) or (last is not None and now - last[1] <= self.settle)

    def claim(self, peer: str, now: float) -> tuple[str, str | None]:
        """A connection from ``peer`` said ``register``: ``("paired", job)``, ``("contested", job)``
        (a second one right after ``job`` paired: unpair both) or ``("unknown", None)``."""
        self._expire(peer, now)
        waiting = self._pending.get(peer)
        if waiting:
            job, _ = waiting.pop(0)
            if not waiting:
                del self._pending[peer]
            self._last[peer] = (job, now)
            return "paired", job
        last = self._last.pop(peer, None)
        if last is not None and now - last[1] <= self.settle:
            return "contested", last[0]
        return "unknown", None

    def forget(self, job: str) -> None:
        for peer in list(self._pending):
            left = [p for p in self._pending[peer] if p[0] != job]
            if left:
                self._pending[peer] = left
            else:
                del self._pending[peer]
        for peer, (j, _) in list(self._last.items()):
            if j == job:
                del self._last[peer]

    def _expire(self, peer: str, now: float) -> None:
        waiting = self._pending.get(peer)
        if waiting is not None:
            left = [p for p in waiting if now - p[1] <= self.window]
            if left:
                self._pending[peer] = left
            else:
                del self._pending[peer]
        last = self._last.get(peer)
        if last is not None and now - last[1] > self.settle:
            del self._last[peer]
