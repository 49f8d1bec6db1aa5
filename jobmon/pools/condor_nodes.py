"""Execute nodes as an admin sees them, summarised from the collector's ads.

Facts from the recordings (shared/condor-fixtures, machines/ and drain/):
every slot of a startd is one ``Machine`` ad in the collector, named
``slotN@host`` with ``Machine = "host"``; a busy slot is ``Claimed``/``Busy``
with ``JobId = "C.P"``; while draining every slot has ``Draining = true`` and
``DrainingRequestId = "<n>"`` (a string); idle slots then show ``Drained``;
a busy slot shows ``Claimed``/``Retiring`` while its job may still finish.
A startd turned off leaves the collector while its master stays there, so a
master ad without startd ads is a node that is ``off``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from jobmon.pools.base import NodeInfo

#: HTCondor's default maximum vacate time (job_max_vacate_time / MachineMaxVacateTime), seconds.
DEFAULT_MAX_VACATE_TIME = 600

STARTD_PROJECTION = [
    "Name", "Machine", "MyAddress", "MyType", "CondorVersion", "State", "Activity", "SlotType",
    "JobId", "Draining", "DrainingRequestId", "LoadAvg", "TotalLoadAvg", "HasJobMon",
    "JobMonRelay", "JobMonWrapperVersion", "MaxJobRetirementTime", "Cpus",
]


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


def _counts_as_slot(ad: Mapping[str, Any]) -> bool:
    """Static and dynamic slots count; a partitionable slot counts while it has CPUs left."""
    if ad.get("SlotType") == "Partitionable":
        cpus = _int(ad.get("Cpus"))
        return bool(cpus and cpus > 0)
    return True


def _busy(ad: Mapping[str, Any]) -> bool:
    return bool(ad.get("JobId")) or ad.get("State") == "Claimed"


def summarise_node(name: str, slots: list[Mapping[str, Any]]) -> NodeInfo:
    """One node from its slot ads (all with the same ``Machine``)."""
    counted = [s for s in slots if _counts_as_slot(s)]
    busy = [s for s in counted if _busy(s)]
    draining = any(s.get("Draining") is True for s in slots)
    if draining:
        state = "draining" if busy else "drained"
    else:
        state = "up"
    activities = Counter(str(s.get("Activity") or "Unknown") for s in counted or slots)
    top = max(activities.values()) if activities else 0
    # on a tie the working activity wins: Busy/Retiring says more than Idle
    order = ["Busy", "Retiring", "Vacating", "Suspended", "Benchmarking", "Killing", "Idle"]
    tied = [a for a, n in activities.items() if n == top]
    tied.sort(key=lambda a: order.index(a) if a in order else len(order))
    activity = tied[0] if tied else "Unknown"
    loads = [float(s["TotalLoadAvg"]) for s in slots if isinstance(s.get("TotalLoadAvg"), (int, float))]
    if loads:
        load = loads[0]
    else:
        load = sum(float(s["LoadAvg"]) for s in slots if isinstance(s.get("LoadAvg"), (int, float)))
    jobs = sorted(
        {str(s["JobId"]) for s in slots if s.get("JobId")},
        key=lambda j: tuple(int(p) for p in j.split(".") if p.isdigit()),
    )
    return NodeInfo(
        name=name,
        state=state,
        activity=activity,
        slots_total=len(counted),
        slots_busy=len(busy),
        load=round(load, 2),
        running_jobs=tuple(jobs),
        has_jobmon=any(s.get("HasJobMon") is True for s in slots),
        draining=draining,
    )


def summarise_nodes(
    startd_ads: Iterable[Mapping[str, Any]], master_ads: Iterable[Mapping[str, Any]] = ()
) -> list[NodeInfo]:
    """Group slot ads per ``Machine``; a master without a startd is an ``off`` node."""
    by_machine: dict[str, list[Mapping[str, Any]]] = {}
    for ad in startd_ads:
        machine = ad.get("Machine") or str(ad.get("Name", "")).rpartition("@")[2]
        if machine:
            by_machine.setdefault(str(machine), []).append(ad)
    nodes = [summarise_node(m, slots) for m, slots in by_machine.items()]
    for ad in master_ads:
        machine = str(ad.get("Machine") or ad.get("Name") or "")
        if machine and machine not in by_machine:
            nodes.append(NodeInfo(name=machine, state="off", activity="Off", slots_total=0, slots_busy=0, load=0.0))
            by_machine[machine] = []
    return sorted(nodes, key=lambda n: n.name)


def retirement_seconds(slots: Iterable[Mapping[str, Any]]) -> int | None:
    """The node's MAXJOBRETIREMENTTIME as its slot ads publish it (``MaxJobRetirementTime``)."""
    values = [_int(s.get("MaxJobRetirementTime")) for s in slots]
    known = [v for v in values if v is not None]
    return min(known) if known else None


