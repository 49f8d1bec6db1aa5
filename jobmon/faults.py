"""Stable XML-RPC fault codes shared by the relay, the client and the daemon.

The numbers are part of the protocol (docs/PROTOCOL.md) and never change
meaning. ``jobmon_wrapper/faults.py`` repeats the ones the daemon uses (it may
import only the standard library); a test keeps the two in step.
"""

from __future__ import annotations

from enum import IntEnum

from jobmon import errors


class Fault(IntEnum):
    # request format
    PARSE_ERROR = 100          # body is not well-formed XML-RPC / JSON-RPC
    BODY_TOO_LARGE = 101       # body over the configured cap
    FORBIDDEN_MARKUP = 102     # <!DOCTYPE or <!ENTITY in the body
    ENCODING_REFUSED = 103     # Content-Encoding not accepted
    # dispatch
    UNKNOWN_METHOD = 200
    BAD_PARAMS = 201           # wrong number or type of parameters
    # authentication
    NOT_AUTHENTICATED = 300    # no client certificate, session or credential
    SESSION_UNKNOWN = 301      # Clarens session expired or logged out
    CREDENTIAL_INVALID = 302   # per-job credential bad, expired, or bound elsewhere
    CERTIFICATE_REJECTED = 303 # certificate presented but not acceptable (limited proxy, ...)
    # authorization
    ACCESS_DENIED = 400        # the access file does not allow this method for the caller
    NOT_OWNER = 401            # caller may not act on this job
    # jobs
    UNKNOWN_JOB = 500
    JOB_NOT_CONNECTED = 501    # the job exists but its daemon is not connected
    JOB_ENDED = 502            # the job has finished; no live commands
    # sandbox operations (answered by the daemon)
    PATH_OUTSIDE_SANDBOX = 600
    NO_SUCH_FILE = 601
    NOT_A_DIRECTORY = 602
    PERMISSION_DENIED = 603
    EXEC_FAILED = 604          # command not found / not executable
    SHELL_NOT_ALLOWED = 605
    # limits
    TIMEOUT = 700
    RATE_LIMITED = 701
    TOO_MANY_COMMANDS = 702
    # pool
    POOL_ERROR = 800
    SUBMIT_ERROR = 801
    UNKNOWN_NODE = 802
    # daemon session
    NOT_REGISTERED = 900       # daemon session unknown (relay restarted): register again
    # relay
    SHUTTING_DOWN = 998
    INTERNAL = 999             # a bug; details only in the relay's log


_ERROR_CLASS: dict[int, type[errors.JobmonError]] = {
    Fault.PARSE_ERROR: errors.RelayError,
    Fault.BODY_TOO_LARGE: errors.LimitError,
    Fault.FORBIDDEN_MARKUP: errors.RelayError,
    Fault.ENCODING_REFUSED: errors.RelayError,
    Fault.UNKNOWN_METHOD: errors.RelayError,
    Fault.BAD_PARAMS: errors.UsageError,
    Fault.NOT_AUTHENTICATED: errors.AuthError,
    Fault.SESSION_UNKNOWN: errors.AuthError,
    Fault.CREDENTIAL_INVALID: errors.AuthError,
    Fault.CERTIFICATE_REJECTED: errors.AuthError,
    Fault.ACCESS_DENIED: errors.AccessDenied,
    Fault.NOT_OWNER: errors.AccessDenied,
    Fault.UNKNOWN_JOB: errors.NotFound,
    Fault.JOB_NOT_CONNECTED: errors.RemoteFault,
    Fault.JOB_ENDED: errors.RemoteFault,
    Fault.PATH_OUTSIDE_SANDBOX: errors.AccessDenied,
    Fault.NO_SUCH_FILE: errors.NotFound,
    Fault.NOT_A_DIRECTORY: errors.UsageError,
    Fault.PERMISSION_DENIED: errors.AccessDenied,
    Fault.EXEC_FAILED: errors.RemoteFault,
    Fault.SHELL_NOT_ALLOWED: errors.AccessDenied,
    Fault.TIMEOUT: errors.LimitError,
    Fault.RATE_LIMITED: errors.LimitError,
    Fault.TOO_MANY_COMMANDS: errors.LimitError,
    Fault.POOL_ERROR: errors.PoolError,
    Fault.SUBMIT_ERROR: errors.SubmitFileError,
    Fault.UNKNOWN_NODE: errors.NotFound,
    Fault.NOT_REGISTERED: errors.RelayError,
    Fault.SHUTTING_DOWN: errors.RelayError,
    Fault.INTERNAL: errors.RelayError,
}


def error_for_fault(code: int, message: str) -> errors.JobmonError:
    """Turn a relay fault into the user-side error carrying the relay's message.

    >>> e = error_for_fault(500, "no job 12.0 at this relay")
    >>> type(e).__name__, e.exit_code
    ('NotFound', 5)
    >>> error_for_fault(12345, "odd").exit_code
    1
    """
    cls = _ERROR_CLASS.get(code)
    if cls is None or cls is errors.RemoteFault:
        return errors.RemoteFault(code, message)
    return cls(message)
