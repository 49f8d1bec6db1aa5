"""The nodes page (``/nodes``, admins only): execute nodes and drain/undrain/off/on."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from relay.faults import Fault, RelayFault
from relay.web import backend
from relay.web.common import page_handler, post_form
from relay.web.context import Viewer, WebContext


@dataclass(frozen=True)
class NodeButton:
    name: str
    label: str
    help: str          # what it does to running jobs, said on the button
    css: str
    confirm: bool
    show: Callable[[dict[str, Any]], bool]


NODE_ACTIONS = (
    NodeButton("drain", "Drain", "running jobs finish; no new jobs start", "", True,
               lambda n: n.get("state") == "up"),
    NodeButton("undrain", "Undrain", "accept new jobs again", "", False,
               lambda n: n.get("state") in ("draining", "drained")),
    NodeButton("off", "Turn off", "after its running jobs finish", "danger", True,
               lambda n: n.get("state") != "off"),
    NodeButton("on", "Turn on", "start the node's startd again", "primary", False,
               lambda n: n.get("state") == "off"),
)
_BY_NAME = {a.name: a for a in NODE_ACTIONS}


def _forbidden(ctx: WebContext, request: web.Request, viewer: Viewer) -> web.Response:
    return ctx.message(
        request, viewer, 403, "Not allowed",
        "The nodes page is for pool administrators. Your DN is not in the relay's admin list.",
        back="/",
    )


@page_handler
async def nodes_page(request: web.Request, ctx: WebContext, viewer: Viewer) -> web.StreamResponse:
    if not viewer.admin:
        return _forbidden(ctx, request, viewer)
    notice, kind = request.query.get("msg", ""), request.query.get("kind", "ok")
    try:
        node_list = await backend.nodes(ctx.core, viewer.identity)
    except RelayFault as fault:
        if fault.code in (Fault.ACCESS_DENIED, Fault.NOT_OWNER):
            return _forbidden(ctx, request, viewer)
        node_list, notice, kind = [], fault.message, "err"
    node_list.sort(key=lambda n: str(n.get("name")))
    return ctx.page(
        request, "nodes.html", viewer, page="nodes", nodes=node_list, node_actions=NODE_ACTIONS,
        notice=notice, notice_kind="err" if kind == "err" else "ok",
        farm=await backend.farm_status(ctx.core, viewer.identity),
    )


@page_handler
async def node_post(request: web.Request, ctx: WebContext, viewer: Viewer) -> web.StreamResponse:
    if not viewer.admin:
        return _forbidden(ctx, request, viewer)
    node = request.match_info["node"]
    act = _BY_NAME.get(request.match_info["action"])
    if act is None:
        raise web.HTTPNotFound()
    form = await post_form(request, ctx, viewer)
    if act.confirm and form.get("confirm") != "yes":
        return ctx.page(
            request, "confirm.html", viewer, page="nodes", heading=f"{act.label} {node}?",
            question=f"{act.label}: {act.help}.", action=request.path,
            button=f"{act.label} {node}", back="/nodes", hidden={},
        )
    ctx.changes_bump_soon()
    try:
        message = await backend.node_action(ctx.core, viewer.identity, node, act.name)
        text = message[:1].upper() + message[1:] if message else f"{act.label} {node}: done"
        query = {"msg": text, "kind": "ok"}
    except RelayFault as fault:
        query = {"msg": f"{act.label} {node} failed: {fault.message}", "kind": "err"}
    ctx.changes_bump_soon()
    raise web.HTTPSeeOther("/nodes?" + urlencode(query))
