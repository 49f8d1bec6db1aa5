"""The little of HTTP/1.1 a kept-alive XML-RPC connection to the relay needs.

``http.client`` costs a command ~25 ms to import (it brings the ``email``
package); this is what ``xmlrpc.client.Transport`` does with it, for one
connection: POST a body, read the status, the header fields and a body sized
by Content-Length, chunked or ended by the relay closing; keep the connection
for the next request unless the relay closes it; send a request that finds a
kept-alive connection closed once more on a new one (as ``Transport`` does).

TLS: :class:`Connection` verifies with the context it is given and, when that
refuses the relay's certificate and a ``fallback`` context is given, makes the
connection once more with the fallback (jobmon.client: the system CA store is
loaded only then). Errors are ``OSError``s (``ssl.SSLError``,
:class:`RemoteDisconnected`, :class:`BadResponse`, timeouts) or
:class:`HTTPStatusError`; jobmon.client turns them into ``JobmonError``s.
"""

from __future__ import annotations

import socket
import ssl
import sys
from collections.abc import Callable, Mapping

from jobmon.errors import UsageError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

MAX_LINE = 65536
MAX_HEADERS = 100
_RETRY_ERRNOS = (104, 103, 32)  # ECONNRESET, ECONNABORTED, EPIPE: a kept-alive connection went away


def _debug(msg: str, *args: Any) -> None:
    logging = sys.modules.get("logging")  # configured by `jobmon -v`; never imported for this
    if logging is not None:
        logging.getLogger("jobmon.client").debug(msg, *args)


class RemoteDisconnected(ConnectionResetError):
    """The relay closed the connection without answering (``http.client``'s name and text)."""


class HTTPStatusError(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"HTTP {status} {reason}")
        self.status = status
        self.reason = reason


class BadResponse(OSError):
    """The relay's answer is not HTTP/1.x as this client reads it."""


def split_url(url: str) -> tuple[str, int, str, str | None]:
    """``https://[user:pw@]host[:port]/path`` → (host, port, path, basic-auth or None)."""
    rest = url[len("https://"):]
    hostport, slash, path = rest.partition("/")
    auth = None
    if "@" in hostport:
        userinfo, _, hostport = hostport.rpartition("@")
        import base64
        from urllib.parse import unquote_to_bytes

        auth = "Basic " + base64.b64encode(unquote_to_bytes(userinfo)).decode("ascii")
    port = 443
    host = hostport
    if hostport.startswith("["):
        host, _, tail = hostport[1:].partition("]")
        if tail.startswith(":") and tail[1:]:
            port = int(tail[1:]) if tail[1:].isdigit() else -1
    elif ":" in hostport:
        host, _, p = hostport.rpartition(":")
        port = int(p) if p.isdigit() else (443 if not p else -1)
    if not host or port < 0:
        raise UsageError(f"relay URL {url!r} has no host or a bad port")
    return host, port, slash + path if slash else "/RPC2", auth


