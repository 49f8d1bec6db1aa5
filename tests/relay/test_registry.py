"""The registry and the core without sockets: long-poll wake-ups, timeouts, replacement, stop."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from relay.config import load_config
from relay.core import RelayCore
from relay.faults import RelayFault
from relay.identity import Identity
from relay.registry import Registry

ALICE = Identity("/DC=org/DC=example/CN=Alice", "certificate")
BOB = Identity("/DC=org/DC=example/CN=Bob", "certificate")


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 30))


def test_a_queued_command_wakes_the_held_poll_at_once() -> None:
    async def main() -> None:
        reg = Registry(poll_wait=60.0)
        d = reg.register("1.0", ALICE.dn, "certificate", {})
        poll = asyncio.ensure_future(reg.poll(d, 60.0))
        await asyncio.sleep(0)
        assert d.polling == 1
        call = asyncio.ensure_future(reg.call("1.0", "exec", {"argv": ["ls"]}, 30.0))
        requests = await poll  # returns long before poll_wait
        assert [r["op"] for r in requests] == ["exec"] and requests[0]["args"] == {"argv": ["ls"]}
        assert reg.post_result(d, requests[0]["id"], {"exit_code": 0}) is True
        assert await call == {"exit_code": 0}
        assert reg.post_result(d, requests[0]["id"], {"exit_code": 1}) is False  # already answered
    run(main())


def test_timeout_then_cancel_is_sent_for_a_delivered_exec() -> None:
    async def main() -> None:
        reg = Registry(poll_wait=60.0)
        d = reg.register("1.0", ALICE.dn, "certificate", {})
        call = asyncio.ensure_future(reg.call("1.0", "exec", {"argv": ["sleep"]}, 0.05))
        await asyncio.sleep(0)
        delivered = await reg.poll(d, 0.0)
        with pytest.raises(RelayFault) as info:
            await call
        assert info.value.code == 700
        cancels = await reg.poll(d, 0.0)
        assert cancels[0]["op"] == "cancel" and cancels[0]["args"] == {"request": delivered[0]["id"]}
        assert reg.requests == {}
    run(main())


def test_undelivered_request_that_times_out_is_never_delivered() -> None:
    async def main() -> None:
        reg = Registry(poll_wait=60.0)
        d = reg.register("1.0", ALICE.dn, "certificate", {})
        with pytest.raises(RelayFault):
            await reg.call("1.0", "read", {}, 0.01)
        assert await reg.poll(d, 0.0) == []
    run(main())


def test_reregistering_replaces_the_session_and_fails_its_requests() -> None:
    async def main() -> None:
        reg = Registry()
        old = reg.register("1.0", ALICE.dn, "certificate", {})
        call = asyncio.ensure_future(reg.call("1.0", "ps", {}, 30.0))
        await asyncio.sleep(0)
        new = reg.register("1.0", ALICE.dn, "certificate", {})
        with pytest.raises(RelayFault) as info:
            await call
        assert info.value.code == 501
        with pytest.raises(RelayFault) as info:
            reg.session(old.session)
        assert info.value.code == 900
        assert reg.session(new.session, ALICE.dn) is new
        with pytest.raises(RelayFault):
            reg.session(new.session, BOB.dn)  # someone else's session
    run(main())


def test_finish_and_close() -> None:
    async def main() -> None:
        reg = Registry(poll_wait=60.0)
        d = reg.register("2.0", ALICE.dn, "certificate", {})
        pending = asyncio.ensure_future(reg.call("2.0", "ps", {}, 30.0))
        await asyncio.sleep(0)
        reg.finish(d, {"exit_code": 0})
        with pytest.raises(RelayFault) as info:
            await pending
        assert info.value.code == 502 and not reg.connected("2.0")
        e = reg.register("3.0", ALICE.dn, "certificate", {})
        poll = asyncio.ensure_future(reg.poll(e, 60.0))
        await asyncio.sleep(0)
        reg.close()          # stopping: no new commands, but polls stay held (results may still come)
        await asyncio.sleep(0.05)
        assert not poll.done()
        with pytest.raises(RelayFault) as info:
            await reg.call("3.0", "ps", {}, 1.0)
        assert info.value.code == 998
        reg.release()        # stopped: every held poll is answered, empty
        assert await poll == []
        assert await reg.poll(e, 60.0) == []
    run(main())


class _Pool:
    """Minimal pool: no ads (jobs known only from their daemons)."""

    kind = "none"


def test_core_in_memory(tmp_path: Path) -> None:
    async def main() -> None:
        cfg = load_config(None, {"state_dir": str(tmp_path), "admins": ["/DC=org/DC=example/CN=Root"]})
        core = RelayCore(cfg, None)
        await core.start()
        events = core.subscribe()
        ended: list[dict[str, Any]] = []

        async def on_end(job: dict[str, Any]) -> None:
            ended.append(job)

        core.on_job_end(on_end)
        reply = await core.register(ALICE, {"job": "attach-1", "host": "wn1"})
        first = await events.__anext__()
        assert first["id"] == "attach-1" and first["connected"] is True and first["owner_dn"] == ALICE.dn
        assert [j["id"] for j in await core.joblist(ALICE, {})] == ["attach-1"]
        assert await core.joblist(BOB, {}) == []
        root = Identity("/DC=org/DC=example/CN=Root", "certificate")
        assert len(await core.joblist(root, {"all": True})) == 1
        with pytest.raises(RelayFault) as info:
            await core.exec(BOB, "attach-1", ["ls"], {})
        assert info.value.code == 401

        async def daemon() -> None:
            reqs = await core.poll(ALICE, reply["session"], 10.0)
            await core.result(ALICE, reply["session"], reqs[0]["id"], {"exit_code": 0, "stdout": b"x"})

        task = asyncio.ensure_future(daemon())
        res = await core.exec(ALICE, "attach-1", ["ls"], {})
        await task
        assert res["stdout"] == b"x"
        await core.heartbeat(ALICE, reply["session"], {"progress": {"done": 5.0, "total": 10.0}})
        assert (await events.__anext__())["progress"] == {"done": 5.0, "total": 10.0}
        await core.finish(ALICE, reply["session"], {"exit_code": 3, "end_time": 1763700200.0})
        await asyncio.sleep(0)
        assert ended and ended[0]["state"] == "finished" and ended[0]["exit_code"] == 3
        status = await core.status(ALICE, "attach-1")
        assert status["connected"] is False and status["exit_code"] == 3
        with pytest.raises(RelayFault) as info:
            await core.exec(ALICE, "attach-1", ["ls"], {})
        assert info.value.code == 502
        rows = await core.audit_query(root, {"job": "attach-1"})
        assert [(r["method"], r["dn"], r["allowed"]) for r in rows] == [
            ("jobmon.register", ALICE.dn, True),
            ("jobmon.exec", BOB.dn, False),
            ("jobmon.exec", ALICE.dn, True),
            ("jobmon.finish", ALICE.dn, True),
            ("jobmon.exec", ALICE.dn, True),   # tried after the end: recorded with its fault
        ]
        assert rows[2]["exit_status"] == 0 and rows[2]["bytes"] == 1.0 and rows[4]["note"].startswith("502")
        with pytest.raises(RelayFault) as info:
            await core.audit_query(ALICE, {})
        assert info.value.code == 400
        await events.aclose()
        await core.stop()
    run(main())


def test_a_lost_poll_connection_counts_as_disconnected_after_the_allowance() -> None:
    class Conn:
        woken = 0

        def wake(self) -> None:
            self.woken += 1

    async def main() -> None:
        reg = Registry(poll_wait=60.0, allowance=0.2)
        d = reg.register("1.0", ALICE.dn, "certificate", {})
        conn = Conn()
        assert reg.take(d) is None
        reg.park(d, conn)
        assert reg.connected("1.0") and d.polling == 1
        assert reg.unpark(d, conn, lost=True) == []          # the daemon was killed
        assert reg.connected("1.0")                          # it may still come back
        call = asyncio.ensure_future(reg.call("1.0", "exec", {"argv": ["ls"]}, 30.0))
        with pytest.raises(RelayFault) as info:
            await call                                       # fails after the allowance, not the timeout
        assert info.value.code == 501 and not reg.connected("1.0")
        with pytest.raises(RelayFault) as info:
            await reg.call("1.0", "exec", {"argv": ["ls"]}, 30.0)
        assert info.value.code == 501
        reg.session(d.session, ALICE.dn)                      # it called again: alive
        assert reg.connected("1.0")
    run(main())


def test_a_newer_poll_answers_the_parked_one_empty() -> None:
    class Conn:
        def __init__(self) -> None:
            self.woken = 0

        def wake(self) -> None:
            self.woken += 1

    async def main() -> None:
        reg = Registry(poll_wait=60.0)
        d = reg.register("1.0", ALICE.dn, "certificate", {})
        old, new = Conn(), Conn()
        reg.park(d, old)
        reg.park(d, new)
        assert old.woken == 1 and reg.unpark(d, old) == []   # replaced: empty, nothing handed out
        call = asyncio.ensure_future(reg.call("1.0", "exec", {"argv": ["ls"]}, 30.0))
        await asyncio.sleep(0)
        assert new.woken == 1
        handed = reg.unpark(d, new)
        assert [r["op"] for r in handed] == ["exec"] and d.polling == 0
        reg.post_result(d, handed[0]["id"], {"exit_code": 0})
        assert await call == {"exit_code": 0}
    run(main())
