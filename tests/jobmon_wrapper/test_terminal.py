"""In the foreground of a terminal the payload can read it (its group gets the terminal)."""

from __future__ import annotations

import fcntl
import os
import select
import signal
import subprocess
import sys
import termios
import time
from pathlib import Path


def _read_until(fd: int, needle: bytes, timeout: float = 30.0) -> bytes:
    buf = b""
    deadline = time.time() + timeout
    while needle not in buf and time.time() < deadline:
        r, _, _ = select.select([fd], [], [], 0.5)
        if r:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            buf += chunk
    return buf


def test_payload_reads_the_terminal(wrapper_pyz: Path) -> None:
    master, slave = os.openpty()

    def make_controlling() -> None:
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    env = {k: v for k, v in os.environ.items() if not k.startswith(("JOBMON_", "_CONDOR_"))}
    proc = subprocess.Popen(
        [sys.executable, str(wrapper_pyz), "--", "sh", "-c",
         "echo ask; read line; echo \"got $line\"; exit 4"],
        stdin=slave, stdout=slave, stderr=slave, start_new_session=True,
        preexec_fn=make_controlling, env=env)
    os.close(slave)
    try:
        assert b"ask" in _read_until(master, b"ask")
        os.write(master, b"hello\n")
        assert b"got hello" in _read_until(master, b"got hello")
        assert proc.wait(timeout=30) == 4
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)


def _state(pid: int) -> str:
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0]


def test_ctrl_z_stops_wrapper_and_fg_continues_payload(wrapper_pyz: Path) -> None:
    master, slave = os.openpty()

    def make_controlling() -> None:
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    env = {k: v for k, v in os.environ.items() if not k.startswith(("JOBMON_", "_CONDOR_"))}
    proc = subprocess.Popen(
        [sys.executable, str(wrapper_pyz), "--", "sh", "-c",
         "echo ask; read line; echo \"got $line\""],
        stdin=slave, stdout=slave, stderr=slave, start_new_session=True,
        preexec_fn=make_controlling, env=env)
    os.close(slave)
    try:
        assert b"ask" in _read_until(master, b"ask")
        os.write(master, b"\x1a")                     # Ctrl-Z: the payload's group stops
        deadline = time.time() + 30
        while _state(proc.pid) != "T" and time.time() < deadline:
            time.sleep(0.05)
        assert _state(proc.pid) == "T"                # ... and the wrapper follows
        os.kill(proc.pid, signal.SIGCONT)             # what the shell's `fg` does
        os.write(master, b"again\n")
        assert b"got again" in _read_until(master, b"got again")
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
