"""A TLS front (HAProxy) forwarding to the relay's Unix socket: who is calling comes from the
headers the front sets, only there, and only along a real issuer path (relay/front.py)."""

from __future__ import annotations

import base64
import http.client
import os
import socket
import stat
import xmlrpc.client
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from jobmon import pki as P
from relay.faults import RelayFault
from relay.front import verified_path


class UnixHTTP(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("localhost", timeout=30)
        self.path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(30)
        self.sock.connect(self.path)


def _b64(*certs: Any) -> str:
    return base64.b64encode(b"".join(c.public_bytes(serialization.Encoding.DER) for c in certs)).decode()


def front_headers(cred: Any, verify: str = "0") -> dict[str, str]:
    """What the shipped HAProxy configuration sets for a client presenting ``cred``."""
    c = cred.cred
    sent = [x for x in c.chain if x.subject != x.issuer]
    return {"X-JobMon-Client-Verify": verify, "X-JobMon-Client-Cert": _b64(c.cert),
            "X-JobMon-Client-Chain": _b64(*sent)}


def call(path: str, method: str, *params: Any, headers: dict[str, str] | None = None) -> Any:
    conn = UnixHTTP(path)
    body = xmlrpc.client.dumps(params, method)
    conn.request("POST", "/clarens", body, {"Content-Type": "text/xml", **(headers or {})})
    data = conn.getresponse().read()
    conn.close()
    return xmlrpc.client.loads(data)[0][0]


def test_identity_comes_from_the_fronts_headers_on_the_front_socket_only(relay_factory: Any, pki: Any,
                                                                          tmp_path: Path) -> None:
    sock = str(tmp_path / "front" / "relay.sock")
    os.makedirs(os.path.dirname(sock), mode=0o750)
    relay = relay_factory(front_socket=sock)
    assert stat.S_IMODE(os.stat(sock).st_mode) == 0o660
    assert call(sock, "jobmon.whoami", headers=front_headers(pki.alice)) == {
        "dn": pki.alice.dn, "admin": False, "auth": "certificate"}
    for proxy in (pki.alice_proxy, pki.alice_proxy2):
        assert call(sock, "jobmon.whoami", headers=front_headers(proxy)) == {
            "dn": pki.alice.dn, "admin": False, "auth": "proxy"}
    with pytest.raises(xmlrpc.client.Fault) as info:  # the front did not verify it
        call(sock, "jobmon.whoami", headers=front_headers(pki.alice, verify="20"))
    assert info.value.faultCode == 303
    with pytest.raises(xmlrpc.client.Fault) as info:  # no certificate: nobody
        call(sock, "jobmon.whoami")
    assert info.value.faultCode == 300
    # the same headers sent to the relay's own TLS port are not believed: bob stays bob
    conn = http.client.HTTPSConnection("127.0.0.1", relay.port, context=relay.ssl_context(pki.bob), timeout=30)
    conn.request("POST", "/clarens", xmlrpc.client.dumps((), "jobmon.whoami"),
                 {"Content-Type": "text/xml", **front_headers(pki.alice)})
    assert xmlrpc.client.loads(conn.getresponse().read())[0][0]["dn"] == pki.bob.dn
    conn.close()
    # a daemon behind the front: registers and is held on its poll like any other
    session = call(sock, "jobmon.register", {"job": "77.0", "host": "wn"}, headers=front_headers(pki.alice))["session"]
    assert call(sock, "jobmon.poll", session, 0.2, headers=front_headers(pki.alice)) == []
    assert relay.client(pki.alice).jobmon.status("77.0")["connected"] is True


def test_web_pages_behind_the_front_know_the_caller(relay_factory: Any, pki: Any, tmp_path: Path) -> None:
    sock = str(tmp_path / "relay.sock")
    relay_factory(front_socket=sock)
    conn = UnixHTTP(sock)
    conn.request("GET", "/", headers=front_headers(pki.alice))
    resp = conn.getresponse()
    page = resp.read().decode()
    assert resp.status == 200 and "Alice Smith" in page
    conn.close()


def test_a_proxy_path_is_followed_by_signature_not_by_name(pki: Any) -> None:
    proxy = pki.alice_proxy.cred
    impostor = P.make_user_cert(P.make_ca("/DC=org/DC=evil/CN=Evil CA"), pki.alice.dn)  # same DN, other key
    with pytest.raises(RelayFault) as info:
        verified_path(proxy.cert, [impostor.cert])
    assert info.value.code == 303
    path = verified_path(proxy.cert, [impostor.cert, pki.alice.cred.cert])
    assert path[-1] == pki.alice.cred.cert


def test_a_large_answer_reaches_a_slow_reader_whole(relay_factory: Any, tmp_path: Path) -> None:
    """An answer bigger than the socket's buffer goes out in parts as the reader drains it."""
    import time

    sock = str(tmp_path / "relay.sock")
    relay_factory(front_socket=sock)
    text = "0123456789abcdef" * 50_000          # 800 KB: several socket buffers' worth
    conn = UnixHTTP(sock)
    conn.request("POST", "/clarens", xmlrpc.client.dumps((text,), "echo.echo"), {"Content-Type": "text/xml"})
    time.sleep(0.5)                            # the relay fills the buffer and waits for room
    resp = conn.getresponse()
    assert xmlrpc.client.loads(resp.read())[0][0] == [text]   # echo.echo answers its arguments
    conn.close()
