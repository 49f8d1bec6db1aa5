"""The client library: XML-RPC over HTTPS to the relay, with a client certificate.

Every call goes through :meth:`Client.call`, which turns relay faults into the
``JobmonError`` family (``jobmon.faults.error_for_fault``) and connection
problems into ``RelayError`` naming the URL. See docs/PROTOCOL.md for methods.

A client holds one HTTP/1.1 connection and keeps it alive: a command pays for
one TLS handshake however many calls it makes (a fan-out, ``tail -f``). The
wire format is ``xmlrpc.client``'s (``jobmon.wire``); the HTTP side is the
little of ``http.client`` a kept-alive XML-RPC connection needs, because
importing ``http.client`` alone costs a command ~25 ms (docs/PERFORMANCE.md).

Trust: :func:`make_ssl_context` trusts the given CAs and the system's CA
store, as ``ssl.create_default_context()`` does. Loading the system store
parses every system CA (~30 ms), so :meth:`Client.from_settings` first
connects with the given CAs alone and, only if the relay's certificate does
not verify against them, connects again with the full store. What is
accepted and every error are the same as with the full store from the start.
"""

from __future__ import annotations

import socket
import ssl
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

from jobmon import __version__, wire
from jobmon.errors import AuthError, RelayError, UsageError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

DEFAULT_TIMEOUT = 120.0
MAX_LINE = 65536
MAX_HEADERS = 100
_RETRY_ERRNOS = (104, 103, 32)  # ECONNRESET, ECONNABORTED, EPIPE: a kept-alive connection went away


def _debug(msg: str, *args: Any) -> None:
    logging = sys.modules.get("logging")  # configured by `jobmon -v`; never imported for this
    if logging is not None:
        logging.getLogger(__name__).debug(msg, *args)


def make_ssl_context(
    cert: Path | None, key: Path | None, ca_file: Path | None, ca_dir: Path | None,
    *, system_cas: bool = True,
) -> ssl.SSLContext:
    """A verifying client context presenting ``cert`` (a proxy file holds its key too).

    It trusts ``ca_file`` / ``ca_dir`` and, with ``system_cas`` (or when neither
    is given), the system's CA store as well.
    """
    try:
        if system_cas or (ca_file is None and ca_dir is None):
            ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
            if ca_file is not None or ca_dir is not None:
                ctx.load_verify_locations(cafile=str(ca_file) if ca_file else None,
                                          capath=str(ca_dir) if ca_dir else None)
        else:
            ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(ca_file) if ca_file else None,
                                             capath=str(ca_dir) if ca_dir else None)
    except (ssl.SSLError, OSError) as exc:
        raise AuthError(f"cannot load the trusted CAs {ca_file or ca_dir}: {_why(exc)}") from exc
    if cert is not None:
        for path in (cert, key):
            if path is not None:
                try:
                    with open(path, "rb"):
                        pass
                except OSError as exc:
                    raise AuthError(f"cannot read {path}: {_why(exc)}") from exc
        try:
            ctx.load_cert_chain(str(cert), str(key) if key else None)
        except (ssl.SSLError, OSError) as exc:
            what = f"{cert} with key {key}" if key and key != cert else str(cert)
            raise AuthError(f"cannot load the certificate {what}: {_why(exc)} "
                            "(a PEM certificate and its unencrypted key are needed)") from exc
    return ctx


def _why(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLError):
        return str(exc.reason).replace("_", " ").lower() if exc.reason else "not a usable PEM file"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc)


# ------------------------------------------------------------------ HTTP/1.1
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


