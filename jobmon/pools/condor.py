"""CondorPool: the pool interface over a real schedd and collector (htcondor2/classad2 only).

Every call to a daemon goes through :meth:`CondorPool._call`, which logs it
and turns ``htcondor2.HTCondorException`` / ``OSError`` into one line,
``PoolError("schedd at <addr>: <what>")``, never a traceback.

Pool-wide settings are HTCondor configuration knobs named ``JOBMON_*``
(``JOBMON_RELAY_URL``, ...), read with ``htcondor2.param``: an admin sets them
once in ``config.d`` for every user (:func:`condor_settings`).

A note on ``htcondor2.DaemonCommand`` (bindings 25.14.1): its member
``DaemonOffPeaceful`` has the value 469, which is HTCondor's ``DAEMON_ON``
(condor_commands.h: ``DAEMON_ON = SCHED_VERS+69``, ``DAEMON_OFF_PEACEFUL =
SCHED_VERS+83`` with ``SCHED_VERS = 400``). Sending it would *start* the
daemon. So the wire values are written here from condor_commands.h and
passed as ``DaemonCommand(value)``.
"""

from __future__ import annotations

import logging
import time
import types
from collections.abc import Sequence
from typing import Any, Callable, TypeVar

from jobmon.errors import NotFound, PoolError, SubmitFileError, UsageError
from jobmon.pools.base import JobAction, NodeAction, NodeInfo, Pool, SubmitResult
from jobmon.pools.condor_nodes import (
    STARTD_PROJECTION,
    drain_message,
    retirement_seconds,
    summarise_nodes,
)
from jobmon.pools.condor_nodes import (
    node_join_instructions as _join_text,
)

log = logging.getLogger("jobmon.pools.condor")

T = TypeVar("T")

#: condor_commands.h wire values (see the module docstring for why not the enum members)
DAEMON_ON = 469
DAEMON_OFF_PEACEFUL = 483


def _htcondor() -> types.ModuleType:
    import htcondor2

    return htcondor2


def condor_settings(htcondor: Any = None) -> dict[str, str]:
    """Every ``JOBMON_*`` knob of the HTCondor configuration, values as text.

    ``htcondor2.param`` gives ``str``, ``int`` or ``bool`` depending on the knob;
    here all are ``str`` (booleans as ``true``/``false``) so the settings loader
    parses them like its own files.
    """
    h = htcondor or _htcondor()
    out: dict[str, str] = {}
    for key in list(h.param.keys()):
        if not str(key).upper().startswith("JOBMON_"):
            continue
        value = h.param.get(key)
        if value is None:
            continue
        out[str(key).upper()] = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return out


def _classad_string(value: str) -> str:
    from submit_templates.render import classad_string

    return classad_string(value)


