"""Clarens INI access files: orders, DN prefixes on RDN boundaries, groups, reloads."""

from __future__ import annotations

import os
import xmlrpc.client
from pathlib import Path
from typing import Any

import pytest

from jobmon.errors import ConfigError
from relay.access import AccessControl, dn_matches, parse_access

JANE = "/DC=org/DC=example/CN=Jane"


def test_dn_prefix_matches_on_rdn_boundaries() -> None:
    assert dn_matches("/DC=org/DC=example", JANE)
    assert dn_matches(JANE, JANE)
    assert not dn_matches("/DC=org/DC=example", "/DC=org/DC=examples/CN=Jane")
    assert not dn_matches("/DC=org/DC=example/CN=Ja", JANE)
    assert dn_matches("/", JANE)
    assert not dn_matches("", JANE)


def test_orders_sections_and_groups() -> None:
    rules = parse_access("""
[DEFAULT]
dn_allowed = /DC=org/DC=example
dn_denied = /DC=org/DC=example/CN=Mallory

[jobmon.nodes]
group_allowed = admins

[jobmon.exec]
order = deny,allow
dn_denied = /
dn_allowed = /DC=org/DC=example/CN=Jane

[echo]
dn_allowed = /

[groups]
admins = /DC=org/DC=example/CN=Boss,
  /DC=org/DC=other/CN=Deputy
""")
    assert rules.allowed(JANE, "jobmon.status")                      # DEFAULT allow
    assert not rules.allowed("/DC=org/DC=example/CN=Mallory", "jobmon.status")  # allow,deny: both -> deny
    assert not rules.allowed("/DC=net/CN=Stranger", "jobmon.status")  # no match -> deny
    assert rules.allowed("/DC=org/DC=other/CN=Deputy", "jobmon.nodes")
    assert not rules.allowed(JANE, "jobmon.nodes")                   # the section, not DEFAULT
    assert rules.allowed(JANE, "jobmon.exec")                        # deny,allow: both -> allow
    assert not rules.allowed("/DC=org/DC=example/CN=Bob", "jobmon.exec")
    assert rules.allowed("/DC=net/CN=Stranger", "echo.hostname")     # dotted prefix section
    assert rules.in_group("/DC=org/DC=example/CN=Boss", "admins")


def test_no_default_section_denies() -> None:
    rules = parse_access("[jobmon.whoami]\ndn_allowed = /\n")
    assert rules.allowed(JANE, "jobmon.whoami")
    assert not rules.allowed(JANE, "jobmon.exec")


def test_bad_files_are_config_errors() -> None:
    with pytest.raises(ConfigError):
        parse_access("[DEFAULT]\norder = sometimes\n")
    with pytest.raises(ConfigError):
        parse_access("[DEFAULT]\ndn_allowd = /\n")


def test_reread_when_the_file_changes(tmp_path: Path) -> None:
    path = tmp_path / "access.ini"
    path.write_text("[DEFAULT]\ndn_allowed = /\n")
    acl = AccessControl(str(path), admins=["/DC=org/DC=example/CN=Root"])
    assert acl.allowed(JANE, "jobmon.exec")
    path.write_text("[DEFAULT]\ndn_allowed = /DC=org/DC=elsewhere\n\n[groups]\nadmins = " + JANE + "\n")
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    assert not acl.allowed(JANE, "jobmon.exec")
    assert acl.is_admin(JANE) and acl.is_admin("/DC=org/DC=example/CN=Root")
    assert not acl.is_admin("/DC=org/DC=example/CN=Bob")


def test_access_file_enforced_and_denials_audited(relay_factory: Any, pki: Any, tmp_path: Path) -> None:
    access = tmp_path / "relay_access.ini"
    access.write_text(f"""
[DEFAULT]
dn_allowed = /DC=org/DC=example

[jobmon.joblist]
dn_allowed = /
dn_denied = {pki.bob.dn}

[jobmon.audit]
group_allowed = admins

[groups]
admins = {pki.admin.dn}
""")
    r = relay_factory(access_file=str(access))
    bob = r.client(pki.bob)
    with pytest.raises(xmlrpc.client.Fault) as info:
        bob.jobmon.joblist({})
    assert info.value.faultCode == 400 and "jobmon.joblist" in info.value.faultString
    assert "jobmon.joblist" not in bob.system.listMethods()
    assert "jobmon.whoami" in bob.system.listMethods()
    assert r.client(pki.alice).jobmon.joblist({}) == []
    admin = r.client(pki.admin)
    assert admin.jobmon.whoami()["admin"] is True
    rows = admin.jobmon.audit({"user": pki.bob.dn})
    assert any(row["method"] == "jobmon.joblist" and row["allowed"] is False for row in rows)
    with pytest.raises(xmlrpc.client.Fault) as info:
        r.client(pki.alice).jobmon.audit({})
    assert info.value.faultCode == 400
