"""``/login?token=...`` (one-time link from ``jobmon.webLogin``) and ``/logout``."""

from __future__ import annotations

from aiohttp import web

from relay.web import backend
from relay.web.context import ctx_of


async def login(request: web.Request) -> web.StreamResponse:
    ctx = ctx_of(request)
    token = request.query.get("token", "")
    value = ctx.logins.redeem(token) if token else None
    if value is None:
        return ctx.message(
            request, None, 403, "This login link does not work",
            "Login links work once and only for a few minutes. This one was already used, "
            "has expired, or was mistyped. Ask for a new one on the submit host:",
            command="jobmon web",
        )
    resp = web.HTTPSeeOther("/")
    resp.set_cookie(
        backend.COOKIE, value, httponly=True, secure=True, samesite="Strict", path="/",
        max_age=int(ctx.logins.cookies.ttl),
    )
    resp.headers["Cache-Control"] = "no-store"
    resp.headers["Referrer-Policy"] = "no-referrer"
    raise resp


async def logout(request: web.Request) -> web.StreamResponse:
    ctx = ctx_of(request)
    viewer = await ctx.viewer(request)
    if request.method == "POST" and viewer is not None:
        form = dict(await request.post())
        if not ctx.csrf_ok(viewer, form, request):
            return ctx.message(request, viewer, 403, "Not allowed", "The form expired; reload and try again.", back="/")
    value = request.cookies.get(backend.COOKIE, "")
    if value:
        ctx.logins.logout(value)
    resp = ctx.message(
        request, None, 200, "Signed out",
        "Your browser's jobmon session has ended. Run `jobmon web` for a new login link.",
    )
    resp.del_cookie(backend.COOKIE, path="/")
    return resp
