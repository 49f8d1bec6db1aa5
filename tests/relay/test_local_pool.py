"""The relay over the real LocalPool: submit through XML-RPC, wrapped job connects, ends, is announced."""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("jobmon.pools.local")


def test_submit_run_and_end_through_the_relay(pki: Any, tmp_path: Path) -> None:
    from jobmon.pools.local import LocalPool
    from relay import server
    from relay.config import load_config

    # nothing of the relay reaches the job but what its submit file transfers: the relay's CA
    # travels as jobmon-ca.pem beside the per-job credential (relay/job_trust.py)
    pool = LocalPool(tmp_path / "pool", slots=2)
    config = load_config(None, {
        "listen": "127.0.0.1:0", "state_dir": str(tmp_path / "state"), "host_cert": str(pki.host.cert_path),
        "host_key": str(pki.host.key_path), "ca_file": str(pki.ca_file), "pool_check_interval": 0.2,
        "poll_wait": 5.0, "submit_roots": [str(tmp_path)]})
    loop = asyncio.new_event_loop()
    ready: asyncio.Future[Any] = loop.create_future()
    stop = asyncio.Event()
    thread = threading.Thread(target=lambda: loop.run_until_complete(
        server.run(config, pool, ready=ready, stop=stop)), daemon=True)
    thread.start()
    _, port, core = asyncio.run_coroutine_threadsafe(asyncio.wait_for(ready, 30), loop).result(30)
    assert core.config.url == f"https://127.0.0.1:{port}/clarens"  # what wrapped jobs are given
    ended = threading.Event()
    seen: list[dict[str, Any]] = []

    def on_end(job: dict[str, Any]) -> None:
        seen.append(job)
        ended.set()

    loop.call_soon_threadsafe(core.on_job_end, on_end)
    import ssl
    import xmlrpc.client

    ctx = ssl.create_default_context(cafile=str(pki.ca_file))
    ctx.load_cert_chain(str(pki.alice.cert_path), str(pki.alice.key_path))
    alice = xmlrpc.client.ServerProxy(f"https://127.0.0.1:{port}/clarens", context=ctx)
    iwd = tmp_path / "iwd"
    iwd.mkdir()
    try:
        sub = alice.jobmon.submit(
            'executable = /bin/sh\narguments = "-c \'while [ ! -e go ]; do sleep 0.05; done; exit 4\'"\n'
            "output = out.txt\nerror = err.txt\nqueue\n", {"iwd": str(iwd)})
        job = f"{sub['cluster']}.0"
        pause = threading.Event()
        for _ in range(600):
            if alice.jobmon.status(job).get("connected"):
                break
            pause.wait(0.05)
        st = alice.jobmon.status(job)
        assert st["connected"] is True and st["owner_dn"] == pki.alice.dn and st["state"] == "running"
        assert alice.jobmon.exec(job, ["touch", "go"], {"timeout": 20})["exit_code"] == 0
        assert ended.wait(60)
        assert seen[0]["id"] == job and seen[0]["exit_code"] == 4
        final = alice.jobmon.status(job)
        assert final["state"] == "finished" and final["exit_code"] == 4
        assert final["submitted"] > 0 and final["iwd"] == str(iwd)
        (iwd / "unrelated.txt").write_text("not the job's")
        os.utime(iwd / "unrelated.txt", (1700000000, 1700000000))  # there before the job
        from relay.identity import Identity

        me = Identity(pki.alice.dn, "certificate")
        names: list[str] = []
        for _ in range(600):  # the pool returns the sandbox's files when it sees the end
            files = asyncio.run_coroutine_threadsafe(core.returned_files(me, job), loop).result(30)
            names = [f["name"] for f in files or []]
            if "out.txt" in names:
                break
            pause.wait(0.05)
        assert "out.txt" in names and "err.txt" in names and "go" in names  # 'go': made during the job
        assert "unrelated.txt" not in names and "jobmon.cred" not in names and "jobmon-ca.pem" not in names
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(30)
        pool.kill_all()
        pool.close()
