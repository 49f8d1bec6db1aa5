"""Fan-out batches (relay/batches.py) on a real event loop, without sockets."""

from __future__ import annotations

import asyncio
from typing import Any

from relay.batches import RAMP, Batches
from relay.faults import Fault, RelayFault


def test_workers_start_a_few_per_turn_and_results_are_taken_meanwhile() -> None:
    async def scenario() -> None:
        started: list[str] = []
        gates: dict[str, asyncio.Future[dict[str, Any]]] = {}
        loop = asyncio.get_running_loop()

        async def run(job: str) -> dict[str, Any]:
            started.append(job)
            gates[job] = loop.create_future()
            return await gates[job]

        batch = Batches(concurrency=64).start("/CN=alice", [f"7.{i}" for i in range(200)], run)
        await asyncio.sleep(0)
        assert len(started) == RAMP            # the first turn sends only RAMP commands
        gates["7.0"].set_result({"exit_code": 0})
        await asyncio.sleep(0)
        results, done = await batch.take(0)
        assert [r["job"] for r in results] == ["7.0"] and not done   # taken before all have started
        for _ in range(20):
            await asyncio.sleep(0)
        assert len(started) == 65              # 64 workers; the one that finished took the next job
        while not batch.done:
            for job, gate in list(gates.items()):
                if gate.done():
                    continue
                if job == "7.1":
                    gate.set_exception(RelayFault(Fault.JOB_NOT_CONNECTED, "gone"))
                else:
                    gate.set_result({"exit_code": 0})
            await asyncio.sleep(0)
        results, done = await batch.take(0)
        assert done and len(results) == 199
        assert sum(1 for r in results if r.get("fault") == Fault.JOB_NOT_CONNECTED) == 1

    asyncio.run(scenario())


def test_a_cancelled_batch_starts_no_more_workers() -> None:
    async def scenario() -> None:
        started: list[str] = []

        async def run(job: str) -> dict[str, Any]:
            started.append(job)
            await asyncio.sleep(3600)
            return {}

        batches = Batches(concurrency=64)
        batches.start("/CN=alice", [f"8.{i}" for i in range(100)], run)
        await asyncio.sleep(0)
        batches.cancel_all()                   # the relay closes while workers are still starting
        for _ in range(20):
            await asyncio.sleep(0)
        assert len(started) == RAMP

    asyncio.run(scenario())
