"""A job ad as users see it: the PROTOCOL.md job struct from HTCondor's attributes.

State and exit come from :mod:`jobmon.jobstate` (one mapping for every pool);
this adds the host (``RemoteHost`` while running, ``LastRemoteHost`` after),
the hold reason, times, and progress from the ``Chirp*`` attributes the
wrapper publishes with ``condor_chirp set_job_attr_delayed``
(jobmon_wrapper/chirp.py: ``ChirpJobMonEventsDone``, ``...Total``,
``...Rate``, ``...Eta``, ``...Updated``). Absent facts are absent keys.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jobmon.jobstate import State, exit_of, state_of

CHIRP_PROGRESS = {
    "done": "ChirpJobMonEventsDone",
    "total": "ChirpJobMonEventsTotal",
    "rate": "ChirpJobMonRate",
    "eta": "ChirpJobMonEta",
    "updated": "ChirpJobMonUpdated",
}

#: attributes ``job_summary`` reads: a projection for queries that feed it
SUMMARY_PROJECTION = [
    "ClusterId", "ProcId", "JobStatus", "Owner", "JobMonOwnerDN", "x509UserProxySubject",
    "RemoteHost", "LastRemoteHost", "ExitCode", "ExitBySignal", "ExitSignal", "HoldReason",
    "RemoveReason", "QDate", "JobStartDate", "JobCurrentStartDate", "CompletionDate",
    "EnteredCurrentStatus", "Cmd", "Arguments", "Iwd", "JobMonRelay", "JobBatchName",
    "JobMonEnabled", *CHIRP_PROGRESS.values(),
]


def _host(slot: Any) -> str | None:
    if not isinstance(slot, str) or not slot:
        return None
    return slot.rpartition("@")[2]


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def progress_of(ad: Mapping[str, Any]) -> dict[str, float]:
    """The ``Chirp*`` progress the wrapper published (may lag: delayed updates)."""
    out: dict[str, float] = {}
    for key, attr in CHIRP_PROGRESS.items():
        v = _number(ad.get(attr))
        if v is not None:
            out[key] = v
    return out


def job_summary(ad: Mapping[str, Any]) -> dict[str, Any]:
    """PROTOCOL.md's job struct (without ``connected``/``resources``, which the relay knows)."""
    cluster, proc = ad.get("ClusterId"), ad.get("ProcId")
    state = state_of(ad)
    out: dict[str, Any] = {"state": state.value}
    if isinstance(cluster, int) and isinstance(proc, int):
        out.update(id=f"{cluster}.{proc}", cluster=cluster, proc=proc)
    for key, attr in (("owner", "Owner"), ("cmd", "Cmd"), ("args", "Arguments"), ("iwd", "Iwd"),
                      ("relay", "JobMonRelay"), ("name", "JobBatchName")):
        v = ad.get(attr)
        if isinstance(v, str) and v:
            out[key] = v
    dn = ad.get("JobMonOwnerDN") or ad.get("x509UserProxySubject")
    if isinstance(dn, str) and dn:
        out["owner_dn"] = dn
    host = _host(ad.get("RemoteHost")) if state is State.RUNNING else None
    host = host or _host(ad.get("LastRemoteHost"))
    if host:
        out["host"] = host
    if state.ended:
        code, sig = exit_of(ad)
        if code is not None and state is State.FINISHED:
            out["exit_code"] = code
        if sig is not None and state is State.FINISHED:
            out["signal"] = sig
        if state is State.REMOVED and isinstance(ad.get("RemoveReason"), str):
            out["remove_reason"] = ad["RemoveReason"]
    if state is State.HELD and isinstance(ad.get("HoldReason"), str):
        out["hold_reason"] = ad["HoldReason"]
    for key, attr in (("submitted", "QDate"), ("started", "JobStartDate")):
        t = _number(ad.get(attr))
        if t:
            out[key] = t
    if state.ended:
        t = _number(ad.get("CompletionDate")) or _number(ad.get("EnteredCurrentStatus"))
        if t:
            out["ended"] = t
    prog = progress_of(ad)
    if prog:
        out["progress"] = prog
    return out
