"""Runs one local-pool job and records how it ended (the local starter).

``python -m jobmon.pools.local_shepherd STATUS IN OUT ERR [--user UID:GID] [--hide DIR]... -- ARGV...``
starts ARGV in the current directory (the job's scratch directory) with
stdin/stdout/stderr connected to the named files, waits, and writes
``{"returncode": N}`` (negative N: killed by signal -N) or ``{"error": "..."}``
to STATUS atomically. Because the shepherd, not the relay, is the job's
parent, a job keeps running while the relay restarts; the restarted relay
adopts it and reads STATUS when it ends.

``--user UID:GID`` (the shepherd runs as root): the job runs as that user,
with no supplementary groups. ``--hide DIR`` (the shepherd runs as a normal
user): before the job starts, the shepherd enters a new user and mount
namespace (its own uid and gid mapped to themselves) and covers DIR with an
empty read-only tmpfs, so the job cannot read the relay's state directory.
STATUS is still written, through a directory descriptor opened before. When
the kernel refuses the namespaces the job runs without the cover and STATUS
says so (``"hidden": false``); the pool logs it.

Standard library only; the job's environment is the shepherd's own.
"""

from __future__ import annotations

import ctypes
import json
import os
import subprocess
import sys

CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REC, MS_PRIVATE = 1, 2, 4, 8, 16384, 1 << 18


class _Status:
    """STATUS, written atomically through a descriptor of its directory (valid after --hide)."""

    def __init__(self, path: str) -> None:
        self.dir_fd = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY | os.O_DIRECTORY)
        self.name = os.path.basename(path)
        self.extra: dict[str, object] = {}

    def write(self, data: dict[str, object]) -> None:
        tmp = self.name + ".tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600, dir_fd=self.dir_fd)
        with os.fdopen(fd, "w") as f:
            json.dump({**self.extra, **data}, f)
        os.replace(tmp, self.name, src_dir_fd=self.dir_fd, dst_dir_fd=self.dir_fd)


def hide(paths: list[str]) -> str | None:
    """Cover ``paths`` in a private user+mount namespace; None on success, else why not."""
    libc = ctypes.CDLL(None, use_errno=True)
    uid, gid = os.getuid(), os.getgid()
    if libc.unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0:
        return "unshare: " + os.strerror(ctypes.get_errno())
    try:
        for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"), ("gid_map", f"{gid} {gid} 1")):
            with open(f"/proc/self/{name}", "w") as f:
                f.write(text)
    except OSError as exc:
        return f"id maps: {exc.strerror or exc}"
    if libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None) != 0:
        return "mount --make-rprivate /: " + os.strerror(ctypes.get_errno())
    for path in paths:
        flags = MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC
        if libc.mount(b"tmpfs", path.encode(), b"tmpfs", flags, b"size=4k,mode=0") != 0:
            return f"mount over {path}: " + os.strerror(ctypes.get_errno())
    return None


def parse(argv: list[str]) -> tuple[list[str], tuple[int, int] | None, list[str], list[str]] | None:
    """(STATUS IN OUT ERR, user, hidden dirs, job argv), or None for a bad command line."""
    if "--" not in argv:
        return None
    cut = argv.index("--")
    head, cmd = argv[:cut], argv[cut + 1:]
    if len(head) < 4 or not cmd:
        return None
    files, opts = head[:4], head[4:]
    user: tuple[int, int] | None = None
    hidden: list[str] = []
    while opts:
        if len(opts) < 2:
            return None
        flag, value = opts[0], opts[1]
        opts = opts[2:]
        if flag == "--user":
            uid, _, gid = value.partition(":")
            if not (uid.isdigit() and gid.isdigit()):
                return None
            user = (int(uid), int(gid))
        elif flag == "--hide":
            hidden.append(value)
        else:
            return None
    return files, user, hidden, cmd


def main(argv: list[str]) -> int:
    parsed = parse(argv)
    if parsed is None:
        print("usage: local_shepherd STATUS IN OUT ERR [--user UID:GID] [--hide DIR]... -- ARGV...",
              file=sys.stderr)
        return 2
    (status_path, stdin, stdout, stderr), user, hidden, cmd = parsed
    os.umask(0o022)  # the job's umask, as under HTCondor's starter, not its parent's (a relay runs with 077)
    status = _Status(status_path)
    os.environ["CONDOR_STARTER_PID"] = str(os.getpid())
    try:
        fin, fout, ferr = open(stdin, "rb"), open(stdout, "ab"), open(stderr, "ab")
    except OSError as exc:
        status.write({"error": f"Failed to open the job's standard streams: {exc.strerror or exc}"})
        return 0
    if hidden and user is None:
        why = hide(hidden)
        status.extra["hidden"] = why is None
        if why is not None:
            status.extra["hide_error"] = why
    drop = {"user": user[0], "group": user[1], "extra_groups": []} if user else {}
    try:
        with fin, fout, ferr:
            proc = subprocess.Popen(cmd, stdin=fin, stdout=fout, stderr=ferr, **drop)  # type: ignore[call-overload]
    except OSError as exc:
        status.write({"error": f"Failed to execute '{cmd[0]}': {exc.strerror or exc}"})
        return 0
    rc = proc.wait()
    status.write({"returncode": rc})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
