"""The web pages' only door into the relay: a thin adapter over ``relay.core.RelayCore``.

Pages call these functions rather than the core directly, so that a change of
the core's surface is absorbed here. Every core method takes the caller's
identity first and raises ``relay.faults.RelayFault``.
"""

from __future__ import annotations

import asyncio
import base64
import inspect
import logging
import time
import xmlrpc.client
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web

from relay.faults import Fault, RelayFault
from relay.identity import AUTHENTICATOR_KEY, COOKIE, Authenticator, Identity
from relay.sessions import CookieSessions, OneTimeTokens

log = logging.getLogger("relay.web")


async def _maybe_await(value: Any) -> Any:
    if inspect.isawaitable(value):
        return await value
    return value


class WebLogins:
    """Login links and session cookies: the relay's own stores when it has them.

    ``relay.identity.Authenticator`` (``app[AUTHENTICATOR_KEY]``) resolves
    cookies for every request; the one-time tokens minted by ``jobmon.webLogin``
    live in the core (``core.web_tokens``). A relay built without either gets
    stores of its own here, so the pages still work.
    """

    def __init__(self, app: web.Application, core: Any, session_ttl: float = 43200.0) -> None:
        found = app.get(AUTHENTICATOR_KEY) or getattr(core, "auth", None)
        self.authenticator: Authenticator | None = found if isinstance(found, Authenticator) else None
        if self.authenticator is not None:
            self.cookies = self.authenticator.cookies
        else:
            self.cookies = CookieSessions(ttl=session_ttl)
        tokens = None
        for name in ("web_tokens", "login_tokens", "web_logins", "tokens"):
            candidate = getattr(core, name, None)
            if isinstance(candidate, OneTimeTokens):
                tokens = candidate
                break
        self.tokens: OneTimeTokens = tokens if tokens is not None else OneTimeTokens()

    def identify(self, request: web.Request) -> Identity | None:
        """The caller: the relay's own answer, else (no authenticator) our cookie store."""
        if self.authenticator is not None:
            try:
                return self.authenticator.identify(request)
            except RelayFault:
                return None
        value = request.cookies.get(COOKIE)
        dn = self.cookies.lookup(value) if value else None
        return Identity(dn=dn, kind="cookie") if dn else None

    def redeem(self, token: str) -> str | None:
        """Spend a login token; the new cookie value, or None (unknown, used or expired)."""
        dn = self.tokens.redeem(token)
        if dn is None:
            return None
        return self.cookies.create(dn)

    def logout(self, value: str) -> None:
        self.cookies.drop(value)


def is_admin(core: Any, ident: Any) -> bool:
    func = getattr(core, "is_admin", None)
    if callable(func):
        return bool(func(ident))
    return bool(getattr(ident, "admin", False))


def _method(core: Any, *names: str) -> Callable[..., Any]:
    for name in names:
        func = getattr(core, name, None)
        if callable(func):
            return func  # type: ignore[no-any-return]
    raise RelayFault(Fault.INTERNAL, f"the relay core has no {names[0]}")


async def _call(core: Any, names: tuple[str, ...], *args: Any) -> Any:
    return await _maybe_await(_method(core, *names)(*args))


def as_bytes(value: Any) -> bytes:
    if value is None:
        return b""
    if isinstance(value, xmlrpc.client.Binary):
        return bytes(value.data)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, str):
        try:
            return base64.b64decode(value, validate=True)
        except ValueError:
            return value.encode("utf-8", "replace")
    return str(value).encode()


def as_text(value: Any) -> str:
    return as_bytes(value).decode("utf-8", "replace")


# -- jobs -----------------------------------------------------------------------------------
async def joblist(core: Any, ident: Any, filt: dict[str, Any]) -> list[dict[str, Any]]:
    jobs = await _call(core, ("joblist",), ident, filt)
    return [dict(j) for j in jobs]


async def status(core: Any, ident: Any, job: str) -> dict[str, Any]:
    return dict(await _call(core, ("status",), ident, job))


