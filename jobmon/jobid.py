"""HTCondor job ids: ``C.P`` for one job, ``C`` for a whole cluster."""

from __future__ import annotations

import re

from jobmon.errors import UsageError
from jobmon.record import Record

_JOB_RE = re.compile(r"^(\d+)(?:\.(\d+))?$")


class JobId(Record):
    """A job (``proc`` set) or a whole cluster (``proc`` is None).

    >>> JobId.parse("123.4")
    JobId(cluster=123, proc=4)
    >>> str(JobId.parse("77"))
    '77'
    >>> JobId.parse("123.4").constraint()
    'ClusterId == 123 && ProcId == 4'
    """

    __slots__ = ("cluster", "proc")
    cluster: int
    proc: int | None

    def __init__(self, cluster: int, proc: int | None = None) -> None:
        self._set(cluster, proc)

    def __lt__(self, other: JobId) -> bool:
        return (self.cluster, self.proc) < (other.cluster, other.proc)  # type: ignore[operator]

    def __le__(self, other: JobId) -> bool:
        return (self.cluster, self.proc) <= (other.cluster, other.proc)  # type: ignore[operator]

    def __gt__(self, other: JobId) -> bool:
        return (self.cluster, self.proc) > (other.cluster, other.proc)  # type: ignore[operator]

    def __ge__(self, other: JobId) -> bool:
        return (self.cluster, self.proc) >= (other.cluster, other.proc)  # type: ignore[operator]

    @classmethod
    def parse(cls, text: str) -> JobId:
        m = _JOB_RE.match(text.strip())
        if not m:
            raise UsageError(
                f"{text!r} is not a job id", hint="use CLUSTER.PROC such as 123.0, or CLUSTER for all its jobs"
            )
        proc = int(m.group(2)) if m.group(2) is not None else None
        return cls(int(m.group(1)), proc)

    @property
    def is_cluster(self) -> bool:
        return self.proc is None

    def constraint(self) -> str:
        if self.proc is None:
            return f"ClusterId == {self.cluster}"
        return f"ClusterId == {self.cluster} && ProcId == {self.proc}"

    def __str__(self) -> str:
        return str(self.cluster) if self.proc is None else f"{self.cluster}.{self.proc}"
