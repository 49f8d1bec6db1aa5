"""The pool admin's operations of ``RelayCore``: execute nodes and the audit log."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from jobmon.pools.base import NodeAction
from relay.faults import Fault, RelayFault
from relay.identity import Identity
from relay.watch_ops import WatchCore


class AdminCore(WatchCore):
    def _need_admin(self, caller: Identity, method: str) -> None:
        if not self.is_admin(caller):
            raise self.deny(caller, method, RelayFault(Fault.ACCESS_DENIED, f"{method} is for pool admins"))

    async def nodes(self, caller: Identity) -> list[dict[str, Any]]:
        self._need_admin(caller, "jobmon.nodes")
        assert self.pool is not None or True
        nodes = await self.pool_call("nodes", self.pool.nodes if self.pool else _none)
        return [_node_struct(n) for n in nodes]

    async def node_action(self, caller: Identity, node: str, action: str) -> dict[str, Any]:
        self._need_admin(caller, "jobmon.nodeAction")
        try:
            act = NodeAction(str(action))
        except ValueError:
            raise RelayFault(Fault.BAD_PARAMS, "action must be one of drain, undrain, off, on") from None
        if self.pool is None:
            raise RelayFault(Fault.POOL_ERROR, "this relay has no pool configured")
        names = {n.name for n in await self.pool_call("nodes", self.pool.nodes)}
        if str(node) not in names:
            raise RelayFault(Fault.UNKNOWN_NODE, f"no execute node {node!r} in the pool")
        msg = await self.pool_call("node action", self.pool.node_action, str(node), act)
        self.audit(caller, "jobmon.nodeAction", argv=[str(node), act.value], note=str(msg))
        return {"message": str(msg)}

    nodeAction = node_action

    async def audit_query(self, caller: Identity, filt: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        self._need_admin(caller, "jobmon.audit")
        filt = dict(filt or {})
        since = filt.get("since")
        records = await asyncio.to_thread(
            self.audit_log.query,
            job=str(filt["job"]) if filt.get("job") else None,
            user=str(filt["user"]) if filt.get("user") else None,
            since=float(since) if isinstance(since, (int, float)) and not isinstance(since, bool) else None,
            limit=int(filt.get("limit", 1000)),
        )
        return [r.as_struct() for r in records]



def _none() -> list[Any]:
    return []


def _node_struct(n: Any) -> dict[str, Any]:
    if isinstance(n, dict):
        return n
    return {
        "name": n.name, "state": n.state, "activity": n.activity, "slots_total": n.slots_total,
        "slots_busy": n.slots_busy, "load": float(n.load), "running_jobs": list(n.running_jobs),
        "has_jobmon": bool(n.has_jobmon), "draining": bool(n.draining),
    }
