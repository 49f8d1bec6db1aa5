"""Handler plumbing: who is looking, faults as error pages, server-sent events."""

from __future__ import annotations

import functools
import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from jobmon.errors import UsageError
from jobmon.jobid import JobId
from relay.faults import Fault, RelayFault
from relay.web.context import Viewer, WebContext, ctx_of

Handler = Callable[[web.Request, WebContext, Viewer], Awaitable[web.StreamResponse]]

_HTTP_OF_FAULT: dict[int, int] = {
    Fault.NOT_AUTHENTICATED: 401,
    Fault.SESSION_UNKNOWN: 401,
    Fault.ACCESS_DENIED: 403,
    Fault.NOT_OWNER: 403,
    Fault.UNKNOWN_JOB: 404,
    Fault.UNKNOWN_NODE: 404,
    Fault.NO_SUCH_FILE: 404,
    Fault.BAD_PARAMS: 400,
    Fault.RATE_LIMITED: 429,
    Fault.POOL_ERROR: 502,
}

_HEADING = {
    401: "Not signed in",
    403: "Not allowed",
    404: "Not found",
    400: "Bad request",
    429: "Slow down",
    502: "The pool did not answer",
}


def not_signed_in(ctx: WebContext, request: web.Request) -> web.Response:
    return ctx.message(
        request, None, 401, "Sign in to jobmon",
        "Your browser presented no client certificate this relay accepts, and has no login session.",
        "Either import your grid certificate into the browser, or run this on the submit host "
        "and open the link it prints (it works once, for a few minutes):",
        command="jobmon web",
    )


def fault_page(ctx: WebContext, request: web.Request, viewer: Viewer | None, fault: RelayFault) -> web.Response:
    status = _HTTP_OF_FAULT.get(fault.code, 500)
    heading = _HEADING.get(status, "Something went wrong")
    return ctx.message(request, viewer, status, heading, fault.message, back="/")


def page_handler(func: Handler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """Resolve the viewer (401 page if none) and turn faults into error pages."""

    @functools.wraps(func)
    async def wrapper(request: web.Request) -> web.StreamResponse:
        ctx = ctx_of(request)
        viewer = await ctx.viewer(request)
        if viewer is None:
            return not_signed_in(ctx, request)
        try:
            return await func(request, ctx, viewer)
        except RelayFault as fault:
            return fault_page(ctx, request, viewer, fault)

    return wrapper


async def post_form(request: web.Request, ctx: WebContext, viewer: Viewer) -> dict[str, Any]:
    """The POSTed form if its CSRF token is right; raises 403 otherwise."""
    form = dict(await request.post())
    if not ctx.csrf_ok(viewer, form, request):
        raise RelayFault(Fault.ACCESS_DENIED, "The form expired or did not come from this site; reload the page and try again.")
    return form


def job_id(request: web.Request) -> str:
    text = request.match_info.get("job", "")
    try:
        jid = JobId.parse(text)
    except UsageError as exc:
        raise RelayFault(Fault.UNKNOWN_JOB, str(exc)) from None
    if jid.is_cluster:
        raise RelayFault(Fault.UNKNOWN_JOB, f"{text} is a cluster; job pages are per job (C.P)")
    return str(jid)


class EventStream:
    """A server-sent events response."""

    def __init__(self, request: web.Request) -> None:
        self.request = request
        self.response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream; charset=utf-8",
                "Cache-Control": "no-store",
                "X-Accel-Buffering": "no",
            }
        )

    async def open(self, retry_ms: int = 3000) -> None:
        await self.response.prepare(self.request)
        await self.response.write(f"retry: {retry_ms}\n\n".encode())

    async def send(self, event: str, data: Any, event_id: str | None = None) -> None:
        lines = f"event: {event}\n"
        if event_id is not None:
            lines += f"id: {event_id}\n"
        lines += f"data: {json.dumps(data, separators=(',', ':'))}\n\n"
        await self.response.write(lines.encode("utf-8"))

    async def ping(self) -> None:
        await self.response.write(b": keep-alive\n\n")
