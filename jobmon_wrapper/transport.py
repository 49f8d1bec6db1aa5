"""XML-RPC over HTTPS to the relay, with verification, identity and timeouts.

* The relay's certificate is verified against a CA file (``--ca-file``,
  ``JOBMON_CA_FILE`` or ``jobmon-ca.pem`` shipped in the sandbox) and/or the
  hashed CA directory ``X509_CERT_DIR``; with neither, the system's defaults
  plus the grid CA directory ``/etc/grid-security/certificates`` when the
  node has one (the relay decides what to ship on the same terms,
  relay/job_trust.py).
* A failed verification is logged with OpenSSL's reason (unknown CA, host
  name mismatch, expired) and what was trusted: :func:`tls_failure`.
* The job proves who it is with the per-job credential (HTTP Basic
  ``jobmon-job:<token>``) and/or a client certificate (``X509_USER_PROXY``,
  or ``--certfile``/``--keyfile`` in attach mode).
"""

import base64
import http.client
import os
import ssl
import xmlrpc.client
from typing import Any, List, Optional, Tuple, Union

CREDENTIAL_USER = "jobmon-job"
GRID_CA_DIR = "/etc/grid-security/certificates"


def make_context(ca_file: Optional[str] = None, ca_dir: Optional[str] = None,
                 cert_file: Optional[str] = None,
                 key_file: Optional[str] = None) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.check_hostname = True
    if ca_file or ca_dir:
        ctx.load_verify_locations(cafile=ca_file, capath=ca_dir)
    else:
        ctx.load_default_certs()
        if os.path.isdir(GRID_CA_DIR):
            ctx.load_verify_locations(capath=GRID_CA_DIR)
    if cert_file:
        ctx.load_cert_chain(cert_file, key_file or cert_file)
    return ctx


class ContextSource(object):
    """An SSL context that is rebuilt when the proxy (or CA file) on disk changes.

    Grid proxies are renewed in place during long jobs; every new connection
    asks ``get()``, so a reconnect after renewal presents the fresh proxy.
    """

    def __init__(self, ca_file: Optional[str] = None, ca_dir: Optional[str] = None,
                 cert_file: Optional[str] = None, key_file: Optional[str] = None) -> None:
        self.args = (ca_file, ca_dir, cert_file, key_file)
        self._sig: Optional[Tuple[float, ...]] = None
        self._ctx: Optional[ssl.SSLContext] = None

    def _signature(self) -> Tuple[float, ...]:
        out = []
        for path in (self.args[0], self.args[2], self.args[3]):
            try:
                out.append(os.stat(path).st_mtime if path else 0.0)
            except OSError:
                out.append(-1.0)
        return tuple(out)

    def get(self) -> ssl.SSLContext:
        sig = self._signature()
        if self._ctx is None or sig != self._sig:
            self._ctx = make_context(*self.args)
            self._sig = sig
        return self._ctx


def trusted_text(ca_file: Optional[str], ca_dir: Optional[str]) -> str:
    """What the daemon trusts for the relay, for log lines."""
    parts = [p for p in (ca_file, ca_dir) if p]
    if parts:
        return " and ".join(parts)
    extra = " and " + GRID_CA_DIR if os.path.isdir(GRID_CA_DIR) else ""
    return "the system trust store" + extra + " (no jobmon-ca.pem was shipped)"


def tls_failure(exc: BaseException, ca_file: Optional[str], ca_dir: Optional[str]) -> Optional[str]:
    """A log line for a certificate verification failure, or None for any other error."""
    verify_error = getattr(ssl, "SSLCertVerificationError", None)  # 3.7+
    if verify_error is not None and isinstance(exc, verify_error):
        reason = getattr(exc, "verify_message", None) or getattr(exc, "reason", None) or str(exc)
    elif isinstance(exc, ssl.CertificateError):  # 3.6: host name mismatch
        reason = str(exc)
    elif isinstance(exc, ssl.SSLError) and getattr(exc, "reason", None) == "CERTIFICATE_VERIFY_FAILED":
        reason = str(exc)  # 3.6: OpenSSL's message is in the text
    else:
        return None
    return ("cannot verify the relay's certificate: %s (trusted: %s)"
            % (reason, trusted_text(ca_file, ca_dir)))


