"""Which relay serves which job, and commands that span several relays (issue 11).

A pool may run several relays (one per schedd, or several behind one DNS
name). Each job's ad names its relay (``JobMonRelay``, the job struct's
``relay``); HTCondor's schedd is the directory, nothing else is. The CLI
talks to its own relay (``--relay`` / ``JOBMON_RELAY_URL``), which asks the
schedd, and follows the jobs to theirs:

* :func:`fan_out`: ``execMany`` on the own relay answers with the jobs it
  runs and, in ``elsewhere``, the jobs whose ad names another relay; those
  run there, every relay at once, and the results come back as one stream.
  Results are collected over Clarens JSON-RPC (the relay's other encoding):
  10,000 results decode in ~20 ms instead of ~0.8 s of XML-RPC.
* :func:`on_job_relay`: a one-job call goes to the own relay first; when that
  relay does not have the job's daemon, to the relay the job's ad names.
* :func:`merge_job_lists`: ``jobmon q`` asks the relays its jobs name and
  keeps, for each job, what the job's own relay says.
* :class:`Progress`: the line ``jobmon exec CLUSTER`` shows while results arrive.
"""

from __future__ import annotations

import base64
import http.client
import json
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TextIO, TypeVar
from urllib.parse import urlsplit

from jobmon.client import Client
from jobmon.errors import JobmonError, RelayError, RemoteFault
from jobmon.faults import error_for_fault

T = TypeVar("T")
JOB_NOT_CONNECTED = 501
#: (job, result or None, error or None), as ``jobmon.cli.common.fan_out`` yields them
Entry = tuple[str, "dict[str, Any] | None", "JobmonError | None"]


def same_relay(a: str | None, b: str | None) -> bool:
    """Do two relay URLs name the same relay (scheme, host and port; the path may differ)?"""
    if not a or not b:
        return False
    ua, ub = urlsplit(a), urlsplit(b)
    return (ua.scheme.lower(), (ua.hostname or "").lower(), ua.port or 443) == \
        (ub.scheme.lower(), (ub.hostname or "").lower(), ub.port or 443)


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
    parts = urlsplit(str(where))
    return f"{parts.scheme}://{parts.netloc}/jobs/{job.get('id')}"


# -- fan-out -------------------------------------------------------------------
class _Json:
    """Clarens JSON-RPC on the same TLS context as a ``Client`` (batch results, decoded fast)."""

    def __init__(self, client: Client) -> None:
        self.client = client
        parts = urlsplit(client.url)
        self.path = parts.path or "/clarens"
        self.conn = http.client.HTTPSConnection(parts.hostname or "localhost", parts.port or 443,
                                                context=client.context, timeout=client.timeout)

    def call(self, method: str, *params: Any) -> Any:
        body = json.dumps({"method": method, "params": list(params), "id": 1})
        try:
            self.conn.request("POST", self.path, body, {"Content-Type": "text/json"})
            reply = json.loads(self.conn.getresponse().read())
        except (OSError, http.client.HTTPException, ValueError) as exc:
            raise RelayError(f"relay {self.client.url}: {exc or type(exc).__name__}") from exc
        if reply.get("error"):
            err = reply["error"]
            raise error_for_fault(int(err.get("code", 999)), str(err.get("message", "")))
        return reply.get("result")

    def close(self) -> None:
        self.conn.close()


def _bytes(result: dict[str, Any]) -> dict[str, Any]:
    for key in ("stdout", "stderr"):
        if isinstance(result.get(key), str):
            result[key] = base64.b64decode(result[key])
    return result


def _stream(client: Client, started: Mapping[str, Any] | None, target: Mapping[str, Any], argv: list[str],
            options: Mapping[str, Any], out: queue.Queue[list[Entry] | None], wait: float) -> None:
    """Start (unless ``started``) one relay's batch and put its results on ``out`` as they come."""
    rpc = _Json(client)
    jobs = list(target.get("jobs", []))
    seen: set[str] = set()
    try:
        if started is None:
            started = rpc.call("jobmon.execMany", dict(target), list(argv), dict(options))
            jobs = list(started.get("jobs", []))
        while True:
            res = rpc.call("jobmon.batchResults", started["batch"], wait)
            batch: list[Entry] = []
            for e in res.get("results", []):
                jid = str(e.get("job"))
                seen.add(jid)
                if "fault" in e:
                    batch.append((jid, None, error_for_fault(int(e["fault"]), str(e.get("message", "")))))
                else:
                    batch.append((jid, _bytes(dict(e.get("result", {}))), None))
            if batch:
                out.put(batch)
            if res.get("done"):
                break
    except JobmonError as exc:
        out.put([(j, None, exc) for j in jobs if j not in seen])
    finally:
        rpc.close()
        out.put(None)


