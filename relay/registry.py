"""Connected job daemons, their request queues and long-poll wake-ups (no sockets here).

A daemon registers (``register``) and then keeps one ``poll`` pending. A user
command becomes a :class:`Request` put on the daemon's queue; if a poll is
waiting it is woken at once, so the command leaves on the open connection
with no polling interval in the path. ``call`` awaits the request's own
future until the daemon posts the result or the deadline passes (fault 700).
Everything here runs on the event loop thread.

A held poll is a *waiter*: anything with ``wake()``. The relay's own
connections (relay/rpcconn.py) park themselves as the waiter, so a held poll
costs no task, coroutine or future; :meth:`Registry.poll` is the same thing
awaited through a future (the aiohttp path, tests).

Disconnects: when the connection holding a daemon's poll closes without an
answer (the daemon was killed, its node lost its network), :meth:`lost`
notes it. The daemon then counts as connected only for ``allowance`` seconds
(a live daemon reconnects well within that); after that its commands fail at
once with 501 instead of waiting out their timeout.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import sys
import time
from collections import deque
from typing import Any, Protocol

from relay.faults import Fault, RelayFault

MAX_PER_POLL = 64
FINISH_GRACE = 2.0   # seconds a finished job's daemon has to post results of commands it was running
RECONNECT_ALLOWANCE = 10.0  # seconds a daemon whose poll connection closed may take to poll again
log = logging.getLogger("relay.registry")
_intern = sys.intern


class Waiter(Protocol):
    def wake(self) -> None: ...


class _Expired(Exception):
    """A request's deadline passed (``Registry.call`` turns it into fault 700)."""


def _expire(future: asyncio.Future[Any]) -> None:
    if not future.done():
        future.set_exception(_Expired())


class Request:
    __slots__ = ("id", "op", "args", "deadline", "future", "job", "delivered")

    def __init__(self, id: str, op: str, args: dict[str, Any], deadline: float,
                 future: asyncio.Future[Any], job: str, delivered: bool = False) -> None:
        self.id, self.op, self.args, self.deadline = id, op, args, deadline
        self.future, self.job, self.delivered = future, job, delivered

    def wire(self) -> dict[str, Any]:
        return {"id": self.id, "op": self.op, "args": self.args, "deadline": self.deadline}


class Daemon:
    """One registered daemon (``__slots__``: 10,000 of them live in one relay)."""

    __slots__ = ("job", "session", "dn", "kind", "info", "credential_id", "registered", "last_seen",
                 "_queue", "waiter", "polling", "status", "final", "gone", "seq", "dropped")

    def __init__(self, job: str, session: str, dn: str, kind: str, info: dict[str, Any],
                 credential_id: str | None = None) -> None:
        now = time.time()
        self.job, self.session, self.dn, self.kind = job, session, dn, kind
        self.info = {_intern(str(k)): v for k, v in info.items()}  # keys shared by all daemons
        self.credential_id = credential_id
        self.registered = now
        self.last_seen = now
        self._queue: deque[Request] | None = None
        self.waiter: Waiter | None = None
        self.polling = 0
        self.status: dict[str, Any] = {}
        self.final: dict[str, Any] | None = None
        self.gone = False
        self.seq = 0            # the core's change counter at this daemon's last report (jobmon.watch)
        self.dropped: float | None = None  # monotonic time its poll's connection closed unanswered

    @property
    def queue(self) -> deque[Request]:
        """Requests not yet handed out (created on first use: most daemons have none)."""
        if self._queue is None:
            self._queue = deque()
        return self._queue

    @queue.setter
    def queue(self, value: deque[Request]) -> None:
        self._queue = value or None

    @property
    def has_queued(self) -> bool:
        return bool(self._queue)


class _FutureWaiter:
    __slots__ = ("future",)

    def __init__(self, future: asyncio.Future[None]) -> None:
        self.future = future

    def wake(self) -> None:
        if not self.future.done():
            self.future.set_result(None)


