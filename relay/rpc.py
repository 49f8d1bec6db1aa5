"""One XML-RPC (or JSON-RPC) exchange, from request body to answer body, without HTTP.

Both ways a call reaches the relay use it: the relay's own connections
(relay/rpcconn.py, the hot path) and the aiohttp route (relay/app.py, for a
connection aiohttp already serves). :meth:`RpcService.begin` does everything
that never waits (body checks, decoding, who is calling, access checks) and,
for ``jobmon.poll``, the poll itself when it need not wait; what is left is
either a handler to await (:meth:`RpcService.run`) or a daemon whose poll is
to be held (``Exchange.park``). Every refusal is a fault in the answer; an
unexpected error is logged with its traceback and answered with fault 999.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from relay.faults import Fault, RelayFault
from relay.identity import Identity, basic_auth
from relay.legacy_wire import salvage_output_call
from relay.methods import Ctx, Dispatcher, Method
from relay.registry import Daemon
from relay.xmlrpc import Call, check_body, decode_call, encode_fault, encode_result, is_json

if TYPE_CHECKING:  # pragma: no cover
    from relay.core import RelayCore

log = logging.getLogger("relay.app")

POLL = "jobmon.poll"


class Exchange:
    """What is left of a call after :meth:`RpcService.begin`: exactly one of ``answer`` (done),
    ``park`` (a poll to hold for up to ``wait`` seconds) or ``handler`` (to run)."""

    __slots__ = ("call", "json", "answer", "park", "wait", "handler")

    def __init__(self, call: Call | None, json: bool) -> None:
        self.call = call
        self.json = json
        self.answer: bytes | None = None
        self.park: Daemon | None = None
        self.wait = 0.0
        self.handler: tuple[Method, Ctx, tuple[Any, ...]] | None = None

    @property
    def content_type(self) -> str:
        return "text/json" if self.json else "text/xml"


class RpcService:
    def __init__(self, core: RelayCore) -> None:
        self.core = core
        self.dispatcher = Dispatcher(core)

    def begin(self, body: bytes, content_type: str | None, encoding: str | None, authorization: str | None,
              identify: Callable[[], Identity | None], peer: str | None = None) -> Exchange:
        """``peer``: the address the connection came from (the 2005 daemon's UDP wake-ups go
        only there)."""
        core = self.core
        ex = Exchange(None, is_json(content_type))
        try:
            check_body(body, encoding, core.config.max_body_bytes)
            try:
                call = decode_call(body, content_type)
            except RelayFault:
                salvaged = salvage_output_call(body)  # the 2005 daemon's raw output bytes (PROTOCOL.md)
                if salvaged is None:
                    raise
                call = salvaged
            ex.call = call
            ex.json = call.json
            identity, error = None, None
            try:
                identity = identify()
            except RelayFault as f:
                error = f
            m, ctx, params = self.dispatcher.prepare(call, identity, error, basic_auth(authorization), peer)
            if m.name != POLL:
                ex.handler = (m, ctx, params)
                return ex
            session, max_wait = params[0], float(params[1])
            daemon, ready = core.poll_begin(ctx.caller, session, params[2] if len(params) > 2 else None)
            wait = max(0.0, min(max_wait, core.registry.poll_wait))
            if ready is None and wait <= 0:
                ready = []
            if ready is not None:
                ex.answer = encode_result(call, ready)
            else:
                ex.park, ex.wait = daemon, wait
        except RelayFault as f:
            ex.answer = encode_fault(f.code, f.message, ex.call)
        except Exception:  # noqa: BLE001 - last line of defence: log the bug, answer fault 999
            ex.answer = self._internal(ex)
        return ex

    async def run(self, ex: Exchange) -> bytes:
        """Run the handler ``begin`` left and encode its answer."""
        assert ex.handler is not None and ex.call is not None
        m, ctx, params = ex.handler
        try:
            return encode_result(ex.call, await m.handler(ctx, *params))
        except RelayFault as f:
            return encode_fault(f.code, f.message, ex.call)
        except Exception:  # noqa: BLE001 - last line of defence
            return self._internal(ex)

    def poll_answer(self, ex: Exchange, requests: list[dict[str, Any]]) -> bytes:
        assert ex.call is not None
        try:
            return encode_result(ex.call, requests)
        except Exception:  # noqa: BLE001 - last line of defence
            return self._internal(ex)

    @staticmethod
    def _internal(ex: Exchange) -> bytes:
        log.exception("internal error in %s", ex.call.method if ex.call else "request")
        return encode_fault(Fault.INTERNAL, "internal relay error; the details are in the relay's log", ex.call)
