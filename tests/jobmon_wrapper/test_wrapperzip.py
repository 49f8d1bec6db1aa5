"""jobmon.wrapperzip: one cached, content-hashed, executable zipapp."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from jobmon import wrapperzip


def test_wrapper_path_builds_once_and_caches(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    first = wrapperzip.wrapper_path()
    assert first.parent == tmp_path / "jobmon"
    assert wrapperzip.content_hash() in first.name and first.suffix == ".pyz"
    assert first.read_bytes().startswith(b"#!/usr/bin/env python3\n")
    assert first.stat().st_mode & 0o111
    mtime = first.stat().st_mtime_ns
    assert wrapperzip.wrapper_path() == first and first.stat().st_mtime_ns == mtime
    assert [p.name for p in first.parent.iterdir()] == [first.name]  # no temp files left
    r = subprocess.run([str(first), "--version"], stdout=subprocess.PIPE, timeout=30)
    assert r.stdout.startswith(b"jobmon-wrapper ")


def test_hash_follows_the_sources(tmp_path: Path) -> None:
    pkg = tmp_path / "jobmon_wrapper"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("x = 1\n")
    h1 = wrapperzip.content_hash(pkg)
    (pkg / "__init__.py").write_text("x = 2\n")
    assert wrapperzip.content_hash(pkg) != h1
