"""CondorPool against the fake htcondor2 layer that replays the recorded pool."""

from __future__ import annotations

from typing import Any

import classad2
import htcondor2
import pytest

from jobmon.errors import NotFound, PoolError
from jobmon.jobstate import exit_of, state_of
from jobmon.pools.base import JobAction, NodeAction
from jobmon.pools.condor import CondorPool, condor_settings, node_join_instructions
from jobmon.pools.condor_jobs import job_summary

RECORDED_STATES = [
    # file, state, exit code, signal
    ("jobs/exit0/1_idle.ad", "waiting", None, None),
    ("jobs/exit0/2_running.ad", "running", None, None),
    ("jobs/exit0/3_history.ad", "finished", 0, None),
    ("jobs/exit3/1_running.ad", "running", None, None),
    ("jobs/exit3/2_history.ad", "finished", 3, None),
    ("jobs/segv/2_history.ad", "finished", None, 11),
    ("jobs/removed/1_running.ad", "running", None, None),
    ("jobs/removed/3_history.ad", "removed", None, None),
    ("jobs/held_released/2_held.ad", "held", None, None),
    ("jobs/held_released/3_running_after_release.ad", "running", None, None),
    ("jobs/held_released/4_history.ad", "finished", 0, None),  # ExitSignal 15 lingers: ExitBySignal wins
    ("jobs/vacated/2_idle_after_vacate.ad", "waiting", None, None),
    ("jobs/vacated/3_running_again.ad", "running", None, None),
    ("jobs/vacated/4_history.ad", "finished", 0, None),
]


def pool_with(fake: Any) -> CondorPool:
    return CondorPool(htcondor=fake)


@pytest.mark.parametrize("relpath,state,code,sig", RECORDED_STATES, ids=[r[0] for r in RECORDED_STATES])
def test_recorded_job_states(fake_condor: Any, relpath: str, state: str, code: int | None, sig: int | None) -> None:
    (recorded,) = fake_condor.add_jobs(relpath)
    pool = pool_with(fake_condor)
    job = f"ClusterId == {recorded['ClusterId']} && ProcId == {recorded['ProcId']}"
    ads = pool.history(job) if recorded["JobStatus"] in (3, 4) else pool.query(job)
    assert len(ads) == 1
    ad = ads[0]
    assert state_of(ad).value == state
    summary = job_summary(ad)
    assert summary["state"] == state
    assert summary["id"] == f"{recorded['ClusterId']}.0"
    assert summary.get("exit_code") == code
    assert summary.get("signal") == sig
    if state == "finished" and sig is not None:
        assert "ExitCode" not in ad  # segv: signal 11 and no ExitCode
        assert exit_of(ad) == (None, sig)
    if state in ("running", "finished"):
        assert summary["host"] == "node01.example.org"
    if state == "held":
        assert summary["hold_reason"].endswith("(by user alice)")
    if state == "removed":
        assert "signal" not in summary and "exit_code" not in summary
        assert summary["remove_reason"].endswith("(by user alice)")
    assert summary["relay"] == "https://relay.example.org:8443/clarens"
    assert summary["owner"] == "alice"


def test_query_cluster_of_three(fake_condor: Any) -> None:
    fake_condor.add_jobs("jobs/cluster3/2_running.ad")
    fake_condor.add_jobs("jobs/exit0/1_idle.ad")
    pool = pool_with(fake_condor)
    ads = pool.query("ClusterId == 8", ["ProcId", "JobStatus"])
    assert sorted(ad["ProcId"] for ad in ads) == [0, 1, 2]
    assert {state_of(ad).value for ad in ads} == {"running"}
    assert len(pool.query()) == 4


def test_history_newest_first_and_match(fake_condor: Any) -> None:
    for rel in ("jobs/exit0/3_history.ad", "jobs/exit3/2_history.ad", "jobs/segv/2_history.ad"):
        fake_condor.add_jobs(rel)
    pool = pool_with(fake_condor)
    ads = pool.history("true", [], 2)
    assert len(ads) == 2
    dates = [ad["CompletionDate"] for ad in ads]
    assert dates == sorted(dates, reverse=True)


def test_chirp_progress_in_summary(condor_fixtures: Any) -> None:
    ad = classad2.parseOne((condor_fixtures / "sandbox/fast_intervals/job_ad_after_chirp.ad").read_text())
    assert job_summary(ad)["progress"]["done"] == 42.0


