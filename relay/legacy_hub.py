"""Serving the 2005 JobMon daemon: registrations, wake-ups, and the bridge to the relay's registry.

One :class:`LegacyHub` per relay when ``[legacy] enabled = true``
(``server.py`` starts and stops it; :func:`hub_for` finds it). A legacy
daemon registers like any daemon (``RelayCore.register``: same identity,
ownership and access rules, audited); the hub then keeps a *pump* task for
it that holds the registry's long-poll on the daemon's behalf, so user
commands reach the hub exactly as they reach a modern daemon's poll. The
hub refuses what the 2005 daemon cannot do safely (:func:`legacy_wire.refusal`),
turns an ``exec`` into the daemon's command line, and sends one wake-up at
a time: over the daemon's TCP connection to :mod:`relay.legacy_wakeup`, or
as a UDP datagram to the port it registered at the address its own TLS
connection came from, never anywhere else.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
import urllib.parse
import weakref
from collections import Counter
from typing import TYPE_CHECKING, Any

from relay import legacy_wire as wire
from relay.config import LegacyConfig
from relay.faults import Fault, RelayFault
from relay.identity import Identity
from relay.legacy_state import LegacyJob, Pairings, Work
from relay.legacy_wakeup import Connection, WakeupServer, normalize

if TYPE_CHECKING:  # pragma: no cover
    from relay.core import RelayCore

log = logging.getLogger("relay.legacy")
_HUBS: weakref.WeakKeyDictionary[Any, LegacyHub] = weakref.WeakKeyDictionary()
PAIR_WINDOW = 30.0   # a registration's wake-up connection must come within this many seconds
SETTLE = 1.0         # wake-ups wait this long on a fresh connection (see legacy_state.Pairings)


def hub_for(core: Any) -> LegacyHub | None:
    return _HUBS.get(core)


class LegacyHub:
    def __init__(self, core: RelayCore, cfg: LegacyConfig) -> None:
        self.core = core
        self.cfg = cfg
        self.tcp = cfg.wakeup == "tcp"
        self.jobs: dict[str, LegacyJob] = {}
        self.by_name: dict[str, LegacyJob] = {}
        self.conns: dict[str, Connection] = {}
        self.pairings = Pairings(PAIR_WINDOW, SETTLE)
        self.peers: Counter[str] = Counter()
        self.server: WakeupServer | None = None
        self.udp: asyncio.DatagramTransport | None = None
        self.tcp_host = cfg.tcp_host or urllib.parse.urlsplit(core.config.url).hostname or socket.getfqdn()
        self.tcp_port = 0
        self._locks: dict[str, asyncio.Lock] = {}
        self._pumps: set[asyncio.Task[None]] = set()

    # -- lifecycle --------------------------------------------------------
    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        if self.tcp:
            host, port = self.cfg.tcp_bind
            self.server = WakeupServer(self, host, port, max_connections=self.cfg.max_connections,
                                       max_per_host=self.cfg.max_connections_per_host,
                                       hello_timeout=self.cfg.hello_timeout,
                                       max_age=3.0 * self.cfg.reconnect_time + 60.0)
            try:
                self.tcp_port = await self.server.start()
            except OSError as exc:
                from jobmon.errors import ConfigError

                raise ConfigError(f"legacy.tcp_listen {self.cfg.tcp_listen}: cannot listen: {exc.strerror or exc}") from None
        else:
            transport, _ = await loop.create_datagram_endpoint(
                asyncio.DatagramProtocol, local_addr=("0.0.0.0", 0), family=socket.AF_INET)
            self.udp = transport  # type: ignore[assignment]
        _HUBS[self.core] = self
        log.info("serving 2005 JobMon daemons: wake-ups by %s%s", self.cfg.wakeup.upper(),
                 f" at {self.tcp_host}:{self.tcp_port}" if self.tcp else " datagrams")

    async def stop(self) -> None:
        _HUBS.pop(self.core, None)
        for task in list(self._pumps):
            task.cancel()
        if self._pumps:
            await asyncio.wait(list(self._pumps), timeout=5.0)
        if self.server is not None:
            await self.server.close()
        if self.udp is not None:
            self.udp.close()

    # -- JobMon.* ---------------------------------------------------------
    async def register(self, caller: Identity, job: str, host: str, port: int, pid: int, peer: str | None) -> list[Any]:
        problem = wire.check_jobname(job)
        peer = normalize(peer) if peer else None
        if problem is None and peer is None:
            problem = "the relay cannot tell where this request came from"
        if problem is None and not self.tcp and (":" in (peer or "") or not 1 <= port <= 65535):
            problem = "UDP wake-ups need an IPv4 connection and the daemon's UDP port (1-65535)"
        if problem is not None:
            log.warning("JobMon.registerJob(%r) from %s refused: %s", job, caller.dn, problem)
            return [int(Fault.BAD_PARAMS), f"JobMon.registerJob: {problem}"]
        assert peer is not None
        async with self._turn(peer):
            if self.tcp:
                await self._wait_unpaired(peer, job)
            try:
                lj = await self._register(caller, job, host, port, pid, peer)
            except RelayFault as f:
                return [f.code, f.message]
            if self.tcp:
                self.pairings.expect(peer, job, time.time())
        return [0, wire.settings_text(job, wire.TCP_METHOD if self.tcp else wire.UDP_METHOD,
                                      lj.reconnect_time, self.tcp_host, self.tcp_port)]

    async def _register(self, caller: Identity, job: str, host: str, port: int, pid: int, peer: str) -> LegacyJob:
        now = time.time()
        reg = self.core.registry
        lj = self.jobs.get(job)
        daemon = reg.by_job.get(job)
        if (lj is not None and daemon is not None and not daemon.gone and daemon.session == lj.session
                and lj.dn == caller.dn and lj.peer == peer):
            before = lj.live_names()
            lj.refresh(port, now)      # the same daemon, every reconnect_time: keep its queue
            self._orphan(job)
            self._reindex(lj, before)
            daemon.info["pid"] = pid
            reg.touch(daemon)
            return lj
        info = {"job": job, "host": host, "pid": pid, "daemon": "legacy", "capabilities": ["exec"],
                "wakeup": self.cfg.wakeup, "address": peer}
        answer = await self.core.register(caller, info)
        if lj is not None:
            self._forget(lj)
        lj = LegacyJob(job=job, dn=caller.dn, session=str(answer["session"]), peer=peer, port=port,
                       tcp=self.tcp, reconnect_time=self.cfg.reconnect_time, registered=now)
        self.jobs[job] = lj
        self.peers[peer] += 1
        task = asyncio.get_running_loop().create_task(self._pump(lj), name=f"legacy-{job}")
        self._pumps.add(task)
        task.add_done_callback(self._pumps.discard)
        log.info("legacy daemon registered job %s from %s (%s wake-ups)", job, peer, self.cfg.wakeup)
        return lj

    def unregister(self, caller: Identity, job: str) -> list[Any]:
        lj = self.jobs.get(job)
        daemon = self.core.registry.by_session.get(lj.session) if lj is not None else None
        if lj is None or daemon is None or lj.dn != caller.dn:
            return [int(Fault.NOT_REGISTERED), f"job {job} is not registered by you"]
        self.core.registry.unregister(daemon)
        self._forget(lj)
        self.core.audit(caller, "JobMon.unregisterJob", job=job)
        log.info("legacy daemon of job %s unregistered", job)
        return [0, f"job {job} unregistered"]

    def get_job_to_do(self, caller: Identity, name: str) -> list[Any]:
        """Always ``[0, ...]``: the 2005 daemon fails on anything else (docs/PROTOCOL.md)."""
        lj = self.by_name.get(name) if wire.is_request_name(name) else None
        if lj is None or lj.dn != caller.dn:
            if lj is not None:
                log.warning("JobMon.getJobToDo(%s) by %s refused: not the registrant of job %s", name, caller.dn, lj.job)
            return [0, ""]
        before = lj.live_names()
        work = lj.take(name, time.time())
        self._reindex(lj, before)
        if work is None:
            self._wake(lj)
            return [0, ""]
        self.core.audit(caller, "JobMon.getJobToDo", job=lj.job, argv=work.argv,
                        note=f"handed to the legacy daemon as {name}")
        return [0, work.line]

    def output_job_result(self, caller: Identity, name: str, output: str) -> list[Any]:
        request = wire.request_of_result(name)
        lj = self.by_name.get(request) if request is not None else None
        if lj is None or lj.dn != caller.dn:
            return [1, "no command waits for this result"]
        before = lj.live_names()
        work = lj.finish(name)
        self._reindex(lj, before)
        if work is None:
            return [1, "no command waits for this result"]
        result = wire.exec_result(wire.output_bytes(output), work.cap, time.time() - work.handed_at)
        daemon = self.core.registry.by_session.get(lj.session)
        ok = daemon is not None and self.core.registry.post_result(daemon, work.request.id, result)
        self._wake(lj)
        return [0, "result accepted"] if ok else [1, "the user stopped waiting for this command"]

    # -- the pump: the registry's long-poll on the daemon's behalf -----------
    async def _pump(self, lj: LegacyJob) -> None:
        reg = self.core.registry
        try:
            while self.jobs.get(lj.job) is lj and not reg.closing:
                daemon = reg.by_session.get(lj.session)
                if daemon is None or daemon.gone:
                    break
                now = time.time()
                if now >= lj.expires:
                    log.info("legacy daemon of job %s did not register again for %.0f s: disconnected",
                             lj.job, now - lj.registered)
                    reg.unregister(daemon)
                    break
                for req in await reg.poll(daemon, min(30.0, lj.expires - now)):
                    self._take(lj, req)
                self._wake(lj)
        finally:
            self._forget(lj)

    def _take(self, lj: LegacyJob, wired: dict[str, Any]) -> None:
        """One request the registry delivered (as it would to a modern daemon's poll)."""
        if wired.get("op") == "cancel":
            before = lj.live_names()
            lj.cancel(str(wired.get("args", {}).get("request", "")))
            self._reindex(lj, before)
            return
        req = self.core.registry.requests.get(str(wired.get("id")))
        if req is None or req.future.done():
            return
        fault = wire.refusal(lj.job, req.op, req.args)
        if fault is None and lj.tcp and lj.ready_at is None and time.time() - lj.registered > PAIR_WINDOW:
            fault = RelayFault(Fault.JOB_NOT_CONNECTED,
                               f"job {lj.job}'s 2005 JobMon daemon has no wake-up connection: can its worker "
                               f"reach {self.tcp_host}:{self.tcp_port}?")
        if fault is not None:
            req.future.set_result(fault.as_struct())
            return
        argv = list(req.args["argv"])
        cap = wire.output_cap(int(req.args.get("max_output", self.core.config.max_output_bytes)),
                              self.core.config.max_body_bytes)
        work = Work(req, wire.new_request_name(), wire.command_line(argv, cap), cap, argv)
        lj.offer(work)
        self.by_name[work.name] = lj

    def _wake(self, lj: LegacyJob) -> None:
        if self.jobs.get(lj.job) is not lj:
            return
        now = time.time()
        before = lj.live_names()
        work = lj.wakeup(now)
        self._reindex(lj, before)
        if work is not None:
            msg = wire.wakeup_message(lj.job, work.name)
            conn = self.conns.get(lj.job)
            if lj.tcp and conn is not None:
                conn.send(msg)
            elif not lj.tcp and self.udp is not None:
                self.udp.sendto(msg, (lj.peer, lj.port))
        due = lj.next_due(now)
        if due is not None:
            asyncio.get_running_loop().call_later(max(0.0, due - now) + 0.01, self._wake, lj)

    # -- wake-up connections (legacy_wakeup.Hub) -------------------------------
    def accepts(self, peer: str) -> bool:
        return self.peers.get(peer, 0) > 0

    def claim(self, peer: str, conn: Connection) -> bool:
        now = time.time()
        verdict, job = self.pairings.claim(peer, now)
        lj = self.jobs.get(job) if job is not None else None
        if verdict == "paired" and lj is not None:
            self._orphan(lj.job)
            conn.job = lj.job
            self.conns[lj.job] = conn
            lj.channel_up(now, SETTLE)
            asyncio.get_running_loop().call_later(SETTLE + 0.01, self._wake, lj)
            log.info("legacy daemon of job %s: wake-up connection from %s", lj.job, peer)
            return True
        if verdict == "contested" and lj is not None:
            log.warning("two wake-up connections from %s within %g s claim job %s's registration: neither gets "
                        "its wake-ups before the daemon registers again", peer, SETTLE, lj.job)
            self._orphan(lj.job)
            before = lj.live_names()
            lj.channel_down()
            self._reindex(lj, before)
            return True   # held open and silent, like the one it raced
        log.info("wake-up connection from %s matches no waiting registration: held unpaired (it gets no "
                 "wake-ups; a daemon pairs again when it registers again)", peer)
        return True

    def lost(self, conn: Connection) -> None:
        job = conn.job
        if job is None or self.conns.get(job) is not conn:
            return
        del self.conns[job]
        lj = self.jobs.get(job)
        if lj is None:
            return
        before = lj.live_names()
        lj.channel_down()
        self._reindex(lj, before)
        daemon = self.core.registry.by_session.get(lj.session)
        if daemon is not None:
            log.info("legacy daemon of job %s closed its wake-up connection: disconnected", job)
            self.core.registry.unregister(daemon)

    # -- bookkeeping ------------------------------------------------------
    def _orphan(self, job: str) -> None:
        """Detach ``job``'s connection but leave it open: the daemon closes it when it moves on
        (closing it under the 2005 daemon makes it spin, docs/PROTOCOL.md)."""
        old = self.conns.pop(job, None)
        if old is not None:
            old.job = None

    def _forget(self, lj: LegacyJob) -> None:
        if self.jobs.get(lj.job) is not lj:
            return
        del self.jobs[lj.job]
        self.peers[lj.peer] -= 1
        if self.peers[lj.peer] <= 0:
            del self.peers[lj.peer]
        self.pairings.forget(lj.job)
        self._orphan(lj.job)
        for name in lj.live_names():
            if self.by_name.get(name) is lj:
                del self.by_name[name]

    def _reindex(self, lj: LegacyJob, before: list[str]) -> None:
        after = lj.live_names()
        for name in before:
            if name not in after and self.by_name.get(name) is lj:
                del self.by_name[name]
        for name in after:
            self.by_name[name] = lj

    def _turn(self, peer: str) -> asyncio.Lock:
        """One registration at a time per source address (so its connection can be paired)."""
        lock = self._locks.get(peer)
        if lock is None:
            if len(self._locks) > 10000:
                self._locks = {p: lk for p, lk in self._locks.items() if lk.locked()}
            lock = self._locks[peer] = asyncio.Lock()
        return lock

    async def _wait_unpaired(self, peer: str, job: str) -> None:
        end = time.monotonic() + PAIR_WINDOW
        while self.pairings.busy(peer, time.time(), job) and time.monotonic() < end:
            await asyncio.sleep(0.02)

    def stats(self) -> dict[str, int]:
        return {"legacy_jobs": len(self.jobs), "wakeup_connections": len(self.conns)}
