"""Python interpreters installed with pyenv, found without ever failing.

The worker-side tests run the wrapper under every ``$(pyenv root)/versions/3.*``
interpreter, and the hook tests under the oldest one (EL8 nodes have 3.6).
These lookups run while pytest *collects*, so they must not raise: a pyenv
root that is missing, unreadable (another user's home, e.g. ``PYENV_ROOT``
inherited through ``su``) or half-installed simply means "none found".

* ``pyenv_root(env)``: ``PYENV_ROOT``, else ``pyenv root`` when ``pyenv`` is
  on PATH, else ``~/.pyenv`` (None only if not even a home is known).
* ``pyenv_interpreters(pattern="3.*", root=None)``: ``.../versions/<v>/bin/python``
  of every version matching ``pattern`` that is an executable file, oldest first.
* ``oldest_pyenv_python(prefix="3.6")``: the oldest of those whose version
  starts with ``prefix``, or None.
"""

from __future__ import annotations

import fnmatch
import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path


def pyenv_root(env: Mapping[str, str] | None = None) -> Path | None:
    """Where pyenv keeps its versions; never raises (the directory may not exist)."""
    env = os.environ if env is None else env
    root = env.get("PYENV_ROOT")
    if root:
        return Path(root)
    try:
        exe = shutil.which("pyenv", path=env.get("PATH"))
    except OSError:
        exe = None
    if exe:
        try:
            out = subprocess.run([exe, "root"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                 stdin=subprocess.DEVNULL, timeout=10, check=True,
                                 env=dict(env))
            text = out.stdout.decode("utf-8", "replace").strip()
            if text:
                return Path(text)
        except (OSError, subprocess.SubprocessError):
            pass
    home = env.get("HOME")
    if not home:
        try:
            home = str(Path.home())
        except (OSError, RuntimeError, KeyError):
            return None
    return Path(home) / ".pyenv"


def version_key(name: str) -> tuple[int, ...]:
    """``"3.10.13"`` -> ``(3, 10, 13)``; ``"3.13.0t"`` -> ``(3, 13, 0)``; no digits -> ``()``."""
    parts = []
    for piece in name.split("."):
        m = re.match(r"\d+", piece)
        if not m:
            break
        parts.append(int(m.group(0)))
    return tuple(parts)


def pyenv_interpreters(pattern: str = "3.*", root: Path | str | None = None,
                       env: Mapping[str, str] | None = None) -> list[str]:
    """``<root>/versions/<v>/bin/python`` for every version ``v`` matching ``pattern``, oldest first.

    Only executable files count. An unreadable or missing root, or an unreadable
    version directory, gives fewer (or no) interpreters, never an exception.
    """
    base = Path(root) if root is not None else pyenv_root(env)
    if base is None:
        return []
    versions = base / "versions"
    try:
        with os.scandir(versions) as it:
            names = [e.name for e in it]
    except OSError:  # missing, not a directory, or not ours to read
        return []
    found = []
    for name in names:
        if not fnmatch.fnmatchcase(name, pattern) or not version_key(name):
            continue
        python = versions / name / "bin" / "python"
        try:
            if python.is_file() and os.access(python, os.X_OK):
                found.append((version_key(name), name, str(python)))
        except OSError:
            continue
    return [path for _, _, path in sorted(found)]


def oldest_pyenv_python(prefix: str = "3.6", root: Path | str | None = None,
                        env: Mapping[str, str] | None = None) -> str | None:
    """The oldest pyenv interpreter whose version is ``prefix`` or ``prefix.*``; None if none."""
    found = [p for p in pyenv_interpreters("*", root, env)
             if Path(p).parents[1].name == prefix or Path(p).parents[1].name.startswith(prefix + ".")]
    return found[0] if found else None
