"""Which relay serves which job, and commands that span several relays (issue 11).

A pool may run several relays (one per schedd, or several behind one DNS
name). Each job's ad names its relay (``JobMonRelay``, the job struct's
``relay``); HTCondor's schedd is the directory, nothing else is. The CLI
talks to its own relay (``--relay`` / ``JOBMON_RELAY_URL``), which asks the
schedd, and follows the jobs to theirs:

* ``jobmon.fanout.fan_out``: a cluster's command on every relay its jobs
  name, at once (its own module: threads and JSON cost a one-job command
  imports it does not need).
* :func:`on_job_relay`: a one-job call goes to the own relay first; when that
  relay does not have the job's daemon, to the relay the job's ad names.
* :func:`merge_job_lists`: ``jobmon q`` asks the relays its jobs name and
  keeps, for each job, what the job's own relay says.
"""

from __future__ import annotations

import sys

from jobmon.client import Client, split_url
from jobmon.errors import JobmonError, RemoteFault

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs a quick command ~5 ms to import (docs/PERFORMANCE.md, "CLI latency")
    from collections.abc import Callable, Mapping
    from typing import Any, TypeVar

    T = TypeVar("T")

JOB_NOT_CONNECTED = 501


def same_relay(a: str | None, b: str | None) -> bool:
    """Do two relay URLs name the same relay (scheme, host and port; the path may differ)?"""
    if not a or not b:
        return False
    if not (a.lower().startswith("https://") and b.lower().startswith("https://")):
        return a.rstrip("/") == b.rstrip("/")
    (ha, pa, _, _), (hb, pb, _, _) = split_url(a), split_url(b)
    return (ha.lower(), pa) == (hb.lower(), pb)


class Relays:
    """One client per relay, all with the command's credentials."""

    def __init__(self, home: Client, make: Callable[[str], Client]) -> None:
        self.home = home
        self._make = make

    def client(self, url: str | None) -> Client:
        if not url or same_relay(url, self.home.url):
            return self.home
        return self._make(url)


def relays_for(ctx: Any, timeout: float | None = None) -> Relays:
    home = ctx.client(timeout=timeout)

    def make(url: str) -> Client:
        return Client.from_settings(ctx.settings, url=url, timeout=home.timeout)

    return Relays(home, make)


# -- one job -------------------------------------------------------------------
def on_job_relay(relays: Relays, job: str, call: Callable[[Client], T]) -> T:
    """``call`` on the relay that has ``job``'s daemon: the own relay, else the one its ad names."""
    try:
        return call(relays.home)
    except RemoteFault as exc:
        if exc.code != JOB_NOT_CONNECTED:
            raise
        where = relays.home.status(job).get("relay")
        if not where or same_relay(where, relays.home.url):
            raise
        return call(relays.client(str(where)))


def client_for_job(relays: Relays, job: str) -> Client:
    """The client of the relay that has ``job``'s daemon (for a command that asks many times)."""
    st = relays.home.status(job)
    where = st.get("relay")
    if st.get("connected") or not where or same_relay(str(where), relays.home.url):
        return relays.home
    return relays.client(str(where))


def job_status(relays: Relays, job: str) -> dict[str, Any]:
    """A job's status from its own relay (the live fields are there), else from the own relay."""
    st = relays.home.status(job)
    where = st.get("relay")
    if st.get("connected") or not where or same_relay(str(where), relays.home.url):
        return st
    try:
        return relays.client(str(where)).status(job)
    except JobmonError as exc:
        print(f"jobmon: relay {where}: {exc} (showing what the pool says)", file=sys.stderr)
        return st


def page_elsewhere(job: Mapping[str, Any], here: str) -> str | None:
    """The web page of a live job whose ad names another relay and whose daemon is not
    connected ``here`` (the web pages link and redirect there), else None."""
    where = job.get("relay")
    if not where or job.get("connected") or same_relay(str(where), here) \
            or job.get("state") not in ("waiting", "running"):
        return None
    host, port, _, _ = split_url(str(where))
    host = f"[{host}]" if ":" in host else host
    return f"https://{host}:{port}/jobs/{job.get('id')}"


# -- job lists -----------------------------------------------------------------
def merge_job_lists(home_url: str, lists: Mapping[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """One list from what several relays said: for each job, the struct from the relay its ad
    names (it has the daemon's live fields), else the own relay's."""
    merged: dict[str, dict[str, Any]] = {}
    for url, jobs in sorted(lists.items(), key=lambda kv: not same_relay(kv[0], home_url)):
        for job in jobs:
            jid = str(job.get("id"))
            if jid not in merged or same_relay(job.get("relay"), url):
                merged[jid] = job
    return list(merged.values())


def job_lists(relays: Relays, flt: Mapping[str, Any]) -> list[dict[str, Any]]:
    """``joblist(flt)`` from the own relay and from every other relay its jobs name, merged."""
    home = relays.home.joblist(flt)
    lists = {relays.home.url: home}
    others = {str(j["relay"]) for j in home if j.get("relay") and not same_relay(str(j["relay"]), relays.home.url)}
    for url in sorted(others):
        try:
            lists[url] = relays.client(url).joblist(flt)
        except JobmonError as exc:
            print(f"jobmon: relay {url}: {exc} (its jobs are shown as the pool sees them)", file=sys.stderr)
    return merge_job_lists(relays.home.url, lists)