def fan_out(relays: Relays, target: Mapping[str, Any], argv: list[str], options: Mapping[str, Any],
            progress: Progress | None = None, wait: float = 10.0) -> Iterator[list[Entry]]:
    """Run ``argv`` in every job of ``target`` (``{cluster: C}``) on every relay that has some:
    lists of (job, result, error) as they arrive, from all relays at once."""
    home = _Json(relays.home)
    try:
        started = home.call("jobmon.execMany", dict(target), list(argv), dict(options))
    finally:
        home.close()
    elsewhere = {url: list(ids) for url, ids in (started.get("elsewhere") or {}).items() if ids}
    total = len(started.get("jobs", [])) + sum(len(ids) for ids in elsewhere.values())
    if progress is not None:
        progress.start(total, 1 + len(elsewhere))
    out: queue.Queue[list[Entry] | None] = queue.Queue()
    streams = [threading.Thread(target=_stream, args=(relays.home, started, {"jobs": started.get("jobs", [])},
                                                      argv, options, out, wait), daemon=True)]
    for url, ids in elsewhere.items():
        try:
            client = relays.client(url)
        except JobmonError as exc:
            out.put([(j, None, exc) for j in ids])
            continue
        streams.append(threading.Thread(target=_stream, args=(client, None, {"jobs": ids}, argv, options, out,
                                                              wait), daemon=True))
    for t in streams:
        t.start()
    running = len(streams)
    while running:
        batch = out.get()
        if batch is None:
            running -= 1
            continue
        yield batch
    if progress is not None:
        progress.finish()


class Progress:
    """``jobmon: 4,512/10,000 results (3 failed) from 2 relays, 1.2 s`` on stderr while results arrive:
    redrawn in place on a terminal, a line a second otherwise."""

    def __init__(self, stream: TextIO | None = None, tty: bool | None = None) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.total = self.done = self.failed = 0
        self.relays = 1
        self.t0 = time.monotonic()
        self.first: float | None = None   # seconds from the batch's start to its first result
        self.final = False
        self._shown = 0.0

    def start(self, total: int, relays: int) -> None:
        """The batch is running: ``total`` jobs on ``relays`` relays (the clock started when the
        command asked the relay to start it)."""
        self.total, self.relays = total, relays
        self._show(force=True)

    def add(self, batch: list[Entry]) -> None:
        if not self.done and batch:
            self.first = time.monotonic() - self.t0
        self.done += len(batch)
        self.failed += sum(1 for _, res, err in batch if err is not None or (res or {}).get("exit_code", 0) != 0)
        self._show()

    def finish(self) -> None:
        self.final = True
        self._show(force=True, end=True)

    def clear(self) -> None:
        """Before other output to the same terminal: take the line away (``add`` draws it again)."""
        if self.tty and self._shown:
            self.stream.write("\r\033[K")

    def text(self) -> str:
        where = f" from {self.relays} relays" if self.relays > 1 else ""
        failed = f" ({self.failed:,} failed)" if self.failed else ""
        first = f" (the first after {self.first:.2f} s)" if self.final and self.first is not None else ""
        return (f"jobmon: {self.done:,}/{self.total:,} results{failed}{where}, "
                f"{time.monotonic() - self.t0:.1f} s{first}")

    def _show(self, force: bool = False, end: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._shown < (0.1 if self.tty else 1.0):
            return
        self._shown = now
        if self.tty:
            self.stream.write("\r\033[K" + self.text() + ("\n" if end else ""))
        else:
            self.stream.write(self.text() + "\n")
        self.stream.flush()


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
