"""``jobmon relay``: run the relay with the embedded local pool (default) or a real pool.

With no certificates configured it uses (and on first start creates) the
zero-setup PKI in the state directory: a private CA, a host certificate and a
certificate for the current user, who is also the relay's admin. It records
``{url, pid}`` in ``<state_dir>/relay.json`` so the CLI on this machine finds it.
"""

from __future__ import annotations

import getpass
import logging
import os
import socket
from pathlib import Path
from typing import Any

from jobmon.cli.common import Context
from jobmon.pools.base import Pool
from jobmon.settings import relay_record_path, write_relay_record

log = logging.getLogger(__name__)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def relay_config(ctx: Context) -> Any:
    """The RelayConfig to run (what jobs need to trust it is worked out by relay/job_trust.py)."""
    from jobmon import pki
    from relay.config import load_config

    a, s = ctx.args, ctx.settings
    base = load_config(a.relay_config, {})
    overrides: dict[str, Any] = {}
    from relay.config import RelayConfig

    if s.origin.get("state_dir", "default") != "default" or base.state_dir == RelayConfig().state_dir:
        overrides["state_dir"] = str(s.state_dir)  # else the relay config file's own state_dir
    listen = a.listen or s.listen or (base.listen if a.relay_config else "127.0.0.1:8443")
    host, _, port = listen.rpartition(":")
    if port == "0":
        listen = f"{host}:{free_port(host or '127.0.0.1')}"
    overrides["listen"] = listen
    if getattr(a, "submit_roots", None):
        overrides["submit_roots"] = [_submit_root(r) for r in a.submit_roots]
    state_dir = Path(os.path.expanduser(str(overrides.get("state_dir", base.state_dir))))
    local = pki.ensure_local_pki(s.state_dir, getpass.getuser())  # shared with the CLI here
    if not base.host_cert and not (state_dir / "hostcert.pem").exists():
        overrides["host_cert"], overrides["host_key"] = str(local.host_cert), str(local.host_key)
    if not base.ca_file:
        overrides["ca_file"] = str(local.ca_cert)
    if not base.admins:
        overrides["admins"] = [local.user_dn]
    return load_config(a.relay_config, overrides)


def _submit_root(text: str) -> str:
    path = Path(os.path.expanduser(text)).resolve()
    if not path.is_dir():
        from jobmon.errors import UsageError

        raise UsageError(f"--submit-root {text}: no such directory", hint="give a directory that exists")
    return str(path)


def make_pool(ctx: Context, config: Any) -> Pool:
    kind = ctx.args.pool or ctx.settings.pool
    if kind == "condor":
        from jobmon.pools.condor import CondorPool

        return CondorPool()
    from jobmon.pools.local import LocalPool

    return LocalPool(ctx.settings.state_dir, ctx.args.slots or ctx.settings.slots,
                     private=[config.state_path])


def run(ctx: Context) -> int:
    from relay.server import serve

    if ctx.settings.verbose:
        logging.getLogger().setLevel(logging.DEBUG)
    else:
        logging.getLogger().setLevel(logging.INFO)
    from relay.statedir import private_umask

    config = relay_config(ctx)  # flags checked first: a bad one changes nothing
    private_umask()  # before the pool opens its database: relay state is owner-only
    pool = make_pool(ctx, config)

    def ready(url: str) -> None:  # the port is bound: now other commands may find and use the relay
        write_relay_record(ctx.settings.state_dir, url, os.getpid(), pool=pool.kind)
        print(f"jobmon relay: serving {url} with the {pool.kind} pool ({pool.address})", flush=True)

    record = relay_record_path(ctx.settings.state_dir)
    try:
        serve(config, pool, on_ready=ready)
    finally:
        pool.close()
        try:
            import json

            if json.loads(record.read_text()).get("pid") == os.getpid():
                record.unlink()
        except (OSError, ValueError):
            pass
    return 0
