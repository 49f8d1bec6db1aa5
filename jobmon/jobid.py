"""HTCondor job ids: ``C.P`` for one job, ``C`` for a whole cluster."""

from __future__ import annotations

import re
from dataclasses import dataclass

from jobmon.errors import UsageError

_JOB_RE = re.compile(r"^(\d+)(?:\.(\d+))?$")


@dataclass(frozen=True, order=True)
class JobId:
    """A job (``proc`` set) or a whole cluster (``proc`` is None).

    >>> JobId.parse("123.4")
    JobId(cluster=123, proc=4)
    >>> str(JobId.parse("77"))
    '77'
    >>> JobId.parse("123.4").constraint()
    'ClusterId == 123 && ProcId == 4'
    """

    cluster: int
    proc: int | None = None

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
