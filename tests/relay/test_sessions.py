"""The Clarens system.auth2 session flow over HTTP Basic."""

from __future__ import annotations

import hashlib
import os
import xmlrpc.client
from typing import Any

import pytest


def nonce() -> str:
    return hashlib.sha1(os.urandom(16)).hexdigest()


def test_auth2_session_then_logout(relay: Any, pki: Any) -> None:
    n = nonce()
    login = relay.client(pki.alice, basic=(n, "BROWSER"))
    dn, expiry, password = login.system.auth2()
    assert dn == pki.alice.dn and expiry > 0 and len(password) >= 20
    # no certificate at all: the session alone identifies the caller
    session = relay.client(None, basic=(n, password))
    assert session.jobmon.whoami() == {"dn": pki.alice.dn, "admin": False, "auth": "session"}
    assert session.system.logout() is True
    with pytest.raises(xmlrpc.client.Fault) as info:
        session.jobmon.whoami()
    assert info.value.faultCode == 301


def test_session_with_another_dns_certificate_is_refused(relay: Any, pki: Any) -> None:
    n = nonce()
    _, _, password = relay.client(pki.alice, basic=(n, "BROWSER")).system.auth2()
    with pytest.raises(xmlrpc.client.Fault) as info:
        relay.client(pki.bob, basic=(n, password)).jobmon.whoami()
    assert info.value.faultCode == 301 and "another DN" in info.value.faultString


def test_auth2_needs_a_certificate_and_wrong_password_is_301(relay: Any, pki: Any) -> None:
    with pytest.raises(xmlrpc.client.Fault) as info:
        relay.client(None, basic=(nonce(), "BROWSER")).system.auth2()
    assert info.value.faultCode == 300
    with pytest.raises(xmlrpc.client.Fault) as info:
        relay.client(None, basic=(nonce(), "guessed")).jobmon.whoami()
    assert info.value.faultCode == 301


def test_auth2_through_a_proxy(relay: Any, pki: Any) -> None:
    n = nonce()
    dn, _, password = relay.client(pki.alice_proxy2, proxy=True, basic=(n, "BROWSER")).system.auth2()
    assert dn == pki.alice.dn
    assert relay.client(None, basic=(n, password)).jobmon.whoami()["dn"] == pki.alice.dn


def test_web_login_link_gives_a_cookie_identity(relay: Any, pki: Any) -> None:
    import http.client
    import urllib.parse

    link = relay.client(pki.alice).jobmon.webLogin()
    url = urllib.parse.urlsplit(link["url"])
    assert url.path == "/login" and link["expires"] > 0
    token = urllib.parse.parse_qs(url.query)["token"][0]
    assert relay.core.web_logins.redeem("not-a-token") is None
    cookie = relay.core.cookies.create(relay.core.web_logins.redeem(token))
    assert relay.core.web_logins.redeem(token) is None  # one time only
    conn = http.client.HTTPSConnection("127.0.0.1", relay.port, context=relay.ssl_context(), timeout=30)
    conn.request("POST", "/clarens", body=xmlrpc.client.dumps((), "jobmon.whoami"),
                  headers={"Content-Type": "text/xml", "Cookie": f"jobmon_session={cookie}"})
    reply = xmlrpc.client.loads(conn.getresponse().read())[0][0]
    conn.close()
    assert reply == {"dn": pki.alice.dn, "admin": False, "auth": "cookie"}
