"""Whatever the relay or the daemon does, the payload's output and exit are unchanged
and the wrapper ends within 2 s of the payload's end."""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

# The payload writes output on both streams, records the moment it ends, and exits 5.
PAYLOAD = ("echo line one; printf 'partial'; echo to-stderr >&2; "
           "python3 -c 'import time; print(repr(time.time()))' > \"$END_MARK\"; exit 5")


@pytest.fixture
def closed_port() -> str:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"https://127.0.0.1:{port}/clarens"


@pytest.fixture
def silent_server() -> Iterator[str]:
    """Accepts connections and never says a word."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
                held.append(conn)
            except OSError:
                continue

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    yield f"https://127.0.0.1:{srv.getsockname()[1]}/clarens"
    stop.set()
    t.join(5)
    for c in held:
        c.close()
    srv.close()


def _run(argv: list[str], env: dict[str, str], cwd: Path) -> tuple[Any, float]:
    mark = cwd / "end_mark"
    env = dict(env, END_MARK=str(mark))
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                       cwd=str(cwd), timeout=60)
    exited = time.time()
    return r, exited - float(mark.read_text())


def _check(python: str, pyz: Path, env: dict[str, str], cwd: Path) -> None:
    bare, _ = _run(["sh", "-c", PAYLOAD], env, cwd)
    wrapped, lag = _run([python, str(pyz), "--", "sh", "-c", PAYLOAD], env, cwd)
    assert bare.returncode == 5
    assert wrapped.returncode == bare.returncode
    assert wrapped.stdout == bare.stdout == b"line one\npartial"
    assert wrapped.stderr == bare.stderr == b"to-stderr\n"   # diagnostics go to the log
    assert lag < 2.0, f"wrapper ended {lag:.2f} s after the payload"


@pytest.mark.parametrize("case", ["unreachable", "silent", "garbage", "hang_finish", "crash"])
def test_relay_trouble_does_not_touch_the_payload(
        case: str, python_ends: str, wrapper_pyz: Path, relay_env: dict[str, str],
        closed_port: str, silent_server: str, make_relay: Callable[[str], Any],
        tmp_path: Path) -> None:
    env = dict(relay_env)
    relay = None
    if case == "unreachable":
        env["JOBMON_RELAY_URL"] = closed_port
    elif case == "silent":
        env["JOBMON_RELAY_URL"] = silent_server
    else:
        relay = make_relay({"crash": "ok"}.get(case, case))
        env["JOBMON_RELAY_URL"] = relay.url
        if case == "crash":
            env["JOBMON_TEST_CRASH"] = "jobmon-poll"
    _check(python_ends, wrapper_pyz, env, tmp_path)
    if case == "hang_finish":
        assert relay is not None and relay.registered.is_set()
    if case == "crash":
        assert relay is not None and not relay.registered.is_set()


def test_garbage_relay_is_reported_once(wrapper_pyz: Path, relay_env: dict[str, str],
                                        make_relay: Callable[[str], Any],
                                        tmp_path: Path) -> None:
    relay = make_relay("garbage")
    log_file = tmp_path / "daemon.log"
    env = dict(relay_env, JOBMON_RELAY_URL=relay.url, JOBMON_LOG_FILE=str(log_file))
    script = "i=0; while [ $i -lt 100 ] && [ ! -e stop ]; do sleep 0.1; i=$((i+1)); done"
    proc = subprocess.Popen(["python3", str(wrapper_pyz), "--", "sh", "-c", script],
                            stderr=subprocess.PIPE, env=env, cwd=str(tmp_path))
    deadline = time.time() + 30
    while len(relay.calls) < 3 and time.time() < deadline:
        time.sleep(0.05)
    (tmp_path / "stop").touch()
    _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert len(relay.calls) >= 3  # it kept trying, with backoff
    assert err == b""
    lines = log_file.read_bytes().splitlines()
    assert len(lines) == 1 and b"jobmon: relay" in lines[0] and b"not reachable" in lines[0]