def test_act_remove_hold_release(fake_condor: Any) -> None:
    fake_condor.add_jobs("jobs/cluster3/2_running.ad")
    pool = pool_with(fake_condor)
    assert pool.act(JobAction.HOLD, "ClusterId == 8 && ProcId == 1", "looking") == 1
    (held,) = pool.query("ProcId == 1")
    assert state_of(held).value == "held"
    assert job_summary(held)["hold_reason"] == "looking (by user alice)"
    assert pool.act(JobAction.RELEASE, "ClusterId == 8 && ProcId == 1") == 1
    assert state_of(pool.query("ProcId == 1")[0]).value == "waiting"
    assert pool.act(JobAction.REMOVE, "ClusterId == 8", "done") == 3
    assert pool.query("ClusterId == 8") == []
    assert {state_of(ad).value for ad in pool.history("ClusterId == 8")} == {"removed"}
    kinds = [c[1] for c in fake_condor.calls if c[0] == "schedd.act"]
    assert kinds == [htcondor2.JobAction.Hold, htcondor2.JobAction.Release, htcondor2.JobAction.Remove]
    assert pool.act(JobAction.REMOVE, "ClusterId == 999") == 0


def test_submit_one_transaction(fake_condor: Any, tmp_path: Any) -> None:
    pool = pool_with(fake_condor)
    sub = htcondor2.Submit("executable = job.sh\narguments = \"a 'b c'\"\nqueue 3\n")
    dn = "/DC=org/DC=example/O=Example/CN=Zoë \"Q\" $(x)"
    result = pool.submit(sub, iwd=str(tmp_path), owner_dn=dn)
    assert result.cluster == 100 and result.procs == (0, 1, 2) and result.count == 3
    (sent, n), = fake_condor.submitted
    assert n == 3
    assert sent["initialdir"] == str(tmp_path)
    expr = sent.expand("MY.JobMonOwnerDN")
    assert classad2.parseOne(f"A = {expr}", parser=classad2.ParserType.Old)["A"] == dn
    result = pool.submit(htcondor2.Submit("executable = x\nqueue\n"), iwd="/tmp", count=2)
    assert result.procs == (0, 1)


def test_unreachable_schedd_one_line(fake_condor: Any) -> None:
    fake_condor.schedd_down = True
    pool = pool_with(fake_condor)
    addr = fake_condor.schedd_ad["MyAddress"]
    for call in (lambda: pool.query(), lambda: pool.history(), lambda: pool.act(JobAction.REMOVE, "true")):
        with pytest.raises(PoolError) as info:
            call()
        text = str(info.value)
        assert text.startswith(f"schedd at {addr}: ")
        assert "Failed" in text and "\n" not in text
        assert info.value.exit_code == 7


def test_unreachable_collector_one_line(fake_condor: Any) -> None:
    fake_condor.collector_down = True
    pool = pool_with(fake_condor)
    with pytest.raises(PoolError, match=r"^collector at 127\.0\.0\.1:9618: Failed communication with collector\.$"):
        pool.query()
    with pytest.raises(PoolError, match="^collector at 127.0.0.1:9618: "):
        pool.nodes()


def test_real_bindings_unreachable_collector() -> None:
    # the real htcondor2 against a closed port: same one-line shape
    pool = CondorPool(collector="127.0.0.1:1")
    with pytest.raises(PoolError, match=r"^collector at 127\.0\.0\.1:1: Failed communication with collector\.$"):
        pool.nodes()


# ------------------------------------------------------------------ nodes


def test_nodes_one_busy(fake_condor: Any) -> None:
    (node,) = pool_with(fake_condor).nodes()
    assert node.name == "node01.example.org"
    assert (node.state, node.slots_total, node.slots_busy) == ("up", 4, 1)
    assert node.activity == "Idle"
    assert node.running_jobs == ("2.0",)
    assert node.load == 0.18
    assert node.has_jobmon is False and node.draining is False


def test_nodes_with_cron_attribute(fake_condor: Any) -> None:
    fake_condor.use_startds("hooks/startd_cron/startd_ads_with_cron_attrs.ad")
    (node,) = pool_with(fake_condor).nodes()
    assert node.has_jobmon is True
    assert (node.state, node.slots_busy) == ("up", 0)


@pytest.mark.parametrize(
    "snapshot,state,busy,jobs",
    [
        ("drain/default_retirement/1_before_drain_one_job_running.ad", "up", 1, ("27.0",)),
        ("drain/default_retirement/2_during_drain_1s.ad", "up", 1, ("27.0",)),  # collector lags
        ("drain/default_retirement/3_during_drain_5s.ad", "drained", 0, ()),  # evicted at once
        ("drain/default_retirement/5_after_cancel.ad", "up", 1, ("27.0",)),
        ("drain/with_retirement_600s/3_during_drain_5s.ad", "drained", 0, ()),
        ("drain/with_retirement_3600s/3_during_drain_5s.ad", "draining", 1, ("29.0",)),
        ("drain/with_retirement_3600s/4_after_drain_completed.ad", None, None, None),
    ],
)
def test_nodes_during_drain(fake_condor: Any, snapshot: str, state: str | None, busy: int | None,
                            jobs: tuple[str, ...] | None) -> None:
    fake_condor.use_startds(snapshot)
    (node,) = pool_with(fake_condor).nodes()
    if state is None:  # just check consistency for snapshots we do not pin
        assert node.state in ("draining", "drained")
        return
    assert node.state == state
    assert node.slots_busy == busy
    assert node.running_jobs == jobs
    assert node.draining is (state != "up")
    if state == "draining":
        assert node.activity in ("Retiring",)


