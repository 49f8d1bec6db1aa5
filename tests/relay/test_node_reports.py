"""Starter-hook reports (jobmon.nodeReport) and job ends learnt from the pool."""

from __future__ import annotations

import asyncio
import xmlrpc.client
from pathlib import Path
from typing import Any

import pytest

from relay.config import load_config
from relay.core import RelayCore
from relay.identity import Identity


def test_node_report_update_shows_resources(relay: Any, fake_pool: Any, pki: Any) -> None:
    fake_pool.add(30, 0, owner_dn=pki.alice.dn)
    token = relay.client(pki.alice).jobmon.issueCredential({"cluster": 30})["token"]
    hook = relay.client(None, basic=("jobmon-job", token))
    report = {"kind": "update", "time": 1763700000.0, "slot": "slot1@node01.example.org",
              "resources": {"cpu_user": 1.5, "rss_kb": 2048}}
    assert hook.jobmon.nodeReport("30.0", report) is True
    st = relay.client(pki.alice).jobmon.status("30.0")
    assert st["resources"] == {"cpu_user": 1.5, "rss_kb": 2048} and st["connected"] is False
    with pytest.raises(xmlrpc.client.Fault) as info:
        hook.jobmon.nodeReport("31.0", report)           # another cluster than the credential's
    assert info.value.faultCode == 302
    with pytest.raises(xmlrpc.client.Fault) as info:
        relay.client(pki.bob).jobmon.nodeReport("30.0", report)  # not the owner's certificate
    assert info.value.faultCode == 401
    with pytest.raises(xmlrpc.client.Fault) as info:
        hook.jobmon.nodeReport("30.0", {"kind": "party"})
    assert info.value.faultCode == 201


def test_pool_tells_the_end_of_silent_and_submitted_jobs(tmp_path: Path, fake_pool: Any) -> None:
    alice = Identity("/DC=org/DC=example/CN=Alice", "certificate")

    async def main() -> None:
        core = RelayCore(load_config(None, {"state_dir": str(tmp_path / "s"), "submit_roots": [str(tmp_path)]}),
                          fake_pool)
        ended: list[dict[str, Any]] = []
        core.on_job_end(ended.append)
        fake_pool.add(40, 0, owner_dn=alice.dn)
        reply = await core.register(alice, {"job": "40.0", "host": "wn"})
        daemon = core.registry.session(reply["session"])
        daemon.last_seen = 0.0                           # went silent (node lost)
        await core.watcher.check()
        assert ended == []                               # still running in the pool
        for ad in fake_pool.ads:
            ad["JobStatus"], ad["ExitBySignal"], ad["ExitSignal"] = 4, True, 9
        iwd = tmp_path / "iwd"
        iwd.mkdir()
        submitted = await core.submit(alice, "executable = /bin/true\nqueue\n", {"iwd": str(iwd)})
        await core.watcher.check()
        assert [(j["id"], j["state"], j.get("signal")) for j in ended] == [("40.0", "finished", 9)]
        for ad in fake_pool.ads:
            if ad["ClusterId"] == submitted["cluster"]:
                ad["JobStatus"], ad["ExitCode"], ad["ExitBySignal"] = 4, 0, False
        await core.watcher.check()
        await core.watcher.check()
        assert [j["id"] for j in ended] == ["40.0", f"{submitted['cluster']}.0"]  # each once
        assert ended[1]["exit_code"] == 0
        await core.stop()

    asyncio.run(asyncio.wait_for(main(), 30))
