"""What every page handler shares: the core, templates, the viewer, CSRF, live changes."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
from aiohttp import web

from relay.mail import JobMailer
from relay.web import backend
from relay.web.format import FILTERS

STATIC_DIR = Path(__file__).with_name("static")


@dataclass(frozen=True)
class Viewer:
    """The person looking at a page: the core's identity plus what pages need to know."""

    identity: Any
    dn: str
    admin: bool
    cookie: bool  # signed in through a login link (so "log out" makes sense)
    session_id: str = ""


def _asset_version() -> str:
    h = hashlib.sha256()
    for p in sorted(STATIC_DIR.iterdir()):
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()[:10]


class WebContext:
    def __init__(self, core: Any, config: Any, logins: backend.WebLogins) -> None:
        self.core = core
        self.config = config
        self.logins = logins
        self.mailer: JobMailer | None = None  # set by setup() when smtp_host is configured
        self._csrf_key = secrets.token_bytes(32)
        self.stopping = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self.changes = backend.ChangeFeed(core, self.stopping)
        version = _asset_version()
        self.env = jinja2.Environment(
            loader=jinja2.PackageLoader("relay.web", "templates"),
            autoescape=True,
            trim_blocks=False,
            lstrip_blocks=False,
            undefined=jinja2.Undefined,
        )
        self.env.filters.update(FILTERS)
        self.env.globals["static"] = lambda name: f"/static/{name}?v={version}"
        try:
            from importlib.metadata import version as pkg_version

            self.env.globals["version"] = pkg_version("htcondor-jobmon")
        except Exception:  # noqa: BLE001 - metadata missing in a source tree is harmless
            self.env.globals["version"] = ""

    def changes_bump_soon(self) -> None:
        """Wake live pages now (after an action whose effect the core may report later)."""
        backend.forget_farm(self.core)
        task = asyncio.get_running_loop().create_task(self.changes.bump())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- rendering --------------------------------------------------------------------------
    def render_str(self, name: str, **values: Any) -> str:
        return self.env.get_template(name).render(**values)

    def page(
        self, request: web.Request, name: str, viewer: Viewer | None, status: int = 200, **values: Any
    ) -> web.Response:
        values.setdefault("me", viewer)
        values.setdefault("csrf", self.csrf_token(viewer) if viewer else "")
        text = self.render_str(name, **values)
        resp = web.Response(text=text, status=status, content_type="text/html", charset="utf-8")
        resp.headers["Cache-Control"] = "no-store"
        resp.headers["X-Frame-Options"] = "DENY"
        resp.headers["X-Content-Type-Options"] = "nosniff"
        resp.headers["Referrer-Policy"] = "same-origin"
        resp.headers["Content-Security-Policy"] = (
            "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
            "frame-ancestors 'none'; form-action 'self'"
        )
        return resp

    def message(
        self,
        request: web.Request,
        viewer: Viewer | None,
        status: int,
        heading: str,
        *paragraphs: str,
        command: str = "",
        back: str = "",
    ) -> web.Response:
        return self.page(
            request, "message.html", viewer, status=status, heading=heading,
            paragraphs=paragraphs, command=command, back=back, page="",
        )

    # -- who is looking -------------------------------------------------------------------
    async def viewer(self, request: web.Request) -> Viewer | None:
        ident = self.logins.identify(request)
        if ident is None:
            return None
        cookie = getattr(ident, "kind", "") == "cookie"
        sid = request.cookies.get(backend.COOKIE, "") if cookie else ""
        return Viewer(ident, ident.dn, backend.is_admin(self.core, ident), cookie, sid)

    # -- CSRF ------------------------------------------------------------------------------
    def csrf_token(self, viewer: Viewer | None) -> str:
        if viewer is None:
            return ""
        msg = f"{viewer.dn}\0{viewer.session_id}".encode("utf-8", "surrogateescape")
        return hmac.new(self._csrf_key, msg, hashlib.sha256).hexdigest()

    def csrf_ok(self, viewer: Viewer, form: Mapping[str, Any], request: web.Request) -> bool:
        token = form.get("csrf")
        if not isinstance(token, str) or not hmac.compare_digest(token, self.csrf_token(viewer)):
            return False
        origin = request.headers.get("Origin")
        if origin and origin != "null":
            host = request.headers.get("Host", "")
            if origin.split("://", 1)[-1] != host:
                return False
        return True


CTX_KEY = web.AppKey("jobmon_web", WebContext)


def ctx_of(request: web.Request) -> WebContext:
    return request.app[CTX_KEY]
