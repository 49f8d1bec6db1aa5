"""Second pass: submit iwd restricted to allowed roots, returned files limited to the job's
outputs, status/joblist merge the pool's ad with the daemon's reports and agree."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

import pytest

from relay.config import load_config
from relay.core import RelayCore
from relay.faults import Fault, RelayFault
from relay.identity import Identity

ALICE = Identity("/DC=org/DC=example/CN=Alice", "certificate")


def _core(tmp_path: Path, pool: Any, **extra: Any) -> RelayCore:
    return RelayCore(load_config(None, {"state_dir": str(tmp_path / "state"), **extra}), pool)


def test_iwd_outside_the_allowed_roots_is_fault_201(tmp_path: Path, fake_pool: Any) -> None:
    allowed = tmp_path / "allowed"
    (allowed / "job").mkdir(parents=True)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (allowed / "escape").symlink_to(outside)

    async def main() -> None:
        core = _core(tmp_path, fake_pool, submit_roots=[str(allowed)])
        try:
            ok = await core.submit(ALICE, "executable = /bin/true\nqueue\n", {"iwd": str(allowed / "job")})
            assert fake_pool.ads[-1]["ClusterId"] == ok["cluster"]
            assert fake_pool.ads[-1]["Iwd"] == os.path.realpath(allowed / "job")
            for bad in (outside, allowed / "escape", Path("/etc"), tmp_path / "state"):
                with pytest.raises(RelayFault) as exc:
                    await core.submit(ALICE, "executable = /bin/true\nqueue\n", {"iwd": str(bad)})
                assert exc.value.code == Fault.BAD_PARAMS
                assert "submit_roots" in exc.value.message and str(allowed) in exc.value.message
                assert "--submit-root DIR" in exc.value.message  # what a user of `jobmon relay` can do
            upload = tmp_path / "state" / "submit" / "analysis"  # the uploads area: whatever the roots
            upload.mkdir(parents=True)
            await core.submit(ALICE, "executable = /bin/true\nqueue\n", {"iwd": str(upload)})
            assert fake_pool.ads[-1]["Iwd"] == os.path.realpath(upload)
            with pytest.raises(RelayFault) as exc:
                await core.submit(ALICE, "executable = /bin/true\nqueue\n", {"iwd": "relative/dir"})
            assert exc.value.code == Fault.BAD_PARAMS
            assert len(fake_pool.ads) == 2  # nothing refused reached the pool
        finally:
            await core.stop()

    asyncio.run(asyncio.wait_for(main(), 30))


def test_default_roots_are_home_and_uploads_never_the_state_dir(tmp_path: Path, fake_pool: Any,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    state = home / ".local/state/jobmon-relay"
    (home / "work").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))

    async def main() -> None:
        core = RelayCore(load_config(None, {"state_dir": str(state)}), fake_pool)
        try:
            roots = core.config.submit_root_paths
            assert roots == (home.resolve(), (state / "submit").resolve())
            await core.submit(ALICE, "executable = /bin/true\nqueue\n", {"iwd": str(home / "work")})
            for bad in (state, state / "submit", tmp_path):
                with pytest.raises(RelayFault) as exc:
                    await core.submit(ALICE, "executable = /bin/true\nqueue\n", {"iwd": str(bad)})
                assert exc.value.code == Fault.BAD_PARAMS, bad
            # uploads (options.files) still land under <state>/submit/ and are accepted
            res = await core.submit(ALICE, "executable = /bin/true\nqueue\n", {"files": {"in.txt": "aGk="}})
            iwd = Path(str(fake_pool.ads[-1]["Iwd"]))
            assert fake_pool.ads[-1]["ClusterId"] == res["cluster"]
            assert iwd.parent == state / "submit" and (iwd / "in.txt").read_bytes() == b"hi"
        finally:
            await core.stop()

    asyncio.run(asyncio.wait_for(main(), 30))


def test_returned_files_are_only_the_jobs_outputs(tmp_path: Path, fake_pool: Any) -> None:
    iwd = tmp_path / "iwd"
    iwd.mkdir()
    for name in ("out.txt", "err.txt", "job.log", "result.dat", "secret.key", "jobmon.cred", "notes.txt"):
        (iwd / name).write_text(name)
    (iwd / "linked.dat").symlink_to(tmp_path / "elsewhere")
    fake_pool.add(7, 0, status=4, owner_dn=ALICE.dn, Iwd=str(iwd), Out="out.txt", Err=str(iwd / "err.txt"),
                  UserLog="job.log", TransferOutput="result.dat, sub/dir/notes.txt,linked.dat,jobmon.cred,missing",
                  ExitCode=0)
    fake_pool.add(8, 0, status=2, owner_dn=ALICE.dn, Iwd=str(iwd), Out="out.txt")
    fake_pool.add(9, 0, status=4, owner_dn=ALICE.dn, Iwd=str(iwd), Out="/etc/passwd", Err="../secret.key",
                  ShouldTransferFiles="NO")
    # no transfer_output_files: HTCondor returns what the job created or changed, not what was there
    sandbox = tmp_path / "sandbox"
    sandbox.mkdir()
    for name in ("made.txt", "jobmon.cred", "old-secret.key", ".hidden"):
        (sandbox / name).write_text(name)
    os.utime(sandbox / "old-secret.key", (1700000000, 1700000000))
    (sandbox / "link.txt").symlink_to(iwd / "secret.key")
    fake_pool.add(10, 0, status=4, owner_dn=ALICE.dn, Iwd=str(sandbox), ShouldTransferFiles="YES",
                  JobCurrentStartDate=int(time.time()) - 60)

    async def main() -> None:
        core = _core(tmp_path, fake_pool)
        try:
            files = await core.returned_files(ALICE, "7.0")
            assert files is not None
            assert [f["name"] for f in files] == ["err.txt", "job.log", "notes.txt", "out.txt", "result.dat"]
            assert {f["size"] for f in files if f["name"] == "out.txt"} == {len("out.txt")}
            assert await core.returned_files(ALICE, "8.0") is None  # still running
            assert await core.returned_files(ALICE, "9.0") == []     # outside iwd: never offered
            assert [f["name"] for f in await core.returned_files(ALICE, "10.0") or []] == ["made.txt"]
            bob = Identity("/DC=org/DC=example/CN=Bob", "certificate")
            with pytest.raises(RelayFault) as exc:
                await core.returned_files(bob, "7.0")
            assert exc.value.code == Fault.NOT_OWNER
        finally:
            await core.stop()

    asyncio.run(asyncio.wait_for(main(), 30))


def test_status_of_a_connected_job_has_the_pool_ads_fields(tmp_path: Path, fake_pool: Any) -> None:
    fake_pool.add(50, 0, status=1, owner_dn=ALICE.dn, Args="-n 3", NotifyUser="alice@example.org")

    async def main() -> None:
        core = _core(tmp_path, fake_pool)
        try:
            await core.register(ALICE, {"job": "50.0", "host": "wn07.example.org"})
            st = await core.status(ALICE, "50.0")
            assert st["submitted"] == 1763700000.0
            assert st["cmd"] == "/usr/bin/jobmon-wrapper" and st["args"] == "-n 3" and st["iwd"] == "/home/alice"
            assert st["notify_user"] == "alice@example.org"
            assert st["host"] == "wn07.example.org"     # the daemon's live report wins
            assert st["state"] == "running"              # the pool still said idle; the daemon runs
            assert st["connected"] is True
        finally:
            await core.stop()

    asyncio.run(asyncio.wait_for(main(), 30))


def test_joblist_and_status_agree_on_a_removed_job(tmp_path: Path, fake_pool: Any) -> None:
    fake_pool.add(60, 0, status=2, owner_dn=ALICE.dn)
    fake_pool.add(61, 0, status=2, owner_dn=ALICE.dn)

    async def main() -> None:
        core = _core(tmp_path, fake_pool)
        try:
            for job in ("60.0", "61.0"):
                reply = await core.register(ALICE, {"job": job, "host": "wn"})
                await core.finish(ALICE, reply["session"], {"exit_code": None, "signal": 15})
            await core.remove(ALICE, "60.0")              # the pool now holds it in history as removed
            for ad in fake_pool.ads:
                if ad["ClusterId"] == 61:
                    ad["JobStatus"], ad["ExitBySignal"], ad["ExitSignal"] = 4, True, 15
            listed = {j["id"]: j for j in await core.joblist(ALICE, {})}
            assert (await core.status(ALICE, "60.0"))["state"] == "removed"
            assert listed["60.0"]["state"] == "removed"
            assert listed["60.0"]["submitted"] == 1763700000.0
            assert listed["61.0"]["state"] == (await core.status(ALICE, "61.0"))["state"] == "finished"
            assert listed["61.0"]["signal"] == 15
        finally:
            await core.stop()

    asyncio.run(asyncio.wait_for(main(), 30))


def test_a_requeued_job_is_not_ended_by_its_earlier_runs_final_report(condor_fixtures: Path) -> None:
    """Held (the wrapper reports signal 15), then released: HTCondor has the job idle, then running
    again; the first run's final report must not make it look finished (live-pool finding)."""
    import classad2

    from relay.jobs import job_struct
    from relay.registry import Daemon

    def ad(name: str) -> Any:
        text = (condor_fixtures / "jobs" / "held_released" / f"{name}.long").read_text()
        return classad2.parseOne(text, parser=classad2.ParserType.Old)

    running_again = ad("3_running_after_release")
    first = Daemon(job="3.0", session="s", dn="/CN=alice", kind="credential", info={})
    held_at = float(running_again["JobCurrentStartDate"]) - 30
    first.final = {"signal": 15, "end_time": held_at}
    idle = classad2.parseOne(running_again.printOld())
    idle["JobStatus"] = 1
    assert job_struct(idle, first, False)["state"] == "waiting"          # released, not yet matched
    assert job_struct(running_again, first, False)["state"] == "running"  # its second run
    assert "signal" not in job_struct(running_again, first, False)
    # the usual case: the pool has not yet seen the end the daemon reported
    first.final = {"exit_code": 0, "end_time": float(running_again["JobCurrentStartDate"]) + 60}
    st = job_struct(running_again, first, False)
    assert st["state"] == "finished" and st["exit_code"] == 0


def test_progress_shown_is_the_newer_of_the_daemons_and_chirps() -> None:
    """The wrapper's Chirp attributes (in the ad, minutes late) and its own reports: the newer wins."""
    import classad2

    from relay.jobs import job_struct
    from relay.registry import Daemon

    ad = classad2.ClassAd({"ClusterId": 5, "ProcId": 0, "JobStatus": 2, "JobCurrentStartDate": 100,
                           "ChirpJobMonEventsDone": 40.0, "ChirpJobMonEventsTotal": 100.0,
                           "ChirpJobMonUpdated": 1000.0})
    assert job_struct(ad, None, False)["progress"] == {"done": 40.0, "total": 100.0, "updated": 1000.0}
    d = Daemon(job="5.0", session="s", dn="/CN=a", kind="credential", info={})
    d.status["progress"] = {"done": 55.0, "total": 100.0, "updated": 1200.0}
    assert job_struct(ad, d, True)["progress"]["done"] == 55.0        # the live report is newer
    d.status["progress"] = {"done": 30.0, "total": 100.0, "updated": 900.0}
    assert job_struct(ad, d, False)["progress"]["done"] == 40.0       # the ad is newer (daemon gone)