def test_drain_default_retirement_warns(fake_condor: Any) -> None:
    fake_condor.use_startds("drain/default_retirement/1_before_drain_one_job_running.ad")
    pool = pool_with(fake_condor)
    msg = pool.node_action("node01.example.org", NodeAction.DRAIN)
    assert "request 1" in msg  # the id the recorded slots publish, a str
    assert "WARNING" in msg and "MAXJOBRETIREMENTTIME is 0 s" in msg and "600 s" in msg
    call = [c for c in fake_condor.calls if c[0] == "startd.drainJobs"][0]
    assert call[2] == htcondor2.DrainType.Graceful
    assert pool.nodes()[0].state == "drained"
    msg = pool.node_action("node01", NodeAction.UNDRAIN)  # short name works
    assert "cancelled draining on node01.example.org" in msg
    cancel = [c for c in fake_condor.calls if c[0] == "startd.cancelDrainJobs"]
    assert cancel[0][2] == "1"  # the request id the slots published
    node = pool.nodes()[0]
    assert (node.state, node.draining, node.running_jobs) == ("up", False, ("27.0",))


def test_drain_with_long_retirement_lets_jobs_finish(fake_condor: Any) -> None:
    fake_condor.drain_variant = "with_retirement_3600s"
    fake_condor.use_startds("drain/with_retirement_3600s/1_before_drain_one_job_running.ad")
    pool = pool_with(fake_condor)
    msg = pool.node_action("node01.example.org", NodeAction.DRAIN)
    assert "WARNING" not in msg and "3600 s" in msg
    node = pool.nodes()[0]
    assert node.state == "draining" and node.running_jobs == ("29.0",)


def test_off_and_on_send_the_right_wire_commands(fake_condor: Any) -> None:
    pool = pool_with(fake_condor)
    msg = pool.node_action("node01.example.org", NodeAction.OFF)
    assert "peacefully" in msg
    sent = [c for c in fake_condor.calls if c[0] == "send_command"]
    assert sent == [("send_command", "DaemonMaster", "node01.example.org", 483, "STARTD")]
    # the bindings' DaemonOffPeaceful member would have sent DAEMON_ON (469)
    assert int(htcondor2.DaemonCommand.DaemonOffPeaceful) != 483
    (node,) = pool.nodes()
    assert (node.state, node.slots_total) == ("off", 0)
    pool.node_action("node01.example.org", NodeAction.ON)
    assert [c for c in fake_condor.calls if c[0] == "send_command"][-1][3:] == (469, "STARTD")
    assert pool.nodes()[0].state == "up"


def test_unknown_node(fake_condor: Any) -> None:
    with pytest.raises(NotFound, match="no execute node named 'node99'"):
        pool_with(fake_condor).node_action("node99", NodeAction.DRAIN)


def test_startd_failure_names_the_startd(fake_condor: Any) -> None:
    fake_condor.startd_down = True
    with pytest.raises(PoolError, match=r"^startd at <127\.0\.0\.1:\d+\?.*>: Startd failed to start draining jobs\.$"):
        pool_with(fake_condor).node_action("node01.example.org", NodeAction.DRAIN)


# ------------------------------------------------------------------ settings and join text


def test_condor_settings(fake_condor: Any) -> None:
    fake_condor.param.values["JOBMON_ALLOW_SHELL"] = False
    fake_condor.param.values["JOBMON_MAX_OUTPUT"] = 1048576
    settings = condor_settings(fake_condor)
    assert settings == {
        "JOBMON_RELAY_URL": "https://relay.example.org:8443/clarens",
        "JOBMON_ALLOW_SHELL": "false",
        "JOBMON_MAX_OUTPUT": "1048576",
    }


def test_node_join_instructions(fake_condor: Any) -> None:
    text = node_join_instructions("node02.example.org", htcondor=fake_condor)
    assert "CONDOR_HOST = node01.example.org" in text
    assert "use ROLE : Execute" in text
    assert "condor_token_create -identity condor@node01.example.org" in text
    assert "/etc/condor/tokens.d/node02.example.org.token" in text
    assert "JOBMON_RELAY_URL = https://relay.example.org:8443/clarens" in text
    assert "50-jobmon.conf" in text
    assert pool_with(fake_condor).node_join_instructions("node02.example.org") == text
