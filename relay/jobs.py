"""Job structs users see: the pool's ad merged with what the daemon reported."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jobmon.jobstate import State, exit_of, state_of
from relay.registry import Daemon

#: the ad attributes the relay asks the pool for
PROJECTION = (
    "ClusterId", "ProcId", "JobBatchName", "Owner", "JobMonOwnerDN", "x509UserProxySubject",
    "JobStatus", "RemoteHost", "LastRemoteHost", "ExitCode", "ExitBySignal", "ExitSignal",
    "HoldReason", "QDate", "JobStartDate", "JobCurrentStartDate", "CompletionDate",
    "EnteredCurrentStatus", "Cmd", "Args", "Arguments", "Iwd", "JobMonRelay", "JobMonEnabled",
    "JobMonCredentialId", "NotifyUser", "Out", "Err", "UserLog", "TransferOutput",
    "ShouldTransferFiles",
)


def ad_id(ad: Mapping[str, Any]) -> str | None:
    c, p = ad.get("ClusterId"), ad.get("ProcId")
    if isinstance(c, int) and isinstance(p, int):
        return f"{c}.{p}"
    return None


def owner_dn(ad: Mapping[str, Any] | None, daemon: Daemon | None) -> str | None:
    """The daemon's identity, else ``JobMonOwnerDN``, else ``x509UserProxySubject``."""
    if daemon is not None:
        return daemon.dn
    if ad is None:
        return None
    for key in ("JobMonOwnerDN", "x509UserProxySubject"):
        val = ad.get(key)
        if isinstance(val, str) and val:
            return val
    return None


def _host(value: Any) -> str | None:
    if not isinstance(value, str) or not value:
        return None
    return value.split("@", 1)[1] if "@" in value else value


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if value > 0 else None


def job_struct(ad: Mapping[str, Any] | None, daemon: Daemon | None, connected: bool) -> dict[str, Any]:
    """The protocol's job struct (absent keys are unknown)."""
    out: dict[str, Any] = {}
    if ad is not None:
        out["id"] = ad_id(ad)
        out["cluster"] = ad.get("ClusterId")
        out["proc"] = ad.get("ProcId")
        state = state_of(ad)
        out["state"] = state.value
        out["name"] = ad.get("JobBatchName")
        out["owner"] = ad.get("Owner")
        out["host"] = _host(ad.get("RemoteHost")) or _host(ad.get("LastRemoteHost"))
        if state.ended:
            code, sig = exit_of(ad)
            out["exit_code"], out["signal"] = code, sig
        if state == State.HELD:
            out["hold_reason"] = ad.get("HoldReason")
        out["submitted"] = _num(ad.get("QDate"))
        out["started"] = _num(ad.get("JobCurrentStartDate")) or _num(ad.get("JobStartDate"))
        out["ended"] = _num(ad.get("CompletionDate")) if state.ended else None
        if state.ended and out["ended"] is None:
            out["ended"] = _num(ad.get("EnteredCurrentStatus"))
        out["cmd"] = ad.get("Cmd")
        out["args"] = ad.get("Arguments") or ad.get("Args")
        out["iwd"] = ad.get("Iwd")
        out["relay"] = ad.get("JobMonRelay")
        notify = ad.get("NotifyUser")
        out["notify_user"] = notify if isinstance(notify, str) and notify else None
    if daemon is not None:
        out["id"] = out.get("id") or daemon.job
        if "cluster" not in out and "." in daemon.job:
            c, _, p = daemon.job.partition(".")
            if c.isdigit() and p.isdigit():
                out["cluster"], out["proc"] = int(c), int(p)
        info = daemon.info
        out["daemon"] = "legacy" if info.get("daemon") == "legacy" else "jobmon"  # which daemon serves it
        out["host"] = info.get("host") or out.get("host")
        out["owner"] = out.get("owner") or info.get("user")
        out["started"] = out.get("started") or _num(info.get("start_time"))
        if "argv" in info and not out.get("args"):
            argv = info.get("argv")
            if isinstance(argv, list):
                out["args"] = " ".join(str(a) for a in argv)
        if isinstance(daemon.status.get("progress"), dict):
            out["progress"] = daemon.status["progress"]
        if isinstance(daemon.status.get("resources"), dict):
            out["resources"] = daemon.status["resources"]
        final = daemon.final
        if final is not None:
            if out.get("state") in (None, State.WAITING.value, State.RUNNING.value):
                out["state"] = State.FINISHED.value
            if out.get("exit_code") is None and out.get("signal") is None:
                out["exit_code"] = final.get("exit_code")
                out["signal"] = final.get("signal")
            out["ended"] = out.get("ended") or _num(final.get("end_time"))
            if isinstance(final.get("progress"), dict):
                out["progress"] = final["progress"]
        elif "state" not in out or (connected and out["state"] == State.WAITING.value):
            out["state"] = State.RUNNING.value  # the daemon runs, whatever the pool saw last
    out["owner_dn"] = owner_dn(ad, daemon)
    out["connected"] = connected
    return {k: v for k, v in out.items() if v is not None}
