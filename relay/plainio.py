"""The relay's transport on a plain socket: the TLS front's Unix socket (relay/front.py).

Behind a front the relay holds one plain connection per held long-poll. asyncio's own
socket transport keeps a dict and more per connection; :class:`PlainTransport` is the
``__slots__`` transport of relay/tlsio.py without TLS: partial writes, no handshake.
"""

from __future__ import annotations

from typing import Any

from relay.tlsio import _CLOSED, _CLOSING, TLSTransport


class PlainTransport(TLSTransport):
    """The same transport on a plain socket: the TLS front's Unix socket (relay/front.py), where
    the relay holds one connection per held poll. asyncio's own socket transport keeps a dict
    and more per connection; this one is ``__slots__`` like the TLS one."""

    __slots__ = ()

    def _handshake(self) -> None:
        self._opened()  # no TLS: ready at once

    def _pending(self) -> int:
        return 0

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
            except (BlockingIOError, InterruptedError):
                self._want(self._r, True)
                return
            except OSError as exc:
                self._fatal(exc)
                return
            if n < len(self._cur):  # a plain socket takes part of it: the rest when writable
                self._cur = self._cur[n:]
                self._want(self._r, True)
                return
            self._cur = None
        self._size = 0
        if self._w:
            self._want(self._r, False)
        self._maybe_resume_protocol()  # type: ignore[attr-defined]
        if self._state == _CLOSING:
            self._finish()

    def _finish(self) -> None:
        self._close_now()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name in ("ssl_object", "sslcontext", "peercert", "cipher"):
            return default
        if name == "socket":
            return self._sock if self._state != _CLOSED else default
        return super().get_extra_info(name, default)
