"""HTTP/1.1 request heads and answers for the relay's own connections, without sockets (h11 style).

The relay's hot path is XML-RPC over ``POST /clarens`` (daemons' long-polls
and results, users' calls). Those requests are framed here: find the end of
the head, parse it strictly, decide whether the relay's own connection
(relay/rpcconn.py) may serve it, and write the answer. Everything else (the
web pages, other methods or paths, chunked bodies, ``Expect``, ``Upgrade``)
is not taken on here: :func:`serves` says no and the connection is handed,
bytes and all, to aiohttp.

Parsing is strict where leniency would let two parsers disagree about where a
request ends (request smuggling): header names are tokens with no space
before the colon, no obsolete line folding, one ``Content-Length`` made of
digits (repeats must agree), and a ``Transfer-Encoding`` is never framed here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

MAX_HEAD = 16384           # bytes of request line plus headers
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
_TARGET = re.compile(rb"[\x21-\x7e]+\Z")
_VALUE_BAD = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 408: "Request Timeout",
            413: "Payload Too Large", 431: "Request Header Fields Too Large",
            505: "HTTP Version Not Supported"}


class HttpError(Exception):
    """A request this module refuses: answer ``status`` and close the connection."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class Head:
    """A parsed request head. ``headers`` has lower-case names; repeats are joined with ``, ``."""

    __slots__ = ("method", "target", "version", "headers", "length")

    def __init__(self, method: str, target: str, version: str, headers: dict[str, str],
                 length: int | None) -> None:
        self.method, self.target, self.version = method, target, version
        self.headers, self.length = headers, length

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]

    @property
    def keep_alive(self) -> bool:
        tokens = {t.strip().lower() for t in self.headers.get("connection", "").split(",")}
        if self.version == "HTTP/1.0":
            return "keep-alive" in tokens
        return "close" not in tokens


def head_end(buf: bytes) -> int:
    """Index just past the head's blank line, or -1 if the head is not complete yet."""
    i = buf.find(b"\r\n\r\n")
    return -1 if i < 0 else i + 4


def parse_head(raw: bytes) -> Head:
    """Parse a complete head (request line and headers, up to and including the blank line)."""
    if len(raw) > MAX_HEAD:
        raise HttpError(431, f"request head over {MAX_HEAD} bytes")
    lines = raw[:-4].split(b"\r\n") if raw.endswith(b"\r\n\r\n") else raw.split(b"\r\n")
    parts = lines[0].split(b" ")
    if len(parts) != 3 or not _TOKEN.match(parts[0]) or not _TARGET.match(parts[1]):
        raise HttpError(400, "malformed request line")
    version = parts[2].decode("ascii", "replace")
    if version not in ("HTTP/1.1", "HTTP/1.0"):
        raise HttpError(505 if version.startswith("HTTP/") else 400, f"unsupported version {version!r}")
    headers: dict[str, str] = {}
    length: int | None = None
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if not sep or not _TOKEN.match(name):
            raise HttpError(400, "malformed header line")
        value = value.strip(b" \t")
        if _VALUE_BAD.search(value):
            raise HttpError(400, "control character in a header value")
        key = name.decode("ascii").lower()
        text = value.decode("latin-1")
        if key == "content-length":
            if not value.isdigit() or len(value) > 12:
                raise HttpError(400, "malformed Content-Length")
            if length is not None and length != int(value):
                raise HttpError(400, "conflicting Content-Length headers")
            length = int(value)
            headers[key] = text
            continue
        if key in headers:
            text = headers[key] + ("; " if key == "cookie" else ", ") + text
        headers[key] = text
    return Head(parts[0].decode("ascii"), parts[1].decode("ascii"), version, headers, length)


def serves(head: Head, paths: Iterable[str]) -> bool:
    """May the relay's own connection serve this request (else aiohttp takes the connection)?"""
    h = head.headers
    return (head.method == "POST" and head.length is not None and head.path in paths
            and "transfer-encoding" not in h and "expect" not in h and "upgrade" not in h)


def answer(body: bytes, content_type: str, keep_alive: bool, status: int = 200) -> bytes:
    """A complete HTTP/1.1 answer with ``body``."""
    conn = "keep-alive" if keep_alive else "close"
    head = (f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: {conn}\r\nServer: jobmon-relay\r\n\r\n")
    return head.encode("ascii") + body


def error_answer(err: HttpError) -> bytes:
    """The plain-text answer to a request this module refused (the connection then closes)."""
    return answer(f"{err}\n".encode("utf-8", "replace"), "text/plain; charset=utf-8", False, err.status)
