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

from aiohttp import web

from relay.config import RelayConfig
from relay.core import RelayCore
from relay.faults import Fault, RelayFault
from relay.identity import AUTHENTICATOR_KEY, basic_auth
from relay.legacy import CALLER_ADDRESS
from relay.legacy_wire import salvage_output_call
from relay.methods import Dispatcher
from relay.xmlrpc import Call, check_body, decode_call, encode_fault, encode_result, is_json

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


def build_app(core: RelayCore, config: RelayConfig) -> web.Application:
    app = web.Application(client_max_size=config.max_body_bytes + 1)
    app[CORE_KEY] = core
    app[AUTHENTICATOR_KEY] = core.auth
    dispatcher = Dispatcher(core)

    async def rpc(request: web.Request) -> web.Response:
        call: Call | None = None
        core.inflight += 1
        try:
            encoding = request.headers.get("Content-Encoding")
            check_body(b"", encoding, config.max_body_bytes)
            body = await _read_capped(request, config.max_body_bytes, config.client_timeout)
            check_body(body, encoding, config.max_body_bytes)
            try:
                call = decode_call(body, request.headers.get("Content-Type"))
            except RelayFault:
                call = salvage_output_call(body)  # the 2005 daemon's raw output bytes (PROTOCOL.md)
                if call is None:
                    raise
            peer = request.transport.get_extra_info("peername") if request.transport is not None else None
            CALLER_ADDRESS.set(str(peer[0]) if isinstance(peer, tuple) and peer else None)
            identity, error = None, None
            if not core.stopping:
                try:
                    identity = core.auth.identify(request)
                except RelayFault as f:
                    error = f
            basic = basic_auth(request.headers.get("Authorization"))
            result = await dispatcher.dispatch(call, identity, error, basic)
            out = encode_result(call, result)
        except RelayFault as f:
            out = encode_fault(f.code, f.message, call)
        except Exception:  # noqa: BLE001 - last line of defence: log the bug, answer fault 999, no traceback
            log.exception("internal error in %s", call.method if call else "request")
            out = encode_fault(Fault.INTERNAL, "internal relay error; the details are in the relay's log", call)
        finally:
            core.inflight -= 1
        json_reply = call.json if call is not None else is_json(request.headers.get("Content-Type"))
        return web.Response(body=out, content_type="text/json" if json_reply else "text/xml")

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
