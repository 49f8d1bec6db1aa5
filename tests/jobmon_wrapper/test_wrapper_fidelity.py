"""Exit fidelity, signals, exec failures and stream pass-through, once per interpreter.

Each test compares the wrapped payload (the zipapp run by the interpreter
under test) with the same payload run bare.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest


def strip_jobmon_lines(data: bytes) -> bytes:
    """stderr without the wrapper's own ``jobmon:`` lines."""
    return b"".join(ln for ln in data.splitlines(keepends=True) if not ln.startswith(b"jobmon:"))

# One driver process per interpreter: it forks a wrapper for each exit code
# (the wrapper's main() from the zipapp, in a forked child) and compares its
# wait status with the bare payload's (run once per session, passed in).
# Cheap: no interpreter start per code.
EXIT_DRIVER = r"""
import json, os, sys
sys.path.insert(0, sys.argv[1])
bare = json.loads(sys.argv[2])
from jobmon_wrapper.__main__ import main
import jobmon_wrapper.wrapper  # imported once here, not in every forked child
devnull = os.open(os.devnull, os.O_WRONLY)
bad = []
for code in range(256):
    pid = os.fork()
    if pid == 0:
        os.dup2(devnull, 2)
        try:
            main(["--", "sh", "-c", "exit %d" % code])
        finally:
            os._exit(250)
    _, wrapped = os.waitpid(pid, 0)
    if wrapped != bare[code] or not os.WIFEXITED(wrapped) or os.WEXITSTATUS(wrapped) != code:
        bad.append([code, wrapped, bare[code]])
print(json.dumps({"checked": 256, "bad": bad}))
"""


@pytest.fixture(scope="module")
def bare_exit_statuses() -> list[int]:
    """Wait statuses of ``sh -c 'exit N'`` run bare, N = 0..255."""
    out = []
    for code in range(256):
        proc = subprocess.Popen(["sh", "-c", f"exit {code}"])
        _, status = os.waitpid(proc.pid, 0)
        proc.returncode = 0
        out.append(status)
    return out


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("JOBMON_", "_CONDOR_"))}


def test_every_exit_code_passes_through(python: str, wrapper_pyz: Path,
                                        bare_exit_statuses: list[int]) -> None:
    out = subprocess.run([python, "-c", EXIT_DRIVER, str(wrapper_pyz),
                          json.dumps(bare_exit_statuses)], stdout=subprocess.PIPE,
                         env=_clean_env(), timeout=120, check=True)
    report = json.loads(out.stdout)
    assert report == {"checked": 256, "bad": []}


SIGNALS = ["HUP", "INT", "QUIT", "ABRT", "KILL", "SEGV", "TERM", "USR1"]


def test_payload_killed_by_signal_ends_wrapper_by_same_signal(python: str,
                                                               wrapper_pyz: Path) -> None:
    env = _clean_env()
    seen = {}
    for name in SIGNALS:
        script = f"echo before {name}; echo to-stderr >&2; kill -{name} $$; echo after"
        bare = subprocess.run(["sh", "-c", script], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, env=env, timeout=30)
        wrapped = subprocess.run([python, str(wrapper_pyz), "--", "sh", "-c", script],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                                 timeout=30)
        assert bare.returncode == -getattr(signal, "SIG" + name)
        seen[name] = (wrapped.returncode, wrapped.stdout, strip_jobmon_lines(wrapped.stderr))
        assert seen[name] == (bare.returncode, bare.stdout, bare.stderr), name


FORWARD_PAYLOAD = r"""
import os, signal, sys, time
names = ["TERM", "INT", "HUP", "QUIT", "USR1", "USR2"]
sigs = [getattr(signal, "SIG" + n) for n in names]
got = []
def handler(signum, frame):
    got.append(signum)
    os.write(1, ("%s got %s\n" % (who, signal.Signals(signum).name)).encode())
for s in sigs:
    signal.signal(s, handler)
child = os.fork()
who = "child" if child == 0 else "parent"
os.write(1, ("%s ready\n" % who).encode())
while len(got) < len(sigs):
    time.sleep(0.05)  # not pause(): a signal just before pause() would be lost
if child:
    os.waitpid(child, 0)
os._exit(0 if child else 0)
"""


def test_signals_reach_the_payloads_process_group(python: str, wrapper_pyz: Path) -> None:
    _forwarding(python, wrapper_pyz, _clean_env())


