"""The job page (``/jobs/C.P``): status, progress, live tail, console, processes, actions, files."""

from __future__ import annotations

import asyncio
import os
import shlex
import signal as signal_mod
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from aiohttp import web

from jobmon.routing import page_elsewhere
from relay.faults import Fault, RelayFault
from relay.web import backend
from relay.web.common import EventStream, job_id, page_handler, post_form
from relay.web.context import Viewer, WebContext

TAIL_BYTES = 16384          # what the page shows of a file at first
TAIL_CHUNK = 65536          # one read while following
TAIL_WAIT = 20.0            # long-poll of one read (seconds)
CONSOLE_TIMEOUT = 60.0
HIDDEN_FILES = {"jobmon.cred"}

#: states in which a job has certainly not ended (no returned files to ask the core for)
NOT_ENDED = frozenset({"waiting", "running", "held", "suspended"})

#: (action, label, what it does to the job, button class)
ACTIONS = {
    "hold": ("Hold", "stops it now; it waits in the queue until released", ""),
    "release": ("Release", "lets the held job be scheduled again", ""),
    "remove": ("Remove", "kills it and deletes it from the queue", "danger"),
}


def _signal_name(sig: Any) -> str:
    try:
        return signal_mod.Signals(int(sig)).name
    except (ValueError, TypeError):
        return ""


def job_view(job: dict[str, Any]) -> dict[str, Any]:
    """What the job templates need, derived from the core's job struct."""
    if job.get("signal") is not None:
        job["signal_name"] = _signal_name(job["signal"])
    started = job.get("started")
    runtime = None
    if isinstance(started, (int, float)):
        end = job.get("ended") if isinstance(job.get("ended"), (int, float)) else None
        runtime = (end if end is not None else time.time()) - started
    return {"job": job, "runtime": runtime}


def _actions_for(state: str) -> list[tuple[str, str, str, str]]:
    names: list[str] = []
    if state in ("waiting", "running"):
        names = ["hold", "remove"]
    elif state == "held":
        names = ["release", "remove"]
    return [(n, *ACTIONS[n]) for n in names]


