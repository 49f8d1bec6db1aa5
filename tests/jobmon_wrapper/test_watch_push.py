"""A watched job's daemon sends changed progress at once, at most once a second; unwatched, nothing
between heartbeats (issue 13). The real wrapper, under the oldest and newest interpreter, against
the fake relay that counts every request."""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from jobmon_wrapper.progress import Progress
from jobmon_wrapper.watch import BEAT, PUSH, ProgressPush

REGEX = r"event (?P<done>\d+) of (?P<total>\d+)"
# prints a progress line every 0.1 s until the test removes "run"
PAYLOAD = 'i=0; touch run; while [ -e run ]; do i=$((i+1)); echo "event $i of 100000"; sleep 0.1; done'


def _in_window(times: list[float], start: float, end: float) -> int:
    return sum(1 for t in times if start <= t < end)


def test_push_decisions_in_memory() -> None:
    progress = Progress(REGEX)
    push = ProgressPush(progress, interval=1.0)
    stop = threading.Event()
    now = time.monotonic()
    progress.feed_line(b"event 1 of 10")
    assert push.next_action(now + 0.05, stop) == BEAT          # unwatched: only the heartbeat
    push.set_watched(True, 1.0)
    assert push.next_action(now + 60, stop) == PUSH             # the watcher gets the value at once
    push.sent(progress.version, True)
    progress.feed_line(b"event 2 of 10")
    started = time.monotonic()
    assert push.next_action(started + 60, stop) == PUSH         # changed: sent, but not before 1 s
    assert 0.8 < time.monotonic() - started < 1.5
    push.sent(progress.version, True)
    beat = time.monotonic() + 0.3
    assert push.next_action(beat, stop) == BEAT                 # no change: nothing until the beat
    push.set_watched(False)
    progress.feed_line(b"event 3 of 10")
    assert push.next_action(time.monotonic() + 0.3, stop) == BEAT
    stop.set()
    assert push.next_action(time.monotonic() + 60, stop) == ""
    assert push.pushes == 2


def test_watched_pushes_live_and_unwatched_is_quiet(python_ends: str, wrapper_pyz: Path, fake_relay: Any,
                                                    relay_env: dict[str, str], tmp_path: Path) -> None:
    fake_relay.heartbeat = 30.0            # the default pace is slow: a push is easy to tell from it
    sandbox = tmp_path / "sandbox"
    sandbox.mkdir()
    env = dict(relay_env, JOBMON_RELAY_URL=fake_relay.url)
    proc = subprocess.Popen([python_ends, str(wrapper_pyz), "--progress-regex", REGEX, "--", "sh", "-c", PAYLOAD],
                            cwd=str(sandbox), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        assert fake_relay.registered.wait(30)
        registered = time.monotonic()
        time.sleep(3.0)
        # unwatched: after the heartbeat thread's first look (1 s after start), nothing for 30 s
        assert _in_window(fake_relay.heartbeat_times, registered + 1.5, registered + 3.0) == 0

        fake_relay.submit("42.0", "watch", {"watched": True, "interval": 1.0})
        asked = time.monotonic()
        time.sleep(3.5)
        got = [t for t in fake_relay.heartbeat_times if t >= asked]
        assert got and got[0] - asked < 0.6, got             # the first value at once
        assert 3 <= len(got) <= 5, got                       # then about one a second (3.5 s)
        gaps = [b - a for a, b in zip(got, got[1:])]
        assert min(gaps) > 0.85, gaps                        # never faster than the interval
        values = [hb["progress"]["done"] for hb in fake_relay.heartbeats[-len(got):]]
        assert values == sorted(values) and values[-1] > values[0]
        assert "resources" not in fake_relay.heartbeats[-1]  # a push is progress only

        fake_relay.submit("42.0", "watch", {"watched": False})
        left = time.monotonic()
        time.sleep(2.5)
        assert _in_window(fake_relay.heartbeat_times, left + 0.5, left + 2.5) == 0  # back to heartbeat pace
        (sandbox / "run").unlink()
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert fake_relay.finals and fake_relay.finals[0]["progress"]["done"] >= values[-1]


def test_watched_at_register_pushes_at_once(wrapper_pyz: Path, fake_relay: Any, relay_env: dict[str, str],
                                            tmp_path: Path) -> None:
    fake_relay.heartbeat = 30.0
    fake_relay.watched = True             # a job page was open before the daemon connected
    sandbox = tmp_path / "sandbox"
    sandbox.mkdir()
    env = dict(relay_env, JOBMON_RELAY_URL=fake_relay.url)
    proc = subprocess.Popen(["python3", str(wrapper_pyz), "--progress-regex", REGEX, "--", "sh", "-c", PAYLOAD],
                            cwd=str(sandbox), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert fake_relay.registered.wait(30)
        registered = time.monotonic()
        deadline = registered + 5
        while not fake_relay.heartbeat_times and time.monotonic() < deadline:
            time.sleep(0.02)
        assert fake_relay.heartbeat_times and fake_relay.heartbeat_times[0] - registered < 0.6
        assert fake_relay.heartbeats[0]["progress"]["total"] == 100000
        (sandbox / "run").unlink()
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