def read_credential(path: Optional[str]) -> Optional[str]:
    if not path:
        return None
    with open(path, "r", encoding="ascii", errors="replace") as f:
        token = f.read().strip()
    return token or None


def basic_auth(token: str) -> str:
    raw = ("%s:%s" % (CREDENTIAL_USER, token)).encode("utf-8")
    return "Basic " + base64.b64encode(raw).decode("ascii")


class _Mixin(object):
    timeout = 30.0
    auth: Optional[str] = None

    def send_headers(self, connection: Any, headers: List[Tuple[str, str]]) -> None:
        if self.auth:
            headers = list(headers) + [("Authorization", self.auth)]
        for key, val in headers:
            connection.putheader(key, val)


class HTTPSTransport(_Mixin, xmlrpc.client.SafeTransport):
    def __init__(self, context: ssl.SSLContext, auth: Optional[str], timeout: float) -> None:
        xmlrpc.client.SafeTransport.__init__(self, context=context)
        self.ssl_context = context
        self.auth = auth
        self.timeout = timeout

    def make_connection(self, host: Any) -> http.client.HTTPSConnection:
        if self._connection[1] is not None and host == self._connection[0]:
            return self._connection[1]  # type: ignore[return-value]
        chost, self._extra_headers, _x509 = self.get_host_info(host)
        conn = http.client.HTTPSConnection(chost, timeout=self.timeout,
                                           context=self.ssl_context)
        self._connection = host, conn
        return conn


class HTTPTransport(_Mixin, xmlrpc.client.Transport):
    """Plain HTTP, only for tests and loopback relays."""

    def __init__(self, auth: Optional[str], timeout: float) -> None:
        xmlrpc.client.Transport.__init__(self)
        self.auth = auth
        self.timeout = timeout

    def make_connection(self, host: Any) -> http.client.HTTPConnection:
        if self._connection[1] is not None and host == self._connection[0]:
            return self._connection[1]
        chost, self._extra_headers, _x509 = self.get_host_info(host)
        conn = http.client.HTTPConnection(chost, timeout=self.timeout)
        self._connection = host, conn
        return conn


class RelayClient(object):
    """One connection to the relay (not thread-safe: one per thread or behind a lock)."""

    def __init__(self, url: str, context: Union[None, ssl.SSLContext, ContextSource],
                 auth: Optional[str], timeout: float) -> None:
        self.url = url
        self.context = context
        self.auth = auth
        self.timeout = timeout
        self._proxy: Optional[xmlrpc.client.ServerProxy] = None
        self._transport: Any = None

    def _get(self) -> xmlrpc.client.ServerProxy:
        if self._proxy is None:
            if self.url.startswith("https:"):
                if self.context is None:
                    raise ValueError("no TLS context for %s" % self.url)
                ctx = (self.context.get() if isinstance(self.context, ContextSource)
                       else self.context)
                self._transport = HTTPSTransport(ctx, self.auth, self.timeout)
            else:
                self._transport = HTTPTransport(self.auth, self.timeout)
            self._proxy = xmlrpc.client.ServerProxy(self.url, transport=self._transport,
                                                    allow_none=False)
        return self._proxy

    def call(self, method: str, *params: Any) -> Any:
        proxy = self._get()
        try:
            return getattr(proxy, method)(*params)
        except xmlrpc.client.Fault:
            raise
        except Exception:
            self.close()
            raise

    def close(self) -> None:
        if self._transport is not None:
            try:
                self._transport.close()
            except OSError:
                pass
        self._proxy = None
        self._transport = None

    def clone(self, timeout: Optional[float] = None) -> "RelayClient":
        return RelayClient(self.url, self.context, self.auth,
                           self.timeout if timeout is None else timeout)
