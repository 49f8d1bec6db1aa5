from __future__ import annotations

from typing import Any


def test_cert_whoami(relay: Any, pki: Any) -> None:
    c = relay.client(pki.alice)
    me = c.jobmon.whoami()
    assert me == {"dn": pki.alice.dn, "admin": False, "auth": "certificate"}
