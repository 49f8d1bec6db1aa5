"""The relay's transport on a plain socket: the TLS front's Unix socket (relay/front.py).

Behind a front the relay holds one plain connection per held long-poll. asyncio's own
socket transport keeps a dict and more per connection; :class:`PlainTransport` is the
``__slots__`` transport of relay/tlsio.py without TLS: partial writes, no handshake.
"""

from __future__ import annotations

from typing import Any

from relay.tlsio import _CLOSED, TLSTransport


class PlainTransport(TLSTransport):
    """The same transport on a plain socket: the TLS front's Unix socket (relay/front.py), where
    the relay holds one connection per held poll. asyncio's own socket transport keeps a dict
    and more per connection; this one is ``__slots__`` like the TLS one."""

    __slots__ = ()

    def _handshake(self) -> None:
        self._opened()  # no TLS: ready at once

    def _pending(self) -> int:
        return 0

    def _finish(self) -> None:
        self._close_now()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name in ("ssl_object", "sslcontext", "peercert", "cipher"):
            return default
        if name == "socket":
            return self._sock if self._state != _CLOSED else default
        return super().get_extra_info(name, default)
