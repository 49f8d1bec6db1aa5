"""Cut clients that send their request headers too slowly (slowloris).

aiohttp bounds an idle connection (``keepalive_timeout``) and the relay bounds
the body (``client_timeout`` in :mod:`relay.app`), but a client that trickles
a request line and headers a few bytes at a time keeps its connection open for
as long as it likes. :class:`HeaderDeadlineRunner` gives every request's head a
deadline: from the first byte of a request until its headers are complete, at
most ``header_timeout`` seconds may pass, else the connection is closed. A
request being handled (a daemon's long-poll) is never affected.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler


class _HeaderDeadlineHandler(RequestHandler):
    """``RequestHandler`` that closes the connection if a request head is not complete in time."""

    header_timeout = 30.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_timer: asyncio.TimerHandle | None = None

    def data_received(self, data: bytes) -> None:
        before = self._request_count
        super().data_received(data)
        if self._request_count != before:   # a complete head arrived: no deadline while it is handled
            self._disarm()
        elif self._head_timer is None and data and not self._force_close and self._idle():
            self._head_timer = self._loop.call_later(self.header_timeout, self._expired, self._request_count)

    def _idle(self) -> bool:
        """No request queued or being handled: bytes now are (part of) a new request head,
        not a body the handler is reading."""
        return self._current_request is None and not self._messages

    def _expired(self, count: int) -> None:
        self._head_timer = None
        if self._request_count == count and self._idle():
            self.force_close()
            if self.transport is not None:
                self.transport.close()

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def connection_lost(self, exc: BaseException | None) -> None:
        self._disarm()
        super().connection_lost(exc)


class _HeaderDeadlineServer(web.Server):
    """``web.Server`` whose protocol factory builds :class:`_HeaderDeadlineHandler` objects."""

    header_timeout = 30.0

    def __call__(self) -> RequestHandler:
        handler = _HeaderDeadlineHandler(self, loop=self._loop, **self._kwargs)
        handler.header_timeout = self.header_timeout
        return handler


class HeaderDeadlineRunner(web.AppRunner):
    """``AppRunner`` whose connections use :class:`_HeaderDeadlineHandler`."""

    def __init__(self, app: web.Application, *, header_timeout: float, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self._header_timeout = header_timeout

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        server.__class__ = _HeaderDeadlineServer  # same object and state, our protocol factory
        server.header_timeout = self._header_timeout  # type: ignore[attr-defined]
        return server