def test_signals_are_forwarded_while_daemon_threads_run(python_ends: str,
                                                        wrapper_pyz: Path) -> None:
    # Daemon (relay unreachable: it keeps retrying) and tee threads exist beside the main thread.
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    env = dict(_clean_env(), JOBMON_RELAY_URL=f"https://127.0.0.1:{port}/clarens",
               JOBMON_PROGRESS_REGEX=r"got (\w+)")
    _forwarding(python_ends, wrapper_pyz, env)


def _forwarding(python: str, wrapper_pyz: Path, env: dict[str, str]) -> None:
    proc = subprocess.Popen([python, str(wrapper_pyz), "--", sys.executable, "-c",
                             FORWARD_PAYLOAD], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, env=env)
    assert proc.stdout is not None
    try:
        ready = {proc.stdout.readline(), proc.stdout.readline()}
        assert ready == {b"parent ready\n", b"child ready\n"}
        for name in ["TERM", "INT", "HUP", "QUIT", "USR1", "USR2"]:
            proc.send_signal(getattr(signal, "SIG" + name))
            lines = {proc.stdout.readline(), proc.stdout.readline()}
            assert lines == {f"parent got SIG{name}\n".encode(),
                             f"child got SIG{name}\n".encode()}, name
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_exec_failures_are_127_and_126(python: str, wrapper_pyz: Path, tmp_path: Path) -> None:
    not_exec = tmp_path / "data.txt"
    not_exec.write_text("not a program\n")
    missing = tmp_path / "no-such-program"
    for target, code in ((missing, 127), (not_exec, 126)):
        r = subprocess.run([python, str(wrapper_pyz), "--", str(target), "arg"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           env=_clean_env(), timeout=30)
        assert r.returncode == code
        assert r.stdout == b""
        mentions = [ln for ln in r.stderr.splitlines() if str(target).encode() in ln]
        assert len(mentions) == 1 and b"cannot run" in mentions[0]


PROGRESS_PAYLOAD = r"""
import os, sys, time
out = sys.stdout.buffer
out.write(b"Processed event 1 of 4\n")
out.write(b"partial line without newline")
out.flush()
while not os.path.exists(sys.argv[1]):
    time.sleep(0.02)
out.write(b" ...completed\nbinary \x00\xff\xfe\r\nProcessed event 4 of 4\n")
out.write(b"x" * 100000 + b"\n" + b"no newline at the end")
out.flush()
"""


def test_progress_tee_passes_bytes_through_unchanged(python: str, wrapper_pyz: Path,
                                                      tmp_path: Path) -> None:
    flag = tmp_path / "go"
    argv = [sys.executable, "-c", PROGRESS_PAYLOAD, str(flag)]
    flag.touch()
    bare = subprocess.run(argv, stdout=subprocess.PIPE, timeout=30, check=True).stdout
    flag.unlink()
    env = _clean_env()
    env["JOBMON_PROGRESS_REGEX"] = r"Processed event (\d+) of (\d+)"
    proc = subprocess.Popen([python, str(wrapper_pyz), "--"] + argv, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, env=env)
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    # The partial line arrives before the payload writes its newline (the
    # payload waits for the flag file, created only once we have seen it).
    expected = b"Processed event 1 of 4\npartial line without newline"
    head = b""
    while len(head) < len(expected):
        chunk = os.read(fd, 1000)
        assert chunk, "stream ended early"
        head += chunk
    assert head == expected
    flag.touch()
    rest = proc.stdout.read()
    assert proc.wait(timeout=30) == 0
    assert head + rest == bare


def test_bare_name_means_the_file_in_the_sandbox(wrapper_pyz: Path, tmp_path: Path) -> None:
    job = tmp_path / "job.sh"
    job.write_text("#!/bin/sh\necho \"I am $0 with $*\"\n")
    job.chmod(0o755)
    env = {k: v for k, v in _clean_env().items() if k != "PATH"}   # HTCondor gives no PATH
    r = subprocess.run([sys.executable, str(wrapper_pyz), "--", "job.sh", "a b"],
                       stdout=subprocess.PIPE, env=env, cwd=str(tmp_path), timeout=30)
    assert r.returncode == 0
    assert r.stdout == f"I am {tmp_path / 'job.sh'} with a b\n".encode()