def drain_message(node: str, request_id: str, retirement: int | None) -> str:
    """What the admin must know when a graceful drain starts (recorded behaviour)."""
    head = f"draining {node} (request {request_id}): no new jobs start there"
    if retirement is None:
        return (
            f"{head}. The node does not publish MaxJobRetirementTime: running jobs are evicted at once "
            f"unless MAXJOBRETIREMENTTIME there exceeds the {DEFAULT_MAX_VACATE_TIME} s max vacate time."
        )
    if retirement <= DEFAULT_MAX_VACATE_TIME:
        return (
            f"{head}. WARNING: MAXJOBRETIREMENTTIME is {retirement} s, not more than the jobs' "
            f"{DEFAULT_MAX_VACATE_TIME} s max vacate time, so HTCondor evicts the running jobs now "
            f"(they go back to idle and run again elsewhere). To let them finish, set "
            f"MAXJOBRETIREMENTTIME above {DEFAULT_MAX_VACATE_TIME} on the node, reconfigure, and drain again."
        )
    return (
        f"{head}; running jobs may finish within MAXJOBRETIREMENTTIME = {retirement} s "
        f"and the node is drained when they are done. `undrain` cancels."
    )


def node_join_instructions(
    node: str,
    *,
    central_manager: str,
    trust_domain: str,
    relay_url: str | None,
    wrapper_dir: str = "/usr/libexec/jobmon",
) -> str:
    """The exact steps that make ``node`` join the pool as a JobMon execute node."""
    relay = relay_url or "https://RELAY-HOST:8443/clarens"
    token = f"/etc/condor/tokens.d/{node}.token"
    return f"""\
Adding execute node {node} to the pool of {central_manager}

1. On {node} (as root): install HTCondor from the HTCondor repositories
   (the same major version as the central manager), then write
   /etc/condor/config.d/10-execute.conf:

       CONDOR_HOST = {central_manager}
       use ROLE : Execute
       TRUST_DOMAIN = {trust_domain}

2. On the central manager {central_manager} (as root): create the node's token

       condor_token_create -identity condor@{trust_domain} \\
           -authz ADVERTISE_MASTER -authz ADVERTISE_STARTD -authz READ > {node}.token

   and copy it to {node}, readable by root only:

       install -m 0600 -o root -g root {node}.token {token}

3. On {node}: install the JobMon execute-node files (see INSTALL.md, "Execute nodes")

       install -d {wrapper_dir}
       cp condor_hooks/*.py jobmon-wrapper.pyz {wrapper_dir}/
       cp condor_hooks/config.d/50-jobmon.conf /etc/condor/config.d/
       echo 'JOBMON_RELAY_URL = {relay}' > /etc/condor/config.d/49-jobmon-relay.conf

   and let it reach the relay: outbound HTTPS to {relay} only; nothing listens.

4. On {node}: systemctl enable --now condor

5. Check from here: `jobmon nodes list` shows {node} "up" with JobMon "yes"
   (the startd cron publishes HasJobMon within a minute);
   `condor_status -af Name HasJobMon -const 'Machine == "{node}"'` shows the same.

Removing it later without killing jobs: `jobmon nodes drain {node}` (read the
MAXJOBRETIREMENTTIME warning it prints), then `jobmon nodes off {node}`.
"""
