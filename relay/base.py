"""``CoreBase``: the relay's state and shared helpers (``RelayCore`` builds on it).

Methods are async, take the caller's :class:`relay.identity.Identity` first
and raise :class:`relay.faults.RelayFault`. The XML-RPC methods
(:mod:`relay.methods`) and the web pages (``relay.web``) both call them. The
blocking :class:`jobmon.pools.base.Pool` is called through
``asyncio.to_thread``.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from jobmon.errors import JobmonError, PoolError, SubmitFileError, UsageError
from jobmon.jobid import JobId
from jobmon.pools.base import Pool
from relay import __version__
from relay.access import AccessControl
from relay.audit import AuditLog
from relay.batches import Batches
from relay.config import RelayConfig
from relay.credentials import CredentialStore
from relay.faults import Fault, RelayFault
from relay.identity import Authenticator, Identity
from relay.job_trust import JobTrust
from relay.jobs import PROJECTION, ad_id, job_struct, owner_dn
from relay.limits import JobConcurrency, RateLimiter
from relay.ownership import Ownership
from relay.registry import Daemon, Registry
from relay.sessions import CookieSessions, OneTimeTokens, SessionStore
from relay.single_flight import SingleFlight
from relay.statedir import secure_state_dir
from relay.subscription import Subscription
from relay.tls_refusals import HandshakeRefusals, problem_text, sinful_host
from relay.watcher import EndWatcher
from relay.watching import PUSH_INTERVAL, Watchers

log = logging.getLogger("relay.core")

JobEndCallback = Callable[[dict[str, Any]], Any]
#: pool calls that only read: identical ones at the same time are made once
SHARED_READS = frozenset({"query", "history", "nodes"})
STOP_GRACE = 5.0  # seconds a stopping relay waits for commands already running and their callers


class CoreBase:
    def __init__(self, config: RelayConfig, pool: Pool | None = None) -> None:
        self.config = config
        self.pool = pool
        state = secure_state_dir(config.state_path)
        self.access = AccessControl(config.access_file or None, config.admins)
        self.ownership = Ownership(config.ownership)
        self.audit_log = AuditLog(state / "audit.sqlite")
        self.credentials = CredentialStore(state, config.credential_ttl)
        self.sessions = SessionStore(config.session_ttl)
        self.cookies = CookieSessions(config.session_ttl)
        self.web_logins = OneTimeTokens()
        self.auth = Authenticator(self.credentials, self.sessions, self.cookies, config.accept_limited_proxies)
        self.registry = Registry(config.poll_wait, config.reconnect_grace, config.reconnect_allowance)
        self.rate = RateLimiter(config.rate_per_second, config.rate_burst)
        self.concurrency = JobConcurrency(config.max_commands_per_job)
        self.batches = Batches(config.fanout_concurrency)
        self.pool_reads = SingleFlight()
        self.version = __version__
        self.web_login_hook: Callable[[str], tuple[str, float]] | None = None
        #: ``callable(submit, caller_dn, iwd) -> submit``: wraps relay submissions (server.py sets it)
        self.submit_preparer: Callable[[Any, str, str], Any] | None = None
        self._subscribers: set[asyncio.Queue[dict[str, Any]]] = set()
        self._end_callbacks: list[JobEndCallback] = []
        self._flusher: asyncio.Task[None] | None = None
        self._closed = False
        self.inflight = 0  # XML-RPC requests being handled (app.py counts them)
        self.node_reports: dict[str, dict[str, Any]] = {}
        self.watcher = EndWatcher(self, config.pool_check_interval)
        #: what jobs need to verify this relay (server.py works it out once the URL is known)
        self.job_trust = JobTrust("", "not worked out (no HTTPS server)")
        #: handshakes in which a client refused our certificate (tls.py records them)
        self.tls_refusals = HandshakeRefusals()
        #: who watches which job (watched daemons report progress live; relay/watching.py)
        self.watchers = Watchers(self._watch_changed)
        self.change_seq = 0   # bumped at every daemon report; jobmon.watch waits for it to move
        self._change_event: asyncio.Event | None = None
        self._watch_task: asyncio.Task[None] | None = None

    # -- lifecycle -----------------------------------------------------
    async def start(self) -> None:
        if self._flusher is None:
            self._flusher = asyncio.get_running_loop().create_task(self._flush_loop())
        if self._watch_task is None and self.pool is not None:
            self._watch_task = asyncio.get_running_loop().create_task(self.watcher.run())

    def watch_now(self, job: str | None = None) -> None:
        """Ask the pool soon whether ``job`` (or any silent job) has ended."""
        self.watcher.kick(job)

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(0.5)
            self.watchers.expire()
            await asyncio.to_thread(self.audit_log.flush)

    # -- live progress for watchers (relay/watching.py) ------------------
    def _watch_changed(self, job: str, watched: bool) -> None:
        """A job gained its first watcher or lost its last: tell its daemon, if it is connected."""
        daemon = self.registry.by_job.get(job)
        caps = daemon.info.get("capabilities") if daemon is not None else None
        if (daemon is not None and daemon.final is None and not daemon.gone and self.registry.connected(job)
                and isinstance(caps, list) and "watch" in caps):  # not the 2005 daemon, not old wrappers
            self.registry.control(daemon, "watch", {"watched": watched, "interval": PUSH_INTERVAL})

    def note_change(self, daemon: Daemon) -> None:
        """A daemon reported: wake every ``jobmon.watch`` waiting for news."""
        self.change_seq += 1
        daemon.seq = self.change_seq
        if self._change_event is not None:
            self._change_event.set()
            self._change_event = None

    async def wait_change(self, timeout: float) -> None:
        """Return at the next daemon report, or after ``timeout`` seconds."""
        if self._change_event is None:
            self._change_event = asyncio.Event()
        try:
            await asyncio.wait_for(self._change_event.wait(), timeout)
        except asyncio.TimeoutError:
            pass

    @property
    def stopping(self) -> bool:
        return self.registry.closing

    def begin_stop(self) -> None:
        """Phase 1: no new commands (998; those never handed out fail with 998 too); new calls get
        998 except results, polls and fan-out results (relay/methods.py, ``WHILE_STOPPING``)."""
        self.registry.close()

    async def drain(self, timeout: float = STOP_GRACE) -> None:
        """After :meth:`begin_stop`: wait (at most ``timeout``) until the ``exec`` commands already
        handed out have answered and every answer and fan-out result is collected; the commands
        still running then get 700. Polls stay held (:meth:`release_polls` answers them)."""
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout

        def busy() -> bool:
            return self.inflight - self.registry.parked > 0 or bool(self.registry.outstanding()) \
                or bool(self.batches.unread())

        while loop.time() < end and busy():
            await asyncio.sleep(0.01)
        if self.registry.outstanding():
            self.registry.abandon()
            end = loop.time() + 1.0
            while loop.time() < end and busy():
                await asyncio.sleep(0.01)

    async def release_polls(self, timeout: float = 2.0) -> None:
        """The end of a stop: answer every held poll (empty; the connection then closes, so that
        daemons come back only when a relay accepts again) and wait for the answers to leave."""
        self.registry.release()
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while loop.time() < end and self.inflight > 0:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)  # let the answers leave the transports

    async def close(self) -> None:
        """Phase 2, once no request is running: flush the audit log, close the databases."""
        if self._closed:
            return
        self._closed = True
        for task in (self._flusher, self._watch_task):
            if task is not None:
                task.cancel()
                try:
                    await task
                except asyncio.CancelledError:
                    pass
        self.audit_log.close()
        self.credentials.close()

    async def stop(self) -> None:
        """Both phases at once (for embedding without an HTTP server)."""
        self.begin_stop()
        self.registry.abandon()
        self.registry.release()
        self.batches.cancel_all()
        await asyncio.sleep(0)
        await self.close()

    # -- identity helpers ----------------------------------------------
    def is_admin(self, caller: Identity | None) -> bool:
        return caller is not None and caller.kind != "credential" and self.access.is_admin(caller.dn)

    def may_act(self, caller: Identity, owner: str | None) -> bool:
        return self.is_admin(caller) or (owner is not None and self.ownership.owns(caller.dn, owner))

    def cookie_identity(self, dn: str) -> Identity:
        return Identity(dn=dn, kind="cookie")

    def audit(self, caller: Identity | None, method: str, **kw: Any) -> None:
        self.audit_log.record(caller.dn if caller else "-", method, **kw)

    def deny(self, caller: Identity | None, method: str, fault: RelayFault, job: str | None = None,
             argv: list[str] | None = None) -> RelayFault:
        log.warning("denied %s to %s%s: %s", method, caller.dn if caller else "(anonymous)",
                    f" on job {job}" if job else "", fault.message)
        self.audit(caller, method, job=job, argv=argv, allowed=False, note=f"{fault.code} {fault.message}")
        return fault

    # -- events for the web pages --------------------------------------
    def subscribe(self, maxsize: int = 1000) -> Subscription:
        """Job structs as daemons register, report and finish (for server-sent events).

        The subscription starts now (not at the first ``__anext__``); end it with
        ``aclose()`` or by leaving ``async for``. A slow reader loses updates, never blocks the relay.
        """
        return Subscription(self._subscribers, maxsize)

    def on_job_end(self, callback: JobEndCallback) -> None:
        """``callback(job_struct)`` (sync or async) when a daemon reports its job's end."""
        self._end_callbacks.append(callback)

    def publish(self, struct: dict[str, Any]) -> None:
        for q in list(self._subscribers):
            if q.full():
                continue
            q.put_nowait(struct)

    def job_ended(self, struct: dict[str, Any]) -> None:
        job = struct.get("id")
        if isinstance(job, str) and not self.watcher.ended(job):
            return  # announced already
        for cb in list(self._end_callbacks):
            try:
                res = cb(struct)
                if inspect.isawaitable(res):
                    asyncio.ensure_future(res)
            except Exception:  # noqa: BLE001 - a broken hook (mail) must never break the relay
                log.exception("job-end callback %r failed", cb)

    # -- pool access ---------------------------------------------------
    async def pool_call(self, what: str, func: Callable[..., Any], *args: Any, **kw: Any) -> Any:
        """Every call into the pool; identical reads at the same time are one call (single_flight.py)."""
        if self.pool is None:
            raise RelayFault(Fault.POOL_ERROR, "this relay has no pool configured")
        if what in SHARED_READS and not kw:
            return await self.pool_reads.run((what, func, args), lambda: self._pool_thread(what, func, *args))
        try:
            return await self._pool_thread(what, func, *args, **kw)
        finally:
            self.pool_reads.forget()  # a change: reads from now on must see it

    async def _pool_thread(self, what: str, func: Callable[..., Any], *args: Any, **kw: Any) -> Any:
        try:
            return await asyncio.to_thread(func, *args, **kw)
        except SubmitFileError as exc:
            raise RelayFault(Fault.SUBMIT_ERROR, str(exc)) from None
        except UsageError as exc:
            raise RelayFault(Fault.SUBMIT_ERROR if what == "submit" else Fault.BAD_PARAMS, str(exc)) from None
        except PoolError as exc:
            raise RelayFault(Fault.POOL_ERROR, str(exc)) from None
        except JobmonError as exc:
            raise RelayFault(Fault.POOL_ERROR, f"{what}: {exc}") from None

    async def pool_ads(self, constraint: str, history: bool = False, match: int = -1) -> list[Any]:
        if self.pool is None:
            return []
        ads: list[Any] = await self.pool_call("query", self.pool.query, constraint, PROJECTION)
        if history:
            ads += await self.pool_call("history", self.pool.history, constraint, PROJECTION, match)
        return ads

    async def find_job(self, job: str, with_ad: bool = True) -> tuple[Any | None, Daemon | None]:
        """(pool ad or None, daemon or None); fault 500 if neither knows the job.

        The pool is asked even while the job's daemon is connected, so the struct
        has the ad's fields (``submitted``, ``cmd``, ``iwd``...); ``with_ad=False``
        skips that for live commands to a connected daemon (the hot path).
        """
        daemon = self.registry.by_job.get(job)
        ad = None
        jid = _parse_job(job)
        live = daemon is not None and daemon.final is None
        if jid is not None and jid.proc is not None and self.pool is not None and (with_ad or not live):
            ads = await self.pool_ads(jid.constraint(), history=False)
            if not ads:
                ads = await self.pool_call("history", self.pool.history, jid.constraint(), PROJECTION, 1)
            ad = ads[0] if ads else None
        if ad is None and daemon is None:
            raise RelayFault(Fault.UNKNOWN_JOB, f"no job {job} at this relay or in its pool")
        return ad, daemon

    async def _history_of(self, jobs: list[str]) -> dict[str, Any]:
        """The pool's history ads of ``jobs`` (ended jobs whose daemon reported), by id;
        the pool's word wins for removed and held jobs, as in :meth:`status`."""
        found: dict[str, Any] = {}
        if self.pool is None or not jobs:
            return found
        ids = [j for j in jobs if j.count(".") == 1 and all(p.isdigit() for p in j.split("."))]
        for i in range(0, len(ids), 200):
            chunk = ids[i:i + 200]
            expr = " || ".join(f"(ClusterId == {c} && ProcId == {p})" for c, p in (j.split(".") for j in chunk))
            for ad in await self.pool_call("history", self.pool.history, expr, PROJECTION, len(chunk)):
                jid = ad_id(ad)
                if jid is not None and jid not in found:
                    found[jid] = ad
        return found

    async def _ended_ads(self, caller: Identity, expr: str, everyone: bool, whole_cluster: bool) -> list[Any]:
        """The pool's history for a job list: a whole cluster's ended jobs, else the
        caller's ``joblist_history`` most recent (everyone's for an admin's ``all``).
        Without ownership rules the pool filters by owner DN itself; with rules (the
        pool cannot evaluate them) it returns up to ten times as many, filtered here."""
        if self.pool is None:
            return []
        if whole_cluster:
            return list(await self.pool_call("history", self.pool.history, expr, PROJECTION, -1))
        limit = max(0, int(self.config.joblist_history))
        if limit == 0:
            return []
        if everyone:
            return list(await self.pool_call("history", self.pool.history, expr, PROJECTION, limit))
        if not self.ownership.rules:
            dn = _classad_string(caller.dn)
            mine = f"(JobMonOwnerDN =?= {dn} || x509UserProxySubject =?= {dn})"
            return list(await self.pool_call("history", self.pool.history, f"({expr}) && {mine}", PROJECTION, limit))
        ads = await self.pool_call("history", self.pool.history, expr, PROJECTION, limit * 10)
        kept = [ad for ad in ads if self.ownership.owns(caller.dn, owner_dn(ad, self.registry.by_job.get(ad_id(ad) or "")))]
        return kept[:limit]

    async def authorize_job(self, caller: Identity, method: str, job: str,
                            argv: list[str] | None = None, with_ad: bool = True) -> tuple[Any | None, Daemon | None]:
        ad, daemon = await self.find_job(job, with_ad)
        if not self.may_act(caller, owner_dn(ad, daemon)):
            raise self.deny(caller, method, RelayFault(Fault.NOT_OWNER, f"you may not act on job {job}"), job, argv)
        return ad, daemon

    def struct(self, ad: Any | None, daemon: Daemon | None) -> dict[str, Any]:
        job = daemon.job if daemon is not None else (ad_id(ad) if ad is not None else None)
        connected = self.registry.connected(job) if job else False
        out = job_struct(ad, daemon, connected)
        if not connected and ad is not None and out.get("state") == "running":
            since = float(ad.get("JobCurrentStartDate", 0) or 0) - 5.0
            refusal = self.tls_refusals.recent(sinful_host(ad.get("StartdIpAddr")), since)
            if refusal is not None:
                out["monitor_problem"] = problem_text(refusal)
        node = self.node_reports.get(job) if job else None
        if node is not None and "resources" not in out and isinstance(node.get("resources"), dict):
            out["resources"] = node["resources"]
        return out

    def daemon_struct(self, daemon: Daemon) -> dict[str, Any]:
        return self.struct(None, daemon)

    def now(self) -> float:
        return time.time()

    def state_dir(self) -> Path:
        return self.config.state_path


def _parse_job(text: str) -> JobId | None:
    try:
        return JobId.parse(text)
    except UsageError:
        return None


def job_ids(items: Sequence[Any]) -> list[str]:
    return [str(x) for x in items]


def _classad_string(value: str) -> str:
    """``value`` as a ClassAd string literal."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
