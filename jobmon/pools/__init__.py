"""Pool adapters: the only door from jobmon/ and relay/ into a pool."""

from jobmon.pools.base import JobAction, NodeAction, NodeInfo, Pool, SubmitResult

__all__ = ["JobAction", "NodeAction", "NodeInfo", "Pool", "SubmitResult"]
