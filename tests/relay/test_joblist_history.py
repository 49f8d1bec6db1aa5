"""jobmon.joblist lists the pool's history too: ended jobs survive a relay restart."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from relay.config import load_config
from relay.core import RelayCore
from relay.identity import Identity

pytest.importorskip("jobmon.pools.local")

ALICE = Identity("/DC=org/DC=example/CN=Alice", "certificate")
BOB = Identity("/DC=org/DC=example/CN=Bob", "certificate")


async def _ended(pool: Any, cluster: int, procs: int) -> None:
    for _ in range(1200):  # the LocalPool moves ended jobs to its history when it sees them end
        if len(pool.history(f"ClusterId == {cluster}")) == procs:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"cluster {cluster} did not end")


def test_finished_jobs_listed_after_restart(tmp_path: Path) -> None:
    from jobmon.pools.local import LocalPool

    iwd = tmp_path / "iwd"
    iwd.mkdir()

    async def main() -> None:
        cfg = load_config(None, {"state_dir": str(tmp_path / "state"), "submit_roots": [str(tmp_path)],
                                 "pool_check_interval": 0.2})
        pool = LocalPool(tmp_path / "pool", slots=2)
        core = RelayCore(cfg, pool)
        await core.start()
        sub = await core.submit(ALICE, 'executable = /bin/sh\narguments = "-c \'exit 3\'"\nqueue 2\n', {"iwd": str(iwd)})
        cluster = int(sub["cluster"])
        waiting = await core.submit(ALICE, 'executable = /bin/sh\narguments = "-c \'sleep 300\'"\nqueue\n',
                                    {"iwd": str(iwd)})
        held = f"{waiting['cluster']}.0"
        await core.hold(ALICE, held, "kept in the queue")
        await _ended(pool, cluster, 2)
        await core.close()
        pool.close()

        pool2 = LocalPool(tmp_path / "pool", slots=2)  # the restarted relay: same pool, fresh core
        core2 = RelayCore(cfg, pool2)
        await core2.start()
        try:
            jobs = {j["id"]: j for j in await core2.joblist(ALICE, {})}
            for proc in (0, 1):
                job = jobs[f"{cluster}.{proc}"]
                assert job["state"] == "finished" and job["exit_code"] == 3
                assert job["owner_dn"] == ALICE.dn and job["connected"] is False
            assert jobs[held]["state"] == "held"  # the queue is still listed beside the history
            assert await core2.joblist(BOB, {}) == []  # someone else's history is not shown
            only = await core2.joblist(ALICE, {"cluster": cluster})
            assert sorted(j["id"] for j in only) == [f"{cluster}.0", f"{cluster}.1"]
            assert await core2.joblist(ALICE, {"constraint": "ExitCode == 99"}) == []
            assert {j["id"] for j in await core2.joblist(ALICE, {"constraint": "ExitCode == 3"})} == {
                f"{cluster}.0", f"{cluster}.1"}
            assert [j["id"] for j in await core2.joblist(ALICE, {"state": "finished"})] == [
                f"{cluster}.0", f"{cluster}.1"]
            status = await core2.status(ALICE, f"{cluster}.0")
            assert status["state"] == "finished" and status["exit_code"] == 3  # agrees with joblist
        finally:
            await core2.close()
            pool2.close()

        bounded = load_config(None, {"state_dir": str(tmp_path / "state"), "joblist_history": 1})
        pool3 = LocalPool(tmp_path / "pool", slots=2)
        core3 = RelayCore(bounded, pool3)
        await core3.start()
        try:
            ended = [j for j in await core3.joblist(ALICE, {}) if j["state"] == "finished"]
            assert len(ended) == 1  # bounded by joblist_history ...
            whole = await core3.joblist(ALICE, {"cluster": cluster})
            assert len(whole) == 2  # ... except for an explicit cluster
        finally:
            await core3.close()
            pool3.close()

    asyncio.run(asyncio.wait_for(main(), 120))


def test_pool_status_wins_for_removed_jobs(relay_factory: Any, fake_pool: Any, pki: Any) -> None:
    fake_pool.add(7, 0, status=3, owner_dn=pki.alice.dn, ExitCode=0, CompletionDate=1763700100)
    fake_pool.add(8, 0, status=4, owner_dn=pki.alice.dn, ExitCode=2, CompletionDate=1763700200)
    fake_pool.add(9, 0, status=4, owner_dn=pki.bob.dn, ExitCode=0, CompletionDate=1763700300)
    r = relay_factory()
    jobs = {j["id"]: j for j in r.client(pki.alice).jobmon.joblist({})}
    assert set(jobs) == {"7.0", "8.0"}
    assert jobs["7.0"]["state"] == "removed"
    assert jobs["8.0"]["state"] == "finished" and jobs["8.0"]["exit_code"] == 2
