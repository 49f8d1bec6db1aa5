"""Who owns a job: admin-set rules over the user's and the job's subjects.

As in the original JobMon, a rule is a pair of regular expressions with named
groups, one applied to the caller's DN and one to the job's owner DN; the
caller owns the job when both match and every named group the two share has
the same value. Example (same user name and CA, any institute)::

    [[ownership]]
    user = '^/DC=org/DC=example/O=(?P<org>[^/]+)/CN=(?P<name>[^/]+)$'
    job  = '^/DC=org/DC=example/O=(?P<org>[^/]+)/.*CN=(?P<name>[^/]+)$'

Without rules (and always, in addition) equal DNs own.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from jobmon.errors import ConfigError


@dataclass(frozen=True)
class _Rule:
    user: re.Pattern[str]
    job: re.Pattern[str]
    shared: tuple[str, ...]


class Ownership:
    def __init__(self, rules: Iterable[object] = ()) -> None:
        self.rules: list[_Rule] = []
        for rule in rules:
            user_re, job_re = getattr(rule, "user"), getattr(rule, "job")  # noqa: B009
            try:
                u, j = re.compile(user_re), re.compile(job_re)
            except re.error as exc:
                raise ConfigError(f"ownership rule {user_re!r} / {job_re!r}: {exc}") from None
            shared = tuple(sorted(set(u.groupindex) & set(j.groupindex)))
            if not shared:
                raise ConfigError(
                    f"ownership rule {user_re!r} / {job_re!r} shares no named group; it would let anyone own"
                )
            self.rules.append(_Rule(u, j, shared))

    def owns(self, user_dn: str, job_dn: str | None) -> bool:
        if not job_dn:
            return False
        if user_dn == job_dn:
            return True
        for rule in self.rules:
            mu, mj = rule.user.search(user_dn), rule.job.search(job_dn)
            if mu and mj and all(mu.group(g) == mj.group(g) and mu.group(g) for g in rule.shared):
                return True
        return False
