"""The client library: XML-RPC over HTTPS to the relay, with a client certificate.

Every call goes through :meth:`Client.call`, which turns relay faults into the
``JobmonError`` family (``jobmon.faults.error_for_fault``) and connection
problems into ``RelayError`` naming the URL. See docs/PROTOCOL.md for methods.

A client holds one HTTP/1.1 connection and keeps it alive: a command pays for
one TLS handshake however many calls it makes (a fan-out, ``tail -f``). The
wire format is ``xmlrpc.client``'s (``jobmon.wire``), the connection
``jobmon.https``: without ``xmlrpc.client`` and ``http.client``, whose import
alone costs a command ~25 ms (docs/PERFORMANCE.md, "CLI latency").

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
from jobmon.https import Connection, HTTPStatusError, split_url

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

DEFAULT_TIMEOUT = 120.0
__all__ = ["Client", "Connection", "DEFAULT_TIMEOUT", "binary", "make_ssl_context", "split_url"]


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

        def exchange() -> Any:
            body = self._conn.request(self._path, wire.dumps_call(method, params), self._headers, self.timeout)
            return wire.loads_response(body)

        return self._guarded(exchange)

    def call_json(self, method: str, *params: Any) -> Any:
        """The same call in Clarens JSON-RPC, the relay's other encoding: a fan-out's 10,000
        results decode in ~20 ms instead of ~0.8 s of XML-RPC. Binary values come as base64 text."""
        import json

        _debug("call (JSON) %s %r", method, params)
        headers = dict(self._headers, **{"Content-Type": "text/json"})

        def exchange() -> Any:
            body = json.dumps({"method": method, "params": list(params), "id": 1}).encode()
            reply = json.loads(self._conn.request(self._path, body, headers, self.timeout))
            if not isinstance(reply, dict):
                raise ValueError("not a JSON-RPC answer")
            err = reply.get("error")
            if err and not isinstance(err, dict):
                raise ValueError(f"JSON-RPC error {err!r}")
            if err:
                raise wire.Fault(int(err.get("code", 999)), str(err.get("message", "")))
            return reply.get("result")

        return self._guarded(exchange)

    def _guarded(self, exchange: Callable[[], Any]) -> Any:
        try:
            return exchange()
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
