"""What jobs must carry to verify the relay (relay/job_trust.py), and refused handshakes by host."""

from __future__ import annotations

import doctest
import ssl
from pathlib import Path
from typing import Any

import pytest

from jobmon import pki as jpki
from relay import job_trust as jt
from relay import tls_refusals
from relay.tls_refusals import HandshakeRefusals, problem_text, sinful_host


@pytest.fixture()
def local(tmp_path: Path) -> Any:
    return jpki.ensure_local_pki(tmp_path / "state", "alice", hostname="relay.example.org")


def test_a_private_ca_travels_and_it_is_enough(local: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    trust = jt.job_trust("https://relay.example.org:8443/clarens", local.host_cert, local.host_key,
                         ca_file=str(local.ca_cert))
    assert trust.pem == local.ca_cert.read_text()
    assert "travels with every job" in trust.reason and trust.problem == ""
    # a client built as the wrapper builds it, trusting only that bundle, verifies the relay
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(str(local.host_cert), str(local.host_key))
    assert jt.handshake_error(server, jt.worker_context(cadata=trust.pem), "relay.example.org") is None
    assert "unable to get local issuer certificate" in str(
        jt.handshake_error(server, jt.worker_context(system=True), "relay.example.org"))


def test_a_certificate_workers_already_trust_ships_nothing(local: Any, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    # the system trust store (OpenSSL reads SSL_CERT_FILE) holds the relay's CA: a real host certificate
    monkeypatch.setenv("SSL_CERT_FILE", str(local.ca_cert))
    trust = jt.job_trust("https://relay.example.org:8443/clarens", local.host_cert, local.host_key,
                         ca_file=str(local.ca_cert))
    assert trust.pem == "" and "system trust store" in trust.reason and trust.problem == ""
    monkeypatch.delenv("SSL_CERT_FILE")
    # a grid site: the CA is in the hashed CA directory workers have (X509_CERT_DIR)
    cadir = _ca_dir(local.ca_cert, tmp_path / "certificates")
    trust = jt.job_trust("https://relay.example.org:8443/clarens", local.host_cert, local.host_key,
                         ca_file=str(local.ca_cert), ca_dir=str(cadir))
    assert trust.pem == "" and str(cadir) in trust.reason


def _ca_dir(ca_file: Path, directory: Path) -> Path:
    from cryptography import x509

    return jpki.write_ca_dir([x509.load_pem_x509_certificate(ca_file.read_bytes())], directory)


def test_settings_none_and_explicit_bundle(local: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    url = "https://relay.example.org:8443/clarens"
    assert jt.job_trust(url, local.host_cert, local.host_key, job_ca_file="none").pem == ""
    bundle = tmp_path / "bundle.pem"
    bundle.write_text(local.ca_cert.read_text())
    trust = jt.job_trust(url, local.host_cert, local.host_key, job_ca_file=str(bundle))
    assert trust.pem == bundle.read_text() and trust.problem == ""
    missing = jt.job_trust(url, local.host_cert, local.host_key, job_ca_file=str(tmp_path / "nope.pem"))
    assert missing.pem == "" and "nope.pem" in missing.problem


def test_problems_are_named(local: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    # the URL jobs are given names a host the certificate does not cover
    wrong = jt.job_trust("https://elsewhere.example.org:8443/clarens", local.host_cert, local.host_key,
                         ca_file=str(local.ca_cert))
    assert wrong.pem and "Hostname mismatch" in wrong.problem and "elsewhere.example.org" in wrong.problem
    # no CA for the certificate anywhere the relay knows
    lost = jt.job_trust("https://relay.example.org:8443/clarens", local.host_cert, local.host_key)
    assert lost.pem == "" and "job_ca_file" in lost.problem and "unable to get local issuer" in lost.problem


def test_issuer_chain_walks_intermediates(tmp_path: Path) -> None:
    root = jpki.make_ca("/O=Test/CN=Root CA")
    # an intermediate CA signed by the root, and a host certificate signed by the intermediate
    inter = _intermediate(root)
    host = jpki.make_host_cert(inter, "relay.example.org")
    chain = jt.issuer_chain(host.cert, [root.cert, inter.cert, host.cert])
    assert chain == [inter.cert, root.cert]
    assert jt.issuer_chain(host.cert, [root.cert]) == []  # the intermediate is missing


def _intermediate(root: Any) -> Any:
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(jpki.name_from_oneline("/O=Test/CN=Intermediate CA"))
            .issuer_name(root.cert.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
            .sign(root.key, hashes.SHA256()))
    return jpki.Credential(cert, key, [root.cert])


def test_refusals_are_kept_per_host_bounded_and_only_for_client_alerts() -> None:
    r = HandshakeRefusals(keep=60.0, max_hosts=2)
    assert r.record("10.0.0.1", "TLSV1_ALERT_UNKNOWN_CA", now=100.0)
    assert r.record("10.0.0.1", "TLSV1_ALERT_UNKNOWN_CA", now=101.0)
    # the relay refusing a client's certificate is not the client refusing ours
    assert not r.record("10.0.0.2", "CERTIFICATE_VERIFY_FAILED", now=101.0)
    got = r.recent("10.0.0.1", now=110.0)
    assert got is not None and got.count == 2 and "unknown ca" in got.reason
    assert "2 refused handshake(s) from 10.0.0.1, last 9 s ago" in problem_text(got, now=110.0)
    assert r.recent("10.0.0.1", now=200.0) is None            # too old
    assert r.recent("10.0.0.1", since=105.0, now=110.0) is None  # before the job started
    r.record("10.0.0.3", "SSLV3_ALERT_BAD_CERTIFICATE", now=102.0)
    r.record("10.0.0.4", "SSLV3_ALERT_CERTIFICATE_EXPIRED", now=103.0)
    assert r.recent("10.0.0.1", now=104.0) is None  # the oldest host gave way (max_hosts = 2)
    assert "host name" in r.recent("10.0.0.3", now=104.0).reason  # type: ignore[union-attr]


def test_sinful_strings_from_the_recordings(condor_fixtures: Path) -> None:
    assert doctest.testmod(tls_refusals).failed == 0
    import classad2

    ad = classad2.parseOne((condor_fixtures / "jobs" / "exit0" / "2_running.long").read_text(),
                           parser=classad2.ParserType.Old)
    assert sinful_host(ad["StartdIpAddr"]) == "127.0.0.1"
