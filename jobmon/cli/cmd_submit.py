"""``jobmon submit FILE [--pool local|condor] [--dry-run]``.

Parse the file with HTCondor's parser, get a per-job credential from the relay
(written 0600 in a 0700 directory under the state dir) and, when jobs need it
to verify the relay, the relay's CA bundle (``jobmon-ca.pem`` beside it,
0644), rewrite the description so the wrapper runs the payload and both files
travel with the job, submit it (through the relay for the local pool,
straight to the schedd for --pool condor), bind the credential to the new
cluster, and say what condor_submit says.

``--dry-run`` submits nothing and issues no credential; it asks the relay (when
one answers) whether its CA travels, and otherwise assumes it does.
"""

from __future__ import annotations

from pathlib import Path

from jobmon.cli.common import Context
from jobmon.errors import JobmonError
from jobmon.settings import read_relay_record
from jobmon.submit import WrapOptions, parse_submit_file, rewrite
from jobmon.submit.credentials import CA_NAME, CREDENTIAL_NAME, write_ca_bundle, write_credential
from jobmon.submit.rewrite import description_text


def run(ctx: Context) -> int:
    from jobmon.wrapperzip import wrapper_path

    a, s = ctx.args, ctx.settings
    parsed = parse_submit_file(a.file)
    iwd = str(Path(a.file).resolve().parent)
    pool = a.pool or s.pool
    wrapper = str(wrapper_path())
    if a.dry_run:
        rec = read_relay_record(s.state_dir)
        url = s.relay or (str(rec["url"]) if rec else "https://RELAY-HOST:8443/clarens")
        placeholder = s.state_dir / "credentials" / "ID"
        ca_travels, note = _ca_travels(ctx)
        opts = WrapOptions(wrapper, url, owner_dn=None, credential_file=str(placeholder / CREDENTIAL_NAME),
                           credential_id="ID", ca_file=str(placeholder / CA_NAME) if ca_travels else None)
        if note:
            ctx.out.write(f"# {note}\n")
        ctx.out.write(description_text(parsed, rewrite(parsed, opts)))
        return 0
    client = ctx.client()
    me = client.whoami()
    cred = client.call("jobmon.issueCredential", {})
    cred_path = write_credential(s.state_dir, str(cred["id"]), str(cred["token"]))
    ca_pem = cred.get("ca_pem")
    ca_path = write_ca_bundle(s.state_dir, str(cred["id"]), str(ca_pem)) if ca_pem else None
    opts = WrapOptions(wrapper, client.url, owner_dn=str(me.get("dn")), credential_file=str(cred_path),
                       credential_id=str(cred["id"]), ca_file=str(ca_path) if ca_path else None)
    text = description_text(parsed, rewrite(parsed, opts))
    if pool == "local":
        res = client.call("jobmon.submit", text, {"iwd": iwd})
        cluster, procs = int(res["cluster"]), list(res["procs"])
    else:
        import htcondor2

        from jobmon.pools.condor import CondorPool

        result = CondorPool().submit(htcondor2.Submit(text), iwd=iwd, owner_dn=str(me.get("dn")))
        cluster, procs = result.cluster, list(result.procs)
    client.call("jobmon.bindCredential", str(cred["id"]), cluster)
    ctx.print(f"{len(procs)} job(s) submitted to cluster {cluster}.")
    return 0


def _ca_travels(ctx: Context) -> tuple[bool, str]:
    """(does the relay's CA travel with jobs, a note for the dry-run output)."""
    try:
        info = ctx.client(timeout=5.0).call("jobmon.jobTrust")
    except JobmonError as exc:  # no relay to ask (a dry run needs none): say so, assume the usual case
        return True, (f"relay not asked ({exc}); assuming its CA travels as {CA_NAME}, "
                      f"as it does for a relay with a private CA")
    return bool(info.get("ca_pem")), str(info.get("reason", ""))
