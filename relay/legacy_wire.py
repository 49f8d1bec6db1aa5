"""What the 2005 JobMon daemon says and understands, as plain functions (no sockets, no state).

The facts come from the daemon itself (JobMonDaemon.py and its Clarens
client ClarensDpe.py, 2005/2006); docs/PROTOCOL.md ("Legacy JobMon daemon")
lists them. What matters here:

* ``JobMon.registerJob`` answers ``[0, text]``; the daemon splits ``text`` on
  single spaces, each word on ``=``, and keeps ``JobMon_reconnect_time``,
  ``JobMon_wakeup_method`` (``TCPbroadcast`` / ``UDPbroadcast``),
  ``JobMon_tcpserver_hostname`` and ``JobMon_tcpserver_port``
  (:func:`settings_text`).
* A wake-up is one message ``jobname=<job> fifo_usercommand=<name>``, no
  newline (:func:`wakeup_message`); the daemon reads at most 1024 bytes.
* ``JobMon.getJobToDo(name)`` answers ``[0, line]``; the daemon checks only
  the first space-separated word against ``ls cat tail head du ps`` and gives
  the whole line to ``/bin/sh``. :func:`command_line` therefore quotes every
  argument and ends the line with a fixed ``2>&1 | head -c N`` that bounds what
  the daemon reads into memory and sends back.
* ``JobMon.outputJobResult(name with .fo → .fi, output)``: stdout as an
  XML-RPC string of raw bytes, or ``Error:`` + stderr when the command wrote
  to stderr (:func:`exec_result`). Raw bytes may not be valid XML;
  :func:`salvage_output_call` reads exactly the body the daemon writes.
* Every text the daemon receives must be ASCII: it writes it to its log with
  Python 2's ASCII codec and dies on anything else (:func:`ascii_text`).
"""

from __future__ import annotations

import re
import secrets
import shlex
from collections.abc import Mapping
from typing import Any

from relay.faults import Fault, RelayFault
from relay.xmlrpc import Call

COMMANDS = ("ls", "cat", "tail", "head", "du", "ps")
TCP_METHOD = "TCPbroadcast"
UDP_METHOD = "UDPbroadcast"
HELLO = b"register"           # all the daemon sends on its wake-up connection
MAX_WAKEUP = 1024             # the daemon's read size for one wake-up
MAX_JOBNAME = 200
MAX_ARGS = 64
MAX_ARG = 4096
ERROR_PREFIX = b"Error:"
RESULT_SUFFIX = ".fi"
REQUEST_SUFFIX = ".fo"

_NAME = re.compile(r"\Ajm[0-9a-f]{20}\.f[oi]\Z")
_OPS_HINT = {
    "read": "it cannot read files piecewise (jobmon tail, jobmon read); use: jobmon exec {job} -- tail -n 50 FILE",
    "list": "it cannot list directories as data; use: jobmon exec {job} -- ls -l",
    "stat": "it cannot stat files as data; use: jobmon exec {job} -- ls -ld PATH",
    "ps": "it has no process-tree call; use: jobmon exec {job} -- ps",
}
#: arguments that would make a command never end (the daemon has no timeout and serves one at a time)
_ENDLESS = {
    "tail": "tail -f / -F / --follow never ends, and the 2005 daemon cannot stop a command",
    "du": "du --files0-from reads file names from a file and may never end",
}


def check_jobname(name: str) -> str | None:
    """Why ``name`` cannot be a legacy job name (the wake-up message splits on spaces and '='), or None."""
    if not name or len(name) > MAX_JOBNAME:
        return f"the job name must be 1-{MAX_JOBNAME} characters"
    if any(c.isspace() or c in "=/\\" or not c.isprintable() for c in name) or not name.isascii():
        return "the job name must be printable ASCII without spaces, '=', '/' or '\\'"
    return None


def settings_text(job: str, method: str, reconnect_time: int, tcp_host: str = "", tcp_port: int = 0) -> str:
    """The text of a successful ``registerJob`` answer (space-separated ``key=value`` words)."""
    words = [f"registered {job}", f"JobMon_reconnect_time={int(reconnect_time)}", f"JobMon_wakeup_method={method}"]
    if method == TCP_METHOD:
        words += [f"JobMon_tcpserver_hostname={tcp_host}", f"JobMon_tcpserver_port={int(tcp_port)}"]
    return " ".join(words)


