"""The daemon's side of docs/PROTOCOL.md as pure functions: request -> result.

No sockets here: ``handle(ctx, request)`` takes one request struct from
``jobmon.poll`` and returns the struct to post with ``jobmon.result`` (or
None for ``cancel``, which posts nothing).
"""

import os
import socket
import sys
import threading
import time
import xmlrpc.client
from typing import Any, Dict, List, Optional, Tuple

from jobmon_wrapper import __version__, ops, procs
from jobmon_wrapper.faults import EXEC_FAILED, OpFault
from jobmon_wrapper.sandbox import Sandbox

CAPABILITIES = ["exec", "read", "list", "stat", "ps", "cancel", "watch"]
DEFAULT_MAX_BODY = 1 << 20   # the relay's default max_body_bytes
_ENVELOPE = 16384            # room for the XML around the data


class Context(object):
    """What the operations need to know about the job they serve."""

    def __init__(self, sandbox: str, wrapper_pid: int, payload_pid: Optional[int] = None,
                 allow_shell: bool = True, job_id: Optional[str] = None) -> None:
        self.box = Sandbox(sandbox)
        self.job_id = job_id
        self.wrapper_pid = wrapper_pid
        self.payload_pid = payload_pid
        self.allow_shell = allow_shell
        self.stop = threading.Event()
        self._lock = threading.Lock()
        self._running: Dict[str, ops.Running] = {}

    def track(self, request_id: str, running: "ops.Running") -> None:
        with self._lock:
            self._running[request_id] = running

    def untrack(self, request_id: str) -> None:
        with self._lock:
            self._running.pop(request_id, None)

    def cancel(self, request_id: str) -> bool:
        with self._lock:
            running = self._running.get(request_id)
        if running is None:
            return False
        running.kill("cancel")
        return True


def handle(ctx: Context, request: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    """Run one request; faults become ``{"fault": code, "message": text}``."""
    rid = str(request.get("id", ""))
    op = request.get("op")
    args = request.get("args") or {}
    if not isinstance(args, dict):
        args = {}
    try:
        if op == "exec":
            try:
                return ops.run_exec(ctx.box, args, ctx.allow_shell,
                                    register=lambda r: ctx.track(rid, r), job_id=ctx.job_id)
            finally:
                ctx.untrack(rid)
        if op == "read":
            return ops.read(ctx.box, args, ctx.wrapper_pid, ctx.stop)
        if op == "list":
            return ops.listdir(ctx.box, args, ctx.wrapper_pid)
        if op == "stat":
            return ops.stat(ctx.box, args, ctx.wrapper_pid)
        if op == "ps":
            return procs.ps(ctx.wrapper_pid)
        if op == "cancel":
            target = args.get("request")
            if isinstance(target, str):
                ctx.cancel(target)
            return None
        raise OpFault(EXEC_FAILED, "unknown operation %r" % (op,))
    except OpFault as fault:
        return fault.as_result()


def register_info(job: str, sandbox: str, payload_pid: int, start_time: float,
                  argv: List[str], user: Optional[str]) -> Dict[str, Any]:
    """The ``info`` struct of ``jobmon.register``."""
    if not user:
        try:
            import pwd

            user = pwd.getpwuid(os.getuid()).pw_name
        except (ImportError, KeyError):
            user = str(os.getuid())
    return {
        "job": job,
        "host": socket.getfqdn(),
        "sandbox": sandbox,
        "pid": payload_pid,
        "wrapper_pid": os.getpid(),
        "wrapper_version": __version__,
        "start_time": float(start_time),
        "argv": list(argv),
        "user": user,
        "python": "%d.%d.%d" % sys.version_info[:3],
        "capabilities": list(CAPABILITIES),
    }


def heartbeat_status(ctx: Context, progress: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    status: Dict[str, Any] = {"time": time.time()}
    if progress:
        status["progress"] = progress
    root = ctx.payload_pid if ctx.payload_pid is not None else ctx.wrapper_pid
    try:
        status["resources"] = procs.resources(root)
    except OSError:
        pass
    return status


def progress_status(progress: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    """A live progress report for a watched job: the heartbeat's struct without resource use."""
    status: Dict[str, Any] = {"time": time.time()}
    if progress:
        status["progress"] = progress
    return status


def encoded_size(*params: Any) -> int:
    return len(xmlrpc.client.dumps(tuple(params), "jobmon.result").encode("utf-8"))


def fit_result(result: Dict[str, Any], max_body: int = DEFAULT_MAX_BODY) -> Dict[str, Any]:
    """Trim an exec or read result so that posting it stays under the relay's body cap.

    Base64 makes bytes ~1.35 times larger, so 1 MiB of output cannot travel in a
    1 MiB request. exec: both streams are cut (stderr keeps up to half of the
    room) and ``truncated`` is set. read: less data is returned and
    ``next_offset`` / ``eof`` say where to continue.
    """
    if encoded_size(result) <= max_body:
        return result
    room = max(0, int((max_body - _ENVELOPE) * 3 // 4 * 76 // 77))
    out = dict(result)
    if isinstance(out.get("data"), xmlrpc.client.Binary):
        data = out["data"].data[:room]
        out["data"] = xmlrpc.client.Binary(data)
        nxt = float(out.get("offset", 0.0)) + len(data)
        out["next_offset"] = nxt
        out["eof"] = nxt >= float(out.get("size", nxt))
        return out
    streams = [k for k in ("stdout", "stderr") if isinstance(out.get(k), xmlrpc.client.Binary)]
    if streams:
        err = out["stderr"].data if "stderr" in streams else b""
        keep_err = err[:min(len(err), room // 2)]
        keep_out = out["stdout"].data[:room - len(keep_err)] if "stdout" in streams else b""
        if "stdout" in streams:
            out["stdout"] = xmlrpc.client.Binary(keep_out)
        if "stderr" in streams:
            out["stderr"] = xmlrpc.client.Binary(keep_err)
        out["truncated"] = True
    return out


def split_results(results: List[Dict[str, Any]],
                   max_body: int) -> Tuple[List[Dict[str, Any]], List[Dict[str, Any]]]:
    """Results that fit together in one poll body, and the rest (posted on their own)."""
    room = max_body - 4096
    fit: List[Dict[str, Any]] = []
    rest: List[Dict[str, Any]] = []
    used = 0
    for item in results:
        size = encoded_size(item)
        if used + size <= room:
            fit.append(item)
            used += size
        else:
            rest.append(item)
    return fit, rest
