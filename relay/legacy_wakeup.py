"""The TCP wake-up server of the 2005 JobMon daemon ("JobMon TCP server"), in the relay's event loop.

A legacy daemon in ``TCPbroadcast`` mode connects out to this server, sends
the 8 bytes ``register`` and waits; the relay writes one wake-up message
(``jobname=<job> fifo_usercommand=<name>``) when a user's command waits for
that job. Nothing else is ever read or written. Everything about *which*
connection belongs to *which* registration is decided by the hub
(:class:`relay.legacy_hub.LegacyHub`, with :class:`relay.legacy_state.Pairings`);
this module only holds sockets, with limits:

* a peer address with no live legacy registration is closed at once, before
  anything is read or written (an unauthenticated peer learns nothing);
* at most ``max_connections`` connections, ``max_connections_per_host`` from
  one address;
* the peer must send exactly ``register`` within ``hello_timeout`` seconds;
  any other byte, more bytes, or silence closes the connection;
* a held connection is closed when its peer sends anything more, or at the
  latest ``max_age`` seconds after it opened (the daemon replaces its
  connection at every registration, every 1-2 x reconnect_time).

Every accepted socket gets ``SO_LINGER`` 0, so any close (including the
relay's exit, even by SIGKILL) is a reset, never an orderly end-of-file: the
2005 daemon, seeing end-of-file on its wake-up connection, spins writing a
log line per read into the job's directory until its next registration
(megabytes a second, up to reconnect_time); on a reset it exits instead (both
are bugs of the daemon, docs/PROTOCOL.md). For the same reason the relay
never closes a connection it paired just because it is idle.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
import time
from collections import Counter
from typing import Protocol

from relay.legacy_wire import HELLO

log = logging.getLogger("relay.legacy")


class Connection:
    """One held wake-up connection; ``job`` is the registration it is paired with (or None)."""

    def __init__(self, peer: str, writer: asyncio.StreamWriter, deadline: float) -> None:
        self.peer = peer
        self.writer = writer
        self.deadline = deadline
        self.job: str | None = None
        self.sent = 0

    def send(self, data: bytes) -> None:
        if not self.writer.is_closing():
            self.writer.write(data)
            self.sent += 1

    def close(self) -> None:
        if not self.writer.is_closing():
            self.writer.close()


class Hub(Protocol):
    def accepts(self, peer: str) -> bool: ...
    def claim(self, peer: str, conn: Connection) -> bool: ...
    def lost(self, conn: Connection) -> None: ...


def peer_address(writer: asyncio.StreamWriter) -> str | None:
    name = writer.get_extra_info("peername")
    if not isinstance(name, tuple) or not name:
        return None
    return normalize(str(name[0]))


def abortive_close(writer: asyncio.StreamWriter) -> None:
    """Make the socket's close a reset (SO_LINGER on, 0 s), also when the relay process dies."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def normalize(address: str) -> str:
    """An IPv4-mapped IPv6 address (``::ffff:10.0.0.1``) as plain IPv4."""
    return address[7:] if address.lower().startswith("::ffff:") and "." in address else address


class WakeupServer:
    def __init__(self, hub: Hub, host: str, port: int, *, max_connections: int, max_per_host: int,
                 hello_timeout: float, max_age: float) -> None:
        self.hub = hub
        self.host, self.port = host, port
        self.max_connections = max_connections
        self.max_per_host = max_per_host
        self.hello_timeout = hello_timeout
        self.max_age = max_age
        self.connections: set[Connection] = set()
        self.per_host: Counter[str] = Counter()
        self.refused = 0
        self._server: asyncio.AbstractServer | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> int:
        """Listen; returns the port (the real one when ``port`` was 0)."""
        self._server = await asyncio.start_server(self._serve, self.host, self.port, limit=1024)
        sockets = self._server.sockets or ()
        self.port = int(sockets[0].getsockname()[1]) if sockets else self.port
        log.info("JobMon TCP server starts at %s:%s (legacy daemons' wake-ups)", self.host, self.port)
        return self.port

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for conn in list(self.connections):
            conn.close()       # a reset; each connection's task then ends by itself
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=5.0)
        for task in list(self._tasks):
            task.cancel()
        if self._server is not None:
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        peer = peer_address(writer)
        try:
            abortive_close(writer)
            if peer is None or not self._admit(peer):
                self.refused += 1
                writer.close()
                return
            conn = Connection(peer, writer, time.monotonic() + self.max_age)
            self.connections.add(conn)
            self.per_host[peer] += 1
            try:
                await self._hold(reader, conn)
            finally:
                self.connections.discard(conn)
                self.per_host[peer] -= 1
                if self.per_host[peer] <= 0:
                    del self.per_host[peer]
                self.hub.lost(conn)
                conn.close()
        except Exception:  # noqa: BLE001 - one bad connection must never reach the event loop
            log.exception("wake-up connection from %s failed", peer)
            writer.close()
        finally:
            if task is not None:
                self._tasks.discard(task)

    def _admit(self, peer: str) -> bool:
        if len(self.connections) >= self.max_connections:
            log.warning("wake-up connection from %s refused: %d connections held (legacy.max_connections)",
                        peer, len(self.connections))
            return False
        if self.per_host[peer] >= self.max_per_host:
            log.warning("wake-up connection from %s refused: %d connections from there "
                        "(legacy.max_connections_per_host)", peer, self.per_host[peer])
            return False
        if not self.hub.accepts(peer):
            log.info("wake-up connection from %s closed: no legacy daemon registered from there", peer)
            return False
        return True

    async def _hold(self, reader: asyncio.StreamReader, conn: Connection) -> None:
        try:
            hello = await asyncio.wait_for(read_hello(reader), timeout=self.hello_timeout)
        except (asyncio.TimeoutError, ConnectionError, OSError):
            log.info("wake-up connection from %s closed: no 'register' within %g s", conn.peer, self.hello_timeout)
            return
        if hello != HELLO:
            log.info("wake-up connection from %s closed: it sent %r, not 'register'", conn.peer, hello[:16])
            return
        if not self.hub.claim(conn.peer, conn):
            return
        while True:
            left = conn.deadline - time.monotonic()
            if left <= 0:
                log.info("wake-up connection from %s closed after %g s (legacy daemons reconnect sooner)",
                         conn.peer, self.max_age)
                return
            try:
                data = await asyncio.wait_for(reader.read(1), timeout=left)
            except asyncio.TimeoutError:
                continue
            except (ConnectionError, OSError):
                return
            if not data:
                return
            log.info("wake-up connection from %s closed: it sent more after 'register'", conn.peer)
            return


async def read_hello(reader: asyncio.StreamReader) -> bytes:
    """Read ``register`` (and at most one byte more, which makes it wrong)."""
    buf = b""
    while len(buf) <= len(HELLO):
        chunk = await reader.read(len(HELLO) + 1 - len(buf))
        if not chunk:
            break
        buf += chunk
        if not HELLO.startswith(buf):
            break
        if buf == HELLO:
            break
    return buf
