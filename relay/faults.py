"""Relay errors: every refusal is an XML-RPC fault with a stable code.

Codes come from :mod:`jobmon.faults` (documented in docs/PROTOCOL.md). Code
inside the relay raises :class:`RelayFault`; the dispatcher turns it into a
fault on the wire. Anything else that escapes a handler is a bug: it is logged
with its traceback and answered as fault 999 without details.
"""

from __future__ import annotations

from jobmon.faults import Fault

__all__ = ["Fault", "RelayFault"]


class RelayFault(Exception):
    """A refusal or error the caller can read and act on."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = int(code)
        self.message = message

    def __repr__(self) -> str:
        return f"RelayFault({self.code}, {self.message!r})"

    def as_struct(self) -> dict[str, object]:
        return {"fault": self.code, "message": self.message}