# ------------------------------------------------------------------ the client
class Client:
    """One relay, one identity, one kept-alive connection. Thread-unsafe; make one per thread."""

    def __init__(self, url: str, context: ssl.SSLContext, timeout: float = DEFAULT_TIMEOUT, *,
                 fallback_context: Callable[[], ssl.SSLContext] | None = None) -> None:
        if not url.startswith("https://"):
            raise UsageError(f"relay URL {url!r} must start with https://")
        self.url = url
        self.context = context
        self.timeout = timeout
        host, port, self._path, auth = split_url(url)
        self._headers = {"Content-Type": "text/xml", "User-Agent": f"jobmon/{__version__}"}
        if auth:
            self._headers["Authorization"] = auth
        self._conn = Connection(host, port, context, fallback_context)

    def __repr__(self) -> str:
        return f"Client({self.url!r}, timeout={self.timeout:g})"

    @classmethod
    def from_settings(cls, settings: Any, *, timeout: float = DEFAULT_TIMEOUT,
                      url: str | None = None) -> Client:
        """The client a command uses: credentials and CAs found once, system CAs only if needed."""
        creds = settings.credentials()
        ctx = make_ssl_context(creds.cert, creds.key, creds.ca_file, creds.ca_dir, system_cas=False)

        def full_trust() -> ssl.SSLContext:
            return make_ssl_context(creds.cert, creds.key, creds.ca_file, creds.ca_dir)

        return cls(url or settings.relay_url(), ctx, timeout, fallback_context=full_trust)

    def close(self) -> None:
        self._conn.close()

    def call(self, method: str, *params: Any) -> Any:
        """Call ``method``; every failure becomes a ``JobmonError``."""
        _debug("call %s %r", method, params)
        try:
            body = self._conn.request(self._path, wire.dumps_call(method, params), self._headers,
                                      self.timeout)
            return wire.loads_response(body)
        except wire.Fault as fault:
            from jobmon.faults import error_for_fault

            raise error_for_fault(int(fault.faultCode), str(fault.faultString)) from fault
        except ssl.SSLCertVerificationError as exc:
            raise AuthError(f"relay {self.url}: certificate not trusted: {exc.verify_message}",
                            hint="check --ca-dir / X509_CERT_DIR") from exc
        except ssl.SSLError as exc:
            raise AuthError(f"relay {self.url}: TLS handshake failed: {exc.reason or exc}") from exc
        except HTTPStatusError as exc:
            raise RelayError(f"relay {self.url}: HTTP {exc.status} {exc.reason}") from exc
        except (socket.timeout, TimeoutError) as exc:
            raise RelayError(f"relay {self.url}: no answer within {self.timeout:g} s") from exc
        except (ConnectionError, OSError) as exc:
            raise RelayError(f"cannot reach relay {self.url}: {_reason(exc)}") from exc
        except (ValueError, TypeError, wire.ExpatError) as exc:  # a malformed answer
            raise RelayError(f"relay {self.url} answered garbage: {exc}") from exc

    # ------------------------------------------------------------ shortcuts
    def whoami(self) -> dict[str, Any]:
        return dict(self.call("jobmon.whoami"))

    def joblist(self, flt: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        return list(self.call("jobmon.joblist", dict(flt or {})))

    def status(self, job: str) -> dict[str, Any]:
        return dict(self.call("jobmon.status", job))

    def exec(self, job: str, argv: list[str], options: Mapping[str, Any]) -> dict[str, Any]:
        return dict(self.call("jobmon.exec", job, list(argv), dict(options)))

    def read(self, job: str, path: str, offset: float, length: float, wait: float) -> dict[str, Any]:
        return dict(self.call("jobmon.read", job, path, float(offset), float(length), float(wait)))

    def batch(self, target: Mapping[str, Any], argv: list[str],
              options: Mapping[str, Any], wait: float = 10.0) -> Iterator[dict[str, Any]]:
        """``execMany`` then ``batchResults`` until done: yields each job's entry as it comes."""
        started = self.call("jobmon.execMany", dict(target), list(argv), dict(options))
        batch = started["batch"]
        expected = len(started.get("jobs", []))
        seen = 0
        while True:
            res = self.call("jobmon.batchResults", batch, float(wait))
            for entry in res.get("results", []):
                seen += 1
                yield dict(entry)
            if res.get("done") or (expected and seen >= expected):
                return


def binary(value: Any) -> bytes:
    """Bytes out of an XML-RPC base64 value (bytes here; ``xmlrpc.client.Binary`` elsewhere)."""
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if value is None:
        return b""
    xmlrpc_client = sys.modules.get("xmlrpc.client")
    if xmlrpc_client is not None and isinstance(value, xmlrpc_client.Binary):
        return bytes(value.data)
    return str(value).encode()


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (is the relay running?)"
    return str(exc) or type(exc).__name__
