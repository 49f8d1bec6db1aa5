"""The 2005 daemon's wire facts as plain functions (relay/legacy_wire.py), with the real /bin/sh
and the real Python 2.7 xmlrpclib where the daemon would use them."""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

import pytest
from jmtest.legacy import python27

from relay import legacy_wire as wire
from relay.faults import Fault

NASTY = ["-l", "a b", "; touch pwned", "$(touch pwned)", "`touch pwned`", "a'b", "x\ny", "*", "~",
         "$HOME", "|", "&& touch pwned", "", " ", "\t", "\\", "'", '"', "!", "#x", "{a,b}", "2>&1",
         "> pwned", "-- ", "--", "%s", "\x1b[31m"]


def test_settings_text_is_what_the_daemon_parses() -> None:
    text = wire.settings_text("12.3", wire.TCP_METHOD, 300, "relay.example.org", 2000)
    assert wire.parse_settings(text) == {
        "JobMon_reconnect_time": "300", "JobMon_wakeup_method": "TCPbroadcast",
        "JobMon_tcpserver_hostname": "relay.example.org", "JobMon_tcpserver_port": "2000"}
    assert "\n" not in text and "  " not in text   # the daemon splits on single spaces
    udp = wire.parse_settings(wire.settings_text("x", wire.UDP_METHOD, 60))
    assert udp == {"JobMon_reconnect_time": "60", "JobMon_wakeup_method": "UDPbroadcast"}


def test_wakeup_message_and_names() -> None:
    name = wire.new_request_name()
    assert wire.is_request_name(name) and name.endswith(".fo") and name.count(".fo") == 1
    assert wire.new_request_name() != name
    msg = wire.wakeup_message("ShREEK-job-7", name)
    assert msg == f"jobname=ShREEK-job-7 fifo_usercommand={name}".encode()
    assert len(wire.wakeup_message("j" * wire.MAX_JOBNAME, name)) <= wire.MAX_WAKEUP
    answer = name.replace(".fo", ".fi")    # what the daemon does
    assert wire.request_of_result(answer) == name
    assert wire.request_of_result(name) is None and wire.request_of_result("../x.fi") is None


@pytest.mark.parametrize("name, ok", [("12.3", True), ("ShREEK-JobMonInterface-wn1-4242", True),
                                      ("a b", False), ("a=b", False), ("", False), ("x" * 201, False),
                                      ("café", False), ("a/b", False), ("tab\there", False)])
def test_job_names(name: str, ok: bool) -> None:
    assert (wire.check_jobname(name) is None) is ok


def _fake_command(cmd: str, tmp_path: Path) -> tuple[dict[str, str], Path]:
    """A PATH whose ``cmd`` records its argv (NUL-separated, one file per run) instead of running."""
    bindir, runs = tmp_path / "bin", tmp_path / "runs"
    bindir.mkdir()
    runs.mkdir()
    script = bindir / cmd
    script.write_text("#!/bin/sh\nprintf '%s\\0' \"$@\" > \"$(mktemp \"$RUNS/argv.XXXXXX\")\"\n"
                      "printf 'ran\\n'\n")
    script.chmod(0o755)
    return dict(os.environ, PATH=f"{bindir}:{os.environ['PATH']}", RUNS=str(runs)), runs


@pytest.mark.parametrize("cmd", wire.COMMANDS)
def test_command_line_gives_the_shell_exactly_the_users_argv(cmd: str, tmp_path: Path) -> None:
    env, runs = _fake_command(cmd, tmp_path)
    argv = [cmd, *NASTY]
    line = wire.command_line(argv, 4096)
    assert line.split(" ")[0] == cmd          # the daemon's only check passes
    assert line.isascii()
    # the daemon hands the whole line to /bin/sh (popen2.popen3), in its own directory
    res = subprocess.run(["/bin/sh", "-c", line], cwd=tmp_path, env=env, capture_output=True, timeout=10)
    assert res.stdout == b"ran\n" and res.stderr == b""
    seen = [f.read_bytes().split(b"\0")[:-1] for f in runs.iterdir()]
    assert [a.encode() for a in NASTY] in seen
    assert len(seen) == (2 if cmd == "head" else 1)   # the fixed "| head -c N" runs head too
    assert not (tmp_path / "pwned").exists()


def test_command_line_bounds_the_output(tmp_path: Path) -> None:
    (tmp_path / "big").write_bytes(b"x" * 100_000)
    line = wire.command_line(["cat", "big", "missing"], 1000)
    res = subprocess.run(["/bin/sh", "-c", line], cwd=tmp_path, capture_output=True, timeout=10)
    assert res.stdout == b"x" * 1000 and res.stderr == b""   # stderr merged, both bounded
    line = wire.command_line(["cat", "missing"], 1000)
    res = subprocess.run(["/bin/sh", "-c", line], cwd=tmp_path, capture_output=True, timeout=10)
    assert b"missing" in res.stdout and res.stderr == b""
    with pytest.raises(ValueError):
        wire.command_line(["rm", "-rf", "/"], 10)


def test_output_cap_fits_the_body_limit() -> None:
    assert wire.output_cap(1 << 20, 1 << 20) * 5 + 65536 <= 1 << 20
    assert wire.output_cap(100, 1 << 20) == 100
    assert wire.output_cap(1 << 30, 64 << 20) == (64 << 20) // 5 - 65536 // 5