async def returned_files(core: Any, ident: Any, job: str) -> list[dict[str, Any]] | None:
    """``[{name, size, mtime}]``: only the job's output/error/log/transfer_output_files (None while it runs)."""
    files = await _call(core, ("returned_files",), ident, job)
    return None if files is None else [dict(f) for f in files]


async def exec_(core: Any, ident: Any, job: str, argv: list[str], options: dict[str, Any]) -> dict[str, Any]:
    return dict(await _call(core, ("exec", "exec_"), ident, job, argv, options))


async def read(
    core: Any, ident: Any, job: str, path: str, offset: float, length: float, wait: float
) -> dict[str, Any]:
    return dict(await _call(core, ("read",), ident, job, path, offset, length, wait))


async def ps(core: Any, ident: Any, job: str) -> dict[str, Any]:
    return dict(await _call(core, ("ps",), ident, job))


async def submit(core: Any, ident: Any, description: str, options: dict[str, Any]) -> dict[str, Any]:
    return dict(await _call(core, ("submit",), ident, description, options))


async def job_action(core: Any, ident: Any, action: str, job: str, reason: str) -> dict[str, Any]:
    if action == "release":
        return dict(await _call(core, ("release",), ident, job))
    return dict(await _call(core, (action,), ident, job, reason))


async def nodes(core: Any, ident: Any) -> list[dict[str, Any]]:
    out = []
    for n in await _call(core, ("nodes",), ident):
        out.append(dict(n) if isinstance(n, dict) else _node_dict(n))
    return out


def _node_dict(n: Any) -> dict[str, Any]:
    return {
        "name": n.name, "state": n.state, "activity": n.activity, "slots_total": n.slots_total,
        "slots_busy": n.slots_busy, "load": n.load, "running_jobs": list(n.running_jobs),
        "has_jobmon": n.has_jobmon, "draining": n.draining,
    }


async def node_action(core: Any, ident: Any, node: str, action: str) -> str:
    res = await _call(core, ("node_action", "nodeAction"), ident, node, action)
    if isinstance(res, dict):
        return str(res.get("message", ""))
    return str(res or "")


# -- farm status (page header) --------------------------------------------------------------
_FARM_TTL = 5.0
_farm_cache: dict[int, tuple[float, dict[str, Any]]] = {}


def forget_farm(core: Any) -> None:
    """Drop the cached farm status (after an action that changes it)."""
    _farm_cache.pop(id(core), None)


async def farm_status(core: Any, ident: Any) -> dict[str, Any]:
    """Nodes up/draining, slots busy/idle, jobs waiting/running: counts only, for everyone."""
    func = getattr(core, "farm_status", None) or getattr(core, "farm", None)
    if callable(func):
        return dict(await _maybe_await(func(ident)))
    key = id(core)
    hit = _farm_cache.get(key)
    now = time.monotonic()
    if hit and now - hit[0] < _FARM_TTL:
        return hit[1]
    pool = getattr(core, "pool", None)
    if pool is None:
        return {}
    loop = asyncio.get_running_loop()
    farm: dict[str, Any] = {}
    try:
        node_list = await loop.run_in_executor(None, pool.nodes)
        ads = await loop.run_in_executor(None, lambda: pool.query("JobStatus == 1 || JobStatus == 2", ["JobStatus"]))
    except Exception as exc:  # noqa: BLE001 - pool adapters raise PoolError; show, don't crash the page
        log.warning("farm status unavailable: %s", exc)
        return {"error": str(exc)}
    farm["nodes_up"] = sum(1 for n in node_list if n.state == "up")
    farm["nodes_draining"] = sum(1 for n in node_list if n.state in ("draining", "drained"))
    farm["nodes_off"] = sum(1 for n in node_list if n.state == "off")
    farm["slots_busy"] = sum(n.slots_busy for n in node_list)
    farm["slots_idle"] = sum(max(0, n.slots_total - n.slots_busy) for n in node_list if n.state == "up")
    farm["jobs_waiting"] = sum(1 for a in ads if a.get("JobStatus") == 1)
    farm["jobs_running"] = sum(1 for a in ads if a.get("JobStatus") == 2)
    _farm_cache[key] = (now, farm)
    return farm


