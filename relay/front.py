"""TLS terminated by a front (HAProxy, nginx): the verified client certificate arrives in headers.

A deployment option (docs/ARCHITECTURE.md, "A TLS front"; measured side by
side in docs/PERFORMANCE.md): OpenSSL holds ~13 KiB per TLS connection, ~23
KiB with a client certificate, in whichever process ends TLS; a front keeps
that out of the relay. The front ends TLS, verifies client certificates
(``verify optional`` with the grid CAs; RFC 3820 proxies need
``OPENSSL_ALLOW_PROXY_CERTS=1`` in its environment) and forwards plain HTTP to
the relay's ``front_socket`` (a Unix socket), with what it verified in headers:

* ``X-JobMon-Client-Verify``: the front's verification result (HAProxy
  ``ssl_c_verify``); anything but ``0`` is refused (fault 303);
* ``X-JobMon-Client-Cert``: base64 of the DER certificate the client
  presented (``ssl_c_der``);
* ``X-JobMon-Client-Chain``: base64 of the other DER certificates the client
  sent, concatenated (``ssl_c_chain_der``).

The identity is then found as for the relay's own TLS (relay/tls.py): the
end-entity certificate reached from the presented one past its proxies. The
path is followed by issuer name *and* signature
(``verify_directly_issued_by``), so an extra certificate the client sent
with the right name but another key cannot become the identity.

Trust boundary: these headers are believed only on the front socket, never
on the relay's TLS port, and whoever can connect to that socket can claim
any identity. The relay creates it 0660 (owner the relay's user); its
directory must let in only the relay's user and the front's group. The front
must delete any ``X-JobMon-Client-*`` header a client sent before it sets its
own (relay/haproxy.cfg.example does).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable

from cryptography import x509
from cryptography.exceptions import InvalidSignature

from relay.faults import Fault, RelayFault
from relay.tls import CertIdentity, _legacy_proxy, _proxy_policy, identity_from_chain

VERIFY = "x-jobmon-client-verify"
CERT = "x-jobmon-client-cert"
CHAIN = "x-jobmon-client-chain"
HEADERS = (VERIFY, CERT, CHAIN)
CACHE = 4096
_cache: dict[tuple[str, str], CertIdentity] = {}


def _der_list(data: bytes) -> list[bytes]:
    """Split concatenated DER certificates (each a SEQUENCE with its own length)."""
    out = []
    pos = 0
    while pos < len(data):
        if data[pos] != 0x30 or pos + 2 > len(data):
            raise ValueError("not a DER certificate")
        length = data[pos + 1]
        head = 2
        if length & 0x80:
            n = length & 0x7F
            if n == 0 or n > 4 or pos + 2 + n > len(data):
                raise ValueError("bad DER length")
            length = int.from_bytes(data[pos + 2 : pos + 2 + n], "big")
            head += n
        end = pos + head + length
        if end > len(data):
            raise ValueError("truncated DER certificate")
        out.append(data[pos:end])
        pos = end
    return out


def _is_proxy(cert: x509.Certificate) -> bool:
    return _proxy_policy(cert) is not None or _legacy_proxy(cert)


def verified_path(leaf: x509.Certificate, sent: list[x509.Certificate]) -> list[x509.Certificate]:
    """The presented certificate and, while it is a proxy, its issuer among ``sent``."""
    path = [leaf]
    cur = leaf
    while _is_proxy(cur) and len(path) <= len(sent) + 1:
        issuer = None
        for cand in sent:
            if cand.subject != cur.issuer:
                continue
            try:
                cur.verify_directly_issued_by(cand)
            except (ValueError, TypeError, InvalidSignature):
                continue
            issuer = cand
            break
        if issuer is None:
            raise RelayFault(Fault.CERTIFICATE_REJECTED,
                             "the front sent a proxy certificate without the certificate that issued it")
        path.append(issuer)
        cur = issuer
    return path


def front_identity(header: Callable[[str], str | None]) -> CertIdentity | None:
    """The caller's certificate identity from the front's headers (None: no certificate)."""
    cert_b64 = header(CERT)
    if not cert_b64:
        return None
    if (header(VERIFY) or "").strip() != "0":
        raise RelayFault(Fault.CERTIFICATE_REJECTED, "the TLS front did not verify the client certificate")
    chain_b64 = header(CHAIN) or ""
    key = (cert_b64, chain_b64)
    hit = _cache.get(key)
    if hit is not None:
        return hit
    try:
        leaf = x509.load_der_x509_certificate(base64.b64decode(cert_b64, validate=True))
        sent = [x509.load_der_x509_certificate(d) for d in _der_list(base64.b64decode(chain_b64, validate=True))]
    except (ValueError, binascii.Error):
        raise RelayFault(Fault.CERTIFICATE_REJECTED, "the TLS front sent an unreadable certificate") from None
    ident = identity_from_chain(verified_path(leaf, sent))
    if len(_cache) >= CACHE:
        _cache.pop(next(iter(_cache)))
    _cache[key] = ident
    return ident
