"""Certificates: the zero-setup local CA, test credentials, grid proxies, DN strings.

Used by ``jobmon relay`` on first start (a private CA, a host certificate and a
user certificate in the state directory, files 0600) and by the tests, which
make every kind of credential the relay must accept or refuse.

Grid conventions kept here:

* DNs are written in OpenSSL's one-line form, most significant RDN first:
  ``/DC=org/DC=example/O=Example/CN=Jane Doe``.
* An RFC 3820 proxy is signed by the user's own key, its subject is the
  issuer's subject plus one ``CN=<number>``, and it carries the critical
  ``proxyCertInfo`` extension (OID 1.3.6.1.5.5.7.1.14). A legacy (pre-RFC)
  proxy has ``CN=proxy`` (``CN=limited proxy``) and no such extension.
* A proxy file holds the proxy certificate, its key, then the rest of the
  chain (the user's certificate), all PEM.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import secrets
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

PROXY_CERT_INFO_OID = ObjectIdentifier("1.3.6.1.5.5.7.1.14")
PPL_INHERIT_ALL = "1.3.6.1.5.5.7.21.1"
PPL_INDEPENDENT = "1.3.6.1.5.5.7.21.2"
PPL_LIMITED = "1.3.6.1.4.1.3536.1.1.1.9"

_SHORT_NAMES = {
    NameOID.DOMAIN_COMPONENT: "DC",
    NameOID.COUNTRY_NAME: "C",
    NameOID.STATE_OR_PROVINCE_NAME: "ST",
    NameOID.LOCALITY_NAME: "L",
    NameOID.ORGANIZATION_NAME: "O",
    NameOID.ORGANIZATIONAL_UNIT_NAME: "OU",
    NameOID.COMMON_NAME: "CN",
    NameOID.USER_ID: "UID",
    NameOID.EMAIL_ADDRESS: "emailAddress",
    NameOID.SERIAL_NUMBER: "serialNumber",
}
_OIDS = {v: k for k, v in _SHORT_NAMES.items()}

Key = ec.EllipticCurvePrivateKey


def dn_oneline(name: x509.Name) -> str:
    """The OpenSSL one-line form of a certificate name.

    >>> dn_oneline(name_from_oneline("/DC=org/DC=example/CN=Jane Doe"))
    '/DC=org/DC=example/CN=Jane Doe'
    """
    parts = []
    for rdn in name.rdns:
        for attr in rdn:
            key = _SHORT_NAMES.get(attr.oid, attr.oid.dotted_string)
            value = attr.value if isinstance(attr.value, str) else attr.value.decode("utf-8", "replace")
            parts.append(f"/{key}={value}")
    return "".join(parts)


def name_from_oneline(dn: str) -> x509.Name:
    """Parse ``/K=V/K=V`` into an ``x509.Name`` (one attribute per RDN, in order).

    >>> len(name_from_oneline("/DC=ch/DC=cern/CN=jdoe/CN=123456/CN=John Doe").rdns)
    5
    """
    if not dn.startswith("/"):
        raise ValueError(f"not a one-line DN: {dn!r}")
    attrs = []
    for part in dn[1:].split("/"):
        key, sep, value = part.partition("=")
        if not sep or key not in _OIDS:
            raise ValueError(f"unsupported DN component {part!r} in {dn!r}")
        attrs.append(x509.NameAttribute(_OIDS[key], value))
    return x509.Name(attrs)


@dataclass
class Credential:
    """A certificate, its private key and the certificates above it (issuer first)."""

    cert: x509.Certificate
    key: Key
    chain: list[x509.Certificate] = field(default_factory=list)

    @property
    def dn(self) -> str:
        return dn_oneline(self.cert.subject)

    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def chain_pem(self) -> bytes:
        """The intermediate certificates (proxies, user certificate); self-signed roots are
        left out, as grid tools do: peers must already trust the CA."""
        return b"".join(
            c.public_bytes(serialization.Encoding.PEM) for c in self.chain if c.subject != c.issuer
        )

    def key_pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )

    def write(self, cert_path: Path, key_path: Path | None = None) -> None:
        """Write PEM files, 0600. Without ``key_path``: one proxy-style file
        (certificate, key, chain). With it: certificate plus chain, and the key apart."""
        if key_path is None:
            _write_private(cert_path, self.cert_pem() + self.key_pem() + self.chain_pem())
        else:
            _write_private(cert_path, self.cert_pem() + self.chain_pem())
            _write_private(key_path, self.key_pem())


def _write_private(path: Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _new_key() -> Key:
    return ec.generate_private_key(ec.SECP256R1())


def _builder(
    subject: x509.Name,
    issuer: x509.Name,
    public_key: ec.EllipticCurvePublicKey,
    not_before: dt.datetime | None,
    not_after: dt.datetime | None,
    days: float,
) -> x509.CertificateBuilder:
    start = not_before or (_now() - dt.timedelta(minutes=5))
    end = not_after or (start + dt.timedelta(days=days))
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
    )


def make_ca(dn: str, *, days: float = 3650) -> Credential:
    """A self-signed certification authority."""
    key = _new_key()
    name = name_from_oneline(dn)
    cert = (
        _builder(name, name, key.public_key(), None, None, days)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return Credential(cert, key, [])


def _leaf_key_usage() -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True, content_commitment=False, key_encipherment=True,
        data_encipherment=False, key_agreement=False, key_cert_sign=False,
        crl_sign=False, encipher_only=False, decipher_only=False,
    )


def make_host_cert(
    ca: Credential,
    hostname: str,
    *,
    alt_names: Sequence[str] = ("localhost",),
    ips: Sequence[str] = ("127.0.0.1", "::1"),
    days: float = 825,
) -> Credential:
    """A server certificate for ``hostname`` (and ``alt_names``, ``ips``), signed by ``ca``."""
    key = _new_key()
    sans: list[x509.GeneralName] = [x509.DNSName(hostname)]
    sans += [x509.DNSName(n) for n in alt_names if n != hostname]
    sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
    subject = x509.Name(list(ca.cert.subject)[:-1] + [x509.NameAttribute(NameOID.COMMON_NAME, hostname)])
    cert = (
        _builder(subject, ca.cert.subject, key.public_key(), None, None, days)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_leaf_key_usage(), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False)
        .sign(ca.key, hashes.SHA256())
    )
    return Credential(cert, key, [ca.cert])


def make_user_cert(
    ca: Credential,
    dn: str,
    *,
    days: float = 365,
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
    usages: Iterable[ObjectIdentifier] = (ExtendedKeyUsageOID.CLIENT_AUTH,),
) -> Credential:
    """An end-entity (user) certificate. ``usages`` sets the extended key usage;
    pass ``(ExtendedKeyUsageOID.SERVER_AUTH,)`` to make a wrong-purpose certificate."""
    key = _new_key()
    cert = (
        _builder(name_from_oneline(dn), ca.cert.subject, key.public_key(), not_before, not_after, days)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_leaf_key_usage(), critical=True)
        .add_extension(x509.ExtendedKeyUsage(list(usages)), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False)
        .sign(ca.key, hashes.SHA256())
    )
    return Credential(cert, key, [ca.cert])


def _der_len(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def _der_oid(dotted: str) -> bytes:
    arcs = [int(a) for a in dotted.split(".")]
    body = bytearray([40 * arcs[0] + arcs[1]])
    for arc in arcs[2:]:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        body.extend(reversed(chunk))
    return b"\x06" + _der_len(len(body)) + bytes(body)


def _der_seq(*items: bytes) -> bytes:
    body = b"".join(items)
    return b"\x30" + _der_len(len(body)) + body


def proxy_cert_info(policy: str = PPL_INHERIT_ALL, path_len: int | None = None) -> bytes:
    """DER of RFC 3820 ``ProxyCertInfo``.

    >>> proxy_cert_info().hex()
    '300c300a06082b06010505071501'
    """
    items = []
    if path_len is not None:
        items.append(b"\x02\x01" + bytes([path_len]))
    items.append(_der_seq(_der_oid(policy)))
    return _der_seq(*items)


def make_proxy(
    issuer: Credential,
    *,
    kind: str = "rfc3820",
    hours: float = 12,
    not_after: dt.datetime | None = None,
) -> Credential:
    """A grid proxy signed by ``issuer`` (a user certificate or another proxy).

    ``kind``: ``rfc3820`` (inherit-all), ``limited`` (RFC 3820 limited policy),
    ``legacy`` (``CN=proxy``, no extension), ``legacy-limited`` (``CN=limited proxy``).
    """
    key = _new_key()
    serial = x509.random_serial_number()
    if kind in ("rfc3820", "limited"):
        cn = str(serial % (10**10))
    elif kind == "legacy":
        cn = "proxy"
    elif kind == "legacy-limited":
        cn = "limited proxy"
    else:
        raise ValueError(f"unknown proxy kind {kind!r}")
    subject = x509.Name(list(issuer.cert.subject) + [x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    start = _now() - dt.timedelta(minutes=5)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.cert.subject)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(start)
        .not_valid_after(not_after or (start + dt.timedelta(hours=hours)))
        .add_extension(_leaf_key_usage(), critical=True)
    )
    if kind in ("rfc3820", "limited"):
        policy = PPL_LIMITED if kind == "limited" else PPL_INHERIT_ALL
        builder = builder.add_extension(
            x509.UnrecognizedExtension(PROXY_CERT_INFO_OID, proxy_cert_info(policy)), critical=True
        )
    cert = builder.sign(issuer.key, hashes.SHA256())
    return Credential(cert, key, [issuer.cert] + issuer.chain)


def subject_hash(cert: x509.Certificate) -> str:
    """OpenSSL's subject name hash, as used for ``<hash>.0`` files in a CA directory."""
    from OpenSSL import crypto

    return f"{crypto.X509.from_cryptography(cert).subject_name_hash():08x}"