@pytest.mark.parametrize("op, args, code, words", [
    ("exec", {"argv": ["rm", "-rf", "."]}, Fault.EXEC_FAILED, "runs only ls, cat, tail, head, du and ps; 'rm'"),
    ("exec", {"argv": ["/bin/ls"]}, Fault.EXEC_FAILED, "'/bin/ls' refused"),
    ("exec", {"argv": ["help"]}, Fault.EXEC_FAILED, "'help' refused"),
    ("exec", {"argv": ["ls"], "shell": True}, Fault.SHELL_NOT_ALLOWED, "no shell"),
    ("exec", {"argv": ["ls"], "cwd": "sub"}, Fault.EXEC_FAILED, "no cwd"),
    ("exec", {"argv": ["tail", "-f", "log"]}, Fault.EXEC_FAILED, "never ends"),
    ("exec", {"argv": ["tail", "-n5f", "log"]}, Fault.EXEC_FAILED, "never ends"),
    ("exec", {"argv": ["tail", "-10f", "log"]}, Fault.EXEC_FAILED, "never ends"),
    ("exec", {"argv": ["tail", "--follow=name", "log"]}, Fault.EXEC_FAILED, "never ends"),
    ("exec", {"argv": ["tail", "-F", "log"]}, Fault.EXEC_FAILED, "never ends"),
    ("exec", {"argv": ["du", "--files0-from=/dev/zero"]}, Fault.EXEC_FAILED, "may never end"),
    ("exec", {"argv": ["cat", "café"]}, Fault.BAD_PARAMS, "not ASCII"),
    ("exec", {"argv": ["ls"] + ["x"] * 64}, Fault.BAD_PARAMS, "at most 64 arguments"),
    ("read", {"path": "@stdout"}, Fault.EXEC_FAILED, "tail -n 50 FILE"),
    ("list", {"path": "."}, Fault.EXEC_FAILED, "-- ls -l"),
    ("stat", {"path": "x"}, Fault.EXEC_FAILED, "ls -ld PATH"),
    ("ps", {}, Fault.EXEC_FAILED, "-- ps"),
])
def test_refusals_name_what_to_do(op: str, args: dict, code: int, words: str) -> None:
    fault = wire.refusal("7.0", op, args)
    assert fault is not None and fault.code == code, fault
    assert "job 7.0 runs the 2005 JobMon daemon" in fault.message or code == Fault.BAD_PARAMS
    assert words in fault.message


@pytest.mark.parametrize("argv", [["ls", "-l"], ["tail", "-n", "20", "log"], ["tail", "--", "-f"],
                                  ["head", "-c", "10", "f"], ["du", "-sh", "."], ["ps", "-ef"],
                                  ["cat", "a file", "; rm -rf ~"], ["tail", "-c", "-5", "x"]])
def test_what_a_legacy_daemon_may_run(argv: list[str]) -> None:
    assert wire.refusal("7.0", "exec", {"argv": argv, "shell": False, "cwd": "."}) is None


def test_exec_result_from_the_daemons_answer() -> None:
    ok = wire.exec_result(b"total 0\n", 100, 0.5)
    assert ok == {"exit_code": 0, "stdout": b"total 0\n", "stderr": b"", "duration": 0.5,
                  "truncated": False, "timed_out": False}
    err = wire.exec_result(b"Error:sh: 1: head: not found\n", 100, 0.1)
    assert err["exit_code"] == 1 and err["stdout"] == b"" and err["stderr"] == b"sh: 1: head: not found\n"
    assert wire.exec_result(b"x" * 100, 100, 0.0)["truncated"] is True


def test_salvage_reads_python2_xmlrpclib_bodies_byte_for_byte(tmp_path: Path) -> None:
    """The 2005 daemon sends command output as a str of raw bytes: not always valid XML."""
    name = wire.new_request_name().replace(".fo", ".fi")
    raw = b"a\xff\x01b&amp;<>\r\n\x00z" + bytes(range(256))
    data = tmp_path / "raw"
    data.write_bytes(raw)
    script = ("import sys, xmlrpclib\n"
              "out = open(sys.argv[2], 'rb').read()\n"
              "sys.stdout.write(xmlrpclib.dumps((sys.argv[1], out), 'JobMon.outputJobResult'))\n")
    body = subprocess.run([python27(), "-c", script, name, str(data)], capture_output=True, check=True).stdout
    call = wire.salvage_output_call(body)
    assert call is not None and call.method == "JobMon.outputJobResult"
    assert call.params[0] == name and wire.output_bytes(call.params[1]) == raw
    # anything else is not salvaged: other methods, other shapes, stray markup
    assert wire.salvage_output_call(body.replace(b"outputJobResult", b"registerJob")) is None
    assert wire.salvage_output_call(body.replace(b"</methodCall>", b"</methodCall><x/>")) is None
    assert wire.salvage_output_call(body.replace(b"&amp;", b"&bogus;", 1)) is None
    assert wire.salvage_output_call(b"<?xml version='1.0'?>\n<methodCall/>") is None


def test_ascii_text_for_the_daemons_log() -> None:
    assert wire.ascii_text("job 1.0 belongs to /CN=Jörg") == "job 1.0 belongs to /CN=J\\xf6rg"
    assert shlex.split(wire.command_line(["ls", "x y"], 5))[:2] == ["ls", "x y"]