class Connection:
    """One kept-alive HTTPS connection; made on first use and again after the relay closed it."""

    def __init__(self, host: str, port: int, context: ssl.SSLContext,
                 fallback: Callable[[], ssl.SSLContext] | None = None) -> None:
        self.host = host
        self.port = port
        self.context = context
        self._fallback = fallback
        self._sock: ssl.SSLSocket | None = None
        self._file: Any = None

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
        if self._sock is not None:
            self._sock.close()
        self._sock = self._file = None

    def _open(self, timeout: float) -> ssl.SSLSocket:
        try:
            return self._handshake(self.context, timeout)
        except ssl.SSLCertVerificationError:
            if self._fallback is None:
                raise
            self.context, self._fallback = self._fallback(), None
            _debug("relay certificate not issued by the configured CAs; trying with the system CAs too")
            return self._handshake(self.context, timeout)

    def _handshake(self, context: ssl.SSLContext, timeout: float) -> ssl.SSLSocket:
        name = _ascii_name(self.host)  # bytes: neither getaddrinfo nor ssl loads the idna codec
        sock = socket.create_connection((name, self.port), timeout)  # type: ignore[arg-type]
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return context.wrap_socket(sock, server_hostname=name)
        except BaseException:
            sock.close()
            raise

    def request(self, path: str, body: bytes, headers: Mapping[str, str], timeout: float) -> bytes:
        """POST ``body``; the answer's body when the status is 200, else ``HTTPStatusError``.

        Like ``xmlrpc.client.Transport``, a request that finds the kept-alive
        connection closed by the relay is sent once more on a new one.
        """
        for attempt in (0, 1):
            try:
                return self._request_once(path, body, headers, timeout)
            except RemoteDisconnected:
                self.close()
                if attempt:
                    raise
            except OSError as exc:
                self.close()
                if attempt or exc.errno not in _RETRY_ERRNOS or isinstance(exc, ssl.SSLError):
                    raise
            except BaseException:
                self.close()
                raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _request_once(self, path: str, body: bytes, headers: Mapping[str, str], timeout: float) -> bytes:
        if self._sock is None:
            self._sock = self._open(timeout)
            self._file = self._sock.makefile("rb")
        self._sock.settimeout(timeout)
        host = f"[{self.host}]" if ":" in self.host else self.host
        head = [f"POST {path} HTTP/1.1", f"Host: {host}" + ("" if self.port == 443 else f":{self.port}")]
        head += [f"{k}: {v}" for k, v in headers.items()]
        head.append(f"Content-Length: {len(body)}")
        self._sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)
        status, reason, fields, close = self._read_head()
        data = self._read_body(fields, close)
        if close:
            self.close()
        if status != 200:
            raise HTTPStatusError(status, reason)
        return data

    def _readline(self) -> bytes:
        line = self._file.readline(MAX_LINE + 1)
        if len(line) > MAX_LINE:
            raise BadResponse("got more than %d bytes in one line of the answer" % MAX_LINE)
        return bytes(line)

    def _read_head(self) -> tuple[int, str, dict[str, str], bool]:
        while True:
            line = self._readline()
            if not line:
                raise RemoteDisconnected("Remote end closed connection without response")
            parts = line.decode("latin-1").rstrip("\r\n").split(None, 2)
            if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
                raise BadResponse(f"not an HTTP answer: {line[:80]!r}")
            status, reason = int(parts[1]), parts[2] if len(parts) > 2 else ""
            fields: dict[str, str] = {}
            for _ in range(MAX_HEADERS + 1):
                raw = self._readline()
                if raw in (b"\r\n", b"\n", b""):
                    break
                name, sep, value = raw.decode("latin-1").partition(":")
                if not sep:
                    raise BadResponse(f"bad header line {raw[:80]!r}")
                fields[name.strip().lower()] = value.strip()
            else:
                raise BadResponse("more than %d headers in the answer" % MAX_HEADERS)
            if status == 100:
                continue
            conn = fields.get("connection", "").lower()
            close = "close" in conn or (parts[0] == "HTTP/1.0" and "keep-alive" not in conn)
            return status, reason, fields, close

    def _read_body(self, fields: dict[str, str], close: bool) -> bytes:
        if "chunked" in fields.get("transfer-encoding", "").lower():
            chunks = []
            while True:
                size_line = self._readline().split(b";")[0].strip()
                try:
                    size = int(size_line, 16)
                except ValueError:
                    raise BadResponse(f"bad chunk size {size_line[:20]!r}") from None
                if size == 0:
                    while self._readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self._read_exact(size))
                self._readline()
            data = b"".join(chunks)
        elif "content-length" in fields:
            try:
                length = int(fields["content-length"])
            except ValueError:
                raise BadResponse(f"bad Content-Length {fields['content-length'][:20]!r}") from None
            data = self._read_exact(length)
        else:
            data = self._file.read()
            self.close()
        if fields.get("content-encoding", "identity").lower() == "gzip":
            import gzip

            data = gzip.decompress(data)
        return data

    def _read_exact(self, n: int) -> bytes:
        data = self._file.read(n)
        if len(data) < n:
            raise BadResponse(f"answer cut short: {len(data)} of {n} bytes")
        return bytes(data)


def _ascii_name(host: str) -> str | bytes:
    """``host`` for ``getaddrinfo`` and ``wrap_socket``. An ASCII name whose labels are 1-63
    long is what the ``idna`` codec would make of it, unchanged; given as bytes, neither
    ``socket`` nor ``ssl`` loads that codec (and ``unicodedata``) to find that out. Anything
    else is passed as text and goes through the codec as before."""
    if host.isascii():
        labels = host.split(".")
        if all(0 < len(label) < 64 for label in labels[:-1]) and len(labels[-1]) < 64:
            return host.encode("ascii")
    return host