class CondorPool(Pool):
    """A real HTCondor pool: one schedd (the local one unless named) and its collector."""

    kind = "condor"

    def __init__(
        self,
        collector: str | None = None,
        schedd_name: str | None = None,
        *,
        htcondor: Any = None,
    ) -> None:
        self._h = htcondor or _htcondor()
        self._collector_host = collector
        self._schedd_name = schedd_name
        self._schedd: Any = None
        self._schedd_addr: str | None = None

    # ------------------------------------------------------------ plumbing

    def _call(self, daemon_name: str, address: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Call ``fn`` on a daemon; log it; one-line ``PoolError`` naming the daemon on failure."""
        what = getattr(fn, "__name__", "call")
        start = time.monotonic()
        try:
            result = fn(*args, **kwargs)
        except (self._h.HTCondorException, OSError) as e:
            log.warning("%s at %s: %s failed: %s", daemon_name, address, what, e)
            text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise PoolError(f"{daemon_name} at {address}: {text}") from None
        log.debug("%s at %s: %s (%.3fs)", daemon_name, address, what, time.monotonic() - start)
        return result

    @property
    def collector_address(self) -> str:
        if self._collector_host:
            return self._collector_host
        value = self._h.param.get("COLLECTOR_HOST")
        return str(value) if value else "the local collector"

    def _collector(self) -> Any:
        return self._h.Collector(self._collector_host) if self._collector_host else self._h.Collector()

    def _get_schedd(self) -> Any:
        if self._schedd is None:
            coll = self._collector()
            if self._schedd_name:
                ad = self._call("collector", self.collector_address, coll.locate,
                                self._h.DaemonType.Schedd, self._schedd_name)
            else:
                ad = self._call("collector", self.collector_address, coll.locate, self._h.DaemonType.Schedd)
            self._schedd_addr = str(ad.get("MyAddress") or ad.get("Name") or "?")
            self._schedd = self._h.Schedd(ad)
        return self._schedd

    @property
    def address(self) -> str:
        if self._schedd_addr:
            return self._schedd_addr
        return f"schedd {self._schedd_name or '(local)'} via {self.collector_address}"

    def _schedd_call(self, fn_name: str, *args: Any, **kwargs: Any) -> Any:
        schedd = self._get_schedd()
        return self._call("schedd", self._schedd_addr or "?", getattr(schedd, fn_name), *args, **kwargs)

    # ------------------------------------------------------------ jobs

    def submit(
        self,
        submit: Any,
        *,
        iwd: str,
        owner_dn: str | None = None,
        count: int | None = None,
    ) -> SubmitResult:
        """Queue the wrapped description in one transaction (``Schedd.submit``)."""
        if "initialdir" not in submit and "iwd" not in submit:
            submit["initialdir"] = iwd
        if owner_dn:
            submit["MY.JobMonOwnerDN"] = _classad_string(owner_dn)
        try:
            result = self._schedd_call("submit", submit, count=count or 0)
        except PoolError as e:
            # the schedd refused the description itself: a submit-file problem, not an outage
            if "Failed to connect" in str(e) or "communication" in str(e).lower():
                raise
            raise SubmitFileError(str(e)) from None
        first, num = int(result.first_proc()), int(result.num_procs())
        return SubmitResult(cluster=int(result.cluster()), procs=tuple(range(first, first + num)))

    def query(self, constraint: str = "true", projection: Sequence[str] = ()) -> list[Any]:
        return list(self._schedd_call("query", constraint=constraint, projection=list(projection)))

    def history(self, constraint: str = "true", projection: Sequence[str] = (), match: int = -1) -> list[Any]:
        return list(self._schedd_call("history", constraint, list(projection), match))

    def act(self, action: JobAction, constraint: str, reason: str | None = None) -> int:
        kinds = {
            JobAction.REMOVE: self._h.JobAction.Remove,
            JobAction.HOLD: self._h.JobAction.Hold,
            JobAction.RELEASE: self._h.JobAction.Release,
        }
        try:
            kind = kinds[JobAction(action)]
        except (KeyError, ValueError):
            raise UsageError(f"unknown job action {action!r}") from None
        result = self._schedd_call("act", kind, constraint, reason or f"via jobmon ({JobAction(action).value})")
        if result is None:
            return 0
        return int(result.get("TotalSuccess") or 0)

    # ------------------------------------------------------------ nodes

    def _startd_ads(self, constraint: str = "true") -> list[Any]:
        coll = self._collector()
        return list(self._call("collector", self.collector_address, coll.query,
                               self._h.AdType.Startd, constraint, STARTD_PROJECTION))

    def _master_ads(self, constraint: str = "true") -> list[Any]:
        coll = self._collector()
        return list(self._call("collector", self.collector_address, coll.query,
                               self._h.AdType.Master, constraint, ["Name", "Machine", "MyAddress", "MyType"]))

    def nodes(self) -> list[NodeInfo]:
        return summarise_nodes(self._startd_ads(), self._master_ads())

    def _resolve(self, node: str) -> str:
        """The node's ``Machine`` name from a full or short host name."""
        names = sorted({n.name for n in self.nodes()})
        if node in names:
            return node
        short = [n for n in names if n.split(".")[0] == node]
        if len(short) == 1:
            return short[0]
        hint = "known nodes: " + (", ".join(names) if names else "none")
        if len(short) > 1:
            raise UsageError(f"{node!r} matches several nodes: {', '.join(short)}", hint="use the full name")
        raise NotFound(f"no execute node named {node!r} in the pool at {self.collector_address}", hint=hint)

    def node_action(self, node: str, action: NodeAction) -> str:
        action = NodeAction(action)
        machine = self._resolve(node)
        quoted = '"' + machine.replace("\\", "\\\\").replace('"', '\\"') + '"'
        if action in (NodeAction.DRAIN, NodeAction.UNDRAIN):
            slots = self._startd_ads(f"Machine == {quoted}")
            if not slots:
                raise PoolError(f"startd on {machine}: not in the collector at {self.collector_address} (is it off?)")
            addr = str(slots[0].get("MyAddress"))
            startd = self._h.Startd(slots[0])
            if action is NodeAction.DRAIN:
                rid = self._call("startd", addr, startd.drainJobs,
                                 drain_type=self._h.DrainType.Graceful, reason="jobmon nodes drain")
                return drain_message(machine, str(rid), retirement_seconds(slots))
            ids = sorted({str(s["DrainingRequestId"]) for s in slots if s.get("DrainingRequestId")})
            if ids:
                for rid in ids:
                    self._call("startd", addr, startd.cancelDrainJobs, rid)
            else:
                self._call("startd", addr, startd.cancelDrainJobs, None)
            return f"cancelled draining on {machine}: its slots accept jobs again"
        masters = self._master_ads(f"Machine == {quoted}")
        if not masters:
            raise PoolError(f"master on {machine}: not in the collector at {self.collector_address}")
        master = masters[0]
        maddr = str(master.get("MyAddress"))
        if action is NodeAction.OFF:
            self._call("master", maddr, self._h.send_command, master,
                       self._h.DaemonCommand(DAEMON_OFF_PEACEFUL), "STARTD")
            return (
                f"asked the master on {machine} to shut its startd down peacefully: running jobs finish "
                f"first (no time limit), no new jobs start, then the node leaves the pool; "
                f"`jobmon nodes on {machine}` starts it again"
            )
        self._call("master", maddr, self._h.send_command, master, self._h.DaemonCommand(DAEMON_ON), "STARTD")
        return f"asked the master on {machine} to start its startd; the node shows up within a minute"

    def node_join_instructions(self, node: str) -> str:
        return node_join_instructions(node, htcondor=self._h)


def node_join_instructions(node: str, htcondor: Any = None) -> str:
    """``jobmon nodes add NODE``: the configuration and token steps, with this pool's values."""
    h = htcondor or _htcondor()
    if not node or any(c.isspace() for c in node) or "/" in node:
        raise UsageError(f"{node!r} is not a host name")
    cm = h.param.get("CONDOR_HOST") or h.param.get("COLLECTOR_HOST") or "CENTRAL-MANAGER"
    cm = str(cm).split(":")[0]
    trust = h.param.get("TRUST_DOMAIN") or cm
    relay = h.param.get("JOBMON_RELAY_URL")
    return _join_text(node, central_manager=cm, trust_domain=str(trust).split(":")[0],
                      relay_url=str(relay) if relay else None)
