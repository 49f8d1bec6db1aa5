"""Clarens sessions (``system.auth2`` / ``system.logout``) and web login links.

Clarens clients send HTTP Basic ``user:password`` on every call. To log in
they send a made-up user name (a SHA-1 hex nonce) and the password
``BROWSER`` over a TLS connection with their certificate; the relay answers
``[dn, expiry, session_password]``. Later calls send ``nonce:session_password``
and need no certificate. Sessions live in memory: after a relay restart
clients get fault 301 and log in again.
"""

from __future__ import annotations

import hmac
import re
import secrets
import time
from dataclasses import dataclass

from relay.faults import Fault, RelayFault

LOGIN_PASSWORD = "BROWSER"
_NONCE = re.compile(r"^[0-9A-Za-z._-]{8,128}$")


@dataclass
class Session:
    dn: str
    password: str
    expires: float


class SessionStore:
    def __init__(self, ttl: float = 43200.0) -> None:
        self.ttl = ttl
        self._by_nonce: dict[str, Session] = {}

    def login(self, nonce: str, dn: str, now: float | None = None) -> Session:
        if not _NONCE.match(nonce):
            raise RelayFault(
                Fault.BAD_PARAMS,
                "system.auth2: the Basic user name must be a nonce of 8-128 letters/digits (a SHA-1 hex string)",
            )
        now = time.time() if now is None else now
        self._expire(now)
        sess = Session(dn=dn, password=secrets.token_hex(20), expires=now + self.ttl)
        self._by_nonce[nonce] = sess
        return sess

    def lookup(self, nonce: str, password: str, now: float | None = None) -> Session | None:
        now = time.time() if now is None else now
        sess = self._by_nonce.get(nonce)
        if sess is None or not hmac.compare_digest(sess.password, password):
            return None
        if sess.expires < now:
            self._by_nonce.pop(nonce, None)
            return None
        return sess

    def logout(self, nonce: str) -> bool:
        return self._by_nonce.pop(nonce, None) is not None

    def _expire(self, now: float) -> None:
        if len(self._by_nonce) > 1000:
            for key in [k for k, s in self._by_nonce.items() if s.expires < now]:
                del self._by_nonce[key]

    def __len__(self) -> int:
        return len(self._by_nonce)


class OneTimeTokens:
    """Short-lived single-use secrets mapped to a DN (web login links)."""

    def __init__(self, ttl: float = 300.0) -> None:
        self.ttl = ttl
        self._tokens: dict[str, tuple[str, float]] = {}

    def issue(self, dn: str, now: float | None = None) -> tuple[str, float]:
        now = time.time() if now is None else now
        for key in [k for k, (_, exp) in self._tokens.items() if exp < now]:
            del self._tokens[key]
        token = secrets.token_urlsafe(32)
        self._tokens[token] = (dn, now + self.ttl)
        return token, now + self.ttl

    def redeem(self, token: str, now: float | None = None) -> str | None:
        now = time.time() if now is None else now
        item = self._tokens.pop(token, None)
        if item is None or item[1] < now:
            return None
        return item[0]


class CookieSessions:
    """Web session cookies (``jobmon_session``) bound to a DN."""

    def __init__(self, ttl: float = 43200.0) -> None:
        self.ttl = ttl
        self._cookies: dict[str, tuple[str, float]] = {}

    def create(self, dn: str, now: float | None = None) -> str:
        now = time.time() if now is None else now
        value = secrets.token_urlsafe(32)
        self._cookies[value] = (dn, now + self.ttl)
        return value

    def lookup(self, value: str, now: float | None = None) -> str | None:
        now = time.time() if now is None else now
        item = self._cookies.get(value)
        if item is None:
            return None
        if item[1] < now:
            del self._cookies[value]
            return None
        return item[0]

    def drop(self, value: str) -> None:
        self._cookies.pop(value, None)
