"""Fixtures shared by every test folder.

``pki``: a session-wide set of real certificates and keys on disk, made with
``jobmon.pki``: a CA (as a file and as a hashed X509_CERT_DIR), a host
certificate for localhost/127.0.0.1, users, grid proxies, and the bad ones the
relay must refuse. Each credential ``c`` has ``c.cert_path`` / ``c.key_path``
(separate PEM files) and ``c.proxy_path`` (one file: cert, key, chain),
plus ``c.dn`` and ``c.cred`` (the ``jobmon.pki.Credential``).
"""

from __future__ import annotations

import atexit
import datetime as dt
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.x509.oid import ExtendedKeyUsageOID

from jobmon import pki as P


def _session_tmpdir() -> None:
    """Everything the suite makes in the temp dir (pytest's tmp_path, the local pools' execute
    directories with their jobs' scratch, relays' files) goes into one directory, removed when
    the run ends: a run leaves nothing behind in /tmp. It is 0755 because the local pool runs
    root's jobs as nobody, who must reach their scratch directory (as on an execute node)."""
    base = tempfile.mkdtemp(prefix="jobmon-tests-")
    os.chmod(base, 0o755)
    os.environ["TMPDIR"] = base          # subprocesses (relays, CLIs, wrappers) too
    tempfile.tempdir = base
    atexit.register(shutil.rmtree, base, True)


_session_tmpdir()


@dataclass(frozen=True)
class Cred:
    cred: P.Credential
    cert_path: Path
    key_path: Path
    proxy_path: Path

    @property
    def dn(self) -> str:
        return self.cred.dn


@dataclass(frozen=True)
class Pki:
    root: Path
    ca: Cred
    ca_file: Path          # PEM of the trusted CA
    ca_dir: Path           # hashed directory with the trusted CA (X509_CERT_DIR)
    host: Cred             # server certificate for localhost / 127.0.0.1
    alice: Cred
    bob: Cred
    admin: Cred
    cern: Cred             # a DN with /CN=<digits> parts of its own
    alice_proxy: Cred      # RFC 3820
    alice_proxy2: Cred     # proxy of a proxy
    alice_legacy: Cred     # legacy /CN=proxy
    alice_limited: Cred    # RFC 3820 limited
    cern_proxy: Cred
    expired: Cred
    not_yet_valid: Cred
    server_only: Cred      # wrong purpose: serverAuth only
    foreign: Cred          # issued by a CA nobody trusts
    foreign_ca_file: Path


def _save(root: Path, name: str, cred: P.Credential) -> Cred:
    cert_path, key_path, proxy_path = root / f"{name}.pem", root / f"{name}.key", root / f"{name}.proxy"
    cred.write(cert_path, key_path)
    cred.write(proxy_path)
    return Cred(cred, cert_path, key_path, proxy_path)


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    root = tmp_path_factory.mktemp("pki")
    ca = P.make_ca("/DC=org/DC=example/CN=Example Test CA")
    foreign_ca = P.make_ca("/DC=net/DC=elsewhere/CN=Foreign CA")
    now = dt.datetime.now(dt.timezone.utc)
    alice = P.make_user_cert(ca, "/DC=org/DC=example/O=Example/CN=Alice Smith")
    cern = P.make_user_cert(ca, "/DC=ch/DC=cern/OU=Organic Units/OU=Users/CN=jdoe/CN=123456/CN=John Doe")
    proxy = P.make_proxy(alice)
    ca_file = root / "ca.pem"
    ca_file.write_bytes(ca.cert_pem())
    foreign_ca_file = root / "foreign-ca.pem"
    foreign_ca_file.write_bytes(foreign_ca.cert_pem())
    return Pki(
        root=root,
        ca=_save(root, "ca", ca),
        ca_file=ca_file,
        ca_dir=P.write_ca_dir([ca.cert], root / "certificates"),
        host=_save(root, "host", P.make_host_cert(ca, "localhost")),
        alice=_save(root, "alice", alice),
        bob=_save(root, "bob", P.make_user_cert(ca, "/DC=org/DC=example/O=Example/CN=Bob Jones")),
        admin=_save(root, "admin", P.make_user_cert(ca, "/DC=org/DC=example/O=Example/CN=Pool Admin")),
        cern=_save(root, "cern", cern),
        alice_proxy=_save(root, "alice_proxy", proxy),
        alice_proxy2=_save(root, "alice_proxy2", P.make_proxy(proxy)),
        alice_legacy=_save(root, "alice_legacy", P.make_proxy(alice, kind="legacy")),
        alice_limited=_save(root, "alice_limited", P.make_proxy(alice, kind="limited")),
        cern_proxy=_save(root, "cern_proxy", P.make_proxy(cern)),
        expired=_save(
            root, "expired",
            P.make_user_cert(ca, "/DC=org/DC=example/O=Example/CN=Old Timer",
                             not_before=now - dt.timedelta(days=30), not_after=now - dt.timedelta(days=1)),
        ),
        not_yet_valid=_save(
            root, "not_yet_valid",
            P.make_user_cert(ca, "/DC=org/DC=example/O=Example/CN=Early Bird",
                             not_before=now + dt.timedelta(days=1), days=30),
        ),
        server_only=_save(
            root, "server_only",
            P.make_user_cert(ca, "/DC=org/DC=example/O=Example/CN=Server Only",
                             usages=(ExtendedKeyUsageOID.SERVER_AUTH,)),
        ),
        foreign=_save(root, "foreign", P.make_user_cert(foreign_ca, "/DC=net/DC=elsewhere/CN=Mallory")),
        foreign_ca_file=foreign_ca_file,
    )


@pytest.fixture(scope="session")
def condor_fixtures() -> Path:
    """The recordings from a real HTCondor pool (../shared/condor-fixtures beside the clone)."""
    path = Path(__file__).resolve().parents[2] / "shared" / "condor-fixtures"
    assert path.is_dir(), f"HTCondor recordings not found at {path}"
    return path
