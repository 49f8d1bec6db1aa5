"""``jobmon submit FILE [--pool local|condor] [--dry-run]``.

Parse the file with HTCondor's parser, get a per-job credential from the relay
(written 0600 in a 0700 directory under the state dir), rewrite the
description so the wrapper runs the payload, submit it (through the relay for
the local pool, straight to the schedd for --pool condor), bind the
credential to the new cluster, and say what condor_submit says.
"""

from __future__ import annotations

from pathlib import Path

from jobmon.cli.common import Context
from jobmon.settings import read_relay_record
from jobmon.submit import WrapOptions, parse_submit_file, rewrite
from jobmon.submit.credentials import CREDENTIAL_NAME, write_credential
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
        opts = WrapOptions(wrapper, url, owner_dn=None,
                           credential_file=str(s.state_dir / "credentials" / "ID" / CREDENTIAL_NAME),
                           credential_id="ID")
        ctx.out.write(description_text(parsed, rewrite(parsed, opts)))
        return 0
    client = ctx.client()
    me = client.whoami()
    cred = client.call("jobmon.issueCredential", {})
    cred_path = write_credential(s.state_dir, str(cred["id"]), str(cred["token"]))
    opts = WrapOptions(wrapper, client.url, owner_dn=str(me.get("dn")), credential_file=str(cred_path),
                       credential_id=str(cred["id"]))
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
