"""Identical pool reads at the same time are one call (relay/single_flight.py), on a real event
loop; and through the relay core, the job lists of many open pages cost the pool one query."""

from __future__ import annotations

import asyncio
import doctest
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from relay import single_flight
from relay.config import load_config
from relay.core import RelayCore
from relay.faults import Fault, RelayFault
from relay.identity import Identity
from relay.single_flight import SingleFlight

ALICE = Identity("/DC=org/DC=example/CN=Alice", "certificate")


def test_docstring_example() -> None:
    assert doctest.testmod(single_flight).failed == 0


def test_shared_while_running_never_after() -> None:
    async def scenario() -> None:
        calls: list[str] = []
        gate = asyncio.Event()

        async def read(key: str) -> list[str]:
            calls.append(key)
            await gate.wait()
            return [key]

        sf = SingleFlight()
        first = [asyncio.ensure_future(sf.run("a", lambda: read("a"))) for _ in range(3)]
        other = asyncio.ensure_future(sf.run("b", lambda: read("b")))
        for _ in range(3):
            await asyncio.sleep(0)
        assert calls == ["a", "b"] and sf.running == 2
        gate.set()
        got = await asyncio.gather(*first)
        assert got == [["a"]] * 3 and await other == ["b"]
        got[0].append("changed by a caller")          # each caller has its own list
        assert got[1] == ["a"] and sf.running == 0
        assert await sf.run("a", lambda: read("a")) == ["a"]
        assert calls == ["a", "b", "a"]                # finished calls are not kept

    asyncio.run(scenario())


def test_errors_are_shared_and_a_cancelled_caller_leaves_the_call_running() -> None:
    async def scenario() -> None:
        gate = asyncio.Event()

        async def failing() -> Any:
            await gate.wait()
            raise RelayFault(Fault.POOL_ERROR, "schedd at <10.0.0.5:9618>: Failed to connect")

        sf = SingleFlight()
        leaving = asyncio.ensure_future(sf.run("q", failing))
        staying = asyncio.ensure_future(sf.run("q", failing))
        for _ in range(3):
            await asyncio.sleep(0)
        leaving.cancel()
        for _ in range(3):
            await asyncio.sleep(0)
        gate.set()
        with pytest.raises(RelayFault, match="Failed to connect"):
            await staying
        assert leaving.cancelled() and sf.running == 0

    asyncio.run(scenario())


class CountingPool:
    """A pool whose queries take 50 ms and are counted (what a schedd query costs, roughly)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.queries = 0
        self.lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def query(self, constraint: str = "true", projection: Any = ()) -> list[Any]:
        with self.lock:
            self.queries += 1
        time.sleep(0.05)
        return list(self.inner.query(constraint, projection))


def test_ten_pages_rendering_at_once_ask_the_pool_once(tmp_path: Path, fake_pool: Any) -> None:
    for proc in range(3):
        fake_pool.add(12, proc, owner_dn=ALICE.dn)
    pool = CountingPool(fake_pool)

    async def main() -> None:
        cfg = load_config(None, {"state_dir": str(tmp_path / "state"), "joblist_history": 0})
        core = RelayCore(cfg, pool)  # type: ignore[arg-type]
        lists = await asyncio.gather(*(core.joblist(ALICE) for _ in range(10)))
        assert all(sorted(j["id"] for j in jobs) == ["12.0", "12.1", "12.2"] for jobs in lists)
        assert pool.queries == 1
        await core.joblist(ALICE)     # the next render asks again: nothing is cached
        assert pool.queries == 2
        await core.close()

    asyncio.run(main())


def test_after_a_change_readers_do_not_join_a_read_from_before() -> None:
    async def scenario() -> None:
        state = ["running"]
        gate = asyncio.Event()

        async def read() -> list[str]:
            seen = list(state)
            await gate.wait()
            return seen

        sf = SingleFlight()
        before = asyncio.ensure_future(sf.run("q", read))
        for _ in range(3):
            await asyncio.sleep(0)
        state[0] = "removed"       # the relay changed the pool (jobmon rm) ...
        sf.forget()                # ... as pool_call does after every change
        after = asyncio.ensure_future(sf.run("q", read))
        for _ in range(3):
            await asyncio.sleep(0)
        gate.set()
        assert await before == ["running"] and await after == ["removed"]
        assert sf.running == 0

    asyncio.run(scenario())