def parse_settings(text: str) -> dict[str, str]:
    """The daemon's reading of a ``registerJob`` text: single spaces, then ``key=value``."""
    out: dict[str, str] = {}
    for word in text.split(" "):
        key, sep, value = word.partition("=")
        if sep and key.startswith("JobMon_"):
            out[key] = value.split("=")[0]
    return out


def new_request_name() -> str:
    """A fresh, unguessable request name in the daemon's fifo style (``...fo``; it answers ``...fi``)."""
    return f"jm{secrets.token_hex(10)}{REQUEST_SUFFIX}"


def request_of_result(name: str) -> str | None:
    """The request name a result name answers (the daemon replaces ``.fo`` by ``.fi``), or None."""
    if not _NAME.match(name) or not name.endswith(RESULT_SUFFIX):
        return None
    return name[: -len(RESULT_SUFFIX)] + REQUEST_SUFFIX


def is_request_name(name: str) -> bool:
    return bool(_NAME.match(name)) and name.endswith(REQUEST_SUFFIX)


def wakeup_message(job: str, name: str) -> bytes:
    msg = f"jobname={job} fifo_usercommand={name}".encode("ascii")
    assert len(msg) <= MAX_WAKEUP
    return msg


def refusal(job: str, op: str, args: Mapping[str, Any]) -> RelayFault | None:
    """Why the relay refuses request ``op``/``args`` for a job served by a 2005 daemon, or None."""
    who = f"job {job} runs the 2005 JobMon daemon"
    if op != "exec":
        hint = _OPS_HINT.get(op, f"it cannot do {op}").format(job=job)
        return RelayFault(Fault.EXEC_FAILED, f"{who}: {hint}")
    if args.get("shell"):
        return RelayFault(Fault.SHELL_NOT_ALLOWED, f"{who}, which takes argument lists only (no shell)")
    if str(args.get("cwd", ".") or ".") not in (".", "./"):
        return RelayFault(Fault.EXEC_FAILED, f"{who}, which runs commands in its own directory only (no cwd)")
    argv = args.get("argv")
    if not isinstance(argv, list) or not argv or not all(isinstance(a, str) for a in argv):
        return RelayFault(Fault.BAD_PARAMS, "argv must be a non-empty array of strings")
    if argv[0] not in COMMANDS:
        return RelayFault(Fault.EXEC_FAILED,
                          f"{who}, which runs only {', '.join(COMMANDS[:-1])} and {COMMANDS[-1]}; "
                          f"{argv[0]!r} refused")
    if len(argv) > MAX_ARGS or any(len(a.encode("utf-8", "surrogateescape")) > MAX_ARG for a in argv):
        return RelayFault(Fault.BAD_PARAMS, f"{who}: at most {MAX_ARGS} arguments of at most {MAX_ARG} bytes")
    if any("\x00" in a for a in argv):
        return RelayFault(Fault.BAD_PARAMS, "arguments cannot contain NUL")
    if not all(a.isascii() for a in argv):
        return RelayFault(Fault.BAD_PARAMS, f"{who}, which stops (Python 2 cannot log it) on a command line "
                          "that is not ASCII; name the file without non-ASCII characters (ls lists them)")
    if argv[0] == "tail" and any(_follows(a) for a in _options(argv[1:])):
        return RelayFault(Fault.EXEC_FAILED, f"{who}: {_ENDLESS['tail']}; "
                          f"run jobmon exec {job} -- tail -n 50 FILE instead")
    if argv[0] == "du" and any(a.startswith("--f") for a in _options(argv[1:])):
        return RelayFault(Fault.EXEC_FAILED, f"{who}: {_ENDLESS['du']}")
    return None


def _options(args: list[str]) -> list[str]:
    """The option words of an argument list (those before a ``--``)."""
    out = []
    for a in args:
        if a == "--":
            break
        out.append(a)
    return out


