"""Issue 2: stdin/stdout/stderr are the payload's own. Whatever happens to the relay
(unreachable, slow, shutting down, restarted mid-run), the payload's stderr bytes are
the same wrapped as bare; the daemon's diagnostics go to its log, not to fd 2."""

from __future__ import annotations

import socket
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from jmtest.waiting import wait_for as _wait_for

# Writes on both streams, waits for the test to say "stop", writes more, exits 4.
PAYLOAD = ("echo out-1; echo err-1 >&2; printf 'no-newline' >&2; "
           "i=0; while [ ! -e stop ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done; "
           "echo err-2 >&2; echo out-2; exit 4")




@pytest.fixture
def free_url() -> str:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"https://127.0.0.1:{port}/clarens"


@pytest.fixture
def silent_url() -> Iterator[tuple[str, list[socket.socket]]]:
    """Accepts connections and never answers (a relay that hangs)."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    srv.settimeout(0.2)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                held.append(srv.accept()[0])
            except OSError:
                continue

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    yield f"https://127.0.0.1:{srv.getsockname()[1]}/clarens", held
    stop.set()
    t.join(5)
    for c in held:
        c.close()
    srv.close()


def _bare(box: Path, env: dict[str, str]) -> subprocess.CompletedProcess[bytes]:
    (box / "stop").touch()
    try:
        return subprocess.run(["sh", "-c", PAYLOAD], cwd=str(box), env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    finally:
        (box / "stop").unlink()


def _start(pyz: Path, box: Path, env: dict[str, str], *opts: str,
           stderr: Any = subprocess.PIPE, python: str = "python3") -> subprocess.Popen[bytes]:
    return subprocess.Popen([python, str(pyz), *opts, "--", "sh", "-c", PAYLOAD],
                            cwd=str(box), env=env, stdout=subprocess.PIPE, stderr=stderr)


def _finish(proc: subprocess.Popen[bytes], box: Path) -> tuple[bytes, bytes]:
    (box / "stop").touch()
    try:
        return proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize("case", ["unreachable", "slow", "shutting_down", "restarted"])
def test_payload_stderr_identical_wrapped_and_bare(
        case: str, python_ends: str, wrapper_pyz: Path, relay_env: dict[str, str],
        make_relay: Callable[..., Any],
        free_url: str, silent_url: tuple[str, list[socket.socket]], tmp_path: Path) -> None:
    box = tmp_path / "scratch"
    box.mkdir()
    log_file = tmp_path / "daemon.log"       # kept outside the sandbox to look at it
    env = dict(relay_env, JOBMON_LOG_FILE=str(log_file))
    bare = _bare(box, env)
    relays: list[Any] = []
    if case == "unreachable":
        env["JOBMON_RELAY_URL"] = free_url
    elif case == "slow":
        env["JOBMON_RELAY_URL"] = silent_url[0]
    else:
        relays.append(make_relay())
        env["JOBMON_RELAY_URL"] = relays[0].url
    proc = _start(wrapper_pyz, box, env, python=python_ends)
    try:
        if case == "unreachable":
            _wait_for(lambda: log_file.exists() and b"not reachable" in log_file.read_bytes())
        elif case == "slow":
            _wait_for(lambda: silent_url[1])    # the daemon is stuck in its TLS handshake
        elif case == "shutting_down":
            relay = relays[0]
            assert relay.registered.wait(30)
            relay.shutting_down.set()          # every call now faults 998
            _wait_for(lambda: any(m == "jobmon.poll" for m, _p, _a in relay.calls[-3:])
                      and log_file.exists() and b"shutting down" in log_file.read_bytes())
            relay.forget_sessions()            # ... and comes back without our session
            relay.shutting_down.clear()
            _wait_for(lambda: len(relay.registers) >= 2)
        elif case == "restarted":
            old = relays[0]
            assert old.registered.wait(30)
            port = old.port
            old.close()                         # connections refused / cut mid-TLS
            _wait_for(lambda: log_file.exists() and b"not reachable" in log_file.read_bytes())
            relays.append(make_relay(port=port))
            assert relays[1].registered.wait(60)  # the daemon came back by itself
        out, err = _finish(proc, box)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == bare.returncode == 4
    assert out == bare.stdout == b"out-1\nout-2\n"
    assert err == bare.stderr == b"err-1\nno-newlineerr-2\n"
    if case != "slow":
        assert log_file.exists() and b"jobmon: " in log_file.read_bytes()
    assert not (box / ".jobmon").exists()


def test_default_log_lives_in_the_sandbox_during_the_run_only(
        wrapper_pyz: Path, relay_env: dict[str, str], free_url: str, tmp_path: Path) -> None:
    box = tmp_path / "scratch"
    box.mkdir()
    env = dict(relay_env, JOBMON_RELAY_URL=free_url)
    bare = _bare(box, env)
    proc = _start(wrapper_pyz, box, env)
    log_file = box / ".jobmon" / "daemon.log"
    try:
        text = _wait_for(lambda: log_file.exists() and log_file.read_bytes())
        assert b"jobmon: relay " + free_url.encode() + b" not reachable" in text
        assert (box / ".jobmon").stat().st_mode & 0o077 == 0
        out, err = _finish(proc, box)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert (proc.returncode, out, err) == (bare.returncode, bare.stdout, bare.stderr)
    assert not (box / ".jobmon").exists()    # never transferred back with the output


def test_a_jobmon_directory_of_the_job_is_left_alone(
        wrapper_pyz: Path, relay_env: dict[str, str], free_url: str, tmp_path: Path) -> None:
    box = tmp_path / "scratch"
    (box / ".jobmon").mkdir(parents=True)
    (box / ".jobmon" / "mine.txt").write_text("the job's own file\n")
    proc = _start(wrapper_pyz, box, dict(relay_env, JOBMON_RELAY_URL=free_url))
    _wait_for(lambda: (box / ".jobmon" / "daemon.log").exists())
    _finish(proc, box)
    assert proc.returncode == 4
    assert (box / ".jobmon" / "mine.txt").read_text() == "the job's own file\n"
    assert not (box / ".jobmon" / "daemon.log").exists()


@pytest.mark.parametrize("how", ["-v", "JOBMON_DEBUG"])
def test_verbose_puts_diagnostics_on_stderr(how: str, wrapper_pyz: Path,
                                            relay_env: dict[str, str], free_url: str,
                                            tmp_path: Path) -> None:
    box = tmp_path / "scratch"
    box.mkdir()
    env = dict(relay_env, JOBMON_RELAY_URL=free_url)
    opts: tuple[str, ...] = ()
    if how == "-v":
        opts = ("-v",)
    else:
        env["JOBMON_DEBUG"] = "1"
    err_file = tmp_path / "stderr"
    with open(err_file, "wb") as err_out:
        proc = _start(wrapper_pyz, box, env, *opts, stderr=err_out)
    line = b"jobmon: relay " + free_url.encode() + b" not reachable"
    _wait_for(lambda: line in err_file.read_bytes())
    out, _ = _finish(proc, box)
    assert proc.returncode == 4 and out == b"out-1\nout-2\n"
    assert err_file.read_bytes().startswith(b"err-1\nno-newline")
    assert not (box / ".jobmon").exists()


def test_no_relay_line_is_the_only_one(wrapper_pyz: Path, relay_env: dict[str, str],
                                       tmp_path: Path) -> None:
    box = tmp_path / "scratch"
    box.mkdir()
    bare = _bare(box, relay_env)
    proc = _start(wrapper_pyz, box, relay_env)
    out, err = _finish(proc, box)
    assert proc.returncode == 4 and out == bare.stdout
    assert err == b"jobmon: no relay configured; running the payload only\n" + bare.stderr
