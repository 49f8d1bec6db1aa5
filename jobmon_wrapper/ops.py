"""The sandbox operations the daemon serves: exec, read, list, stat.

Each function takes the request's ``args`` struct and returns the result
struct of docs/PROTOCOL.md, or raises OpFault (codes 600-605).
"""

import os
import selectors
import signal
import stat as stat_mod
import subprocess
import threading
import time
import xmlrpc.client
from typing import Any, Dict, List, Mapping, Optional

from jobmon_wrapper import config
from jobmon_wrapper.faults import (
    EXEC_FAILED,
    NO_SUCH_FILE,
    NOT_A_DIRECTORY,
    SHELL_NOT_ALLOWED,
    OpFault,
)
from jobmon_wrapper.sandbox import Sandbox, os_fault

DEFAULT_TIMEOUT = 60.0
DEFAULT_MAX_OUTPUT = 1 << 20
DEFAULT_READ = 65536
MAX_READ = 1 << 20
AFTER_EXIT_GRACE = 1.0
#: how often a read that waits for its file to grow (``jobmon tail -f``) looks at the
#: file's size: a line the payload writes reaches the user within this plus one round
#: trip (docs/PERFORMANCE.md, "CLI latency": <= 100 ms). One fstat per look, and only
#: while someone follows a file: ~0.1 % of a core.
FOLLOW_POLL = 0.02


def _num(args: Mapping[str, Any], key: str, default: float) -> float:
    value = args.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return default
    return float(value)


class Running(object):
    """A running exec, so that ``cancel`` can kill it."""

    def __init__(self, proc: "subprocess.Popen[bytes]") -> None:
        self.proc = proc
        self.killed_by: Optional[str] = None

    def kill(self, why: str) -> None:
        if self.killed_by is None:
            self.killed_by = why
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except OSError:
            pass


def run_exec(box: Sandbox, args: Mapping[str, Any], allow_shell: bool = True,
             register: Optional[Any] = None, job_id: Optional[str] = None) -> Dict[str, Any]:
    """Run an argv (or a shell line) in the sandbox with timeout and output cap."""
    argv = args.get("argv")
    if not isinstance(argv, list) or not argv or not all(isinstance(a, str) for a in argv):
        raise OpFault(EXEC_FAILED, "argv must be a non-empty array of strings")
    shell = bool(args.get("shell", False))
    if shell:
        if not allow_shell:
            raise OpFault(SHELL_NOT_ALLOWED, "this site does not allow shell commands")
        argv = ["/bin/sh", "-c"] + list(argv)
    timeout = _num(args, "timeout", DEFAULT_TIMEOUT)
    cap = int(_num(args, "max_output", DEFAULT_MAX_OUTPUT))
    cwd_arg = args.get("cwd", ".")
    cwd = box.resolve(cwd_arg if isinstance(cwd_arg, str) else ".")
    if not os.path.isdir(cwd):
        if os.path.exists(cwd):
            raise OpFault(NOT_A_DIRECTORY, "%s: not a directory" % cwd_arg)
        raise OpFault(NO_SUCH_FILE, "%s: no such directory" % cwd_arg)
    start = time.monotonic()
    try:
        proc = subprocess.Popen(argv, cwd=cwd, env=config.command_env(job_id=job_id),
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, start_new_session=True)
    except OSError as exc:
        raise OpFault(EXEC_FAILED, "%s: %s" % (argv[0], exc.strerror or exc)) from None
    running = Running(proc)
    if register is not None:
        register(running)
    out, err, truncated = _collect(proc, running, start + timeout, cap)
    status = proc.wait()
    result: Dict[str, Any] = {
        "stdout": xmlrpc.client.Binary(out),
        "stderr": xmlrpc.client.Binary(err),
        "duration": time.monotonic() - start,
        "truncated": truncated,
        "timed_out": running.killed_by == "timeout",
    }
    if status < 0:
        result["signal"] = -status
    else:
        result["exit_code"] = status
    return result


def _collect(proc: "subprocess.Popen[bytes]", running: Running, deadline: float,
             cap: int) -> Any:
    bufs: Dict[int, bytearray] = {}
    truncated = False
    sel = selectors.DefaultSelector()
    out_fd = proc.stdout.fileno() if proc.stdout is not None else -1
    err_fd = proc.stderr.fileno() if proc.stderr is not None else -1
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            os.set_blocking(stream.fileno(), False)
            sel.register(stream.fileno(), selectors.EVENT_READ)
            bufs[stream.fileno()] = bytearray()
    exited_at: Optional[float] = None
    try:
        while sel.get_map():
            now = time.monotonic()
            if now >= deadline and running.killed_by is None:
                running.kill("timeout")
                deadline = now + AFTER_EXIT_GRACE
            elif running.killed_by is not None and now >= deadline:
                break  # the group is dead; a runaway outside it keeps the pipe
            if exited_at is None and proc.poll() is not None:
                exited_at = now
            if exited_at is not None and now - exited_at > AFTER_EXIT_GRACE:
                break  # children that left the process group still hold the pipe
            wait = min(0.2, max(0.0, deadline - now))
            for key, _ in sel.select(wait):
                try:
                    data = os.read(key.fd, 65536)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                if not data:
                    sel.unregister(key.fd)
                    continue
                buf = bufs[key.fd]
                room = cap - len(buf)
                if room > 0:
                    buf.extend(data[:room])
                if len(data) > room:
                    truncated = True
    finally:
        sel.close()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
    if running.killed_by is not None:
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
    return bytes(bufs.get(out_fd, b"")), bytes(bufs.get(err_fd, b"")), truncated


