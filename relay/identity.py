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
import weakref
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

    def certificate(self, request: web.BaseRequest) -> Identity | None:
        """The identity of the TLS client certificate, if any (cached per connection)."""
        transport = request.transport
        ssl_object = transport.get_extra_info("ssl_object") if transport is not None else None
        if ssl_object is None:
            return None
        try:
            cert = self._cert_cache[ssl_object]
        except KeyError:
            cert = tls.peer_identity(ssl_object)
            self._cert_cache[ssl_object] = cert
        if cert is None:
            return None
        if cert.limited and not self.accept_limited:
            raise RelayFault(
                Fault.CERTIFICATE_REJECTED,
                "limited proxies are not accepted by this relay; use a full proxy or your certificate",
            )
        return Identity(dn=cert.dn, kind="proxy" if cert.proxy else "certificate", limited=cert.limited)

    def identify(self, request: web.BaseRequest) -> Identity | None:
        basic = basic_auth(request.headers.get("Authorization"))
        if basic is not None:
            user, password = basic
            if user == JOB_USER:
                claims: Claims = self.credentials.verify(password)
                scope = claims.scope if claims.scope is not None else self.credentials.bound_cluster(claims.tid)
                return Identity(dn=claims.dn, kind="credential", job_scope=scope, credential_id=claims.tid)
            if password != LOGIN_PASSWORD:
                sess = self.sessions.lookup(user, password)
                if sess is None:
                    raise RelayFault(Fault.SESSION_UNKNOWN, "Clarens session unknown or expired; log in again (system.auth2)")
                cert = self.certificate(request)
                if cert is not None and cert.dn != sess.dn:
                    raise RelayFault(Fault.SESSION_UNKNOWN, "session belongs to another DN than your certificate; log in again")
                return Identity(dn=sess.dn, kind="session")
        cert = self.certificate(request)
        if cert is not None:
            return cert
        cookie = request.cookies.get(COOKIE)
        if cookie:
            dn = self.cookies.lookup(cookie)
            if dn is not None:
                return Identity(dn=dn, kind="cookie")
        return None


AUTHENTICATOR_KEY = aio_web.AppKey("jobmon.authenticator", Authenticator)


def identify(request: web.Request) -> Identity | None:
    """The caller of an aiohttp request to this relay (see module docstring)."""
    return request.app[AUTHENTICATOR_KEY].identify(request)
