"""Who is calling, from real TLS handshakes with the test PKI."""

from __future__ import annotations

import logging
import ssl
import time
import xmlrpc.client
from typing import Any

import pytest

from relay.faults import RelayFault
from relay.tls import identity_from_chain


def whoami(relay: Any, cred: Any, proxy: bool = False) -> dict[str, Any]:
    result: dict[str, Any] = relay.client(cred, proxy=proxy).jobmon.whoami()
    return result


def test_stock_client_with_certificate_needs_no_session(relay: Any, pki: Any) -> None:
    assert whoami(relay, pki.alice) == {"dn": pki.alice.dn, "admin": False, "auth": "certificate"}


def test_rfc3820_proxy_and_proxy_of_proxy_map_to_the_user(relay: Any, pki: Any) -> None:
    assert whoami(relay, pki.alice_proxy, proxy=True) == {"dn": pki.alice.dn, "admin": False, "auth": "proxy"}
    assert whoami(relay, pki.alice_proxy2, proxy=True)["dn"] == pki.alice.dn


def test_digit_cn_components_of_a_real_dn_are_kept(relay: Any, pki: Any) -> None:
    assert "/CN=123456/" in pki.cern.dn
    assert whoami(relay, pki.cern)["dn"] == pki.cern.dn
    # through a proxy, only the proxy's own CN goes: the DN's /CN=123456 stays
    me = whoami(relay, pki.cern_proxy, proxy=True)
    assert me["dn"] == pki.cern.dn and me["auth"] == "proxy"


def test_limited_proxy_refused_unless_configured(relay_factory: Any, pki: Any) -> None:
    strict = relay_factory()
    with pytest.raises(xmlrpc.client.Fault) as info:
        whoami(strict, pki.alice_limited, proxy=True)
    assert info.value.faultCode == 303 and "limited prox" in info.value.faultString
    lenient = relay_factory(accept_limited_proxies=True)
    assert whoami(lenient, pki.alice_limited, proxy=True)["dn"] == pki.alice.dn


@pytest.mark.parametrize("name, reason", [
    ("expired", "certificate has expired"),
    ("foreign", "unable to get local issuer certificate"),
    ("not_yet_valid", "certificate is not yet valid"),
    ("server_only", "unsuitable certificate purpose"),
    ("alice_legacy", "invalid ca certificate"),
])
def test_bad_certificates_are_refused_and_the_reason_logged(
    relay: Any, pki: Any, name: str, reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The handshake fails; the relay logs why and sends the alert (which the client
    reads as e.g. "sslv3 alert certificate expired" unless its next write races the close)."""
    cred = getattr(pki, name)
    caplog.set_level(logging.WARNING, logger="relay.tls")
    with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
        whoami(relay, cred, proxy=name == "alice_legacy")
    # OpenSSL sends the alert from inside the failing handshake call, so the client may read it
    # before the relay's thread has logged: give the log line a moment
    deadline = time.monotonic() + 10
    while True:
        refused = [r.getMessage().lower() for r in caplog.records if "refused" in r.getMessage()]
        if any(reason in m for m in refused) or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    assert any(reason in m for m in refused), refused


def test_no_certificate_public_methods_only(relay: Any) -> None:
    anon = relay.client()
    assert anon.echo.echo("a", 1, [2]) == ["a", 1, [2]]
    assert len(anon.echo.hostname()) == 2
    assert "jobmon.exec" not in anon.system.listMethods()
    assert "echo.echo" in anon.system.listMethods()
    with pytest.raises(xmlrpc.client.Fault) as info:
        anon.jobmon.whoami()
    assert info.value.faultCode == 300


def test_hashed_ca_directory(relay_factory: Any, pki: Any) -> None:
    r = relay_factory(ca_file="", ca_dir=str(pki.ca_dir))
    assert whoami(r, pki.alice_proxy2, proxy=True)["dn"] == pki.alice.dn


def test_chain_walk_without_sockets(pki: Any) -> None:
    p2 = pki.alice_proxy2.cred
    chain = [p2.cert] + p2.chain
    ident = identity_from_chain(chain)
    assert (ident.dn, ident.proxy, ident.depth, ident.limited) == (pki.alice.dn, True, 2, False)
    lim = pki.alice_limited.cred
    assert identity_from_chain([lim.cert] + lim.chain).limited
    legacy = pki.alice_legacy.cred
    assert identity_from_chain([legacy.cert] + legacy.chain).dn == pki.alice.dn
    cern = pki.cern.cred
    assert identity_from_chain([cern.cert] + cern.chain).dn == pki.cern.dn
    with pytest.raises(RelayFault):
        identity_from_chain([])