def _depths(procs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Order processes as a tree (parents first) and give each its depth."""
    by_pid = {p.get("pid"): p for p in procs}
    children: dict[Any, list[dict[str, Any]]] = {}
    roots = []
    for p in procs:
        if p.get("ppid") in by_pid and p.get("ppid") != p.get("pid"):
            children.setdefault(p.get("ppid"), []).append(p)
        else:
            roots.append(p)
    out: list[dict[str, Any]] = []

    def walk(p: dict[str, Any], depth: int) -> None:
        out.append({**p, "depth": depth})
        for c in sorted(children.get(p.get("pid"), []), key=lambda c: c.get("pid") or 0):
            walk(c, depth + 1)

    for r in sorted(roots, key=lambda r: r.get("pid") or 0):
        walk(r, 0)
    return out


async def returned_files(ctx: WebContext, viewer: Viewer, job: str) -> list[dict[str, Any]] | None:
    """The output files an ended job returned (``RelayCore.returned_files``: its output, error,
    log and transfer_output_files, never anything else in its iwd); None while it runs."""
    files = await backend.returned_files(ctx.core, viewer.identity, job)  # authorizes the caller
    if files is None:
        return None
    return sorted((f for f in files if str(f.get("name", "")) not in HIDDEN_FILES), key=lambda f: str(f["name"]))


def _tail_path(request: web.Request) -> str:
    path = request.query.get("file", "").strip() or "@stdout"
    return path[:4096]


async def _console(ctx: WebContext, viewer: Viewer, job: str, command: str) -> dict[str, Any]:
    view: dict[str, Any] = {"command": command, "result": None, "fault": ""}
    try:
        argv = shlex.split(command)
    except ValueError as exc:
        view["fault"] = f"Cannot split the command line: {exc}"
        return view
    if not argv:
        view["fault"] = "Type a command to run, e.g. ls -l"
        return view
    try:
        result = await backend.exec_(ctx.core, viewer.identity, job, argv, {"timeout": CONSOLE_TIMEOUT})
    except RelayFault as fault:
        view["fault"] = f"{fault.message} (fault {fault.code})"
        return view
    view["result"] = result
    view["stdout"] = backend.as_text(result.get("stdout"))
    view["stderr"] = backend.as_text(result.get("stderr"))
    return view


async def _render_job(
    request: web.Request, ctx: WebContext, viewer: Viewer, job: str, **extra: Any
) -> web.StreamResponse:
    data = await backend.status(ctx.core, viewer.identity, job)
    elsewhere = page_elsewhere(data, ctx.core.config.url)
    if elsewhere is not None and request.method == "GET":
        raise web.HTTPFound(elsewhere)  # the relay the job's ad names has its daemon
    view = job_view(data)
    state = str(data.get("state"))
    live = state in ("waiting", "running")
    path = _tail_path(request)
    tail_text, tail_note = "", ""
    outputs = None if state in NOT_ENDED else await returned_files(ctx, viewer, job)
    if state == "running":
        try:
            r = await backend.read(ctx.core, viewer.identity, job, path, -TAIL_BYTES, TAIL_BYTES, 0.0)
            tail_text = _trim_first_line(backend.as_text(r.get("data")), float(r.get("offset", 0) or 0))
            tail_note = f"{path} · {_size(r.get('size'))}"
        except RelayFault as fault:
            tail_note = fault.message
    elif state in ("finished", "removed"):
        tail_text, tail_note = await _returned_tail(data, outputs or [], path)
    else:
        tail_note = "the job has not started yet; its output appears here when it runs"
    ps_view = await ps_part(ctx, viewer, job) if state == "running" else {"ps": [], "ps_fault": "not running yet"}
    tail_url = f"/jobs/{job}/tail?" + urlencode({"file": path})
    extra.setdefault("console_command", "")
    console = extra.pop("console", None) or {}
    return ctx.page(
        request, "job.html", viewer, page="job", farm=await backend.farm_status(ctx.core, viewer.identity),
        actions=_actions_for(state), outputs=outputs, live=live,
        tail_path=path, tail_text=tail_text, tail_note=tail_note, tail_url=tail_url,
        **ps_view, events_url=f"/events/{job}", **console, **view, **extra,
    )


def _returned_stream(files: list[dict[str, Any]], path: str) -> str | None:
    """The returned file holding the job's stdout (``@stdout``) or stderr, or a file asked by name."""
    names = [f["name"] for f in files]
    if not path.startswith("@"):
        return path if path in names else None
    suffix = {"@stdout": ".out", "@stderr": ".err"}.get(path, "")
    for name in names:
        if suffix and name.endswith(suffix):
            return name
    return None


async def _returned_tail(data: dict[str, Any], files: list[dict[str, Any]], path: str) -> tuple[str, str]:
    """What an ended job's page shows in the output panel: the end of a returned file."""
    name = _returned_stream(files, path)
    if name is None or not data.get("iwd"):
        return "", "the job has ended; the files the pool returned are listed above"
    file = Path(str(data["iwd"])) / name

    def tail() -> tuple[str, int]:
        fd = os.open(file, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))  # listed as a regular file
        with open(fd, "rb") as fh:
            size = fh.seek(0, os.SEEK_END)
            start = max(0, size - TAIL_BYTES)
            fh.seek(start)
            return _trim_first_line(fh.read(TAIL_BYTES).decode("utf-8", "replace"), start), size

    try:
        text, size = await asyncio.get_running_loop().run_in_executor(None, tail)
    except OSError as exc:
        return "", f"cannot read {name}: {exc.strerror}"
    return text, f"the job has ended · returned {name} · {_size(size)}"


#: a page never waits longer than this for a job's process tree (a daemon being killed may not answer)
PS_PAGE_TIMEOUT = 5.0


async def ps_part(ctx: WebContext, viewer: Viewer, job: str) -> dict[str, Any]:
    """The process tree, or why there is none."""
    try:
        result = await asyncio.wait_for(backend.ps(ctx.core, viewer.identity, job), PS_PAGE_TIMEOUT)
    except RelayFault as fault:
        return {"ps": [], "ps_fault": fault.message}
    except asyncio.TimeoutError:
        return {"ps": [], "ps_fault": f"the job did not answer within {PS_PAGE_TIMEOUT:g} s"}
    return {"ps": _depths(list(result.get("processes", []))), "ps_fault": ""}


def _size(value: Any) -> str:
    from relay.web.format import fmt_bytes

    return fmt_bytes(value)


def _trim_first_line(text: str, offset: float) -> str:
    """A tail that starts mid-file starts at the next whole line."""
    if offset > 0 and "\n" in text:
        return text.split("\n", 1)[1]
    return text


@page_handler
async def job_page(request: web.Request, ctx: WebContext, viewer: Viewer) -> web.StreamResponse:
    notice = {"held": "Job held.", "released": "Job released.", "removed": "Job removed."}.get(
        request.query.get("done", ""), ""
    )
    return await _render_job(request, ctx, viewer, job_id(request), notice=notice)


