"""Job structs users see: the pool's ad merged with what the daemon reported."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jobmon.jobstate import State, exit_of, state_of
from jobmon.pools.condor_jobs import CHIRP_PROGRESS, progress_of
from relay.registry import Daemon

#: the ad attributes the relay asks the pool for
PROJECTION = (
    "ClusterId", "ProcId", "JobBatchName", "Owner", "JobMonOwnerDN", "x509UserProxySubject",
    "JobStatus", "RemoteHost", "LastRemoteHost", "ExitCode", "ExitBySignal", "ExitSignal",
    "HoldReason", "QDate", "JobStartDate", "JobCurrentStartDate", "CompletionDate",
    "EnteredCurrentStatus", "Cmd", "Args", "Arguments", "Iwd", "JobMonRelay", "JobMonEnabled",
    "JobMonCredentialId", "NotifyUser", "Out", "Err", "UserLog", "TransferOutput",
    "ShouldTransferFiles", "StartdIpAddr", *CHIRP_PROGRESS.values(),
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


def _newer(candidate: Mapping[str, Any], current: Any) -> bool:
    """Should ``candidate`` replace ``current``? The one updated later wins (``updated``, epoch
    seconds, set by the wrapper for both its reports and its Chirp attributes); a value that
    does not say when it was made counts as the newer one when it comes from the daemon."""
    if not isinstance(current, Mapping):
        return True
    new, old = _num(candidate.get("updated")), _num(current.get("updated"))
    return new is None or old is None or new >= old


def _requeued(ad: Mapping[str, Any] | None, final: Mapping[str, Any], state: str | None) -> bool:
    """Does the pool say the job went on after the run the daemon's final report was about?

    A job whose wrapper reported an end (killed by a hold, a vacate, a drain) and that the
    pool then released or put back in the queue is idle or running again: HTCondor's word
    wins. A job the pool still shows running since *before* that report simply ended and the
    pool has not noticed yet: the report wins (the usual case, the pool lags by seconds).
    """
    if ad is None:
        return False
    if state == State.WAITING.value:
        return True
    if state == State.RUNNING.value:
        started = _num(ad.get("JobCurrentStartDate"))
        ended = _num(final.get("end_time"))
        return started is not None and ended is not None and started > ended
    return False


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
        chirped = progress_of(ad)  # what the wrapper put in the job ad with condor_chirp (lags)
        if chirped:
            out["progress"] = chirped
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
        if isinstance(daemon.status.get("progress"), dict) and _newer(daemon.status["progress"], out.get("progress")):
            out["progress"] = daemon.status["progress"]
        if isinstance(daemon.status.get("resources"), dict):
            out["resources"] = daemon.status["resources"]
        final = daemon.final
        if final is not None and _requeued(ad, final, out.get("state")):
            final = None  # that report was of an earlier run: held/vacated, the job runs again
            out["state"] = out.get("state") or State.WAITING.value
        if final is not None:
            if out.get("state") in (None, State.WAITING.value, State.RUNNING.value):
                out["state"] = State.FINISHED.value
            if out.get("exit_code") is None and out.get("signal") is None:
                out["exit_code"] = final.get("exit_code")
                out["signal"] = final.get("signal")
            out["ended"] = out.get("ended") or _num(final.get("end_time"))
            if isinstance(final.get("progress"), dict) and _newer(final["progress"], out.get("progress")):
                out["progress"] = final["progress"]
        elif "state" not in out or (connected and out["state"] == State.WAITING.value):
            out["state"] = State.RUNNING.value  # the daemon runs, whatever the pool saw last
    out["owner_dn"] = owner_dn(ad, daemon)
    out["connected"] = connected
    return {k: v for k, v in out.items() if v is not None}
