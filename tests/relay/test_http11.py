"""The relay's own HTTP/1.1 framing (relay/http11.py) without sockets, and on a real connection:
pipelined requests, what is handed to aiohttp, refusals."""

from __future__ import annotations

import socket
import ssl
import xmlrpc.client
from typing import Any

import pytest

from relay import http11
from relay.http11 import HttpError, head_end, parse_head, serves

PATHS = ("/clarens", "/RPC2")


def head(text: str) -> http11.Head:
    raw = text.replace("\n", "\r\n").encode() + b"\r\n"
    return parse_head(raw[:head_end(raw)])


def test_a_plain_xmlrpc_post_is_served_here() -> None:
    h = head("POST /clarens HTTP/1.1\nHost: x\nContent-Type: text/xml\nContent-Length: 12\nCookie: a=1\nCookie: b=2\n")
    assert (h.method, h.path, h.length, h.keep_alive) == ("POST", "/clarens", 12, True)
    assert h.headers["cookie"] == "a=1; b=2" and serves(h, PATHS)
    assert not head("POST /clarens HTTP/1.0\nContent-Length: 0\n").keep_alive
    assert head("POST /clarens HTTP/1.0\nConnection: Keep-Alive\nContent-Length: 0\n").keep_alive
    assert not head("POST /clarens HTTP/1.1\nConnection: close\nContent-Length: 0\n").keep_alive


@pytest.mark.parametrize("text", [
    "GET / HTTP/1.1\nHost: x\n",                                               # the web pages
    "POST /clarens HTTP/1.1\nTransfer-Encoding: chunked\n",                     # chunked body
    "POST /clarens HTTP/1.1\nContent-Length: 3\nExpect: 100-continue\n",
    "POST /clarens HTTP/1.1\nContent-Length: 3\nUpgrade: h2c\n",
    "POST /other HTTP/1.1\nContent-Length: 3\n",
    "POST /clarens HTTP/1.1\n",                                                 # no length
])
def test_anything_else_goes_to_aiohttp(text: str) -> None:
    assert not serves(head(text), PATHS)


@pytest.mark.parametrize("text, status", [
    ("POST /clarens HTTP/1.1\nContent-Length: 3\nContent-Length: 4\n", 400),   # smuggling
    ("POST /clarens HTTP/1.1\nContent-Length: +3\n", 400),
    ("POST /clarens HTTP/1.1\nContent-Length : 3\n", 400),                      # space before colon
    ("POST /clarens HTTP/1.1\nX: a\n folded\n", 400),                           # obsolete folding
    ("POST /clarens HTTP/2.0\n", 505),
    ("POST  /clarens HTTP/1.1\n", 400),
    ("POST /clarens HTTP/1.1\nX: a\x01b\n", 400),
])
def test_ambiguous_heads_are_refused(text: str, status: int) -> None:
    with pytest.raises(HttpError) as info:
        head(text)
    assert info.value.status == status


def _raw(relay: Any, pki: Any) -> ssl.SSLSocket:
    sock = socket.create_connection(("127.0.0.1", relay.port), timeout=30)
    return relay.ssl_context(pki.alice).wrap_socket(sock, server_hostname="localhost")


def _read_answers(sock: ssl.SSLSocket, n: int) -> list[bytes]:
    data, out = b"", []
    while len(out) < n:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed after {len(out)} answers"
        data += chunk
        while True:
            end = data.find(b"\r\n\r\n")
            if end < 0:
                break
            length = int(data[:end].lower().split(b"content-length: ")[1].split(b"\r\n")[0])
            if len(data) < end + 4 + length:
                break
            out.append(data[end + 4:end + 4 + length])
            data = data[end + 4 + length:]
    return out


def test_pipelined_calls_are_answered_in_order(relay: Any, pki: Any) -> None:
    calls = [xmlrpc.client.dumps((i,), "echo.echo").encode() for i in range(3)]
    wire = b"".join(b"POST /clarens HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\nContent-Length: %d\r\n\r\n%s"
                    % (len(c), c) for c in calls)
    with _raw(relay, pki) as sock:
        sock.sendall(wire)
        answers = _read_answers(sock, 3)
    assert [xmlrpc.client.loads(a)[0][0] for a in answers] == [[0], [1], [2]]


def test_a_chunked_call_is_served_by_aiohttp_on_the_same_port(relay: Any, pki: Any) -> None:
    body = xmlrpc.client.dumps((), "jobmon.whoami").encode()
    with _raw(relay, pki) as sock:
        sock.sendall(b"POST /clarens HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\nTransfer-Encoding: chunked\r\n\r\n"
                     + b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body))
        sock.settimeout(30)
        data = b""
        while b"</methodResponse>" not in data:
            chunk = sock.recv(65536)
            assert chunk
            data += chunk
    assert pki.alice.dn.encode() in data  # the certificate identity reaches aiohttp's route too


def test_a_bad_head_gets_400_and_the_connection_closes(relay: Any, pki: Any) -> None:
    with _raw(relay, pki) as sock:
        sock.sendall(b"POST /clarens HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 5\r\n\r\nabc")
        data = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    assert data.startswith(b"HTTP/1.1 400 ")