def _follows(word: str) -> bool:
    """Would ``word`` make tail follow? (``-f``, ``-F``, ``--follow...``, ``-n5f``, obsolete ``-10f``/``+10f``)."""
    if word.startswith("--"):
        return word.startswith("--f")  # --follow[=how] and its abbreviations
    return word[:1] in "-+" and len(word) > 1 and ("f" in word or "F" in word)


def output_cap(max_output: int, max_body_bytes: int) -> int:
    """Bytes of stdout a legacy command may return: the caller's cap, and never more than fits,
    escaped (one byte can become five: ``&amp;``), in one request body of the relay."""
    room = max(4096, (max_body_bytes - 65536) // 5)
    return max(1, min(int(max_output), room))


def command_line(argv: list[str], cap: int) -> str:
    """The line the daemon hands to ``/bin/sh``: the command word as is (it must be one of
    :data:`COMMANDS`, the daemon's own check), every argument single-quoted so the shell gives
    the command exactly the user's argv, then the fixed ``2>&1 | head -c cap``. Nothing the
    user sent is ever shell syntax.

    Why the fixed tail: the daemon reads all of stdout into memory, then all of stderr (so a
    command that fills the stderr pipe first hangs it forever), and sends it in one request
    body. ``head -c`` bounds both streams and ends endless producers (``cat /dev/zero``)."""
    if argv[0] not in COMMANDS:
        raise ValueError(f"not a legacy command: {argv[0]!r}")
    return " ".join([argv[0], *(shlex.quote(a) for a in argv[1:]), "2>&1", "|", "head", "-c", str(int(cap))])


def exec_result(output: bytes, cap: int, duration: float) -> dict[str, Any]:
    """An ``exec`` result struct from the daemon's answer. The daemon reports no exit status and
    the command's stderr is merged into stdout (:func:`command_line`): ``exit_code`` is 0, unless
    the daemon answered ``Error:`` + stderr (the shell or ``head`` itself failed), then 1."""
    if output.startswith(ERROR_PREFIX):
        stdout, stderr, code = b"", output[len(ERROR_PREFIX):], 1
    else:
        stdout, stderr, code = output, b"", 0
    return {"exit_code": code, "stdout": stdout, "stderr": stderr, "duration": float(duration),
            "truncated": len(stdout) >= cap, "timed_out": False}


# The body Python 2's xmlrpclib writes for outputJobResult(name, output), byte for byte.
_OUTPUT_CALL = re.compile(
    rb"\A<\?xml version='1\.0'\?>\n<methodCall>\n<methodName>JobMon\.outputJobResult</methodName>\n"
    rb"<params>\n<param>\n<value><string>(jm[0-9a-f]{20}\.fi)</string></value>\n</param>\n"
    rb"<param>\n<value><string>([^<]*)</string></value>\n</param>\n</params>\n</methodCall>\n\Z")


def salvage_output_call(body: bytes) -> Call | None:
    """``JobMon.outputJobResult`` as the 2005 daemon sends it when its output is not valid XML
    (bytes that are not UTF-8, control characters): its exact bytes, or None for any other body.

    Python 2's xmlrpclib escapes only ``&``, ``<`` and ``>`` and copies every other byte; the
    output comes back as a str whose undecodable bytes are surrogate escapes
    (``str.encode("utf-8", "surrogateescape")`` gives the bytes again)."""
    m = _OUTPUT_CALL.match(body)
    if m is None:
        return None
    raw = m.group(2)
    if re.search(rb"&(?!amp;|lt;|gt;)", raw):
        return None
    raw = raw.replace(b"&lt;", b"<").replace(b"&gt;", b">").replace(b"&amp;", b"&")
    return Call(method="JobMon.outputJobResult",
                params=(m.group(1).decode("ascii"), raw.decode("utf-8", "surrogateescape")))


def ascii_text(text: str) -> str:
    """``text`` with non-ASCII characters as backslash escapes (what the daemon can log)."""
    return text.encode("ascii", "backslashreplace").decode("ascii")


def output_bytes(output: str) -> bytes:
    """The daemon's output as bytes (undoing :func:`salvage_output_call`'s surrogate escapes)."""
    return output.encode("utf-8", "surrogateescape")
