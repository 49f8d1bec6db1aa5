"""Where per-job credentials wait for HTCondor to transfer them: 0600 files in 0700 directories."""

from __future__ import annotations

import os
import re
from pathlib import Path

CREDENTIAL_NAME = "jobmon.cred"


def write_credential(state_dir: Path, cred_id: str, token: str) -> Path:
    """``<state>/credentials/<id>/jobmon.cred``, directory 0700, file 0600; returns the file."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", cred_id) or "credential"
    base = Path(state_dir) / "credentials"
    base.mkdir(parents=True, exist_ok=True)
    os.chmod(base, 0o700)
    d = base / safe
    d.mkdir(mode=0o700, exist_ok=True)
    os.chmod(d, 0o700)
    path = d / CREDENTIAL_NAME
    fd = os.open(str(path), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    os.chmod(path, 0o600)
    return path