class Registry:
    def __init__(self, poll_wait: float = 50.0, grace: float = 120.0,
                 allowance: float = RECONNECT_ALLOWANCE) -> None:
        self.poll_wait = poll_wait
        self.grace = grace
        self.allowance = allowance
        self.by_job: dict[str, Daemon] = {}
        self.by_session: dict[str, Daemon] = {}
        self.requests: dict[str, Request] = {}
        self.closing = False      # stopping: no new commands
        self.released = False     # stopped: every poll is answered at once
        self.parked = 0           # polls held open now
        self._ids = itertools.count(1)
        self._prefix = os.urandom(4).hex()

    # -- daemon side -------------------------------------------------
    def register(
        self, job: str, dn: str, kind: str, info: dict[str, Any], credential_id: str | None = None
    ) -> Daemon:
        if self.closing:
            raise RelayFault(Fault.SHUTTING_DOWN, "the relay is stopping; register again shortly")
        old = self.by_job.get(job)
        if old is not None:
            self._drop(old, RelayFault(Fault.JOB_NOT_CONNECTED, f"job {job}'s daemon re-registered; retry"))
        session = f"{self._prefix}-{os.urandom(12).hex()}"
        daemon = Daemon(job=job, session=session, dn=dn, kind=kind, info=info, credential_id=credential_id)
        if old is not None:
            daemon.status = old.status
        self.by_job[job] = daemon
        self.by_session[session] = daemon
        return daemon

    def session(self, session: str, dn: str | None = None) -> Daemon:
        daemon = self.by_session.get(session)
        if daemon is None or (dn is not None and daemon.dn != dn):
            raise RelayFault(Fault.NOT_REGISTERED, "daemon session unknown (relay restarted?): call jobmon.register again")
        daemon.dropped = None  # it called: it is alive
        return daemon

    def take(self, daemon: Daemon) -> list[dict[str, Any]] | None:
        """A poll's answer if it need not wait (requests queued, daemon gone, relay stopping), else None."""
        daemon.last_seen = time.time()
        if daemon.gone:
            return []
        if daemon._queue:
            return self._hand_out(daemon)
        if self.released:
            return []
        return None

    def park(self, daemon: Daemon, waiter: Waiter) -> None:
        """Hold ``waiter`` as the daemon's open poll; a newer poll answers the older one (``[]``)."""
        old = daemon.waiter
        daemon.waiter = waiter
        daemon.polling += 1
        self.parked += 1
        if old is not None:
            old.wake()
        if log.isEnabledFor(logging.DEBUG):
            log.debug("holding the long-poll of job %s", daemon.job)

    def unpark(self, daemon: Daemon, waiter: Waiter, lost: bool = False) -> list[dict[str, Any]]:
        """The held poll ends (woken, timed out, or its connection ``lost``): what it answers."""
        daemon.polling = max(0, daemon.polling - 1)
        self.parked -= 1
        replaced = daemon.waiter is not waiter
        if not replaced:
            daemon.waiter = None
        daemon.last_seen = time.time()
        if lost:
            if not replaced and not daemon.gone:
                self.lost(daemon)
            return []
        if replaced or daemon.gone:
            return []
        return self._hand_out(daemon)

    async def poll(self, daemon: Daemon, max_wait: float) -> list[dict[str, Any]]:
        """The long-poll, awaited (the aiohttp path and tests); the relay's own connections park."""
        ready = self.take(daemon)
        if ready is not None:
            return ready
        waiter = _FutureWaiter(asyncio.get_running_loop().create_future())
        self.park(daemon, waiter)
        lost = False
        try:
            await asyncio.wait_for(waiter.future, timeout=max(0.0, min(max_wait, self.poll_wait)))
        except asyncio.TimeoutError:
            pass
        except asyncio.CancelledError:  # aiohttp cancels the handler when its client went away
            lost = True
            raise
        finally:
            out = self.unpark(daemon, waiter, lost)
        return out

    def _hand_out(self, daemon: Daemon) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        queue = daemon._queue
        while queue and len(out) < MAX_PER_POLL:
            req = queue.popleft()
            if req.future.done():
                continue
            req.delivered = True
            out.append(req.wire())
        if not queue:
            daemon._queue = None
        return out

    def lost(self, daemon: Daemon) -> None:
        """The connection holding ``daemon``'s poll closed unanswered: unless it polls again within
        ``allowance`` seconds, it is gone for users (501) and its commands fail."""
        if daemon.dropped is not None or daemon.final is not None:
            return
        daemon.dropped = time.monotonic()
        log.info("job %s: the daemon's poll connection closed; %g s to come back", daemon.job, self.allowance)
        try:
            asyncio.get_running_loop().call_later(self.allowance + 0.05, self._check_dropped, daemon,
                                                  daemon.dropped)
        except RuntimeError:  # pragma: no cover - no loop (unit use)
            pass

    def _check_dropped(self, daemon: Daemon, when: float) -> None:
        if daemon.dropped != when or daemon.polling or daemon.gone:
            return
        log.warning("job %s: the daemon did not come back within %g s; treating it as disconnected",
                    daemon.job, self.allowance)
        self._fail_queue(daemon, RelayFault(
            Fault.JOB_NOT_CONNECTED, f"job {daemon.job}'s daemon disconnected (its connection closed and it "
            f"did not come back within {self.allowance:g} s)"), delivered=True)

    def post_result(self, daemon: Daemon, request_id: str, result: Any) -> bool:
        daemon.last_seen = time.time()
        req = self.requests.get(request_id)
        if req is None or req.job != daemon.job or req.future.done():
            return False
        req.future.set_result(result)
        return True

    def touch(self, daemon: Daemon) -> None:
        daemon.last_seen = time.time()
        daemon.dropped = None

    def finish(self, daemon: Daemon, final: dict[str, Any]) -> None:
        """The payload ended. Requests never handed out fail now (502); those the daemon already
        runs get ``FINISH_GRACE`` seconds for their result, which may arrive after the finish
        (a command that ends the job, e.g. one that opens the payload's gate, still gets its answer)."""
        daemon.final = dict(final)
        daemon.last_seen = time.time()
        fault = RelayFault(Fault.JOB_ENDED, f"job {daemon.job} has ended")
        delivered = [r for r in self.requests.values() if r.job == daemon.job and r.delivered and not r.future.done()]
        for req in list(self.requests.values()):
            if req.job == daemon.job and not req.delivered and not req.future.done():
                req.future.set_exception(fault)
        self._keep_control(daemon)
        if delivered:
            asyncio.get_running_loop().call_later(FINISH_GRACE, self._fail_late, delivered, fault)
        self._wake(daemon)

    @staticmethod
    def _fail_late(requests: list[Request], fault: RelayFault) -> None:
        for req in requests:
            if not req.future.done():
                req.future.set_exception(fault)

    # -- user side ---------------------------------------------------
    def connected(self, job: str, now: float | None = None) -> bool:
        daemon = self.by_job.get(job)
        if daemon is None or daemon.final is not None or daemon.gone:
            return False
        if daemon.polling:
            return True
        if daemon.dropped is not None:
            return time.monotonic() - daemon.dropped <= self.allowance
        now = time.time() if now is None else now
        return now - daemon.last_seen <= self.grace

    async def call(self, job: str, op: str, args: dict[str, Any], timeout: float) -> Any:
        """Queue one request on ``job``'s daemon and await its result (raises 501, 502, 700)."""
        if self.closing:
            raise RelayFault(Fault.SHUTTING_DOWN, "the relay is stopping; retry shortly")
        daemon = self.by_job.get(job)
        if daemon is None or daemon.gone:
            raise RelayFault(Fault.JOB_NOT_CONNECTED, f"job {job}'s daemon is not connected")
        if daemon.final is not None:
            raise RelayFault(Fault.JOB_ENDED, f"job {job} has ended; live commands are no longer possible")
        if not self.connected(job):
            if daemon.dropped is not None:
                raise RelayFault(Fault.JOB_NOT_CONNECTED, f"job {job}'s daemon disconnected and has not come back")
            raise RelayFault(Fault.JOB_NOT_CONNECTED, f"job {job}'s daemon has not been heard from for over {self.grace:g} s")
        loop = asyncio.get_running_loop()
        rid = f"{self._prefix}{next(self._ids)}"
        req = Request(rid, op, args, time.time() + timeout, loop.create_future(), job)
        self.requests[rid] = req
        daemon.queue.append(req)
        self._wake(daemon)
        timer = loop.call_later(timeout, _expire, req.future)  # one timer, no wait_for task
        try:
            return await req.future
        except _Expired:
            if req.delivered and op == "exec" and not daemon.gone:
                self._cancel(daemon, rid)
            raise RelayFault(Fault.TIMEOUT, f"job {job}'s daemon did not answer {op} within {timeout:g} s") from None
        finally:
            timer.cancel()
            self.requests.pop(rid, None)
            if not req.future.done():
                req.future.cancel()

    def _cancel(self, daemon: Daemon, rid: str) -> None:
        self.control(daemon, "cancel", {"request": rid})

    def control(self, daemon: Daemon, op: str, args: dict[str, Any]) -> None:
        """Send the daemon a control request (``cancel``, ``watch``) it answers with no result."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()
        cid = f"{self._prefix}{next(self._ids)}"
        daemon.queue.append(Request(cid, op, args, time.time() + 30, fut, daemon.job))
        self._wake(daemon)

    # -- internals ---------------------------------------------------
    def _wake(self, daemon: Daemon) -> None:
        w = daemon.waiter
        if w is not None:
            w.wake()

    def _keep_control(self, daemon: Daemon) -> None:
        if daemon._queue:
            daemon.queue = deque(r for r in daemon._queue if r.op in ("cancel", "watch"))

    def _fail_queue(self, daemon: Daemon, fault: RelayFault, delivered: bool = True) -> None:
        for req in list(self.requests.values()):
            if req.job == daemon.job and not req.future.done() and req.id in self.requests \
                    and (delivered or not req.delivered):
                owner = self.by_job.get(req.job)
                if owner is daemon or owner is None:
                    req.future.set_exception(fault)
        self._keep_control(daemon)

    def _drop(self, daemon: Daemon, fault: RelayFault) -> None:
        daemon.gone = True
        self._fail_queue(daemon, fault)
        self._wake(daemon)
        self.by_session.pop(daemon.session, None)
        if self.by_job.get(daemon.job) is daemon:
            del self.by_job[daemon.job]

    def unregister(self, daemon: Daemon) -> None:
        self._drop(daemon, RelayFault(Fault.JOB_NOT_CONNECTED, f"job {daemon.job}'s daemon left"))

    def close(self) -> None:
        """Stop taking commands. Those never handed out fail with 998 (they never ran: safe to
        retry); so do handed-out reads, listings and ``ps`` (they only look). An ``exec`` already
        handed out keeps waiting for its result (:meth:`outstanding`, :meth:`abandon`), and polls
        stay held, so that daemons keep their connection, post those results and do not come
        back in a crowd; :meth:`release` answers them. A command is never handed out twice."""
        self.closing = True
        fault = RelayFault(Fault.SHUTTING_DOWN, "the relay is stopping; the command was not run; retry shortly")
        for req in list(self.requests.values()):
            if not req.future.done() and not (req.delivered and req.op == "exec"):
                req.future.set_exception(fault)

    def release(self) -> None:
        """The end of a stop: answer every held poll (empty), and any poll from now on at once."""
        self.closing = self.released = True
        for daemon in list(self.by_job.values()):
            self._wake(daemon)

    def outstanding(self) -> int:
        """Commands handed out whose results have not come back (while stopping)."""
        return sum(1 for r in self.requests.values() if r.delivered and not r.future.done())

    def abandon(self) -> None:
        """The stop grace is over: the commands still running get 700 (they may have run)."""
        for req in list(self.requests.values()):
            if not req.future.done():
                req.future.set_exception(RelayFault(
                    Fault.TIMEOUT, f"the relay stopped before job {req.job}'s daemon answered {req.op}; "
                    "it may have run (its result is lost)"))

    def stats(self) -> dict[str, int]:
        return {
            "daemons": len(self.by_job),
            "polling": sum(1 for d in self.by_job.values() if d.polling),
            "requests": len(self.requests),
        }
