"""Progress is live while someone watches (issue 13): the real relay, the local pool, a wrapped job.

The relay's heartbeat is 30 s here, as in production: any fresh value a watcher
sees within a second or two came from the live path, not from a heartbeat.
"""

from __future__ import annotations

import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from jmtest.relay import client, jobmon, start_relay, wait_for

pytestmark = pytest.mark.timeout(240)

JOB = """\
    #!/bin/sh
    i=0
    while [ $i -lt 60 ]; do i=$((i+1)); echo "Processed event $i of 60"; sleep 0.2; done
    while [ ! -e gate ]; do sleep 0.1; done
    """


def test_a_watcher_sees_each_second_what_the_job_printed_and_the_final_value_stays(pki: Any,
                                                                                   tmp_path: Path) -> None:
    d = tmp_path / "w"
    d.mkdir()
    (d / "job.sh").write_text(textwrap.dedent(JOB))
    (d / "job.sh").chmod(0o755)
    (d / "job.sub").write_text('executable = job.sh\n+JobMonProgressRegex = "Processed event ([0-9]+) of ([0-9]+)"\n'
                               "queue\n")
    with start_relay(tmp_path / "relay", pki, config={"heartbeat": 30.0}) as relay:
        res = jobmon(relay, pki.alice, "submit", str(d / "job.sub"), ca_file=pki.ca_file, cwd=d)
        assert res.returncode == 0, res.stderr
        job = res.stdout.strip().rstrip(".").split()[-1] + ".0"
        alice = client(relay, pki.alice, pki.ca_file)
        wait_for(lambda: alice.status(job).get("connected"), 60, f"{job} connected")
        answer = alice.call("jobmon.watch", [job], {"lease": 10})
        seen: list[tuple[float, float]] = []
        end = time.monotonic() + 4.0
        while time.monotonic() < end:
            answer = alice.call("jobmon.watch", [job], {"since": answer["since"], "wait": 2.0, "lease": 10})
            p = answer["jobs"].get(job, {}).get("progress") or {}
            if isinstance(p.get("done"), (int, float)):
                seen.append((time.monotonic(), float(p["done"])))
        values = sorted({v for _, v in seen})
        # about one fresh value a second (the job prints five a second; they are coalesced)
        assert len(values) >= 3, seen
        assert all(b > a for a, b in zip(values, values[1:]))
        rate = (answer["jobs"][job]["progress"] or {}).get("rate")
        assert isinstance(rate, float) and 2.0 < rate < 8.0  # from fresh samples: ~5 events/s

        # the watcher leaves; the job ends: the job's final progress is what it printed last
        wait_for(lambda: (alice.status(job).get("progress") or {}).get("done") == 60 or None, 30,
                 "the job's last value")  # the lease is still held: it arrives live
        assert jobmon(relay, pki.alice, "exec", job, "--", "touch", "gate", ca_file=pki.ca_file).returncode == 0
        st = wait_for(lambda: (s := alice.status(job)).get("state") == "finished" and s, 60, f"{job} finished")
        assert st["progress"]["done"] == 60 and st["progress"]["total"] == 60
        text = jobmon(relay, pki.alice, "status", job, ca_file=pki.ca_file).stdout
        assert "progress:   60/60 (100%)" in text
