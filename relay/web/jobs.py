"""The jobs page (``/``) and its live feed (``/events``)."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from jobmon.routing import page_elsewhere
from relay.faults import RelayFault
from relay.web import backend
from relay.web.common import EventStream, job_id, page_handler
from relay.web.context import Viewer, WebContext
from relay.web.format import STATES

#: how long an idle live feed waits before refreshing the farm status anyway
IDLE_REFRESH = 15.0
#: a job page also shows what only the pool knows (files returned after the end)
JOB_REFRESH = 5.0
#: at most one render of a live page per this many seconds
MIN_INTERVAL = 0.5
#: a job page's process list is asked of the daemon at most this often
PS_INTERVAL = 5.0
#: what only the pool's job ad tells (fixed at submit); a struct made from the daemon's
#: report alone lacks them, and a live page keeps what it showed rather than blanking it
AD_FIELDS = ("cluster", "proc", "name", "owner", "owner_dn", "submitted", "cmd", "args", "iwd",
             "relay", "notify_user")


def keep_known(job: dict[str, Any], before: dict[str, Any] | None) -> dict[str, Any]:
    """``job`` with the ad fields it lacks (absent or None) taken from ``before`` (same job)."""
    if not before or before.get("id") != job.get("id"):
        return job
    for key in AD_FIELDS:
        if job.get(key) is None and before.get(key) is not None:
            job[key] = before[key]
    return job


def _filters(request: web.Request, viewer: Viewer) -> tuple[str, bool]:
    state = request.query.get("state", "")
    if state not in STATES:
        state = ""
    all_jobs = viewer.admin and request.query.get("all") == "1"
    return state, all_jobs


async def _jobs_view(
    ctx: WebContext, viewer: Viewer, state: str, all_jobs: bool, known: dict[str, dict[str, Any]] | None = None
) -> dict[str, Any]:
    """The job rows; ``known`` (a live feed's memory, by job id) fills ad fields an update lacks."""
    error = ""
    try:
        jobs = await backend.joblist(ctx.core, viewer.identity, {"all": True} if all_jobs else {})
    except RelayFault as fault:
        jobs, error = [], fault.message
    if known is not None:
        jobs = [keep_known(j, known.get(str(j.get("id")))) for j in jobs]
        known.clear()
        known.update((str(j.get("id")), dict(j)) for j in jobs)
    jobs.sort(key=lambda j: (int(j.get("cluster", 0) or 0), int(j.get("proc", 0) or 0)), reverse=True)
    counts: dict[str, int] = {"all": len(jobs)}
    for j in jobs:
        counts[str(j.get("state"))] = counts.get(str(j.get("state")), 0) + 1
    shown = [j for j in jobs if not state or j.get("state") == state]
    for j in shown:  # a job whose daemon is at another relay links to that relay's page
        j["href"] = page_elsewhere(j, ctx.core.config.url) or f"/jobs/{j.get('id')}"
    return {
        "jobs": shown, "counts": counts, "states": STATES, "state": state, "error": error,
        "all_jobs": all_jobs, "show_owner": all_jobs,
    }


@page_handler
async def jobs_page(request: web.Request, ctx: WebContext, viewer: Viewer) -> web.StreamResponse:
    state, all_jobs = _filters(request, viewer)
    view = await _jobs_view(ctx, viewer, state, all_jobs)
    farm = await backend.farm_status(ctx.core, viewer.identity)
    query = "&".join(p for p in (f"state={state}" if state else "", "all=1" if all_jobs else "") if p)
    return ctx.page(
        request, "jobs.html", viewer, page="jobs", farm=farm,
        events_url="/events" + (f"?{query}" if query else ""), **view,
    )


async def _job_parts(
    ctx: WebContext, viewer: Viewer, job: str, with_ps: bool, known: dict[str, dict[str, Any]]
) -> dict[str, str]:
    from relay.web.job import (  # the job page's own rendering
        NOT_ENDED,
        job_view,
        ps_part,
        returned_files,
    )

    data = keep_known(await backend.status(ctx.core, viewer.identity, job), known.get(job))
    known[job] = dict(data)
    view = job_view(data)
    ended = str(data.get("state")) not in NOT_ENDED
    view["outputs"] = await returned_files(ctx, viewer, job) if ended else None
    parts = {
        name: ctx.render_str(f"_job_{name}.html", **view)
        for name in ("head", "progress", "details", "resources", "files")
    }
    if with_ps and data.get("state") == "running" and data.get("connected"):
        parts["ps"] = ctx.render_str("_job_ps.html", **await ps_part(ctx, viewer, job))
    return parts


@page_handler
async def events(request: web.Request, ctx: WebContext, viewer: Viewer) -> web.StreamResponse:
    """Server-sent events: ``jobs`` (rows and filter counts) or ``job`` (one job's parts), ``farm``."""
    job = job_id(request) if "job" in request.match_info else ""
    state, all_jobs = _filters(request, viewer)
    stream = EventStream(request)
    await stream.open()
    holder = f"web:{id(stream)}"  # while this stream is open its jobs report progress live
    if job:
        backend.watch_hold(ctx.core, holder, [job])
    last: dict[str, Any] = {}
    known: dict[str, dict[str, Any]] = {}  # the job structs this feed last showed, by id
    seen = ctx.changes.generation
    loop = asyncio.get_running_loop()
    ps_at = 0.0
    try:
        while not ctx.stopping.is_set():
            started = loop.time()
            if job:
                with_ps = started - ps_at >= PS_INTERVAL
                try:
                    parts = await _job_parts(ctx, viewer, job, with_ps, known)
                    if "ps" in parts:
                        ps_at = started
                except RelayFault as fault:
                    await stream.send("fault", {"message": fault.message})
                    break
                if parts != last.get("job"):
                    await stream.send("job", {"parts": parts})
                    last["job"] = parts
            else:
                view = await _jobs_view(ctx, viewer, state, all_jobs, known)
                backend.watch_hold(ctx.core, holder, [str(j.get("id")) for j in view["jobs"]
                                                      if j.get("state") == "running"], only=True)
                payload = {
                    "rows": ctx.render_str("_jobrows.html", **view),
                    "filters": ctx.render_str("_filters.html", **view),
                }
                if payload != last.get("jobs"):
                    await stream.send("jobs", payload)
                    last["jobs"] = payload
            farm = await backend.farm_status(ctx.core, viewer.identity)
            if farm and farm != last.get("farm"):
                await stream.send("farm", {"html": ctx.render_str("_farm.html", farm=farm)})
                last["farm"] = farm
            generation = await ctx.changes.wait(seen, JOB_REFRESH if job else IDLE_REFRESH)
            if generation == seen:
                await stream.ping()
            seen = generation
            pause = MIN_INTERVAL - (loop.time() - started)
            if pause > 0:  # many updates at once: one render per interval
                await asyncio.sleep(pause)
    except (ConnectionResetError, ConnectionError):
        pass
    finally:
        backend.watch_release(ctx.core, holder)
    return stream.response
