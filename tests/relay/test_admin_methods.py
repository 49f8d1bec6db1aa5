"""Admin-only methods: hidden from non-admins in system.listMethods, refused with fault 400."""

from __future__ import annotations

import xmlrpc.client
from typing import Any

import pytest

ADMIN_ONLY = ("jobmon.audit", "jobmon.nodes", "jobmon.nodeAction")


def test_list_methods_shows_admin_methods_only_to_admins(relay_factory: Any, pki: Any) -> None:
    r = relay_factory(admins=[pki.admin.dn])
    bob_methods = r.client(pki.bob).system.listMethods()
    admin_methods = r.client(pki.admin).system.listMethods()
    for name in ADMIN_ONLY:
        assert name not in bob_methods
        assert name in admin_methods
    assert "jobmon.joblist" in bob_methods and "jobmon.whoami" in bob_methods
    anonymous = r.client().system.listMethods()
    assert not set(ADMIN_ONLY) & set(anonymous)


def test_admin_methods_refused_for_non_admins_with_a_clear_fault(relay_factory: Any, pki: Any) -> None:
    r = relay_factory(admins=[pki.admin.dn])
    bob = r.client(pki.bob)
    calls = {"jobmon.audit": lambda: bob.jobmon.audit({}), "jobmon.nodes": lambda: bob.jobmon.nodes(),
             "jobmon.nodeAction": lambda: bob.jobmon.nodeAction("node01.example.org", "drain")}
    for name, call in calls.items():
        with pytest.raises(xmlrpc.client.Fault) as info:
            call()
        assert info.value.faultCode == 400
        assert name in info.value.faultString and "admin" in info.value.faultString
    admin = r.client(pki.admin)
    assert admin.jobmon.nodes()[0]["name"] == "node01.example.org"
    rows = admin.jobmon.audit({"user": pki.bob.dn})
    denied = {row["method"] for row in rows if row["allowed"] is False}
    assert set(ADMIN_ONLY) <= denied
    assert r.pool is not None and r.pool.acted == []  # nothing reached the pool for bob
