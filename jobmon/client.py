"""The client library: XML-RPC over HTTPS to the relay, with a client certificate.

Every call goes through :meth:`Client.call`, which turns relay faults into the
``JobmonError`` family (``jobmon.faults.error_for_fault``) and connection
problems into ``RelayError`` naming the URL. See docs/PROTOCOL.md for methods.
"""

from __future__ import annotations

import http.client
import logging
import socket
import ssl
import xmlrpc.client
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jobmon.errors import AuthError, RelayError, UsageError
from jobmon.faults import error_for_fault

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 120.0


def make_ssl_context(
    cert: Path | None, key: Path | None, ca_file: Path | None, ca_dir: Path | None
) -> ssl.SSLContext:
    """A verifying client context presenting ``cert`` (a proxy file holds its key too)."""
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    if ca_file is not None or ca_dir is not None:
        try:
            ctx.load_verify_locations(
                cafile=str(ca_file) if ca_file else None, capath=str(ca_dir) if ca_dir else None
            )
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


class _Transport(xmlrpc.client.SafeTransport):
    def __init__(self, context: ssl.SSLContext, timeout: float) -> None:
        super().__init__(context=context)
        self._timeout = timeout

    def make_connection(self, host: Any) -> http.client.HTTPSConnection:
        conn = super().make_connection(host)
        conn.timeout = self._timeout
        return conn


@dataclass
class Client:
    """One relay, one identity. Thread-unsafe (one connection); make one per thread."""

    url: str
    context: ssl.SSLContext
    timeout: float = DEFAULT_TIMEOUT

    def __post_init__(self) -> None:
        if not self.url.startswith("https://"):
            raise UsageError(f"relay URL {self.url!r} must start with https://")
        self._proxy = xmlrpc.client.ServerProxy(
            self.url, transport=_Transport(self.context, self.timeout), allow_none=False
        )

    @classmethod
    def from_settings(cls, settings: Any, *, timeout: float = DEFAULT_TIMEOUT,
                      url: str | None = None) -> Client:
        creds = settings.credentials()
        ctx = make_ssl_context(creds.cert, creds.key, creds.ca_file, creds.ca_dir)
        return cls(url or settings.relay_url(), ctx, timeout)

    def call(self, method: str, *params: Any) -> Any:
        """Call ``method``; every failure becomes a ``JobmonError``."""
        log.debug("call %s %r", method, params)
        try:
            return getattr(self._proxy, method)(*params)
        except xmlrpc.client.Fault as fault:
            raise error_for_fault(int(fault.faultCode), str(fault.faultString)) from fault
        except ssl.SSLCertVerificationError as exc:
            raise AuthError(f"relay {self.url}: certificate not trusted: {exc.verify_message}",
                            hint="check --ca-dir / X509_CERT_DIR") from exc
        except ssl.SSLError as exc:
            raise AuthError(f"relay {self.url}: TLS handshake failed: {exc.reason or exc}") from exc
        except xmlrpc.client.ProtocolError as exc:
            raise RelayError(f"relay {self.url}: HTTP {exc.errcode} {exc.errmsg}") from exc
        except (socket.timeout, TimeoutError) as exc:
            raise RelayError(f"relay {self.url}: no answer within {self.timeout:g} s") from exc
        except (ConnectionError, OSError, http.client.HTTPException) as exc:
            raise RelayError(f"cannot reach relay {self.url}: {_reason(exc)}") from exc
        except xmlrpc.client.ResponseError as exc:
            raise RelayError(f"relay {self.url} answered garbage: {exc}") from exc
        except (ValueError, TypeError) as exc:  # expat / unmarshal trouble
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
    """Bytes out of an XML-RPC base64 value (or a plain string)."""
    if isinstance(value, xmlrpc.client.Binary):
        return bytes(value.data)
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if value is None:
        return b""
    return str(value).encode()


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (is the relay running?)"
    return str(exc) or type(exc).__name__
