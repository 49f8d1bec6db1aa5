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


def test_a_restart_loses_no_command_and_runs_none_twice(relay_factory: Any, fake_pool: Pool, pki: Any,
                                                        kit: Any) -> None:
    """Stop while one command runs and one waits behind it: the running one still gets its result,
    the waiting one gets 998 and never runs; after the restart nothing is run again."""
    port = free_port()
    first = relay_factory(listen=f"127.0.0.1:{port}")
    fake_pool.add(13, 0, owner_dn=pki.alice.dn)  # type: ignore[attr-defined]
    token = first.client(pki.alice).jobmon.issueCredential({})["token"]
    runs: dict[str, int] = {}

    def handler(op: str, args: dict[str, Any]) -> Any:
        if op == "exec":
            runs[args["argv"][0]] = runs.get(args["argv"][0], 0) + 1
            if args["argv"][0] == "slow":
                time.sleep(1.5)
        return kit.exec_echo(op, args)

    daemon = kit.SimDaemon(first, "13.0", token=token, handler=handler, max_wait=30.0).start()
    answers: dict[str, Any] = {}

    def ask(name: str) -> None:
        try:
            answers[name] = first.client(pki.alice).jobmon.exec("13.0", [name], {"timeout": 30})
        except xmlrpc.client.Fault as f:
            answers[name] = f.faultCode

    try:
        threads = [threading.Thread(target=ask, args=("slow",))]
        threads[0].start()
        while runs.get("slow") != 1:
            time.sleep(0.01)
        threads.append(threading.Thread(target=ask, args=("queued",)))
        threads[1].start()
        while not first.core.registry.by_job["13.0"].has_queued:  # waits behind the running one
            time.sleep(0.01)
        first.stop()
        for t in threads:
            t.join(30)
        assert not isinstance(answers["slow"], int), answers
        assert answers["slow"]["stdout"].data == b"slow"   # finished during the stop: not lost
        assert answers["queued"] == 998                    # never handed out: safe to retry
        second = relay_factory(listen=f"127.0.0.1:{port}")
        daemon.relay = second
        daemon.registered.clear()
        assert daemon.registered.wait(30), daemon.tracebacks
        assert second.client(pki.alice).jobmon.exec("13.0", ["after"])["stdout"].data == b"after"
        assert runs == {"slow": 1, "after": 1}, daemon.seen  # nothing ran twice, the queued one never
    finally:
        daemon.stop()
