"""The submit page (``/submit``): a template's fields, the rendered description, submit."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any

from aiohttp import BodyPartReader, web

from jobmon.errors import UsageError
from relay.faults import Fault, RelayFault
from relay.web import backend
from relay.web.common import page_handler
from relay.web.context import Viewer, WebContext

MAX_UPLOAD = 16 * 1024 * 1024        # per file
MAX_FORM_TEXT = 64 * 1024            # per text field
MAX_PRIORITY = 20                    # HTCondor's range is -20..20; the templates take 0..20
WEB_TEMPLATES = {"events": "event processing: input events in, output events back",
                 "wrapped": "any program, watched by jobmon"}
#: set by the relay, never typed by the user
HIDDEN_FIELDS = {"relay_url", "wrapper", "credential_file", "credential_id", "owner_dn", "ca_file"}
#: path fields that name an input file the browser may upload instead
UPLOADABLE = {"input_events", "calibration_file", "control_file", "input_files"}
CREDENTIAL_FILE = "jobmon.cred"
CA_FILE = "jobmon-ca.pem"
RESERVED_NAMES = {CREDENTIAL_FILE, CA_FILE}
#: optional fields shown before the "more" section
MAIN_FIELDS = {"arguments", "extra_arguments", "priority", "notify_user", "count", "input_files", "output_files"}
_NAME = re.compile(r"^[A-Za-z0-9_+-][A-Za-z0-9._+-]{0,200}$")  # no spaces or commas: HTCondor file lists


@dataclass(frozen=True)
class FormField:
    name: str
    label: str
    kind: str            # text, int, email, choice, file
    default: str
    required: bool
    help: str
    upload: bool = False
    choices: tuple[str, ...] = ()
    placeholder: str = ""


def _templates() -> list[dict[str, str]]:
    try:
        from submit_templates.render import list_templates
    except ImportError:
        return []
    names = list_templates()
    return [{"name": n, "title": WEB_TEMPLATES[n]} for n in WEB_TEMPLATES if n in names]


def form_fields(template: str) -> list[FormField]:
    from submit_templates.render import template_fields

    out = []
    for f in template_fields(template):
        if f.name in HIDDEN_FIELDS:
            continue
        kind = {"int": "int", "email": "email", "bool": "choice"}.get(f.type, "text")
        upload = f.name in UPLOADABLE
        help_text = f.help
        if upload:
            help_text = (help_text + "; " if help_text else "") + "a path on the relay host, or upload a file"
        out.append(FormField(
            name=f.name, label=f.label, kind=kind, default=f.default, required=f.required,
            help=help_text, upload=upload,
            choices=("true", "false") if f.type == "bool" else (),
        ))
    return out


def _field_of(message: str, names: list[str]) -> str:
    """The field a renderer error names (``"priority: ..."``, ``"n_events is required"``)."""
    for name in sorted(names, key=len, reverse=True):
        if message.startswith((name + ":", name + " ")):
            return name
    return ""


async def _read_form(request: web.Request) -> tuple[dict[str, str], dict[str, list[tuple[str, bytes]]], dict[str, str]]:
    """Text fields, uploads (field → [(file name, bytes)]) and per-field errors of a multipart POST."""
    texts: dict[str, str] = {}
    uploads: dict[str, list[tuple[str, bytes]]] = {}
    errors: dict[str, str] = {}
    if not request.content_type.startswith("multipart/"):
        for k, v in (await request.post()).items():
            if isinstance(v, str):
                texts[k] = v
        return texts, uploads, errors
    reader = await request.multipart()
    while True:
        part = await reader.next()
        if part is None:
            break
        if not isinstance(part, BodyPartReader) or not part.name:
            continue
        name = part.name
        if part.filename is not None:
            field = name.removesuffix("__upload")
            data = bytearray()
            too_big = False
            while True:
                chunk = await part.read_chunk(65536)
                if not chunk:
                    break
                if len(data) + len(chunk) > MAX_UPLOAD:
                    too_big = True
                    continue  # drain the part without keeping it
                data += chunk
            if not part.filename:
                continue  # the file input was left empty
            filename = os.path.basename(part.filename.replace("\\", "/"))
            if too_big:
                errors[field] = f"{filename} is too big: at most {MAX_UPLOAD // (1024 * 1024)} MiB per file"
            elif not _NAME.match(filename) or filename in RESERVED_NAMES:
                errors[field] = f"{filename!r} is not a usable file name (letters, digits, . _ + -; no spaces)"
            else:
                uploads.setdefault(field, []).append((filename, bytes(data)))
        else:
            value = await part.read(decode=True)
            if len(value) > MAX_FORM_TEXT:
                errors[name] = "too long"
                continue
            texts[name] = value.decode("utf-8", "replace")
    return texts, uploads, errors


def _check(fields: list[FormField], values: dict[str, str], uploads: dict[str, list[tuple[str, bytes]]],
           errors: dict[str, str]) -> None:
    for f in fields:
        if f.name in errors:
            continue
        raw = values.get(f.name, "").strip()
        if f.required and not raw and not uploads.get(f.name):
            errors[f.name] = f"{f.label} is required"
        elif f.kind == "int" and raw:
            try:
                n = int(raw)
            except ValueError:
                errors[f.name] = f"{raw!r} is not a whole number"
                continue
            if f.name == "priority" and not 0 <= n <= MAX_PRIORITY:
                errors[f.name] = f"priority must be between 0 and {MAX_PRIORITY}"
            elif f.name in ("n_events", "count", "request_cpus") and n < 1:
                errors[f.name] = "must be at least 1"
            elif n < 0:
                errors[f.name] = "must not be negative"


def _render(ctx: WebContext, viewer: Viewer, template: str, values: dict[str, str],
            fields: list[FormField], extra: dict[str, str]) -> tuple[str, dict[str, str], str]:
    """``(description, field errors, general error)``."""
    from submit_templates.render import render

    given = {f.name: values.get(f.name, "") for f in fields}
    given.update(extra)
    given.setdefault("relay_url", str(getattr(ctx.config, "url", "") or ""))
    given.setdefault("owner_dn", viewer.dn)
    try:
        return render(template, given), {}, ""
    except UsageError as exc:
        text = str(exc)
        name = _field_of(text, [f.name for f in fields])
        if name:
            return "", {name: text.split(":", 1)[-1].strip() if text.startswith(name + ":") else text}, ""
        return "", {}, text


def _page(request: web.Request, ctx: WebContext, viewer: Viewer, template: str, *, status: int = 200,
          **values: Any) -> web.Response:
    values.setdefault("values", {})
    values.setdefault("errors", {})
    values.setdefault("uploaded", {})
    fields = form_fields(template)
    main = [f for f in fields if f.required or f.name in MAIN_FIELDS]
    more = [f for f in fields if f not in main]
    return ctx.page(
        request, "submit.html", viewer, status=status, page="submit", templates=_templates(),
        template=template, main_fields=main, more_fields=more,
        more_open=any(f.name in values["errors"] for f in more), **values,
    )


def _template_of(name: str) -> str:
    return name if name in WEB_TEMPLATES else "events"


@page_handler
async def submit_page(request: web.Request, ctx: WebContext, viewer: Viewer) -> web.StreamResponse:
    return _page(request, ctx, viewer, _template_of(request.query.get("template", "")),
                 farm=await backend.farm_status(ctx.core, viewer.identity))


@page_handler
async def submit_post(request: web.Request, ctx: WebContext, viewer: Viewer) -> web.StreamResponse:
    texts, uploads, errors = await _read_form(request)
    if not ctx.csrf_ok(viewer, texts, request):
        raise RelayFault(Fault.ACCESS_DENIED, "The form expired or did not come from this site; reload and try again.")
    template = _template_of(texts.get("template", ""))
    fields = form_fields(template)
    values = {f.name: texts.get(f.name, "") for f in fields}
    files: dict[str, bytes] = {}
    for name, items in uploads.items():
        if name not in {f.name for f in fields if f.upload}:
            continue
        for filename, data in items:
            files[filename] = data
        names = [fn for fn, _ in items]
        values[name] = ", ".join(names) if name == "input_files" else names[-1]
    _check(fields, values, uploads, errors)
    preview = texts.get("do") == "preview"
    extra: dict[str, str] = {}
    description, general = "", ""
    render_errors: dict[str, str] = {}
    if not errors:
        description, render_errors, general = _render(ctx, viewer, template, values, fields, extra)
        errors.update(render_errors)
    if errors or general or preview:
        notice = general or ("Please correct the fields marked below; nothing was submitted." if errors else "")
        uploaded = {name: ", ".join(fn for fn, _ in items) for name, items in uploads.items()}
        return _page(request, ctx, viewer, template, status=200 if preview and not errors else 422,
                     values=values, errors=errors, notice=notice, description=description,
                     notice_kind="err", uploaded=uploaded)
    # a per-job credential for the job's daemon, transferred as a 0600 file
    try:
        cred = await backend.issue_credential(ctx.core, viewer.identity)
    except RelayFault as fault:
        cred = None
        general = fault.message
    if cred is not None:
        extra = {"credential_file": CREDENTIAL_FILE, "credential_id": str(cred.get("id", ""))}
        files[CREDENTIAL_FILE] = str(cred.get("token", "")).encode()
        if cred.get("ca_pem"):  # the relay's CA travels with the job when workers need it
            extra["ca_file"] = CA_FILE
            files[CA_FILE] = str(cred["ca_pem"]).encode()
        description, render_errors, general = _render(ctx, viewer, template, values, fields, extra)
    if render_errors or general or not description:
        return _page(request, ctx, viewer, template, status=422, values=values, errors=render_errors,
                     notice=general or "could not render the description", notice_kind="err")
    try:
        result = await backend.submit(ctx.core, viewer.identity, description, {"files": files})
    except RelayFault as fault:
        return _page(request, ctx, viewer, template, status=422, values=values, errors={},
                     description=description, notice=f"The pool refused the job: {fault.message}",
                     notice_kind="err")
    cluster = int(result["cluster"])
    procs = list(result.get("procs") or [0])
    if cred is not None:
        await backend.bind_credential(ctx.core, viewer.identity, str(cred.get("id", "")), cluster)
    if ctx.mailer is not None and values.get("notify_user"):
        ctx.mailer.expect(str(cluster), values["notify_user"])
    ctx.changes_bump_soon()
    raise web.HTTPSeeOther(f"/jobs/{cluster}.{int(procs[0])}")
