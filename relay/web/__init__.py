"""The relay's web pages: jobs, one job, submit, nodes, login links.

``relay.app.build_app`` calls :func:`setup`. Pages are rendered on the server
(Jinja2, autoescaped) and work without JavaScript; ``static/jobmon.js`` adds
the live parts over server-sent events. Every request is authenticated the way
XML-RPC calls are (client certificate, or the ``jobmon_session`` cookie a
one-time login link sets) and every job or node is reached through the
relay's core, so the access rules are the core's.
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from relay.web import backend, job, jobs, login, nodes, submit
from relay.web.context import CTX_KEY, STATIC_DIR, WebContext

log = logging.getLogger("relay.web")

JOB = r"{job:[0-9]+\.[0-9]+}"


def setup(app: web.Application, core: Any, config: Any) -> WebContext:
    """Add the pages, their static files and end-of-job mail to the relay's application."""
    logins = backend.WebLogins(app, core, float(getattr(config, "session_ttl", 43200.0) or 43200.0))
    ctx = WebContext(core, config, logins)
    app[CTX_KEY] = ctx
    r = app.router
    r.add_get("/", jobs.jobs_page)
    r.add_get("/events", jobs.events)
    r.add_get("/events/" + JOB, jobs.events)
    r.add_get("/jobs/" + JOB, job.job_page)
    r.add_get("/jobs/" + JOB + "/tail", job.tail_events)
    r.add_post("/jobs/" + JOB + "/exec", job.console_post)
    r.add_post("/jobs/" + JOB + "/{action:hold|release|remove}", job.action_post)
    r.add_get("/jobs/" + JOB + "/files/{name}", job.file_download)
    r.add_get("/submit", submit.submit_page)
    r.add_post("/submit", submit.submit_post)
    r.add_get("/nodes", nodes.nodes_page)
    r.add_post("/nodes/{node}/{action}", nodes.node_post)
    r.add_get("/login", login.login)
    r.add_get("/logout", login.logout)
    r.add_post("/logout", login.logout)
    r.add_static("/static/", STATIC_DIR, name="jobmon-static", append_version=False)

    from relay.mail import JobMailer

    mailer = JobMailer.from_config(config)
    if mailer is not None:
        if backend.on_job_end(core, mailer.job_ended):
            ctx.mailer = mailer
        else:
            log.warning("the relay core offers no on_job_end(); end-of-job mail is off")

    async def _start(app: web.Application) -> None:
        await ctx.changes.start()

    async def _stop(app: web.Application) -> None:
        await ctx.changes.stop()

    async def _cleanup(app: web.Application) -> None:
        if ctx.mailer is not None:
            ctx.mailer.close()

    app.on_startup.append(_start)
    app.on_shutdown.append(_stop)
    app.on_cleanup.append(_cleanup)
    return ctx
