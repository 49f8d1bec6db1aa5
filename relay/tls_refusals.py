"""Handshakes in which the *client* refused the relay's certificate, by client address.

A daemon that cannot verify the relay never gets as far as an HTTP request,
so the relay cannot tell which job it belongs to; what it does see is the
alert the client sends (``unknown ca``, ``bad certificate`` for a host-name
mismatch, ``certificate expired``) and the address it came from. The job
list compares that address with the execute host of running jobs whose
daemon is not connected (``StartdIpAddr`` in the job ad) and says "daemon
cannot verify the relay's certificate" instead of "not connected (yet)".

Bounded: at most ``max_hosts`` addresses are kept, each with a count and the
last reason and time; entries older than ``keep`` seconds are ignored.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass

#: OpenSSL reasons of alerts a client sends when it refuses the server's certificate
CLIENT_REFUSALS = {
    "TLSV1_ALERT_UNKNOWN_CA": "it does not trust the relay's CA (unknown ca)",
    "SSLV3_ALERT_BAD_CERTIFICATE": "bad certificate: usually the relay's host name is not in its certificate",
    "SSLV3_ALERT_CERTIFICATE_EXPIRED": "the relay's certificate has expired (or the node's clock is wrong)",
    "SSLV3_ALERT_CERTIFICATE_UNKNOWN": "certificate unknown",
    "SSLV3_ALERT_UNSUPPORTED_CERTIFICATE": "unsupported certificate",
    "TLSV1_ALERT_ACCESS_DENIED": "access denied",
}


@dataclass
class Refusal:
    host: str
    reason: str        # a CLIENT_REFUSALS text
    count: int
    first: float
    last: float


class HandshakeRefusals:
    def __init__(self, keep: float = 600.0, max_hosts: int = 4096) -> None:
        self.keep = keep
        self.max_hosts = max_hosts
        self._by_host: OrderedDict[str, Refusal] = OrderedDict()

    def record(self, host: str, openssl_reason: str | None, now: float | None = None) -> bool:
        """Note a refused handshake from ``host``; False (nothing kept) unless the client refused us."""
        text = CLIENT_REFUSALS.get(str(openssl_reason or "").upper())
        if text is None or not host:
            return False
        now = time.time() if now is None else now
        entry = self._by_host.pop(host, None)
        if entry is None or now - entry.last > self.keep:
            entry = Refusal(host, text, 0, now, now)
        entry.count += 1
        entry.reason = text
        entry.last = now
        self._by_host[host] = entry
        while len(self._by_host) > self.max_hosts:
            self._by_host.popitem(last=False)
        return True

    def recent(self, host: str | None, since: float = 0.0, now: float | None = None) -> Refusal | None:
        """The refusals from ``host`` seen within ``keep`` seconds and after ``since``, if any."""
        if not host:
            return None
        entry = self._by_host.get(host)
        now = time.time() if now is None else now
        if entry is None or now - entry.last > self.keep or entry.last < since:
            return None
        return entry


def sinful_host(value: object) -> str | None:
    """The address of an HTCondor sinful string: ``<127.0.0.1:8273?addrs=...>`` -> ``127.0.0.1``.

    >>> sinful_host("<127.0.0.1:8273?addrs=127.0.0.1-8273&alias=node01.example.org>")
    '127.0.0.1'
    >>> sinful_host("<[::1]:9618>")
    '::1'
    >>> sinful_host(None) is None
    True
    """
    if not isinstance(value, str):
        return None
    text = value.strip().lstrip("<").split("?", 1)[0].rstrip(">")
    if text.startswith("["):
        return text[1:].split("]", 1)[0] or None
    host = text.rsplit(":", 1)[0] if ":" in text else text
    return host or None


def problem_text(refusal: Refusal, now: float | None = None) -> str:
    """What users see: ``daemon cannot verify the relay's certificate (...)``."""
    now = time.time() if now is None else now
    ago = max(0, int(now - refusal.last))
    return (f"daemon cannot verify the relay's certificate: {refusal.reason} "
            f"({refusal.count} refused handshake(s) from {refusal.host}, last {ago} s ago)")
