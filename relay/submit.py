"""``jobmon.submit``: submit-language text to the relay's pool.

The description is parsed with ``htcondor2.Submit`` (so errors name the line
HTCondor objects to). ``options.files`` (name → base64, from the web form) are
written to a fresh directory under ``<state_dir>/submit/`` that becomes the
job's ``iwd``; otherwise ``options.iwd`` names a directory on the relay host,
which must lie in the uploads area (``<state_dir>/submit/``) or under one of
the configured ``submit_roots`` (default: the relay user's home) and outside
the rest of the relay's state directory (its keys and databases): anything else is fault 201.
If ``core.submit_preparer`` is set (``callable(submit, caller_dn, iwd)``),
it may rewrite the ``Submit`` before it is queued (wrapping the executable).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from relay.faults import Fault, RelayFault

if TYPE_CHECKING:  # pragma: no cover
    from relay.core import RelayCore
    from relay.identity import Identity


async def submit(core: RelayCore, caller: Identity, description: str, options: dict[str, Any]) -> dict[str, Any]:
    if caller.kind == "credential":
        raise RelayFault(Fault.ACCESS_DENIED, "a job credential cannot submit jobs")
    if core.pool is None:
        raise RelayFault(Fault.POOL_ERROR, "this relay has no pool configured")
    import htcondor2

    try:
        sub = htcondor2.Submit(description)
    except (ValueError, TypeError, RuntimeError) as exc:
        raise RelayFault(Fault.SUBMIT_ERROR, f"submit description refused: {exc}") from None
    iwd = options.get("iwd")
    files = options.get("files")
    if files:
        if not isinstance(files, dict):
            raise RelayFault(Fault.BAD_PARAMS, "options.files must be a struct of name -> base64")
        target = core.submit_dir()
        for name, data in core.decode_files(files).items():
            (target / name).write_bytes(data)
        iwd = str(target)
    if not isinstance(iwd, str) or not iwd:
        raise RelayFault(Fault.BAD_PARAMS, "give options.iwd (a directory on the relay host) or options.files")
    if not files:
        iwd = check_iwd(core, iwd)
    preparer = getattr(core, "submit_preparer", None)
    if preparer is not None:
        sub = preparer(sub, caller.dn, iwd)
    result = await core.pool_call("submit", core.pool.submit, sub, iwd=iwd, owner_dn=caller.dn)
    return {"cluster": result.cluster, "procs": list(result.procs)}


def _under(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def check_iwd(core: RelayCore, iwd: str) -> str:
    """The resolved ``iwd`` if a caller may submit from it; fault 201 otherwise."""
    if not os.path.isabs(iwd):
        raise RelayFault(Fault.BAD_PARAMS, f"options.iwd must be an absolute path, got {iwd!r}")
    real = Path(os.path.realpath(iwd))
    roots = core.config.submit_root_paths
    state = Path(os.path.realpath(core.config.state_path))
    uploads = state / "submit"
    in_uploads = real != uploads and _under(real, uploads)  # the uploads area is always allowed
    allowed = in_uploads or (any(_under(real, r) for r in roots) and not _under(real, state))
    if not allowed:
        where = ", ".join(str(r) for r in roots)
        raise RelayFault(Fault.BAD_PARAMS, f"options.iwd {iwd} is not allowed: a job's directory must lie under "
                         f"one of {where} (the relay's submit_roots) and outside its state directory; "
                         f"start the relay with `--submit-root DIR` (repeatable) or set submit_roots "
                         f"in its config to allow another directory")
    if not real.is_dir():
        raise RelayFault(Fault.BAD_PARAMS, f"options.iwd {iwd} is not a directory on the relay host")
    if not os.access(real, os.R_OK | os.W_OK | os.X_OK):
        raise RelayFault(Fault.BAD_PARAMS, f"options.iwd {iwd} is not readable and writable by the relay")
    return str(real)
