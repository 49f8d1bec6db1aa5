"""exec / read / list / stat in the sandbox, and the process tree."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from jobmon_wrapper import ops, procs, protocol
from jobmon_wrapper.faults import (
    EXEC_FAILED,
    NO_SUCH_FILE,
    NOT_A_DIRECTORY,
    PATH_OUTSIDE_SANDBOX,
    SHELL_NOT_ALLOWED,
    OpFault,
)
from jobmon_wrapper.sandbox import Sandbox


@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = tmp_path / "scratch"
    r.mkdir()
    (r / "data.txt").write_bytes(b"0123456789")
    (r / "dir").mkdir()
    (r / "dir" / "a").write_text("a")
    os.symlink("data.txt", str(r / "link"))
    return r


@pytest.fixture
def box(root: Path) -> Sandbox:
    return Sandbox(str(root))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is dead for our purposes
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0] != "Z"


def test_exec_argv_returns_code_and_bytes(box: Sandbox, root: Path) -> None:
    r = ops.run_exec(box, {"argv": ["sh", "-c", "pwd; printf 'e\\377' >&2; exit 4"]})
    assert r["exit_code"] == 4 and "signal" not in r
    assert r["stdout"].data == str(root).encode() + b"\n"
    assert r["stderr"].data == b"e\xff"
    assert r["truncated"] is False and r["timed_out"] is False
    assert r["duration"] >= 0


def test_exec_has_a_path_even_without_one(box: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PATH", raising=False)
    r = ops.run_exec(box, {"argv": ["ls", "dir"]})
    assert r["exit_code"] == 0 and r["stdout"].data == b"a\n"


def test_exec_shell_and_site_policy(box: Sandbox) -> None:
    r = ops.run_exec(box, {"argv": ["echo $((6*7)) | cat"], "shell": True})
    assert r["stdout"].data == b"42\n"
    with pytest.raises(OpFault) as info:
        ops.run_exec(box, {"argv": ["echo hi"], "shell": True}, allow_shell=False)
    assert info.value.code == SHELL_NOT_ALLOWED


def test_exec_failures(box: Sandbox) -> None:
    with pytest.raises(OpFault) as info:
        ops.run_exec(box, {"argv": ["no-such-command-xyz"]})
    assert info.value.code == EXEC_FAILED and "no-such-command-xyz" in info.value.message
    with pytest.raises(OpFault) as info:
        ops.run_exec(box, {"argv": ["ls"], "cwd": "../.."})
    assert info.value.code == PATH_OUTSIDE_SANDBOX
    with pytest.raises(OpFault) as info:
        ops.run_exec(box, {"argv": ["ls"], "cwd": "data.txt"})
    assert info.value.code == NOT_A_DIRECTORY


def test_exec_signalled_command_reports_signal(box: Sandbox) -> None:
    r = ops.run_exec(box, {"argv": ["sh", "-c", "kill -TERM $$"]})
    assert r["signal"] == signal.SIGTERM and "exit_code" not in r


def test_exec_timeout_kills_whole_group_including_orphans(box: Sandbox, root: Path) -> None:
    # The shell starts a background child that would outlive it, prints its pid, then hangs.
    script = "sleep 300 & echo $!; sh -c 'sleep 300' & echo $!; wait"
    r = ops.run_exec(box, {"argv": ["sh", "-c", script], "timeout": 1.0})
    assert r["timed_out"] is True
    assert r["signal"] == signal.SIGKILL
    pids = [int(x) for x in r["stdout"].data.split()]
    assert len(pids) == 2
    deadline = time.time() + 10
    while any(_alive(p) for p in pids) and time.time() < deadline:
        time.sleep(0.05)
    assert not any(_alive(p) for p in pids)


def test_exec_flood_is_capped_and_flagged(box: Sandbox) -> None:
    r = ops.run_exec(box, {"argv": ["sh", "-c", "head -c 5000000 /dev/zero; echo done >&2"],
                           "max_output": 100000.0})
    assert r["exit_code"] == 0
    assert r["truncated"] is True
    assert r["stdout"].data == b"\0" * 100000
    assert r["stderr"].data == b"done\n"
    default = ops.run_exec(box, {"argv": ["head", "-c", "3000000", "/dev/zero"]})
    assert len(default["stdout"].data) == 1 << 20 and default["truncated"] is True


def test_exec_returns_when_background_child_keeps_pipe(box: Sandbox) -> None:
    r = ops.run_exec(box, {"argv": ["sh", "-c", "setsid sleep 30 & echo quick"],
                           "timeout": 60.0})
    assert r["exit_code"] == 0 and r["stdout"].data == b"quick\n"
    assert r["timed_out"] is False


def test_cancel_kills_a_running_exec(box: Sandbox, tmp_path: Path) -> None:
    ctx = protocol.Context(str(box.root), os.getpid())
    out: dict[str, Any] = {}
    t = threading.Thread(target=lambda: out.update(r=protocol.handle(
        ctx, {"id": "x1", "op": "exec", "args": {"argv": ["sleep", "300"]}})))
    t.start()
    deadline = time.time() + 10
    while not ctx.cancel("x1") and time.time() < deadline:
        time.sleep(0.02)
    t.join(20)
    assert out["r"]["signal"] == signal.SIGKILL and out["r"]["timed_out"] is False
    assert protocol.handle(ctx, {"id": "c", "op": "cancel", "args": {"request": "x1"}}) is None


def test_read_offsets(box: Sandbox) -> None:
    r = ops.read(box, {"path": "data.txt", "offset": 2.0, "length": 3.0}, os.getpid())
    assert r["data"].data == b"234" and r["offset"] == 2 and r["next_offset"] == 5
    assert r["size"] == 10 and r["eof"] is False
    tail = ops.read(box, {"path": "data.txt", "offset": -4.0}, os.getpid())
    assert tail["data"].data == b"6789" and tail["offset"] == 6 and tail["eof"] is True
    end = ops.read(box, {"path": "data.txt", "offset": 10.0}, os.getpid())
    assert end["data"].data == b"" and end["eof"] is True


def test_read_waits_for_growth(box: Sandbox, root: Path) -> None:
    started = threading.Event()
    out: dict[str, Any] = {}

    def reader() -> None:
        started.set()
        out["r"] = ops.read(box, {"path": "data.txt", "offset": 10.0, "wait": 30.0}, os.getpid())

    t = threading.Thread(target=reader)
    t.start()
    started.wait()
    with open(root / "data.txt", "ab") as f:
        f.write(b"NEW")
    t.join(30)
    assert out["r"]["data"].data == b"NEW" and out["r"]["offset"] == 10


def test_read_errors(box: Sandbox) -> None:
    for path, code in (("nope", NO_SUCH_FILE), ("dir", NOT_A_DIRECTORY),
                       ("../x", PATH_OUTSIDE_SANDBOX), ("/etc/passwd", PATH_OUTSIDE_SANDBOX)):
        with pytest.raises(OpFault) as info:
            ops.read(box, {"path": path}, os.getpid())
        assert info.value.code == code, path


def test_payload_stdout_and_stderr_by_name(box: Sandbox, root: Path) -> None:
    out_file, err_file = root / "_condor_stdout", root / "_condor_stderr"
    with open(out_file, "wb") as o, open(err_file, "wb") as e:
        proc = subprocess.Popen(["sh", "-c", "echo to-out; echo to-err >&2; exec sleep 60"],
                                stdout=o, stderr=e)
    try:
        deadline = time.time() + 10
        while out_file.stat().st_size < 7 and time.time() < deadline:
            time.sleep(0.02)
        r = ops.read(box, {"path": "@stdout", "wait": 10.0}, proc.pid)
        assert r["data"].data == b"to-out\n" and r["path"] == "@stdout"
        r = ops.read(box, {"path": "@stderr", "wait": 10.0}, proc.pid)
        assert r["data"].data == b"to-err\n"
    finally:
        proc.kill()
        proc.wait()
    # our own stdout under pytest is not a file in the sandbox
    with pytest.raises(OpFault) as info:
        ops.read(box, {"path": "@stdout"}, os.getpid())
    assert info.value.code in (NO_SUCH_FILE, PATH_OUTSIDE_SANDBOX)


def test_list_and_stat(box: Sandbox) -> None:
    r = ops.listdir(box, {"path": "."}, os.getpid())
    by_name = {e["name"]: e for e in r["entries"]}
    assert set(by_name) == {"data.txt", "dir", "link"}
    assert by_name["data.txt"]["type"] == "file" and by_name["data.txt"]["size"] == 10
    assert by_name["dir"]["type"] == "dir" and by_name["link"]["type"] == "link"
    s = ops.stat(box, {"path": "link"}, os.getpid())
    assert s["type"] == "file" and s["size"] == 10 and s["path"] == "link"
    with pytest.raises(OpFault) as info:
        ops.listdir(box, {"path": "data.txt"}, os.getpid())
    assert info.value.code == NOT_A_DIRECTORY
    with pytest.raises(OpFault) as info:
        ops.stat(box, {"path": "missing"}, os.getpid())
    assert info.value.code == NO_SUCH_FILE


def test_process_tree_from_proc() -> None:
    proc = subprocess.Popen(["sh", "-c", "sleep 60 & sleep 61; wait"])
    try:
        deadline = time.time() + 10
        while len(procs.tree(proc.pid)) < 3 and time.time() < deadline:
            time.sleep(0.02)
        tree = procs.ps(proc.pid)["processes"]
        assert tree[0]["pid"] == proc.pid
        cmds = sorted(p["cmdline"] for p in tree[1:])
        assert cmds == ["sleep 60", "sleep 61"]
        assert all(p["ppid"] == proc.pid for p in tree[1:])
        assert all(p["rss_kb"] > 0 and p["state"] in "RSD" for p in tree)
        res = procs.resources(proc.pid)
        assert res["nprocs"] == 3 and res["rss_kb"] > 0
    finally:
        proc.kill()
        proc.wait()


def _handle(ctx: protocol.Context, req: dict[str, Any]) -> dict[str, Any]:
    out = protocol.handle(ctx, req)
    assert out is not None
    return out


def test_protocol_unknown_op_and_faults_as_results(root: Path) -> None:
    ctx = protocol.Context(str(root), os.getpid())
    assert _handle(ctx, {"id": "1", "op": "frobnicate", "args": {}})["fault"] == EXEC_FAILED
    bad = _handle(ctx, {"id": "2", "op": "read", "args": {"path": "../../etc"}})
    assert bad["fault"] == PATH_OUTSIDE_SANDBOX and "sandbox" in bad["message"]
    ps = _handle(ctx, {"id": "3", "op": "ps", "args": {}})
    assert ps["processes"][0]["pid"] == os.getpid()
    assert "pytest" in ps["processes"][0]["cmdline"]
