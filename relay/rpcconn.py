"""The relay's own connections: XML-RPC over HTTP/1.1 without a task per held long-poll.

Every connection starts here (:class:`RpcConnection`, an ``asyncio.Protocol``
with ``__slots__``). It frames requests with relay/http11.py and serves
``POST /clarens`` (and ``/RPC2``) through the same exchange as the aiohttp
route (relay/rpc.py). A daemon's ``jobmon.poll`` that has to wait is *parked*:
the connection itself is the registry's waiter (``wake()``), with one timer,
so 10,000 held polls cost 10,000 small objects and no tasks, coroutines or
futures. Any other request (a browser's ``GET``, chunked bodies, ``Expect``)
hands the connection, with the bytes read so far, to aiohttp, which keeps it.

Deadlines (:class:`ConnServer` checks them once a second): a request head or
body not complete within ``client_timeout`` seconds of its first byte closes
the connection (a body gets fault 100 first); a connection idle for
``keepalive`` seconds between requests is closed.

When the connection holding a parked poll closes, the registry is told
(``unpark(..., lost=True)``): a killed daemon is noticed at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from relay import http11, tls
from relay.faults import Fault, RelayFault
from relay.front import front_identity
from relay.identity import COOKIE, Identity
from relay.rpc import Exchange, RpcService
from relay.xmlrpc import encode_fault, is_json

if TYPE_CHECKING:  # pragma: no cover
    from relay.core import RelayCore

log = logging.getLogger("relay.rpcconn")

RPC_PATHS = frozenset(("/clarens", "/clarens/", "/RPC2"))
KEEPALIVE = 75.0
TICK = 0.25   # seconds: held polls are answered on time to this
_UNSET: Any = object()
#: how a connection learns its caller's certificate identity (TLS: the verified chain)
CertSource = Callable[["RpcConnection", dict[str, str]], Identity | None]


def tls_certificate(conn: RpcConnection, headers: dict[str, str]) -> Identity | None:
    """The verified client certificate of a TLS connection (computed once per connection)."""
    if conn._cert is _UNSET:
        ssl_object = conn._t.get_extra_info("ssl_object") if conn._t is not None else None
        conn._cert = tls.peer_identity(ssl_object) if ssl_object is not None else None
    return conn._s.core.auth.from_cert(conn._cert)


def front_certificate(conn: RpcConnection, headers: dict[str, str]) -> Identity | None:
    """The client certificate a TLS front verified and forwarded in headers (relay/front.py)."""
    return conn._s.core.auth.from_cert(front_identity(headers.get))


class ConnServer:
    """What the connections of one listener share, and the once-a-second deadline check."""

    def __init__(self, core: RelayCore, service: RpcService, web: Callable[[], asyncio.Protocol],
                 certificate: CertSource = tls_certificate, keepalive: float = KEEPALIVE) -> None:
        self.core = core
        self.service = service
        self.web = web
        self.certificate = certificate
        self.keepalive = keepalive
        self.timeout = core.config.client_timeout
        self.max_body = core.config.max_body_bytes
        self.loop = asyncio.get_running_loop()
        self.conns: set[RpcConnection] = set()
        self.partial: dict[RpcConnection, float] = {}   # connection -> first byte of its request
        #: held polls by when they are due (in ticks): one wheel instead of a timer each
        self.due: dict[int, set[RpcConnection]] = {}
        self._ticks = 0
        self._tick_handle = self.loop.call_later(TICK, self._tick)

    def hold(self, conn: RpcConnection, wait: float) -> int:
        """File a held poll to be answered ``wait`` seconds from now (to the next tick)."""
        slot = int((time.monotonic() + wait) / TICK) + 1
        self.due.setdefault(slot, set()).add(conn)
        return slot

    def unhold(self, conn: RpcConnection, slot: int) -> None:
        conns = self.due.get(slot)
        if conns is not None:
            conns.discard(conn)
            if not conns:
                del self.due[slot]

    def protocol(self) -> RpcConnection:
        return RpcConnection(self)

    def _tick(self) -> None:
        now = time.monotonic()
        try:
            slot = int(now / TICK)
            for key in [k for k in self.due if k <= slot]:
                for conn in self.due.pop(key):
                    conn._timer = None
                    try:
                        conn._poll_end()
                    except Exception:  # noqa: BLE001 - one connection's bug must not stop the wheel
                        log.exception("answering a held poll failed")
            self._ticks += 1
            if self._ticks % 4 == 0:
                for conn, since in list(self.partial.items()):
                    if now - since > self.timeout:
                        conn._too_slow()
            if self._ticks % 40 == 0:
                for conn in list(self.conns):
                    if conn._idle is not None and now - conn._idle > self.keepalive:
                        conn._close()
        finally:
            self._tick_handle = self.loop.call_later(TICK, self._tick)

    def close(self) -> None:
        """Close every connection (answers already written are flushed first)."""
        self._tick_handle.cancel()
        for conn in list(self.conns):
            conn._close()


class RpcConnection(asyncio.Protocol):
    __slots__ = ("_s", "_t", "_buf", "_head", "_chunks", "_got", "_busy", "_keep", "_ex", "_timer",
                 "_task", "_cert", "_idle")

    def __init__(self, server: ConnServer) -> None:
        self._s = server
        self._t: Any = None
        self._buf = b""
        self._head: http11.Head | None = None   # a head whose body is still arriving
        self._chunks: list[bytes] | None = None
        self._got = 0
        self._busy = False                      # a request is being answered
        self._keep = True
        self._ex: Exchange | None = None        # the parked poll
        self._timer: Any = None                 # its slot on the wheel (int), or the wake-up scheduled
        self._task: asyncio.Task[None] | None = None
        self._cert: Any = _UNSET
        self._idle: float | None = time.monotonic()

    # -- asyncio protocol ------------------------------------------------
    def connection_made(self, transport: Any) -> None:
        self._t = transport
        self._s.conns.add(self)

    def data_received(self, data: bytes) -> None:
        if self._busy:  # the client sent on before its answer: keep it for later, bounded
            self._buf += data
            if len(self._buf) > http11.MAX_HEAD + self._s.max_body:
                self._abort()
            return
        self._feed(data)

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: BaseException | None) -> None:
        self._t = None
        s = self._s
        s.conns.discard(self)
        s.partial.pop(self, None)
        ex = self._ex
        if ex is not None and ex.park is not None:
            self._ex = None
            self._unhold()
            s.core.registry.unpark(ex.park, self, lost=True)
            s.core.inflight -= 1

    # -- framing ---------------------------------------------------------
    def _feed(self, data: bytes) -> None:
        s = self._s
        while not self._busy and self._t is not None:
            if self._head is None:
                buf = self._buf + data if self._buf else data
                data = b""
                self._buf = b""
                if not buf:
                    return
                end = http11.head_end(buf)
                if end < 0:
                    if len(buf) > http11.MAX_HEAD:
                        self._refuse(http11.HttpError(431, f"request head over {http11.MAX_HEAD} bytes"))
                        return
                    self._buf = buf
                    s.partial.setdefault(self, time.monotonic())
                    self._idle = None
                    return
                try:
                    head = http11.parse_head(buf[:end])
                except http11.HttpError as err:
                    self._refuse(err)
                    return
                if not http11.serves(head, RPC_PATHS):
                    self._handoff(buf)
                    return
                if head.length is not None and head.length > s.max_body:
                    self._fault_and_close(head, RelayFault(Fault.BODY_TOO_LARGE, (
                        f"request body of {head.length} bytes exceeds the relay's limit of {s.max_body} bytes")))
                    return
                self._head, self._chunks, self._got = head, [], 0
                s.partial[self] = time.monotonic()  # the body gets its own client_timeout
                data = buf[end:]
            head = self._head
            assert head is not None and head.length is not None and self._chunks is not None
            need = head.length - self._got
            if len(data) < need:
                if data:
                    self._chunks.append(data)
                    self._got += len(data)
                self._idle = None
                return
            self._chunks.append(data[:need] if len(data) > need else data)
            data = data[need:]
            body = b"".join(self._chunks)
            self._head, self._chunks = None, None
            s.partial.pop(self, None)
            self._request(head, body)
        if data:
            self._buf += data

    def _request(self, head: http11.Head, body: bytes) -> None:
        s = self._s
        self._keep = head.keep_alive
        self._busy = True
        self._idle = None
        s.core.inflight += 1
        h = head.headers
        ex = s.service.begin(body, h.get("content-type"), h.get("content-encoding"), h.get("authorization"),
                             lambda: self._identify(h), self._peer())
        if ex.answer is not None:
            self._done(ex, ex.answer)
        elif ex.park is not None:
            self._ex = ex
            self._timer = s.hold(self, ex.wait)
            s.core.registry.park(ex.park, self)
        else:
            self._task = s.loop.create_task(self._run(ex))

    def _peer(self) -> str | None:
        """The caller's address; None behind a TLS front (a Unix socket), so the 2005 daemon's
        UDP wake-ups, which go only to the address a daemon called from, are not sent."""
        peer = self._t.get_extra_info("peername")
        return str(peer[0]) if isinstance(peer, tuple) and peer else None

    def _identify(self, headers: dict[str, str]) -> Identity | None:
        s = self._s
        return s.core.auth.identify_headers(headers.get("authorization"), lambda: s.certificate(self, headers),
                                            lambda: _cookie(headers.get("cookie")))

    async def _run(self, ex: Exchange) -> None:
        try:
            body = await self._s.service.run(ex)
        except asyncio.CancelledError:
            self._s.core.inflight -= 1
            raise
        self._task = None
        self._done(ex, body)

    # -- the parked poll -------------------------------------------------
    def wake(self) -> None:
        """The registry's call: requests are queued (or the poll is replaced, the daemon gone, the
        relay stopping). Answered on the next loop pass, so requests queued together leave together."""
        if self._ex is None or isinstance(self._timer, asyncio.Handle):  # none held, or already due
            return
        self._unhold()
        self._timer = self._s.loop.call_soon(self._poll_end)

    def _unhold(self) -> None:
        t, self._timer = self._timer, None
        if isinstance(t, int):
            self._s.unhold(self, t)
        elif t is not None:
            t.cancel()

    def _poll_end(self) -> None:
        self._unhold()
        ex, self._ex = self._ex, None
        if ex is None or ex.park is None:
            return
        requests = self._s.core.registry.unpark(ex.park, self)
        self._done(ex, self._s.service.poll_answer(ex, requests))

    # -- answers ---------------------------------------------------------
    def _done(self, ex: Exchange, body: bytes) -> None:
        self._s.core.inflight -= 1
        t = self._t
        if t is None or t.is_closing():
            return
        if self._s.core.registry.released:  # the relay is going: this connection ends here
            self._keep = False
        t.write(http11.answer(body, ex.content_type, self._keep))
        if not self._keep:
            t.close()
            return
        self._busy = False
        self._idle = time.monotonic()
        if self._buf:
            data, self._buf = self._buf, b""
            self._feed(data)

    def _fault_and_close(self, head: http11.Head, fault: RelayFault) -> None:
        ctype = "text/json" if is_json(head.headers.get("content-type")) else "text/xml"
        self._t.write(http11.answer(encode_fault(fault.code, fault.message), ctype, False))
        self._close()

    def _refuse(self, err: http11.HttpError) -> None:
        log.info("refused a request from %s: %s", self._t.get_extra_info("peername"), err)
        self._t.write(http11.error_answer(err))
        self._close()

    def _too_slow(self) -> None:
        """``client_timeout`` passed since the request's first byte."""
        self._s.partial.pop(self, None)
        head = self._head
        if head is not None:
            self._fault_and_close(head, RelayFault(
                Fault.PARSE_ERROR, f"request body not received within {self._s.timeout:g} s"))
        else:
            self._abort()  # a head that never completed was never read: no answer

    def _handoff(self, buf: bytes) -> None:
        """aiohttp takes this connection from here on (the web pages, anything not XML-RPC)."""
        s, t = self._s, self._t
        s.conns.discard(self)
        s.partial.pop(self, None)
        self._t = None
        proto = s.web()
        t.set_protocol(proto)
        proto.connection_made(t)
        proto.data_received(buf)

    def _close(self) -> None:
        if self._t is not None:
            self._t.close()

    def _abort(self) -> None:
        if self._t is not None:
            self._t.abort()


def _cookie(header: str | None) -> str | None:
    """The ``jobmon_session`` cookie's value from a ``Cookie`` header."""
    if not header:
        return None
    for part in header.split(";"):
        name, _, value = part.strip().partition("=")
        if name == COOKIE:
            return value.strip().strip('"') or None
    return None
