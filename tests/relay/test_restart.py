"""A relay restart: daemons re-register and every job is reachable again; stop answers polls."""

from __future__ import annotations

import socket
import sqlite3
import threading
import time
import xmlrpc.client
from typing import Any

from jobmon.pools.base import Pool


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_restart_keeps_jobs_reachable(relay_factory: Any, fake_pool: Pool, pki: Any, kit: Any) -> None:
    port = free_port()
    first = relay_factory(listen=f"127.0.0.1:{port}")
    fake_pool.add(11, 0, owner_dn=pki.alice.dn)  # type: ignore[attr-defined]
    token = first.client(pki.alice).jobmon.issueCredential({})["token"]
    daemon = kit.SimDaemon(first, "11.0", token=token, max_wait=30.0).start()
    try:
        assert first.client(pki.alice).jobmon.exec("11.0", ["before"])["stdout"].data == b"before"
        t0 = time.monotonic()
        first.stop()
        # the open long-poll was answered at stop, not after its 30 s
        assert time.monotonic() - t0 < 20
        daemon.registered.clear()
        second = relay_factory(listen=f"127.0.0.1:{port}")
        daemon.relay = second
        assert daemon.registered.wait(30), daemon.tracebacks
        try:
            after = second.client(pki.alice).jobmon.exec("11.0", ["after"])
        except xmlrpc.client.Fault as f:  # keep what the daemon saw for the report
            raise AssertionError(f"{f}; daemon: {daemon.tracebacks} reconnects={daemon.reconnects}") from None
        assert after["stdout"].data == b"after"
        # the audit log of the first run survived (same state dir)
        rows = second.core.audit_log.query(job="11.0")
        assert [r.argv for r in rows if r.method == "jobmon.exec"] == [["before"], ["after"]]
    finally:
        daemon.stop()


def test_stop_answers_open_polls_and_flushes_audit(relay_factory: Any, fake_pool: Pool, pki: Any, kit: Any) -> None:
    r = relay_factory(poll_wait=60.0)
    fake_pool.add(12, 0, owner_dn=pki.alice.dn)  # type: ignore[attr-defined]
    token = r.client(pki.alice).jobmon.issueCredential({})["token"]
    d = kit.SimDaemon(r, "12.0", token=token)
    proxy = d.proxy()
    d.register(proxy)
    answered: list[Any] = []
    t = threading.Thread(target=lambda: answered.append(proxy.jobmon.poll(d.session, 60.0)))
    t.start()
    while not r.core.registry.by_job["12.0"].polling:
        time.sleep(0.01)
    t0 = time.monotonic()
    r.stop()
    t.join(30)
    assert answered == [[]] and time.monotonic() - t0 < 30
    db = sqlite3.connect(str(r.config.state_path / "audit.sqlite"))
    methods = [row[0] for row in db.execute("SELECT method FROM audit WHERE job = '12.0'")]
    assert methods == ["jobmon.register"]
