"""The files a finished job returned to its ``iwd``: its output, error and log files
and its ``transfer_output_files`` — never anything else that happens to be there.

Without ``transfer_output_files`` HTCondor's file transfer returns every file the
job created or changed in its sandbox; those are the top-level regular files of
``iwd`` modified since the job started (see :func:`returned_files`).

The web job page lists and serves only these (``RelayCore.returned_files``).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

#: never offered even when named (the per-job credential travels in the sandbox)
NEVER = frozenset({"jobmon.cred"})


def output_names(ad: Mapping[str, Any]) -> list[str]:
    """Names (relative to ``Iwd``, one level) of the files the job's description returns."""
    iwd = str(ad.get("Iwd") or "")
    names: list[str] = []
    for attr in ("Out", "Err", "UserLog"):
        value = ad.get(attr)
        if isinstance(value, str) and value and value != "/dev/null":
            names.append(_relative(value, iwd))
    transfer = ad.get("TransferOutput")
    if isinstance(transfer, str):
        for item in transfer.split(","):
            item = item.strip().strip('"').rstrip("/")
            if item:
                names.append(os.path.basename(item))  # HTCondor returns each to the top of iwd
    out: list[str] = []
    for name in names:
        if name and "/" not in name and name not in (".", "..") and name not in NEVER and name not in out:
            out.append(name)
    return out


def _relative(value: str, iwd: str) -> str:
    if not os.path.isabs(value):
        return os.path.normpath(value)
    if iwd and os.path.dirname(os.path.normpath(value)) == os.path.normpath(iwd):
        return os.path.basename(value)
    return ""  # somewhere else on the host: not the job's to offer


def returned_files(ad: Mapping[str, Any]) -> list[dict[str, Any]]:
    """``{name, size, mtime}`` of the files the job returned to its ``Iwd``."""
    iwd = ad.get("Iwd")
    if not isinstance(iwd, str) or not iwd:
        return []
    names = output_names(ad)
    transfer = str(ad.get("ShouldTransferFiles") or "").upper()
    if ad.get("TransferOutput") is None and transfer != "NO":
        since = next((float(v) for k in ("JobCurrentStartDate", "JobStartDate", "QDate")
                      if isinstance(v := ad.get(k), (int, float)) and not isinstance(v, bool) and v > 0), None)
        if since is not None:
            names += [n for n in _changed_since(iwd, since) if n not in names]
    return existing(iwd, names)


def _changed_since(iwd: str, since: float) -> list[str]:
    out = []
    try:
        with os.scandir(iwd) as it:
            for entry in it:
                if entry.name.startswith(".") or entry.name in NEVER:
                    continue
                try:
                    st = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                if stat.S_ISREG(st.st_mode) and st.st_mtime >= since:
                    out.append(entry.name)
    except OSError:
        return []
    return out


def existing(iwd: str, names: list[str]) -> list[dict[str, Any]]:
    """``{name, size, mtime}`` of those names that are regular files (not symlinks) in ``iwd``."""
    out = []
    for name in names:
        try:
            st = os.lstat(Path(iwd) / name)
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode):
            out.append({"name": name, "size": st.st_size, "mtime": st.st_mtime})
    return sorted(out, key=lambda f: f["name"])
