"""Build the single-file worker-side program: a zipapp of ``jobmon_wrapper/``.

``wrapper_path()`` returns ``jobmon-wrapper-<hash>.pyz`` in the cache
directory (``$XDG_CACHE_HOME/jobmon`` or ``~/.cache/jobmon``), building it on
first use. The hash covers the package's sources, so an edited package gets a
new file; the file is written under a temporary name and renamed into place,
so concurrent callers never see a half-written archive.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import zipapp
from pathlib import Path

import jobmon_wrapper

INTERPRETER = "/usr/bin/env python3"
ENTRY = "jobmon_wrapper.__main__:main"


def package_dir() -> Path:
    return Path(jobmon_wrapper.__file__).resolve().parent


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "jobmon"


def _sources(pkg: Path) -> list[Path]:
    return sorted(p for p in pkg.glob("*.py") if p.is_file())


def content_hash(pkg: Path | None = None) -> str:
    pkg = package_dir() if pkg is None else pkg
    h = hashlib.sha256()
    for path in _sources(pkg):
        h.update(path.name.encode() + b"\0")
        h.update(path.read_bytes())
        h.update(b"\0")
    return h.hexdigest()[:16]


def build(dest: Path, pkg: Path | None = None) -> Path:
    """Write the zipapp to ``dest`` (atomically) and return ``dest``."""
    pkg = package_dir() if pkg is None else pkg
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="jobmon-zip-", dir=str(dest.parent)) as tmp:
        staging = Path(tmp) / "src"
        target = staging / "jobmon_wrapper"
        target.mkdir(parents=True)
        for path in _sources(pkg):
            shutil.copyfile(path, target / path.name)
        partial = Path(tmp) / (dest.name + ".part")
        zipapp.create_archive(staging, target=partial, interpreter=INTERPRETER, main=ENTRY,
                              compressed=True)
        partial.chmod(0o755)
        os.replace(partial, dest)
    return dest


def wrapper_path() -> Path:
    """Path of the cached ``jobmon-wrapper-<hash>.pyz``, built if missing."""
    dest = cache_dir() / ("jobmon-wrapper-%s.pyz" % content_hash())
    if not dest.is_file():
        build(dest)
    return dest