def write_ca_dir(certs: Iterable[x509.Certificate], directory: Path) -> Path:
    """Write a grid-style hashed CA directory (``X509_CERT_DIR``): ``<hash>.0`` PEM files."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for cert in certs:
        h = subject_hash(cert)
        n = 0
        while (directory / f"{h}.{n}").exists():
            n += 1
        (directory / f"{h}.{n}").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return directory


@dataclass(frozen=True)
class LocalPki:
    """Paths of the zero-setup credentials in a state directory."""

    directory: Path
    ca_cert: Path
    ca_key: Path
    host_cert: Path
    host_key: Path
    user_cert: Path
    user_key: Path
    user_dn: str


def local_user_dn(user: str, hostname: str | None = None) -> str:
    host = hostname or socket.gethostname()
    return f"/O=JobMon Local/OU={host}/CN={user}"


def ensure_local_pki(state_dir: Path, user: str, hostname: str | None = None) -> LocalPki:
    """Create (once) a private CA, a host certificate and a certificate for ``user``
    under ``<state_dir>/pki`` (directory 0700, files 0600) and return their paths.

    Existing files are kept, so every ``jobmon`` on this machine shares them.
    """
    host = hostname or socket.gethostname()
    d = Path(state_dir) / "pki"
    d.mkdir(parents=True, exist_ok=True)
    os.chmod(d, 0o700)
    paths = LocalPki(
        directory=d,
        ca_cert=d / "ca.pem",
        ca_key=d / "ca.key",
        host_cert=d / "hostcert.pem",
        host_key=d / "hostkey.pem",
        user_cert=d / "usercert.pem",
        user_key=d / "userkey.pem",
        user_dn=local_user_dn(user, host),
    )
    if paths.ca_cert.exists() and paths.ca_key.exists():
        ca_cert = x509.load_pem_x509_certificate(paths.ca_cert.read_bytes())
        ca_key = serialization.load_pem_private_key(paths.ca_key.read_bytes(), None)
        assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
        ca = Credential(ca_cert, ca_key, [])
    else:
        ca = make_ca(f"/O=JobMon Local/OU={host}/CN=JobMon Local CA")
        ca.write(paths.ca_cert, paths.ca_key)
    if not (paths.host_cert.exists() and paths.host_key.exists()):
        make_host_cert(ca, host).write(paths.host_cert, paths.host_key)
    if not (paths.user_cert.exists() and paths.user_key.exists()):
        make_user_cert(ca, paths.user_dn).write(paths.user_cert, paths.user_key)
    return paths
