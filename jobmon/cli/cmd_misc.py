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
    if getattr(a, "credential", False):
        values.update(_issue_for_template(ctx, values))
    ctx.out.write(templates.render(a.name, values))
    return 0


def _issue_for_template(ctx: Context, given: dict[str, str]) -> dict[str, str]:
    """A per-job credential (and the relay's CA when jobs need it) for a file submitted with
    condor_submit: written under the state dir like `jobmon submit` does; the values to fill."""
    from jobmon.submit.credentials import write_ca_bundle, write_credential

    client = ctx.client()
    me = client.whoami()
    cred = client.call("jobmon.issueCredential", {})
    out = {"credential_file": str(write_credential(ctx.settings.state_dir, str(cred["id"]), str(cred["token"]))),
           "credential_id": str(cred["id"]), "owner_dn": str(me.get("dn", ""))}
    if cred.get("ca_pem"):
        out["ca_file"] = str(write_ca_bundle(ctx.settings.state_dir, str(cred["id"]), str(cred["ca_pem"])))
    out.setdefault("relay_url", client.url)
    return {k: v for k, v in out.items() if not given.get(k)}


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
