"""TLS on the socket itself: the relay's listener and transport, without memory BIOs.

asyncio's TLS (``SSLProtocol``) gives every connection two OpenSSL memory
BIOs, a read buffer and a dozen Python objects. Measured on an idle TLS
connection with a client certificate (docs/PERFORMANCE.md, "Relay at scale"):
~40 KiB per connection that way against ~26 KiB when OpenSSL reads and writes
the socket itself, which is what this module does: ``SSLSocket`` in
non-blocking mode, driven by the event loop's reader and writer callbacks,
one shared read buffer per listener. A relay holds one TLS connection per
connected daemon, so this is most of its memory.

The same handshake as before: the server context comes from relay/tls.py
(client certificates verified by OpenSSL, RFC 3820 proxies allowed, no
session resumption). A failed handshake sends its alert by itself (OpenSSL
writes it to the socket) and is logged and noted like before
(``tls.note_refused``). :class:`TLSTransport` is an ``asyncio.Transport``, so
a connection can be handed to aiohttp (the web pages) as it is.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import ssl
from asyncio import constants, transports
from collections.abc import Callable
from typing import Any

from relay import tls

log = logging.getLogger("relay.tlsio")

READ_SIZE = 65536
HIGH_WATER = 256 * 1024
LOW_WATER = 64 * 1024
ACCEPT_BATCH = 64
CLOSE_FLUSH = 10.0   # seconds a closing connection may take to send what is left
_HANDSHAKE, _OPEN, _CLOSING, _CLOSED = 0, 1, 2, 3
#: Linux only; None elsewhere
_QUICKACK = getattr(socket, "TCP_QUICKACK", None)


class TLSListener:
    """Accepts TCP connections on ``sock`` and runs the TLS handshake; each connection that
    completes it gets a protocol from ``factory`` and a :class:`TLSTransport`."""

    def __init__(self, loop: asyncio.AbstractEventLoop, sock: socket.socket, ctx: ssl.SSLContext | None,
                 factory: Callable[[], asyncio.Protocol], handshake_timeout: float = 30.0,
                 transport: type[TLSTransport] | None = None) -> None:
        self.loop, self.sock, self.ctx, self.factory = loop, sock, ctx, factory
        self.transport = transport or TLSTransport  # relay/plainio.py: the same without TLS (ctx None)
        self.handshake_timeout = handshake_timeout
        self.view = memoryview(bytearray(READ_SIZE))  # one read buffer for every connection
        self.transports: set[TLSTransport] = set()
        self.closed = False
        sock.setblocking(False)

    def start(self) -> None:
        self.loop.add_reader(self.sock.fileno(), self._accept)

    def close(self) -> None:
        """Stop accepting (connections already open stay)."""
        if not self.closed:
            self.closed = True
            self.loop.remove_reader(self.sock.fileno())
            self.sock.close()

    def abort_handshakes(self) -> None:
        for t in [t for t in self.transports if t._state == _HANDSHAKE]:
            t.abort()

    def _resume(self) -> None:
        if not self.closed:
            self.loop.add_reader(self.sock.fileno(), self._accept)

    def _accept(self) -> None:
        for _ in range(ACCEPT_BATCH):
            try:
                raw, addr = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    log.error("cannot accept connections (%s); trying again in 1 s", exc.strerror)
                    self.loop.remove_reader(self.sock.fileno())
                    self.loop.call_later(1.0, self._resume)
                    return
                continue  # ECONNABORTED and the like: that client is gone
            try:
                raw.setblocking(False)
                if raw.family != socket.AF_UNIX:
                    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                conn = raw if self.ctx is None else self.ctx.wrap_socket(raw, server_side=True,
                                                                         do_handshake_on_connect=False)
            except (OSError, ValueError) as exc:
                log.debug("dropping a connection from %s: %s", addr, exc)
                raw.close()
                continue
            t = self.transport(self, conn, addr)
            self.transports.add(t)
            t._handshake()


class TLSTransport(transports._FlowControlMixin):
    """One TLS connection (``__slots__``; OpenSSL does the socket I/O). asyncio's flow-control
    mixin gives the write-buffer limits and makes ``loop.sendfile`` fall back to writes."""

    __slots__ = ("_l", "_sock", "_fd", "_peer", "_protocol", "_state", "_cur", "_out", "_size",
                 "_reading", "_r", "_w", "_rw", "_timer")
    _sendfile_compatible = constants._SendfileMode.FALLBACK

    def __init__(self, listener: TLSListener, sock: Any, peer: Any) -> None:
        self._extra = None  # asyncio's slot; get_extra_info below answers instead
        self._loop = listener.loop
        self._protocol_paused = False
        self._high_water, self._low_water = HIGH_WATER, LOW_WATER
        self._l = listener
        self._sock = sock
        self._fd = sock.fileno()
        self._peer = peer
        self._protocol: Any = None
        self._state = _HANDSHAKE
        self._cur: bytes | None = None         # being written (OpenSSL wants the same bytes again)
        self._out: list[bytes] | None = None   # queued behind it
        self._size = 0
        self._reading = True
        self._r = self._w = self._rw = False
        self._timer: asyncio.TimerHandle | None = None

    # -- event loop registration --------------------------------------
    def _want(self, read: bool, write: bool) -> None:
        loop = self._l.loop
        if read != self._r:
            if read:
                loop.add_reader(self._fd, self._on_read)
            else:
                loop.remove_reader(self._fd)
            self._r = read
        if write != self._w:
            if write:
                loop.add_writer(self._fd, self._on_write)
            else:
                loop.remove_writer(self._fd)
            self._w = write

    # -- handshake -----------------------------------------------------
    def _handshake(self) -> None:
        try:
            self._sock.do_handshake()
        except ssl.SSLWantReadError:
            self._want(True, False)
            self._arm()
            return
        except ssl.SSLWantWriteError:
            self._want(False, True)
            self._arm()
            return
        except OSError as exc:  # ssl.SSLError too: refused certificate, garbage, EOF
            tls.note_refused(self._l.ctx, self._peer, exc)
            self._close_now()
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._ack_now()
        self._opened()

    def _ack_now(self) -> None:
        """Acknowledge the client's last handshake flight at once. In TLS 1.3 without session
        tickets the server sends nothing after the client's Finished, so the kernel delays its
        ACK (40 ms); a client without TCP_NODELAY (Python 2's httplib, as the 2005 daemon
        uses, and Python 3's http.client) holds its first request back until that ACK comes."""
        if _QUICKACK is not None and self._sock.family != socket.AF_UNIX:
            try:
                self._sock.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)
            except OSError:
                pass

    def _opened(self) -> None:
        """The connection is ready for bytes: make its protocol."""
        self._state = _OPEN
        self._want(True, False)
        try:
            self._protocol = self._l.factory()
            self._protocol.connection_made(self)
        except Exception:  # noqa: BLE001 - a protocol bug costs this connection only
            log.exception("connection set-up failed for %s", self._peer)
            self._close_now()

    def _arm(self) -> None:
        if self._timer is None:
            self._timer = self._l.loop.call_later(self._l.handshake_timeout, self._expired)

    def _expired(self) -> None:
        self._timer = None
        if self._state == _HANDSHAKE:
            log.info("TLS handshake from %s not completed within %g s", self._peer, self._l.handshake_timeout)
        self._close_now()

    # -- reading -------------------------------------------------------
    def _on_read(self) -> None:
        if self._state == _HANDSHAKE:
            self._handshake()
            return
        sock, view = self._sock, self._l.view
        while self._state == _OPEN and self._reading:
            try:
                n = sock.recv_into(view, READ_SIZE)
            except (ssl.SSLWantReadError, BlockingIOError, InterruptedError):
                return
            except ssl.SSLWantWriteError:   # OpenSSL must write first (a key update)
                self._rw = True
                self._want(self._r, True)
                return
            except OSError as exc:
                self._fatal(exc)
                return
            if not n:
                self._eof()
                return
            try:
                self._protocol.data_received(bytes(view[:n]))
            except Exception:  # noqa: BLE001 - a protocol bug costs this connection only
                log.exception("protocol failed on data from %s", self._peer)
                self._close_now()
                return
            if not self._pending():  # the rest (if any) is still in the kernel: the loop calls again
                return

    def _eof(self) -> None:
        self._reading = False
        self._want(False, self._w)
        try:
            self._protocol.eof_received()
        except Exception:  # noqa: BLE001
            log.exception("protocol failed at EOF from %s", self._peer)
        self.close()

    # -- writing -------------------------------------------------------
    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._state != _OPEN or not data:
            return
        data = bytes(data)
        if self._cur is None:
            self._cur = data
            self._size = len(data)
            self._flush()
            return
        if self._out is None:
            self._out = []
        self._out.append(data)
        self._size += len(data)
        self._maybe_pause_protocol()  # type: ignore[attr-defined]

    def _flush(self) -> None:
        sock = self._sock
        while True:
            if self._cur is None:
                if not self._out:
                    break
                self._cur = b"".join(self._out)
                self._out = None
            try:
                n = sock.send(self._cur)
            except (ssl.SSLWantWriteError, ssl.SSLWantReadError, BlockingIOError, InterruptedError):
                self._want(self._r, True)
                return
            except OSError as exc:
                self._fatal(exc)
                return
            if n < len(self._cur):  # a plain socket (plainio.py) may take part of it: the rest when writable
                self._cur = self._cur[n:]
                self._want(self._r, True)
                return
            self._cur = None
        self._size = 0
        if self._w and not self._rw:
            self._want(self._r, False)
        self._maybe_resume_protocol()  # type: ignore[attr-defined]
        if self._state == _CLOSING:
            self._finish()

    def _on_write(self) -> None:
        if self._state == _HANDSHAKE:
            self._handshake()
            return
        if self._rw:
            self._rw = False
            if self._cur is None and not self._out:
                self._want(self._r, False)
            self._on_read()
        if self._cur is not None or self._out:
            self._flush()

    def writelines(self, list_of_data: Any) -> None:
        self.write(b"".join(list_of_data))

    def can_write_eof(self) -> bool:
        return False

    def write_eof(self) -> None:
        raise NotImplementedError("TLS connections cannot half-close")

    def get_write_buffer_size(self) -> int:
        return self._size

    # -- flow control and state -----------------------------------------
    def pause_reading(self) -> None:
        if self._state == _OPEN and self._reading:
            self._reading = False
            self._want(False, self._w)

    def resume_reading(self) -> None:
        if self._state == _OPEN and not self._reading:
            self._reading = True
            self._want(True, self._w)
            if self._pending():
                self._l.loop.call_soon(self._on_read)

    def is_reading(self) -> bool:
        return self._state == _OPEN and self._reading

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._protocol = protocol

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._protocol  # type: ignore[no-any-return]

    def is_closing(self) -> bool:
        return self._state >= _CLOSING

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "peername":
            return self._peer
        if name in ("ssl_object", "socket"):
            return self._sock if self._state != _CLOSED else default
        if name == "sslcontext":
            return self._l.ctx
        try:
            if name == "sockname":
                return self._sock.getsockname()
            if name == "peercert":
                return self._sock.getpeercert()
            if name == "cipher":
                return self._sock.cipher()
        except (OSError, ValueError):
            return default
        return default

    # -- closing -------------------------------------------------------
    def close(self) -> None:
        if self._state >= _CLOSING:
            return
        if self._state == _HANDSHAKE:
            self._close_now()
            return
        self._state = _CLOSING
        self._reading = False
        self._want(False, self._w)
        if self._cur is None and not self._out:
            self._finish()
        else:
            self._timer = self._l.loop.call_later(CLOSE_FLUSH, self._close_now)

    def abort(self) -> None:
        self._close_now()

    def _pending(self) -> int:
        """Bytes OpenSSL has decrypted and not handed out yet."""
        return int(self._sock.pending())  # type: ignore[attr-defined]

    def _finish(self) -> None:
        try:
            self._sock.unwrap()  # sends close_notify; the peer's need not be awaited
        except (OSError, ValueError):
            pass
        self._close_now()

    def _fatal(self, exc: BaseException) -> None:
        log.debug("connection from %s failed: %s", self._peer, exc)
        self._close_now(exc)

    def _close_now(self, exc: BaseException | None = None) -> None:
        if self._state == _CLOSED:
            return
        opened = self._state != _HANDSHAKE and self._protocol is not None
        self._state = _CLOSED
        try:
            self._want(False, False)
        except (OSError, ValueError, RuntimeError):  # the loop is closing
            pass
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._l.transports.discard(self)
        self._cur = self._out = None
        try:
            self._sock.close()
        except OSError:
            pass
        if opened:
            self._l.loop.call_soon(self._lost, exc)

    def _lost(self, exc: BaseException | None) -> None:
        try:
            self._protocol.connection_lost(exc)
        except Exception:  # noqa: BLE001
            log.exception("protocol failed in connection_lost")
        finally:
            self._protocol = None

