"""The small interface every pool adapter implements.

``CondorPool`` (htcondor2 bindings, a real schedd and collector) and
``LocalPool`` (the embedded default) both speak it; nothing else in the
project talks to a pool. Job ads are ``classad2.ClassAd`` objects with
HTCondor's own attribute names, so constraints evaluate the same everywhere.
Every failure is raised as ``jobmon.errors.PoolError`` (or a subclass of
``JobmonError``) whose message names the daemon and its address.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    import classad2
    import htcondor2


class JobAction(str, Enum):
    REMOVE = "remove"
    HOLD = "hold"
    RELEASE = "release"


class NodeAction(str, Enum):
    DRAIN = "drain"        # graceful: running jobs may finish (MAXJOBRETIREMENTTIME), no new ones
    UNDRAIN = "undrain"    # cancel a drain
    OFF = "off"            # peaceful shutdown of the startd: running jobs finish first
    ON = "on"              # start the startd again


@dataclass(frozen=True)
class SubmitResult:
    cluster: int
    procs: tuple[int, ...]

    @property
    def count(self) -> int:
        return len(self.procs)


@dataclass(frozen=True)
class NodeInfo:
    name: str                      # machine name, e.g. node01.example.org
    state: str                     # summarised: "up", "draining", "drained", "off"
    activity: str                  # dominant Activity of its slots
    slots_total: int
    slots_busy: int
    load: float
    running_jobs: tuple[str, ...] = field(default_factory=tuple)  # "C.P" ids
    has_jobmon: bool = False
    draining: bool = False


class Pool(abc.ABC):
    """A place jobs run. Methods block; the relay calls them from a thread."""

    #: "local" or "condor"
    kind: str = "abstract"

    @property
    @abc.abstractmethod
    def address(self) -> str:
        """Where the pool is, for messages (schedd sinful string, state dir, ...)."""

    @abc.abstractmethod
    def submit(
        self,
        submit: htcondor2.Submit,
        *,
        iwd: str,
        owner_dn: str | None = None,
        count: int | None = None,
    ) -> SubmitResult:
        """Queue the jobs the (already wrapped) description describes, in one transaction."""

    @abc.abstractmethod
    def query(self, constraint: str = "true", projection: Sequence[str] = ()) -> list[classad2.ClassAd]:
        """Job ads of jobs in the queue that match ``constraint`` (a ClassAd expression)."""

    @abc.abstractmethod
    def history(
        self, constraint: str = "true", projection: Sequence[str] = (), match: int = -1
    ) -> list[classad2.ClassAd]:
        """Job ads of jobs that have left the queue, newest first."""

    @abc.abstractmethod
    def act(self, action: JobAction, constraint: str, reason: str | None = None) -> int:
        """Remove, hold or release matching jobs; returns how many were affected."""

    @abc.abstractmethod
    def nodes(self) -> list[NodeInfo]:
        """The execute nodes, one entry per machine."""

    @abc.abstractmethod
    def node_action(self, node: str, action: NodeAction) -> str:
        """Drain, undrain, turn off (peacefully) or on one node; returns a message for the admin."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources (threads, connections)."""