@page_handler
async def console_post(request: web.Request, ctx: WebContext, viewer: Viewer) -> web.StreamResponse:
    job = job_id(request)
    form = await post_form(request, ctx, viewer)
    command = str(form.get("command", ""))
    console = await _console(ctx, viewer, job, command)
    if request.headers.get("Accept", "").startswith("text/html-fragment"):
        text = ctx.render_str("_console_result.html", **console)
        return web.Response(text=text, content_type="text/html", headers={"Cache-Control": "no-store"})
    return await _render_job(request, ctx, viewer, job, console=console, console_command=command)


@page_handler
async def action_post(request: web.Request, ctx: WebContext, viewer: Viewer) -> web.StreamResponse:
    job = job_id(request)
    action = request.match_info["action"]
    form = await post_form(request, ctx, viewer)
    label, help_text, _ = ACTIONS[action]
    if form.get("confirm") != "yes":
        return ctx.page(
            request, "confirm.html", viewer, page="job", heading=f"{label} job {job}?",
            question=f"{label}: {help_text}.", action=f"/jobs/{job}/{action}",
            button=f"{label} job {job}", back=f"/jobs/{job}", hidden={},
        )
    reason = f"via the web page by {viewer.dn}"
    await backend.job_action(ctx.core, viewer.identity, action, job, reason)
    ctx.changes_bump_soon()
    done = {"hold": "held", "release": "released", "remove": "removed"}[action]
    raise web.HTTPSeeOther(f"/jobs/{job}?done={done}")


@page_handler
async def tail_events(request: web.Request, ctx: WebContext, viewer: Viewer) -> web.StreamResponse:
    """Follow a sandbox file: ``data`` events (text, next offset), then ``end`` or ``fault``."""
    job = job_id(request)
    path = _tail_path(request)
    await backend.status(ctx.core, viewer.identity, job)  # ownership check before streaming
    stream = EventStream(request)
    await stream.open()
    offset: float = -TAIL_BYTES
    resume = request.headers.get("Last-Event-ID", "")
    try:
        offset = float(resume) if resume else offset
    except ValueError:
        pass
    first = not resume
    seen = ctx.changes.generation
    try:
        while not ctx.stopping.is_set():
            try:
                r = await backend.read(ctx.core, viewer.identity, job, path, offset, TAIL_CHUNK, TAIL_WAIT)
            except RelayFault as fault:
                if fault.code == Fault.JOB_ENDED:
                    await stream.send("end", {"message": "the job has ended"})
                    break
                if fault.code == Fault.JOB_NOT_CONNECTED:
                    await stream.send("status", {"message": "waiting for the job's daemon to connect"})
                    seen = await ctx.changes.wait(seen, 5.0)
                    continue
                await stream.send("fault", {"message": f"{fault.message} (fault {fault.code})"})
                break
            data = backend.as_bytes(r.get("data"))
            start = float(r.get("offset", offset) or 0)
            next_offset = float(r.get("next_offset", start + len(data)))
            if data or first:
                text = data.decode("utf-8", "replace")
                if first:
                    text = _trim_first_line(text, start)
                await stream.send(
                    "data",
                    {"text": text, "next": next_offset, "size_text": f"{path} · {_size(r.get('size'))}"},
                    event_id=repr(next_offset),
                )
                first = False
            else:
                await stream.ping()
            offset = next_offset
    except (ConnectionResetError, ConnectionError):
        pass
    return stream.response


@page_handler
async def file_download(request: web.Request, ctx: WebContext, viewer: Viewer) -> web.StreamResponse:
    job = job_id(request)
    data = await backend.status(ctx.core, viewer.identity, job)
    name = request.match_info["name"]
    files = await returned_files(ctx, viewer, job) or []
    if name not in {f["name"] for f in files} or not data.get("iwd"):
        raise RelayFault(Fault.NO_SUCH_FILE, f"job {job} returned no file named {name!r}")
    path = Path(str(data["iwd"])) / name
    loop = asyncio.get_running_loop()
    ok = await loop.run_in_executor(None, lambda: path.is_file() and not path.is_symlink())
    if not ok:
        raise RelayFault(Fault.NO_SUCH_FILE, f"job {job} returned no file named {name!r}")
    return web.FileResponse(
        path,
        headers={
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(name, safe='')}",
            "Content-Type": "application/octet-stream",
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "no-store",
        },
    )
