"""Who is calling: one ``Identity`` per request, from credential, session, certificate or cookie.

``identify(request)`` tries, in the order docs/PROTOCOL.md gives: per-job
credential (Basic ``jobmon-job:<token>``), Clarens session (Basic
``nonce:session-password``), TLS client certificate, web cookie
(``jobmon_session``). It returns ``None`` when the request carries none of
them, and raises ``RelayFault`` (301, 302, 303) when one is present but bad.
"""

from __future__ import annotations

import base64
import binascii
import functools
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiohttp import web as aio_web

from relay import tls
from relay.faults import Fault, RelayFault
from relay.sessions import LOGIN_PASSWORD, CookieSessions, SessionStore

if TYPE_CHECKING:  # pragma: no cover
    from aiohttp import web

    from relay.credentials import Claims, CredentialStore

JOB_USER = "jobmon-job"
TOKEN_CACHE = 4096
COOKIE = "jobmon_session"


@dataclass(frozen=True)
class Identity:
    dn: str
    kind: str                    # "certificate" / "proxy" / "session" / "cookie" / "credential"
    job_scope: int | None = None  # credential: cluster it is bound to (None = not yet)
    credential_id: str | None = None
    limited: bool = False

    @property
    def is_job(self) -> bool:
        return self.kind == "credential"


@functools.lru_cache(maxsize=4096)  # daemons send the same header with every call
def basic_auth(header: str | None) -> tuple[str, str] | None:
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        text = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = text.partition(":")
    return (user, password) if sep else None


class Authenticator:
    """Holds the stores identities come from; one per relay (``app[AUTHENTICATOR_KEY]``)."""

    def __init__(
        self,
        credentials: CredentialStore,
        sessions: SessionStore,
        cookies: CookieSessions,
        accept_limited_proxies: bool = False,
    ) -> None:
        self.credentials = credentials
        self.sessions = sessions
        self.cookies = cookies
        self.accept_limited = accept_limited_proxies
        self._cert_cache: weakref.WeakKeyDictionary[Any, tls.CertIdentity | None] = weakref.WeakKeyDictionary()
        #: Unix sockets a TLS front forwards to (relay/front.py): their requests carry the certificate
        self.front_paths: set[str] = set()
        #: verified per-job credentials (token -> identity, expiry): daemons send the same token
        #: with every call; a bound token's identity never changes until it expires
        self._tokens: dict[str, tuple[Identity, float]] = {}

    def certificate(self, request: web.BaseRequest) -> Identity | None:
        """The identity of the TLS client certificate, if any (cached per connection)."""
        transport = request.transport
        if transport is not None and self.front_paths and transport.get_extra_info("sockname") in self.front_paths:
            from relay.front import front_identity

            return self.from_cert(front_identity(request.headers.get))
        ssl_object = transport.get_extra_info("ssl_object") if transport is not None else None
        if ssl_object is None:
            return None
        try:
            cert = self._cert_cache[ssl_object]
        except KeyError:
            cert = tls.peer_identity(ssl_object)
            self._cert_cache[ssl_object] = cert
        return self.from_cert(cert)

    def from_cert(self, cert: tls.CertIdentity | None) -> Identity | None:
        """The caller's identity from its verified certificate chain (fault 303 for limited proxies)."""
        if cert is None:
            return None
        if cert.limited and not self.accept_limited:
            raise RelayFault(
                Fault.CERTIFICATE_REJECTED,
                "limited proxies are not accepted by this relay; use a full proxy or your certificate",
            )
        return Identity(dn=cert.dn, kind="proxy" if cert.proxy else "certificate", limited=cert.limited)

    def identify(self, request: web.BaseRequest) -> Identity | None:
        return self.identify_headers(request.headers.get("Authorization"),
                                     lambda: self.certificate(request), lambda: request.cookies.get(COOKIE))

    def identify_headers(self, authorization: str | None, certificate: Callable[[], Identity | None],
                         cookie: Callable[[], str | None]) -> Identity | None:
        """The caller from its ``Authorization`` header, else its certificate, else its cookie."""
        basic = basic_auth(authorization)
        if basic is not None:
            user, password = basic
            if user == JOB_USER:
                return self._credential(password)
            if password != LOGIN_PASSWORD:
                sess = self.sessions.lookup(user, password)
                if sess is None:
                    raise RelayFault(Fault.SESSION_UNKNOWN, "Clarens session unknown or expired; log in again (system.auth2)")
                cert = certificate()
                if cert is not None and cert.dn != sess.dn:
                    raise RelayFault(Fault.SESSION_UNKNOWN, "session belongs to another DN than your certificate; log in again")
                return Identity(dn=sess.dn, kind="session")
        cert = certificate()
        if cert is not None:
            return cert
        value = cookie()
        if value:
            dn = self.cookies.lookup(value)
            if dn is not None:
                return Identity(dn=dn, kind="cookie")
        return None

    def _credential(self, token: str) -> Identity:
        """A per-job credential's identity; a token seen before skips the MAC and the database."""
        now = time.time()
        hit = self._tokens.get(token)
        if hit is not None and hit[1] >= now and hit[0].job_scope is not None:
            return hit[0]
        claims: Claims = self.credentials.verify(token, now)
        scope = claims.scope if claims.scope is not None else self.credentials.bound_cluster(claims.tid)
        ident = Identity(dn=claims.dn, kind="credential", job_scope=scope, credential_id=claims.tid)
        if len(self._tokens) >= TOKEN_CACHE:
            self._tokens.pop(next(iter(self._tokens)))
        self._tokens[token] = (ident, claims.exp)
        return ident


AUTHENTICATOR_KEY = aio_web.AppKey("jobmon.authenticator", Authenticator)


def identify(request: web.Request) -> Identity | None:
    """The caller of an aiohttp request to this relay (see module docstring)."""
    return request.app[AUTHENTICATOR_KEY].identify(request)
