"""jobmon.pki makes certificates that real TLS accepts, and proxies shaped as grid tools make them."""

from __future__ import annotations

import os
import socket
import ssl
import stat
import threading
from pathlib import Path

import pytest
from cryptography import x509

from jobmon import pki as P


def test_oneline_round_trip_keeps_numeric_cn_parts() -> None:
    dn = "/DC=ch/DC=cern/OU=Organic Units/OU=Users/CN=jdoe/CN=123456/CN=John Doe"
    assert P.dn_oneline(P.name_from_oneline(dn)) == dn


def test_bad_oneline_dn_is_refused() -> None:
    with pytest.raises(ValueError):
        P.name_from_oneline("CN=no leading slash")
    with pytest.raises(ValueError):
        P.name_from_oneline("/XX=unknown")


def test_rfc3820_proxy_has_critical_proxycertinfo_and_one_more_cn(pki) -> None:
    cert = pki.alice_proxy.cred.cert
    ext = cert.extensions.get_extension_for_oid(P.PROXY_CERT_INFO_OID)
    assert ext.critical
    assert cert.issuer == pki.alice.cred.cert.subject
    assert list(cert.subject)[:-1] == list(pki.alice.cred.cert.subject)
    assert list(cert.subject)[-1].value.isdigit()


def test_legacy_proxy_has_no_extension(pki) -> None:
    cert = pki.alice_legacy.cred.cert
    assert pki.alice_legacy.dn.endswith("/CN=proxy")
    with pytest.raises(x509.ExtensionNotFound):
        cert.extensions.get_extension_for_oid(P.PROXY_CERT_INFO_OID)


def test_proxy_file_holds_cert_key_and_chain(pki) -> None:
    text = pki.alice_proxy2.proxy_path.read_text()
    assert text.count("BEGIN CERTIFICATE") == 3
    assert "PRIVATE KEY" in text
    assert stat.S_IMODE(os.stat(pki.alice_proxy2.proxy_path).st_mode) == 0o600


def test_ca_dir_is_loadable_by_ssl(pki) -> None:
    names = os.listdir(pki.ca_dir)
    assert len(names) == 1 and names[0].endswith(".0")
    ctx = ssl.create_default_context(capath=str(pki.ca_dir))
    # capath is loaded lazily; the handshake below proves it works
    _handshake(pki, ctx)


def _handshake(pki, client_ctx: ssl.SSLContext) -> str:
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(str(pki.host.cert_path), str(pki.host.key_path))
    server_ctx.load_verify_locations(cafile=str(pki.ca_file))
    server_ctx.verify_mode = ssl.CERT_REQUIRED
    server_ctx.verify_flags |= ssl.VERIFY_ALLOW_PROXY_CERTS
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    seen: dict[str, object] = {}

    def serve() -> None:
        conn, _ = listener.accept()
        with server_ctx.wrap_socket(conn, server_side=True) as tls:
            seen["peer"] = tls.getpeercert()
            tls.sendall(b"ok")

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    client_ctx.load_cert_chain(str(pki.alice_proxy.proxy_path))
    with socket.create_connection(("127.0.0.1", port)) as raw:
        with client_ctx.wrap_socket(raw, server_hostname="localhost") as tls:
            assert tls.recv(2) == b"ok"
    t.join(5)
    listener.close()
    return str(seen.get("peer"))


def test_stdlib_tls_accepts_rfc3820_proxy_with_the_flag(pki) -> None:
    ctx = ssl.create_default_context(cafile=str(pki.ca_file))
    assert "Alice Smith" in _handshake(pki, ctx)


def test_ensure_local_pki_is_idempotent_and_private(tmp_path: Path) -> None:
    first = P.ensure_local_pki(tmp_path, "alice", hostname="submit.example.org")
    before = first.user_cert.read_bytes()
    second = P.ensure_local_pki(tmp_path, "alice", hostname="submit.example.org")
    assert second.user_cert.read_bytes() == before
    assert first.user_dn == "/O=JobMon Local/OU=submit.example.org/CN=alice"
    for p in (first.ca_key, first.host_key, first.user_key, first.user_cert):
        assert stat.S_IMODE(os.stat(p).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(first.directory).st_mode) == 0o700
    user = x509.load_pem_x509_certificate(first.user_cert.read_bytes())
    assert P.dn_oneline(user.subject) == first.user_dn
