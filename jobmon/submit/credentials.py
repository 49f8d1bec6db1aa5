"""Where per-job credentials wait for HTCondor to transfer them: 0600 files in 0700 directories.

Beside each credential may lie ``jobmon-ca.pem`` (0644, public certificates
only): the relay's CA bundle, when jobs need it to verify the relay
(relay/job_trust.py). Both travel with the job in ``transfer_input_files``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

CREDENTIAL_NAME = "jobmon.cred"
CA_NAME = "jobmon-ca.pem"


def credential_dir(state_dir: Path, cred_id: str) -> Path:
    """``<state>/credentials/<id>/`` (0700, created)."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", cred_id) or "credential"
    base = Path(state_dir) / "credentials"
    base.mkdir(parents=True, exist_ok=True)
    os.chmod(base, 0o700)
    d = base / safe
    d.mkdir(mode=0o700, exist_ok=True)
    os.chmod(d, 0o700)
    return d


def write_ca_bundle(state_dir: Path, cred_id: str, pem: str) -> Path:
    """``<state>/credentials/<id>/jobmon-ca.pem`` (0644: public certificates); returns the file."""
    path = credential_dir(state_dir, cred_id) / CA_NAME
    tmp = path.with_name(CA_NAME + ".part")
    fd = os.open(str(tmp), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    with os.fdopen(fd, "w") as f:
        f.write(pem)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)
    return path


def write_credential(state_dir: Path, cred_id: str, token: str) -> Path:
    """``<state>/credentials/<id>/jobmon.cred``, directory 0700, file 0600; returns the file."""
    path = credential_dir(state_dir, cred_id) / CREDENTIAL_NAME
    fd = os.open(str(path), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    os.chmod(path, 0o600)
    return path
