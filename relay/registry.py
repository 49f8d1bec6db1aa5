"""Connected job daemons, their request queues and long-poll wake-ups (no sockets here).

A daemon registers (``register``) and then keeps one ``poll`` pending. A user
command becomes a :class:`Request` put on the daemon's queue; if a poll is
waiting its future is resolved at once, so the command leaves on the open
connection with no polling interval in the path. ``call`` awaits the
request's own future until the daemon posts the result or the deadline
passes (fault 700). Everything here runs on the event loop thread.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from relay.faults import Fault, RelayFault

MAX_PER_POLL = 64
FINISH_GRACE = 2.0   # seconds a finished job's daemon has to post results of commands it was running
log = logging.getLogger("relay.registry")


@dataclass
class Request:
    id: str
    op: str
    args: dict[str, Any]
    deadline: float
    future: asyncio.Future[Any]
    job: str
    delivered: bool = False

    def wire(self) -> dict[str, Any]:
        return {"id": self.id, "op": self.op, "args": self.args, "deadline": self.deadline}


@dataclass
class Daemon:
    job: str
    session: str
    dn: str
    kind: str
    info: dict[str, Any]
    credential_id: str | None = None
    registered: float = field(default_factory=time.time)
    last_seen: float = field(default_factory=time.time)
    queue: deque[Request] = field(default_factory=deque)
    waiter: asyncio.Future[None] | None = None
    polling: int = 0
    status: dict[str, Any] = field(default_factory=dict)
    final: dict[str, Any] | None = None
    gone: bool = False
    seq: int = 0          # the core's change counter at this daemon's last report (jobmon.watch)


class Registry:
    def __init__(self, poll_wait: float = 50.0, grace: float = 120.0) -> None:
        self.poll_wait = poll_wait
        self.grace = grace
        self.by_job: dict[str, Daemon] = {}
        self.by_session: dict[str, Daemon] = {}
        self.requests: dict[str, Request] = {}
        self.closing = False
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
        daemon = Daemon(job=job, session=session, dn=dn, kind=kind, info=dict(info), credential_id=credential_id)
        if old is not None:
            daemon.status = old.status
        self.by_job[job] = daemon
        self.by_session[session] = daemon
        return daemon

    def session(self, session: str, dn: str | None = None) -> Daemon:
        daemon = self.by_session.get(session)
        if daemon is None or (dn is not None and daemon.dn != dn):
            raise RelayFault(Fault.NOT_REGISTERED, "daemon session unknown (relay restarted?): call jobmon.register again")
        return daemon

    async def poll(self, daemon: Daemon, max_wait: float) -> list[dict[str, Any]]:
        daemon.last_seen = time.time()
        if not daemon.queue and not self.closing and not daemon.gone:
            if daemon.waiter is not None and not daemon.waiter.done():
                daemon.waiter.set_result(None)  # a newer poll replaces the older one
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            daemon.waiter = waiter
            daemon.polling += 1
            if log.isEnabledFor(logging.DEBUG):
                log.debug("holding the long-poll of job %s", daemon.job)
            try:
                await asyncio.wait_for(waiter, timeout=max(0.0, min(max_wait, self.poll_wait)))
            except asyncio.TimeoutError:
                pass
            finally:
                daemon.polling -= 1
                if daemon.waiter is waiter:
                    daemon.waiter = None
            daemon.last_seen = time.time()
        out: list[dict[str, Any]] = []
        if daemon.gone:
            return out
        while daemon.queue and len(out) < MAX_PER_POLL:
            req = daemon.queue.popleft()
            if req.future.done():
                continue
            req.delivered = True
            out.append(req.wire())
        return out

    def post_result(self, daemon: Daemon, request_id: str, result: Any) -> bool:
        daemon.last_seen = time.time()
        req = self.requests.get(request_id)
        if req is None or req.job != daemon.job or req.future.done():
            return False
        req.future.set_result(result)
        return True

    def touch(self, daemon: Daemon) -> None:
        daemon.last_seen = time.time()

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
        daemon.queue = deque(r for r in daemon.queue if r.op in ("cancel", "watch"))
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
            raise RelayFault(Fault.JOB_NOT_CONNECTED, f"job {job}'s daemon has not been heard from for over {self.grace:g} s")
        loop = asyncio.get_running_loop()
        rid = f"{self._prefix}{next(self._ids)}"
        req = Request(rid, op, args, time.time() + timeout, loop.create_future(), job)
        self.requests[rid] = req
        daemon.queue.append(req)
        self._wake(daemon)
        try:
            return await asyncio.wait_for(req.future, timeout=timeout)
        except asyncio.TimeoutError:
            if req.delivered and op == "exec" and not daemon.gone:
                self._cancel(daemon, rid)
            raise RelayFault(Fault.TIMEOUT, f"job {job}'s daemon did not answer {op} within {timeout:g} s") from None
        finally:
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
        if w is not None and not w.done():
            w.set_result(None)

    def _fail_queue(self, daemon: Daemon, fault: RelayFault) -> None:
        for req in list(self.requests.values()):
            if req.job == daemon.job and not req.future.done() and req.id in self.requests:
                owner = self.by_job.get(req.job)
                if owner is daemon or owner is None:
                    req.future.set_exception(fault)
        daemon.queue = deque(r for r in daemon.queue if r.op in ("cancel", "watch"))

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
        """Stop: answer every open long-poll (empty) and fail waiting commands with 998."""
        self.closing = True
        fault = RelayFault(Fault.SHUTTING_DOWN, "the relay is stopping; retry shortly")
        for req in list(self.requests.values()):
            if not req.future.done():
                req.future.set_exception(fault)
        for daemon in list(self.by_job.values()):
            self._wake(daemon)

    def stats(self) -> dict[str, int]:
        return {
            "daemons": len(self.by_job),
            "polling": sum(1 for d in self.by_job.values() if d.polling),
            "requests": len(self.requests),
        }
