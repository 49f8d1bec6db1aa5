"""``python -m relay``: run a relay in the foreground (``jobmon relay`` is the user-facing command).

Flags override the TOML file; ``--pool local`` runs the embedded LocalPool in
``--pool-dir`` (default ``<state_dir>/pool``), ``--pool none`` serves attach-mode
daemons only (benchmarks).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from jobmon.errors import JobmonError
from relay.config import load_config
from relay.server import serve
from relay.statedir import private_umask

_FLAGS = ("listen", "state_dir", "host_cert", "host_key", "ca_file", "ca_dir", "access_file", "public_url",
          "log_level")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m relay", description=__doc__)
    ap.add_argument("--config", help="relay TOML file")
    for flag in _FLAGS:
        ap.add_argument("--" + flag.replace("_", "-"), dest=flag)
    ap.add_argument("--admin", action="append", dest="admins", help="admin DN (repeatable)")
    ap.add_argument("--submit-root", action="append", dest="submit_roots",
                    help="directory jobmon.submit's options.iwd may lie under (repeatable; default: home)")
    ap.add_argument("--poll-wait", type=float, dest="poll_wait")
    ap.add_argument("--rate-per-second", type=float, dest="rate_per_second")
    ap.add_argument("--pool", choices=("local", "none"), default="local")
    ap.add_argument("--pool-dir")
    args = ap.parse_args(argv)
    overrides: dict[str, Any] = {k: v for k, v in vars(args).items()
                                 if k not in ("config", "pool", "pool_dir") and v is not None}
    try:
        config = load_config(args.config, overrides)
        private_umask()  # before the pool opens its job table (serve sets it too)
        pool = None
        if args.pool == "local":
            from jobmon.pools.local import LocalPool

            pool = LocalPool(Path(args.pool_dir) if args.pool_dir else config.state_path / "pool",
                             private=[config.state_path])
        serve(config, pool)
    except JobmonError as exc:
        print(f"relay: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
