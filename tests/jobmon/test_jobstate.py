"""The state mapping against job ads recorded from a real HTCondor 25 pool."""

from __future__ import annotations

import doctest
from pathlib import Path

import classad2
import pytest

import jobmon.faults
import jobmon.jobid
import jobmon.jobstate
import jobmon.pki
from jobmon.jobstate import State, exit_of, state_of

JOBS = Path(__file__).resolve().parents[2].parent / "shared" / "condor-fixtures" / "jobs"


def _ads(rel: str) -> list[classad2.ClassAd]:
    return list(classad2.parseAds((JOBS / rel).read_text()))


@pytest.mark.parametrize(
    "rel, state, exit_code, signal",
    [
        ("exit0/1_idle.ad", State.WAITING, None, None),
        ("exit0/2_running.ad", State.RUNNING, None, None),
        ("exit0/3_history.ad", State.FINISHED, 0, None),
        ("exit3/2_history.ad", State.FINISHED, 3, None),
        ("segv/2_history.ad", State.FINISHED, None, 11),
        ("held_released/2_held.ad", State.HELD, None, None),
        ("held_released/4_history.ad", State.FINISHED, 0, None),
        ("removed/3_history.ad", State.REMOVED, None, 15),
        ("vacated/2_idle_after_vacate.ad", State.WAITING, None, None),
        ("vacated/4_history.ad", State.FINISHED, 0, None),
    ],
)
def test_recorded_ads_map_to_what_users_see(rel: str, state: State, exit_code, signal) -> None:
    (ad,) = _ads(rel)
    assert state_of(ad) is state
    if state.ended or state is State.FINISHED:
        assert exit_of(ad) == (exit_code, signal)


def test_signalled_job_has_no_exit_code_in_the_recording() -> None:
    (ad,) = _ads("segv/2_history.ad")
    assert "ExitCode" not in ad and ad["ExitBySignal"] is True


def test_cluster_of_three_all_map() -> None:
    ads = _ads("cluster3/3_history.ad")
    assert len(ads) == 3
    assert {state_of(a) for a in ads} == {State.FINISHED}


@pytest.mark.parametrize("module", [jobmon.jobid, jobmon.jobstate, jobmon.faults, jobmon.pki])
def test_docstring_examples_hold(module) -> None:
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0


def test_bad_job_id_is_a_usage_error_with_a_hint() -> None:
    from jobmon.errors import UsageError
    from jobmon.jobid import JobId

    with pytest.raises(UsageError) as e:
        JobId.parse("12.x")
    assert "CLUSTER.PROC" in str(e.value) and e.value.exit_code == 2