def _kind(mode: int) -> str:
    if stat_mod.S_ISLNK(mode):
        return "link"
    if stat_mod.S_ISDIR(mode):
        return "dir"
    if stat_mod.S_ISREG(mode):
        return "file"
    return "other"


def _stat_struct(st: os.stat_result) -> Dict[str, Any]:
    return {
        "type": _kind(st.st_mode),
        "size": float(st.st_size),
        "mtime": float(st.st_mtime),
        "mode": stat_mod.S_IMODE(st.st_mode),
    }


def payload_stream(box: Sandbox, which: str, wrapper_pid: int) -> str:
    """The file behind the payload's stdout (fd 1) or stderr (fd 2), if in the sandbox."""
    fd = 1 if which == "@stdout" else 2
    try:
        target = os.readlink("/proc/%d/fd/%d" % (wrapper_pid, fd))
    except OSError:
        raise OpFault(NO_SUCH_FILE,
                      "%s: the payload's %s is not known" % (which, which[1:])) from None
    if not target.startswith("/") or not os.path.isfile(target):
        raise OpFault(NO_SUCH_FILE, "%s: the payload's %s is not a file (%s)"
                      % (which, which[1:], target))
    return box.resolve(target)


def resolve_path(box: Sandbox, path: Any, wrapper_pid: int) -> str:
    if path in ("@stdout", "@stderr"):
        return payload_stream(box, path, wrapper_pid)
    if path is not None and not isinstance(path, str):
        raise OpFault(NO_SUCH_FILE, "path must be a string")
    return box.resolve(path)


def read(box: Sandbox, args: Mapping[str, Any], wrapper_pid: int,
         stop: Optional[threading.Event] = None) -> Dict[str, Any]:
    """Read ``length`` bytes at ``offset``; wait up to ``wait`` s for the file to grow."""
    name = args.get("path", "")
    real = resolve_path(box, name, wrapper_pid)
    offset = _num(args, "offset", 0.0)
    length = int(min(max(_num(args, "length", DEFAULT_READ), 0.0), MAX_READ))
    wait_until = time.monotonic() + max(0.0, min(_num(args, "wait", 0.0), 600.0))
    try:
        with open(real, "rb") as f:
            if not stat_mod.S_ISREG(os.fstat(f.fileno()).st_mode):
                if os.path.isdir(real):
                    raise OpFault(NOT_A_DIRECTORY, "%s: is a directory" % name)
            while True:
                size = os.fstat(f.fileno()).st_size
                start = int(offset) if offset >= 0 else max(0, size + int(offset))
                if start < size or time.monotonic() >= wait_until or length == 0:
                    break
                if stop is not None and stop.wait(FOLLOW_POLL):
                    break
                if stop is None:
                    time.sleep(FOLLOW_POLL)
            f.seek(start)
            data = f.read(length) if start < size else b""
    except OSError as exc:
        raise os_fault(exc, str(name)) from None
    size = max(size, start + len(data))
    nxt = start + len(data)
    return {
        "data": xmlrpc.client.Binary(data),
        "offset": float(start),
        "next_offset": float(nxt),
        "size": float(size),
        "eof": nxt >= size,
        "path": str(name),
    }


def listdir(box: Sandbox, args: Mapping[str, Any], wrapper_pid: int) -> Dict[str, Any]:
    name = args.get("path", ".") or "."
    real = resolve_path(box, name, wrapper_pid)
    try:
        if not os.path.isdir(real):
            if os.path.exists(real):
                raise OpFault(NOT_A_DIRECTORY, "%s: not a directory" % name)
            raise OpFault(NO_SUCH_FILE, "%s: no such file or directory" % name)
        names = sorted(os.listdir(real))
    except OSError as exc:
        raise os_fault(exc, str(name)) from None
    entries: List[Dict[str, Any]] = []
    for entry in names:
        try:
            st = os.lstat(os.path.join(real, entry))
        except OSError:
            continue
        item = _stat_struct(st)
        item["name"] = entry
        entries.append(item)
    return {"path": str(name), "entries": entries}


def stat(box: Sandbox, args: Mapping[str, Any], wrapper_pid: int) -> Dict[str, Any]:
    name = args.get("path", ".") or "."
    real = resolve_path(box, name, wrapper_pid)
    try:
        st = os.stat(real)
    except OSError as exc:
        raise os_fault(exc, str(name)) from None
    out = _stat_struct(st)
    out["path"] = str(name)
    return out
