"""Method permissions from a Clarens-style INI access file.

Format (``access_file`` in the relay config)::

    [DEFAULT]                      # the whole service
    order = allow,deny             # or deny,allow (as Apache); default allow,deny
    dn_allowed = /                 # "/" = every authenticated caller
    dn_denied =
    group_allowed =
    group_denied =

    [jobmon.nodes]                 # one section per method ...
    group_allowed = admins

    [jobmon]                       # ... or per method prefix (jobmon.*)

    [groups]                       # group name = DNs, one per line or comma-separated
    admins = /DC=org/DC=example/O=Example/CN=Pool Admin

Look-up: the method's own section, then its dotted prefixes (``jobmon``), then
``[DEFAULT]``, then deny. Sections do not inherit ``[DEFAULT]`` keys. A DN
entry matches itself and every DN below it on an RDN boundary. Order
``allow,deny``: allowed only if some allow entry matches and no deny entry
does. Order ``deny,allow``: allowed unless some deny entry matches and no
allow entry does. The file is re-read when its modification time or size
changes. Without an access file every authenticated caller may call every
method (job ownership still applies).
"""

from __future__ import annotations

import configparser
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass, field

from jobmon.errors import ConfigError

log = logging.getLogger("relay.access")

GROUPS = "groups"
DEFAULT = "DEFAULT"


def dn_matches(pattern: str, dn: str) -> bool:
    """``pattern`` is ``dn`` or an ancestor of it on an RDN boundary; ``/`` matches all.

    >>> dn_matches("/DC=org/DC=example", "/DC=org/DC=example/CN=Jane")
    True
    >>> dn_matches("/DC=org/DC=example", "/DC=org/DC=examples")
    False
    """
    pattern = pattern.strip()
    if not pattern:
        return False
    if pattern == "/":
        return True
    pattern = pattern.rstrip("/")
    return dn == pattern or dn.startswith(pattern + "/")


def _split(value: str) -> list[str]:
    out: list[str] = []
    for line in value.splitlines():
        out.extend(p.strip() for p in line.split(",") if p.strip())
    return out


@dataclass(frozen=True)
class Rule:
    order: str = "allow,deny"
    dn_allowed: tuple[str, ...] = ()
    dn_denied: tuple[str, ...] = ()
    group_allowed: tuple[str, ...] = ()
    group_denied: tuple[str, ...] = ()


@dataclass
class AccessRules:
    rules: dict[str, Rule] = field(default_factory=dict)
    groups: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def in_group(self, dn: str, group: str) -> bool:
        return any(dn_matches(p, dn) for p in self.groups.get(group, ()))

    def _matches(self, dn: str, dns: Iterable[str], groups: Iterable[str]) -> bool:
        return any(dn_matches(p, dn) for p in dns) or any(self.in_group(dn, g) for g in groups)

    def rule_for(self, method: str) -> Rule | None:
        if method in self.rules:
            return self.rules[method]
        parts = method.split(".")
        for n in range(len(parts) - 1, 0, -1):
            prefix = ".".join(parts[:n])
            if prefix in self.rules:
                return self.rules[prefix]
        return self.rules.get(DEFAULT)

    def allowed(self, dn: str, method: str) -> bool:
        rule = self.rule_for(method)
        if rule is None:
            return False
        allow = self._matches(dn, rule.dn_allowed, rule.group_allowed)
        deny = self._matches(dn, rule.dn_denied, rule.group_denied)
        if rule.order == "deny,allow":
            return allow or not deny
        return allow and not deny


def parse_access(text: str, source: str = "<access file>") -> AccessRules:
    parser = configparser.ConfigParser(interpolation=None, default_section="\x00none")
    try:
        parser.read_string(text, source=source)
    except configparser.Error as exc:
        raise ConfigError(f"access file {source}: {exc}") from None
    out = AccessRules()
    for section in parser.sections():
        values = dict(parser.items(section))
        if section == GROUPS:
            out.groups = {name: tuple(_split(v)) for name, v in values.items()}
            continue
        order = values.get("order", "allow,deny").replace(" ", "").lower()
        if order not in ("allow,deny", "deny,allow"):
            raise ConfigError(f"access file {source}: [{section}] order must be allow,deny or deny,allow")
        unknown = set(values) - {"order", "dn_allowed", "dn_denied", "group_allowed", "group_denied"}
        if unknown:
            raise ConfigError(f"access file {source}: [{section}] unknown key(s) {', '.join(sorted(unknown))}")
        out.rules[section] = Rule(
            order=order,
            dn_allowed=tuple(_split(values.get("dn_allowed", ""))),
            dn_denied=tuple(_split(values.get("dn_denied", ""))),
            group_allowed=tuple(_split(values.get("group_allowed", ""))),
            group_denied=tuple(_split(values.get("group_denied", ""))),
        )
    return out


class AccessControl:
    """Method ACL plus the admin list; re-reads the access file when it changes."""

    def __init__(self, path: str | None, admins: Iterable[str] = ()) -> None:
        self.path = path or None
        self.admins = tuple(admins)
        self._stamp: tuple[int, int] | None = None
        self._rules: AccessRules | None = None
        if self.path:
            self._reload(initial=True)

    def _reload(self, initial: bool = False) -> None:
        assert self.path is not None
        try:
            st = os.stat(self.path)
        except OSError as exc:
            if initial:
                raise ConfigError(f"access file {self.path}: {exc.strerror}") from None
            log.error("access file %s unreadable (%s); keeping the previous rules", self.path, exc.strerror)
            return
        stamp = (st.st_mtime_ns, st.st_size)
        if stamp == self._stamp:
            return
        try:
            with open(self.path, encoding="utf-8") as fh:
                rules = parse_access(fh.read(), self.path)
        except (OSError, ConfigError) as exc:
            if initial:
                raise ConfigError(str(exc)) from None
            log.error("access file %s not reloaded: %s; keeping the previous rules", self.path, exc)
            self._stamp = stamp
            return
        if not initial:
            log.info("access file %s re-read", self.path)
        self._rules, self._stamp = rules, stamp

    @property
    def rules(self) -> AccessRules | None:
        if self.path:
            self._reload()
        return self._rules

    def allowed(self, dn: str, method: str) -> bool:
        rules = self.rules
        if rules is None:
            return True
        return rules.allowed(dn, method)

    def is_admin(self, dn: str) -> bool:
        if any(dn_matches(p, dn) for p in self.admins):
            return True
        rules = self.rules
        return rules is not None and rules.in_group(dn, "admins")
