"""Slow request heads (slowloris) are cut after client_timeout; slow handlers are not."""

from __future__ import annotations

import socket
import ssl
import time
import xmlrpc.client
from typing import Any


def _tls(relay: Any) -> ssl.SSLSocket:
    raw = socket.create_connection(("127.0.0.1", relay.port), timeout=30)
    return relay.ssl_context().wrap_socket(raw, server_hostname="localhost")


def _closed_within(sock: ssl.SSLSocket, limit: float) -> float | None:
    """Seconds until the relay closed the connection (None if it did not within ``limit``)."""
    start = time.monotonic()
    sock.settimeout(limit)
    try:
        while True:
            data = sock.recv(4096)
            if not data:
                return time.monotonic() - start
    except (ConnectionResetError, ssl.SSLError, BrokenPipeError):
        return time.monotonic() - start
    except (socket.timeout, TimeoutError):
        return None


def test_half_a_header_line_is_cut_after_client_timeout(relay_factory: Any, pki: Any) -> None:
    relay = relay_factory(client_timeout=1.0, poll_wait=3.0)
    slow = _tls(relay)
    slow.sendall(b"POST /clarens HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Ty")  # ...and stalls
    try:
        assert _closed_within(slow, 20.0) is not None, "a stalled request head kept its connection"
    finally:
        slow.close()
    # a request that takes longer than client_timeout to *answer* is not cut: a daemon's long-poll
    alice = relay.client(pki.alice)
    session = alice.jobmon.register({"job": "90.0", "host": "wn"})["session"]
    start = time.monotonic()
    answer = alice.jobmon.poll(session, 2.0)
    assert time.monotonic() - start >= 1.0 and isinstance(answer, (dict, list))
    # an idle, well-formed client on a fresh connection still gets answers
    assert relay.client(pki.alice).echo.echo("still here") == ["still here"]


def test_a_body_arriving_after_its_head_does_not_arm_the_head_deadline(relay_factory: Any, pki: Any) -> None:
    relay = relay_factory(client_timeout=1.0, poll_wait=3.0)
    alice = relay.client(pki.alice)
    session = alice.jobmon.register({"job": "91.0", "host": "wn"})["session"]
    body = xmlrpc.client.dumps((session, 2.5), "jobmon.poll").encode()
    ctx = relay.ssl_context(pki.alice)
    raw = socket.create_connection(("127.0.0.1", relay.port), timeout=30)
    with ctx.wrap_socket(raw, server_hostname="localhost") as sock:
        sock.sendall(b"POST /clarens HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/xml\r\n"
                     b"Content-Length: %d\r\n\r\n" % len(body))
        time.sleep(0.3)  # no event to await: the pause makes the body a separate read on the relay
        sock.sendall(body)
        start = time.monotonic()
        reply = b""
        while b"</methodResponse>" not in reply:
            chunk = sock.recv(65536)
            assert chunk, "the relay cut a request whose head was complete"
            reply += chunk
        assert time.monotonic() - start >= 1.0          # held longer than client_timeout
        assert reply.startswith(b"HTTP/1.1 200") and b"<fault>" not in reply
