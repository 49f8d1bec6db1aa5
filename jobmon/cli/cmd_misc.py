"""Small commands: template, wrapper-path, whoami, web, demo."""

from __future__ import annotations

from jobmon.cli.common import Context
from jobmon.errors import UsageError


def run_template(ctx: Context) -> int:
    from submit_templates import render as templates

    a = ctx.args
    if a.action == "list":
        for name in templates.list_templates():
            ctx.print(name)
            for f in templates.template_fields(name):
                req = " (required)" if getattr(f, "required", False) else ""
                default = f" [default: {f.default}]" if getattr(f, "default", "") else ""
                ctx.print(f"  {f.name:<22} {getattr(f, 'label', '')}{req}{default}")
        return 0
    if not a.name:
        raise UsageError("jobmon template render needs a template NAME", hint="see `jobmon template list`")
    values: dict[str, str] = {}
    for item in a.values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--set {item!r}: use KEY=VALUE")
        values[key.strip()] = value
    ctx.out.write(templates.render(a.name, values))
    return 0


def run_wrapper_path(ctx: Context) -> int:
    from jobmon.wrapperzip import wrapper_path

    ctx.print(str(wrapper_path()))
    return 0


def run_whoami(ctx: Context) -> int:
    me = ctx.client().whoami()
    ctx.print(str(me.get("dn")))
    if ctx.settings.verbose:
        ctx.print(f"auth: {me.get('auth')}, admin: {bool(me.get('admin'))}, relay: {ctx.client().url}")
    return 0


def run_web(ctx: Context) -> int:
    res = ctx.client().call("jobmon.webLogin")
    ctx.print(str(res.get("url")))
    return 0


def run_demo(ctx: Context) -> int:
    from jobmon.demo import run_demo as demo

    return demo(out=ctx.out)
