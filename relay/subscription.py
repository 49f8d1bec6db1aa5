"""A live feed of job structs (the web pages' event streams subscribe to the core)."""

from __future__ import annotations

import asyncio
from typing import Any


class Subscription:
    """An async iterator of job structs, registered with the core while open."""

    def __init__(self, registry: set[asyncio.Queue[dict[str, Any]]], maxsize: int) -> None:
        self._registry = registry
        self._queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=maxsize)
        registry.add(self._queue)

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> dict[str, Any]:
        if self._queue not in self._registry:
            raise StopAsyncIteration
        try:
            return await self._queue.get()
        except asyncio.CancelledError:
            self._registry.discard(self._queue)
            raise

    async def aclose(self) -> None:
        self._registry.discard(self._queue)