# -- live changes ---------------------------------------------------------------------------
def watch_hold(core: Any, holder: str, jobs: list[str], only: bool = False) -> None:
    """An open live view watches ``jobs`` (their daemons report progress live) until released."""
    watchers = getattr(core, "watchers", None)
    if watchers is None:
        return
    (watchers.hold_only if only else watchers.hold)(holder, jobs)


def watch_release(core: Any, holder: str) -> None:
    watchers = getattr(core, "watchers", None)
    if watchers is not None:
        watchers.release(holder)


class ChangeFeed:
    """A generation counter bumped on every job update the core reports.

    Live pages wait for the counter to move (or a timeout), then re-render. With a
    core that offers no update stream, the counter moves every ``fallback`` seconds.
    """

    def __init__(self, core: Any, stopping: asyncio.Event, fallback: float = 2.0) -> None:
        self.core = core
        self.stopping = stopping
        self.fallback = fallback
        self.generation = 0
        self._cond: asyncio.Condition | None = None
        self._task: asyncio.Task[None] | None = None

    def _condition(self) -> asyncio.Condition:
        if self._cond is None:
            self._cond = asyncio.Condition()
        return self._cond

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        self.stopping.set()
        await self.bump()
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    async def bump(self) -> None:
        cond = self._condition()
        async with cond:
            self.generation += 1
            cond.notify_all()

    async def wait(self, seen: int, timeout: float) -> int:
        """Wait until the generation differs from ``seen`` (or timeout); return the current one."""
        cond = self._condition()
        async with cond:
            if self.generation == seen and not self.stopping.is_set():
                try:
                    await asyncio.wait_for(
                        cond.wait_for(lambda: self.generation != seen or self.stopping.is_set()), timeout
                    )
                except asyncio.TimeoutError:
                    pass
            return self.generation

    async def _updates(self) -> AsyncIterator[Any]:
        sub = getattr(self.core, "subscribe", None)
        if not callable(sub):
            while True:
                await asyncio.sleep(self.fallback)
                yield None
        stream = sub()
        if hasattr(stream, "__aiter__"):
            async for item in stream:
                yield item
        elif hasattr(stream, "get"):  # an asyncio.Queue
            while True:
                yield await stream.get()
        else:
            raise TypeError(f"core.subscribe() returned {type(stream).__name__}")

    async def _run(self) -> None:
        try:
            async for _ in self._updates():
                await self.bump()
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - a broken feed must not take the pages down
            log.exception("job update feed failed; live pages fall back to periodic refresh")
            while not self.stopping.is_set():
                await asyncio.sleep(self.fallback)
                await self.bump()


def on_job_end(core: Any, callback: Callable[[Mapping[str, Any]], Awaitable[Any]]) -> bool:
    func = getattr(core, "on_job_end", None)
    if not callable(func):
        return False
    func(callback)
    return True


async def issue_credential(core: Any, ident: Any) -> dict[str, Any] | None:
    """A per-job credential for a web submit, or None when the core mints none."""
    func = getattr(core, "issue_credential", None) or getattr(core, "issueCredential", None)
    if not callable(func):
        return None
    return dict(await _maybe_await(func(ident, {})))


async def bind_credential(core: Any, ident: Any, cred_id: str, cluster: int) -> None:
    func = getattr(core, "bind_credential", None) or getattr(core, "bindCredential", None)
    if callable(func) and cred_id:
        try:
            await _maybe_await(func(ident, cred_id, cluster))
        except RelayFault as fault:  # the daemon binds it on first use anyway
            log.warning("binding credential %s to cluster %s failed: %s", cred_id, cluster, fault.message)
