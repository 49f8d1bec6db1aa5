"""What a job needs to trust its relay: the CA certificates that travel with it.

On a real pool a job shares nothing with the relay but what its submit file
transfers and what its environment says. The wrapper verifies the relay's
certificate (jobmon_wrapper/transport.py) against a shipped ``jobmon-ca.pem``
and/or ``X509_CERT_DIR`` (or ``/etc/grid-security/certificates``), else the
system's trust store. So the relay works out once, at start, what has to go
with every job (config key ``job_ca_file``):

* ``"none"``: nothing travels (the site put the CA on every worker).
* a path: that PEM bundle travels.
* ``""`` (auto): if a worker's stock trust (this host's system store plus the
  grid CA directory) already verifies the relay for the URL jobs are given,
  nothing travels: a grid site with a real host certificate keeps using
  ``X509_CERT_DIR``. Otherwise the CA certificates of the relay's own chain
  (found in the host certificate file, ``ca_file`` and ``ca_dir``) travel.

"Verifies" is decided by a TLS handshake in memory between the relay's server
context and a client context built as the wrapper builds its own: the same
OpenSSL path, chain building and host-name check, with no socket. The result
says why, and names the problem when even the shipped bundle would not do
(wrong host name, expired certificate): ``jobmon relay`` logs it at start.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.serialization import Encoding

GRID_CA_DIR = "/etc/grid-security/certificates"
CA_FILE_NAME = "jobmon-ca.pem"
MAX_CHAIN = 10


@dataclass(frozen=True)
class JobTrust:
    pem: str          # the bundle every job gets as jobmon-ca.pem; "" = nothing travels
    reason: str       # why, in one sentence (logged at start, shown by --dry-run)
    problem: str = ""  # non-empty: jobs will not verify the relay even so (logged as a warning)


def handshake_error(server: ssl.SSLContext, client: ssl.SSLContext, hostname: str) -> str | None:
    """Run a TLS handshake in memory; None if the client verified the server, else the reason."""
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    cli = client.wrap_bio(c_in, c_out, server_hostname=hostname)
    srv = server.wrap_bio(s_in, s_out, server_side=True)
    done = {id(cli): False, id(srv): False}
    for _ in range(32):
        for obj, out, peer in ((cli, c_out, s_in), (srv, s_out, c_in)):
            if not done[id(obj)]:
                try:
                    obj.do_handshake()
                    done[id(obj)] = True
                except ssl.SSLWantReadError:
                    pass
                except ssl.SSLCertVerificationError as exc:
                    return str(exc.verify_message or exc.reason or exc)
                except ssl.SSLError as exc:
                    if obj is cli:
                        return str(exc.reason or exc)
                    done[id(obj)] = True  # the server's side of a client refusal
            data = out.read()
            if data:
                peer.write(data)
        if done[id(cli)]:
            return None
    return "the TLS handshake did not complete"


def worker_context(cafile: str | None = None, cadata: str | None = None,
                   capath: str | None = None, system: bool = False) -> ssl.SSLContext:
    """A client context as the wrapper builds it (transport.make_context)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.check_hostname = True
    if system:
        ctx.load_default_certs()
    if cafile or cadata or capath:
        ctx.load_verify_locations(cafile=cafile, cadata=cadata, capath=capath)
    return ctx


def read_certs(paths: Iterable[str | Path]) -> list[x509.Certificate]:
    """Every PEM certificate in the files (and directories' files) given; unreadable ones skipped."""
    out: list[x509.Certificate] = []
    for p in paths:
        path = Path(p)
        files = sorted(f for f in path.iterdir() if f.is_file()) if path.is_dir() else [path]
        for f in files:
            try:
                data = f.read_bytes()
            except OSError:
                continue
            if b"-----BEGIN CERTIFICATE-----" not in data:
                continue
            try:
                out.extend(x509.load_pem_x509_certificates(data))
            except ValueError:
                continue
    return out


def issuer_chain(leaf: x509.Certificate, pool: list[x509.Certificate]) -> list[x509.Certificate]:
    """The CA certificates above ``leaf``, nearest first, each verified as the issuer of the one below."""
    chain: list[x509.Certificate] = []
    current = leaf
    for _ in range(MAX_CHAIN):
        if current.issuer == current.subject and current is not leaf:
            break  # a self-signed root ends the chain
        parent = next((c for c in pool if c.subject == current.issuer and c not in chain
                       and c != current and _signed_by(current, c)), None)
        if parent is None:
            break
        chain.append(parent)
        current = parent
    return chain


def _signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (InvalidSignature, ValueError, TypeError):  # not its issuer, or a key type that cannot sign it
        return False
    return True


def _pem(certs: Iterable[x509.Certificate]) -> str:
    return "".join(c.public_bytes(Encoding.PEM).decode("ascii") for c in certs)


def job_trust(url: str, host_cert: str | Path, host_key: str | Path, ca_file: str = "",
              ca_dir: str = "", job_ca_file: str = "") -> JobTrust:
    """What every job of this relay must be given to verify it (see the module docstring)."""
    setting = job_ca_file.strip()
    if setting.lower() == "none":
        return JobTrust("", "job_ca_file = \"none\": jobs trust the relay with what the workers have")
    hostname = urlsplit(url).hostname or ""
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(str(host_cert), str(host_key))
    if setting:
        try:
            pem = Path(setting).read_text(encoding="ascii")
        except (OSError, UnicodeDecodeError) as exc:
            return JobTrust("", f"job_ca_file {setting} cannot be read", f"job_ca_file {setting}: {exc}")
        problem = _problem(server, hostname, cadata=pem)
        return JobTrust(pem, f"job_ca_file {setting} travels with every job", problem)
    grid_dir = ca_dir or (GRID_CA_DIR if os.path.isdir(GRID_CA_DIR) else "")
    stock = handshake_error(server, worker_context(capath=grid_dir or None, system=True), hostname)
    if stock is None:
        where = f"the system trust store or {grid_dir}" if grid_dir else "the system trust store"
        return JobTrust("", f"the relay's certificate chains to {where}: nothing travels with jobs")
    certs = read_certs([host_cert, *(p for p in (ca_file, ca_dir) if p)])
    leaf = certs[0] if certs else None
    chain = issuer_chain(leaf, certs[1:]) if leaf is not None else []
    if not chain:
        return JobTrust("", "no CA certificate for the relay's certificate was found",
                        f"jobs cannot verify this relay's certificate ({stock}) and the CA that issued it "
                        f"is not in host_cert, ca_file or ca_dir: set job_ca_file to its PEM bundle")
    pem = _pem(chain)
    problem = _problem(server, hostname, cadata=pem)
    subject = chain[-1].subject.rfc4514_string()
    return JobTrust(pem, f"the relay's CA ({subject}) travels with every job as {CA_FILE_NAME}", problem)


def _problem(server: ssl.SSLContext, hostname: str, cadata: str) -> str:
    try:
        error = handshake_error(server, worker_context(cadata=cadata), hostname)
    except ssl.SSLError as exc:
        return f"the CA bundle for jobs is not usable: {exc.reason or exc}"
    if error is None:
        return ""
    return f"jobs will not verify this relay's certificate for {hostname}: {error}"
