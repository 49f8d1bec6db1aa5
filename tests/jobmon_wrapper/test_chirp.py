"""Progress into the job ad through condor_chirp set_job_attr_delayed, rate-limited.

The stand-in condor_chirp behaves like the recorded one (condor-fixtures/sandbox):
``set_job_attr_delayed`` refuses names without the ``Chirp`` prefix with rc 1.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from jobmon_wrapper.chirp import Chirper, find_chirp, format_value
from jobmon_wrapper.progress import Progress

FAKE_CHIRP = """#!/bin/sh
echo "$*" >> "{log}"
case "$1" in
  set_job_attr_delayed) case "$2" in Chirp*) exit 0;; *) exit 1;; esac;;
  *) echo "Unknown command $1"; exit 255;;
esac
"""


@pytest.fixture
def libexec(tmp_path: Path) -> Path:
    d = tmp_path / "libexec"
    d.mkdir()
    chirp = d / "condor_chirp"
    chirp.write_text(FAKE_CHIRP.format(log=tmp_path / "chirp.log"))
    chirp.chmod(0o755)
    return d


def _log(tmp_path: Path) -> list[str]:
    path = tmp_path / "chirp.log"
    return path.read_text().splitlines() if path.exists() else []


def test_found_in_libexec_not_on_a_missing_path(libexec: Path, tmp_path: Path) -> None:
    assert find_chirp({"_CONDOR_LIBEXEC": str(libexec)}) == str(libexec / "condor_chirp")
    empty = tmp_path / "empty"
    empty.mkdir()
    if not os.path.exists("/usr/libexec/condor/condor_chirp"):
        assert find_chirp({"PATH": str(empty)}) is None


def test_only_changed_values_are_sent(libexec: Path, tmp_path: Path) -> None:
    progress = Progress(r"(\d+) of (\d+)")
    chirper = Chirper(str(libexec / "condor_chirp"), progress, interval=60)
    progress.update({"done": 3.0, "total": 10.0}, now=100.0)
    made = chirper.publish(deadline=1e12)
    assert made == 3  # done, total, updated
    assert "set_job_attr_delayed ChirpJobMonEventsDone 3" in _log(tmp_path)
    assert "set_job_attr_delayed ChirpJobMonEventsTotal 10" in _log(tmp_path)
    assert chirper.publish(deadline=1e12) == 0
    assert all(line.split()[1].startswith("Chirp") for line in _log(tmp_path))
    assert format_value(2.5) == "2.500" and format_value(7.0) == "7"


def test_wrapper_publishes_final_progress(libexec: Path, tmp_path: Path,
                                          wrapper_pyz: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JOBMON_", "_CONDOR_"))}
    env.update(_CONDOR_CHIRP_CONFIG=str(tmp_path / ".chirp.config"),
               _CONDOR_LIBEXEC=str(libexec),
               JOBMON_PROGRESS_REGEX=r"Processed event (\d+) of (\d+)")
    r = subprocess.run(["python3", str(wrapper_pyz), "--", "sh", "-c",
                        "echo 'Processed event 1 of 9'; echo 'Processed event 7 of 9'"],
                       stdout=subprocess.PIPE, env=env, timeout=60)
    assert r.returncode == 0
    assert r.stdout == b"Processed event 1 of 9\nProcessed event 7 of 9\n"
    log = _log(tmp_path)
    assert "set_job_attr_delayed ChirpJobMonEventsDone 7" in log
    assert "set_job_attr_delayed ChirpJobMonEventsTotal 9" in log
    # one round at the end (the interval is 60 s): at most one call per attribute
    assert len(log) <= 5
