"""The aiohttp application: moves bytes between HTTP and the dispatcher.

Routes: POST ``/clarens``, ``/clarens/`` and ``/RPC2`` (XML-RPC, or JSON-RPC
with ``Content-Type: text/json``). ``relay.web.setup(app, core, config)`` adds
the web pages when ``relay/web/__init__.py`` exists. Every refusal is a
fault in the body of an HTTP 200 answer; tracebacks only go to the log.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
from pathlib import Path
from typing import Any

from aiohttp import web

from relay.config import RelayConfig
from relay.core import RelayCore
from relay.faults import Fault, RelayFault
from relay.identity import AUTHENTICATOR_KEY
from relay.rpc import Exchange, RpcService
from relay.xmlrpc import check_body, encode_fault, is_json

log = logging.getLogger("relay.app")

CORE_KEY = web.AppKey("jobmon.core", RelayCore)
RPC_PATHS = ("/clarens", "/clarens/", "/RPC2")


async def _read_capped(request: web.Request, limit: int, timeout: float) -> bytes:
    declared = request.content_length
    if declared is not None and declared > limit:
        raise RelayFault(
            Fault.BODY_TOO_LARGE, f"request body of {declared} bytes exceeds the relay's limit of {limit} bytes"
        )
    chunks: list[bytes] = []
    size = 0

    async def pull() -> None:
        nonlocal size
        while True:
            chunk = await request.content.readany()
            if not chunk:
                return
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:
                return

    try:
        await asyncio.wait_for(pull(), timeout=timeout)
    except asyncio.TimeoutError:
        raise RelayFault(Fault.PARSE_ERROR, f"request body not received within {timeout:g} s") from None
    return b"".join(chunks)


async def _held_poll(request: web.Request, core: RelayCore, ex: Exchange) -> list[dict[str, Any]]:
    """A long-poll on an aiohttp connection; aiohttp does not cancel a handler whose client went
    away, so the connection is looked at every second and a closed one ends the poll as lost."""
    assert ex.park is not None
    poll = asyncio.ensure_future(core.registry.poll(ex.park, ex.wait))
    while not poll.done():
        await asyncio.wait({poll}, timeout=1.0)
        transport = request.transport
        if not poll.done() and (transport is None or transport.is_closing()):
            poll.cancel()
            try:
                await poll
            except asyncio.CancelledError:
                pass
            return []
    return poll.result()


def _host(peername: Any) -> str | None:
    """The address of a TCP peer (None for a Unix socket)."""
    return str(peername[0]) if isinstance(peername, tuple) and peername else None


def build_app(core: RelayCore, config: RelayConfig) -> web.Application:
    app = web.Application(client_max_size=config.max_body_bytes + 1)
    app[CORE_KEY] = core
    app[AUTHENTICATOR_KEY] = core.auth
    service = RpcService(core)

    async def rpc(request: web.Request) -> web.Response:
        """XML-RPC on a connection aiohttp serves (the relay's own connections, relay/rpcconn.py,
        take the same exchange without aiohttp)."""
        core.inflight += 1
        try:
            ctype, encoding = request.headers.get("Content-Type"), request.headers.get("Content-Encoding")
            try:
                check_body(b"", encoding, config.max_body_bytes)
                body = await _read_capped(request, config.max_body_bytes, config.client_timeout)
            except RelayFault as f:
                return web.Response(body=encode_fault(f.code, f.message, None),
                                    content_type="text/json" if is_json(ctype) else "text/xml")
            peer = request.transport.get_extra_info("peername") if request.transport is not None else None
            ex = service.begin(body, ctype, encoding, request.headers.get("Authorization"),
                               lambda: core.auth.identify(request), _host(peer))
            if ex.answer is not None:
                out = ex.answer
            elif ex.park is not None:
                out = service.poll_answer(ex, await _held_poll(request, core, ex))
            else:
                out = await service.run(ex)
            return web.Response(body=out, content_type=ex.content_type)
        finally:
            core.inflight -= 1

    async def info(request: web.Request) -> web.Response:
        return web.Response(text="JobMon relay: POST XML-RPC here (Clarens-compatible).\n")

    for path in RPC_PATHS:
        app.router.add_post(path, rpc)
        app.router.add_get(path, info)

    async def on_startup(app: web.Application) -> None:
        await core.start()

    app.on_startup.append(on_startup)

    if (Path(__file__).parent / "web" / "__init__.py").exists():
        web_mod = importlib.import_module("relay.web")
        setup = getattr(web_mod, "setup", None)
        if setup is not None:
            setup(app, core, config)
    return app
