"""The one error family of the user side.

Every error a user can cause or meet is a ``JobmonError``; ``jobmon.cli.main``
catches only this family, prints one line and exits with ``exit_code``.
Anything else is a bug and keeps its traceback.

Exit codes (documented in docs/CLI.md):

====  ==========================================================
0     success
1     the remote command or at least one job of a fan-out failed
2     usage error (bad flags, bad job id, bad submit file)
3     not authenticated / credential problem
4     access denied
5     unknown job, file or node
6     relay unreachable or answered garbage
7     pool (schedd / collector) error
8     timeout or limit hit
130   interrupted (Ctrl-C)
====  ==========================================================
"""

from __future__ import annotations


class JobmonError(Exception):
    """Base of every error shown to a user as one line."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message} ({self.hint})"
        return self.message


class UsageError(JobmonError):
    exit_code = 2


class ConfigError(UsageError):
    """A settings file or value is wrong."""


class SubmitFileError(UsageError):
    """A submit description the parser rejected."""


class AuthError(JobmonError):
    exit_code = 3


class AccessDenied(JobmonError):
    exit_code = 4


class NotFound(JobmonError):
    exit_code = 5


class RelayError(JobmonError):
    """The relay could not be reached or answered something unusable."""

    exit_code = 6


class PoolError(JobmonError):
    """The pool (schedd, collector, local pool) failed; the message names the daemon and address."""

    exit_code = 7


class LimitError(JobmonError):
    """A timeout or a limit (rate, size, concurrency) was hit."""

    exit_code = 8


class RemoteFault(JobmonError):
    """A fault from the relay that maps to none of the classes above."""

    exit_code = 1

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
