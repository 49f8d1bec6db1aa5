"""Fixtures of the live-pool tests (test_live_pool.py, ``make test-condor``, INSTALL.md section 8).

* ``live``: one ``jobmon relay --pool condor`` for the whole module, started as a
  user starts it (INSTALL.md, "Single-host quick start"), with the module's own
  state directory and work directory; the module's time budget (under 5
  minutes); everything it submitted is removed at the end.

Run as root, the first live test stops the whole run with one line: HTCondor
will not run root's jobs. Only the live module uses these fixtures; the unit
tests beside it (test_live_helpers.py) need no pool and use none of them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from jmtest.livepool import Deadline, LiveSession, root_refusal

REPO = Path(__file__).resolve().parents[2]

#: the whole live module must finish within 5 minutes (issue 9); this leaves room for teardown
MODULE_BUDGET = 270.0


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveSession]:
    refusal = root_refusal(os.geteuid(), os.environ, REPO)
    if refusal:
        pytest.exit(refusal, returncode=2)
    workdir = tmp_path_factory.mktemp("live")  # the user's own 0700 directory: the shadow runs as the user
    session = LiveSession(workdir, Deadline(MODULE_BUDGET, "the live module's 270 s budget"), "condor")
    try:
        session.start_relay(timeout=60)
        yield session
    finally:
        session.remove_all()
        session.stop_relay()
