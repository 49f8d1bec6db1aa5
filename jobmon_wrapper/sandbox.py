"""Confine paths to the job's sandbox.

A path is taken relative to the sandbox root (an absolute path must already
lie inside it). It is refused with fault 600 when ``..`` walks out of the
sandbox or when, after resolving every symlink, it ends up outside.
"""

import os
from typing import Optional

from jobmon_wrapper.faults import (
    NO_SUCH_FILE,
    NOT_A_DIRECTORY,
    PATH_OUTSIDE_SANDBOX,
    PERMISSION_DENIED,
    OpFault,
)


class Sandbox(object):
    def __init__(self, root: str) -> None:
        self.root = os.path.realpath(root)

    def _inside(self, real: str) -> bool:
        return real == self.root or real.startswith(self.root.rstrip("/") + "/")

    def resolve(self, path: Optional[str], follow: bool = True) -> str:
        """The real absolute path for ``path``, or OpFault(600).

        With ``follow=False`` the last component is not resolved (so that a
        symlink inside the sandbox can be listed or stat'ed as a link), but it
        still must not name something outside through its parent.
        """
        if path is None or path == "":
            path = "."
        if not isinstance(path, str) or "\0" in path:
            raise OpFault(PATH_OUTSIDE_SANDBOX, "bad path %r" % (path,))
        if os.path.isabs(path):
            lexical = os.path.normpath(path)
            if not self._inside(lexical) and not self._inside(os.path.realpath(lexical)):
                raise OpFault(PATH_OUTSIDE_SANDBOX,
                              "%s: absolute path outside the sandbox" % path)
            candidate = lexical
        else:
            rel = os.path.normpath(path)
            if rel == ".." or rel.startswith("../"):
                raise OpFault(PATH_OUTSIDE_SANDBOX, "%s: '..' leads out of the sandbox" % path)
            candidate = os.path.join(self.root, rel)
        if follow:
            real = os.path.realpath(candidate)
        else:
            parent, name = os.path.split(candidate.rstrip("/") or "/")
            real = os.path.join(os.path.realpath(parent), name) if name else self.root
            if name in ("", ".") or candidate.rstrip("/") == self.root:
                real = self.root
        if not self._inside(real):
            raise OpFault(PATH_OUTSIDE_SANDBOX,
                          "%s: resolves outside the sandbox (symlink)" % path)
        return real

    def relative(self, real: str) -> str:
        rel = os.path.relpath(real, self.root)
        return rel


def os_fault(exc: OSError, path: str) -> OpFault:
    """Map an OSError on ``path`` to the protocol's fault."""
    if isinstance(exc, (NotADirectoryError, IsADirectoryError)):
        what = "not a directory" if isinstance(exc, NotADirectoryError) else "is a directory"
        return OpFault(NOT_A_DIRECTORY, "%s: %s" % (path, what))
    if isinstance(exc, FileNotFoundError):
        return OpFault(NO_SUCH_FILE, "%s: no such file or directory" % path)
    if isinstance(exc, PermissionError):
        return OpFault(PERMISSION_DENIED, "%s: permission denied" % path)
    return OpFault(NO_SUCH_FILE, "%s: %s" % (path, exc.strerror or exc))
