"""Fault codes the daemon produces or reacts to (docs/PROTOCOL.md).

The same numbers as ``jobmon/faults.py``; the daemon may import only the
standard library, so they are repeated here and a test keeps them equal.
"""

PATH_OUTSIDE_SANDBOX = 600
NO_SUCH_FILE = 601
NOT_A_DIRECTORY = 602
PERMISSION_DENIED = 603
EXEC_FAILED = 604
SHELL_NOT_ALLOWED = 605
TIMEOUT = 700
NOT_REGISTERED = 900
SHUTTING_DOWN = 998

ALL = {
    "PATH_OUTSIDE_SANDBOX": PATH_OUTSIDE_SANDBOX,
    "NO_SUCH_FILE": NO_SUCH_FILE,
    "NOT_A_DIRECTORY": NOT_A_DIRECTORY,
    "PERMISSION_DENIED": PERMISSION_DENIED,
    "EXEC_FAILED": EXEC_FAILED,
    "SHELL_NOT_ALLOWED": SHELL_NOT_ALLOWED,
    "TIMEOUT": TIMEOUT,
    "NOT_REGISTERED": NOT_REGISTERED,
    "SHUTTING_DOWN": SHUTTING_DOWN,
}


class OpFault(Exception):
    """An operation failed in a way the caller should see as a protocol fault."""

    def __init__(self, code: int, message: str) -> None:
        Exception.__init__(self, message)
        self.code = code
        self.message = message

    def as_result(self) -> dict:
        return {"fault": self.code, "message": self.message}
