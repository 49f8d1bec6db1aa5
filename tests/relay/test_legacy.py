"""The 2005 JobMon method names, driven by a stock client with the owner's certificate."""

from __future__ import annotations

import threading
from typing import Any


def test_legacy_daemon_round_trip(relay: Any, pki: Any) -> None:
    daemon = relay.client(pki.alice_proxy, proxy=True)
    assert daemon.JobMon.registerJob("analysis-7", "wn1.example.org", 0, 4242) == [0, "job analysis-7 registered"]
    assert daemon.JobMon.getJobToDo("analysis-7") == [0, ""]
    user = relay.client(pki.alice)
    results: list[Any] = []
    t = threading.Thread(target=lambda: results.append(
        user.jobmon.exec("analysis-7", ["ls", "-l", "my file"], {"timeout": 20})))
    t.start()
    todo = [0, ""]
    pause = threading.Event()
    while todo == [0, ""]:
        pause.wait(0.02)
        todo = daemon.JobMon.getJobToDo("analysis-7")
    assert todo == [0, "ls -l 'my file'"]
    assert daemon.JobMon.outputJobResult("analysis-7", "total 0\n") == [0, "result accepted"]
    t.join(30)
    assert results[0]["exit_code"] == 0 and results[0]["stdout"].data == b"total 0\n"
    bob = relay.client(pki.bob)
    assert bob.JobMon.getJobToDo("analysis-7")[0] == 900          # not his registration
    assert daemon.JobMon.outputJobResult("analysis-7", "late") == [1, "no command was handed out to this job"]
    assert daemon.JobMon.unregisterJob("analysis-7") == [0, "job analysis-7 unregistered"]
    assert daemon.JobMon.getJobToDo("analysis-7")[0] == 900
