"""jmtest.interpreters: pyenv interpreters found without ever failing (issue 9).

A tester ran ``make test-condor`` as a normal user with ``PYENV_ROOT``
pointing into root's unreadable home: collection crashed with
PermissionError in the hook tests' own glob. The unreadable case is checked
here with a real directory the test process cannot read: as a normal user
mode 000 is enough; as root (CI) the check runs in a subprocess without the
capabilities that let root ignore mode bits (``setpriv``), as
tests/jobmon/test_client.py does.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from jmtest.interpreters import oldest_pyenv_python, pyenv_interpreters, pyenv_root, version_key

SUPPORT = Path(__file__).resolve().parent


def _fake_python(root: Path, version: str, executable: bool = True) -> Path:
    exe = root / "versions" / version / "bin" / "python"
    exe.parent.mkdir(parents=True)
    exe.write_text("#!/bin/sh\nexit 0\n")
    exe.chmod(0o755 if executable else 0o644)
    return exe


def _fake_root(tmp_path: Path) -> Path:
    root = tmp_path / "home" / ".pyenv"
    for v in ("3.10.13", "3.6.15", "3.9.18", "3.13.0t", "2.7.18"):
        _fake_python(root, v)
    _fake_python(root, "3.8.18", executable=False)  # half-installed: not executable
    (root / "versions" / "3.7.16").mkdir()          # no bin/python at all
    (root / "versions" / "system").mkdir()
    return root


def test_found_oldest_first_only_executables(tmp_path: Path) -> None:
    root = _fake_root(tmp_path)
    found = pyenv_interpreters("3.*", root)
    assert [Path(p).parents[1].name for p in found] == ["3.6.15", "3.9.18", "3.10.13", "3.13.0t"]
    assert oldest_pyenv_python("3.6", root) == str(root / "versions/3.6.15/bin/python")
    assert oldest_pyenv_python("3.1", root) is None  # 3.10 is not 3.1
    assert oldest_pyenv_python("3.10", root) == str(root / "versions/3.10.13/bin/python")
    assert version_key("3.13.0t") == (3, 13, 0) and version_key("system") == ()


def test_missing_root_means_none(tmp_path: Path) -> None:
    assert pyenv_interpreters("3.*", tmp_path / "nowhere") == []
    assert oldest_pyenv_python("3.6", tmp_path / "nowhere") is None
    (tmp_path / "file").write_text("not a directory")
    assert pyenv_interpreters("3.*", tmp_path / "file") == []


def test_root_from_env_pyenv_command_or_home(tmp_path: Path) -> None:
    assert pyenv_root({"PYENV_ROOT": "/opt/pyenv", "HOME": "/home/x"}) == Path("/opt/pyenv")
    bindir = tmp_path / "bin"
    bindir.mkdir()
    fake = bindir / "pyenv"
    fake.write_text(f"#!/bin/sh\n[ \"$1\" = root ] && echo {tmp_path / 'from-cmd'}\n")
    fake.chmod(0o755)
    assert pyenv_root({"PATH": str(bindir), "HOME": "/home/x"}) == tmp_path / "from-cmd"
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "pyenv").write_text("#!/bin/sh\nexit 1\n")
    (broken / "pyenv").chmod(0o755)
    assert pyenv_root({"PATH": str(broken), "HOME": "/home/x"}) == Path("/home/x/.pyenv")
    assert pyenv_root({"PATH": str(tmp_path / "empty"), "HOME": "/home/x"}) == Path("/home/x/.pyenv")


_PROBE = textwrap.dedent("""\
    import json, os, sys
    from pathlib import Path
    sys.path.insert(0, sys.argv[1])
    root = Path(sys.argv[2])
    out = {}
    try:  # what the old lookup in tests/condor_hooks did at collection time
        out["pathlib_glob"] = [str(p) for p in root.glob("versions/3.6*/bin/python")]
    except OSError as exc:
        out["pathlib_glob"] = type(exc).__name__
    from jmtest.interpreters import oldest_pyenv_python, pyenv_interpreters
    os.environ["PYENV_ROOT"] = str(root)
    out["interpreters"] = pyenv_interpreters("3.*")
    out["oldest"] = oldest_pyenv_python("3.6")
    print(json.dumps(out))
""")


def _as_unprivileged(args: list[str]) -> list[str]:
    """Run ``args`` so that mode bits apply: as root, without the DAC-override capabilities."""
    if os.geteuid() != 0:
        return args
    caps = "-dac_override,-dac_read_search"
    return ["setpriv", f"--bounding-set={caps}", f"--inh-caps={caps}", *args]


@pytest.mark.parametrize("locked", ["home", "root"])
def test_unreadable_pyenv_root_means_none(tmp_path: Path, locked: str) -> None:
    root = _fake_root(tmp_path)
    target = root.parent if locked == "home" else root  # another user's home, or the root itself
    target.chmod(0)
    try:
        res = subprocess.run(_as_unprivileged([sys.executable, "-c", _PROBE, str(SUPPORT), str(root)]),
                             capture_output=True, text=True, timeout=60, cwd=str(tmp_path))
    finally:
        target.chmod(0o755)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    if locked == "home":
        # the precondition that made collection crash: the unreadable directory is really unreadable
        assert out["pathlib_glob"] == "PermissionError", out
    assert out["interpreters"] == [] and out["oldest"] is None, out
    # and readable again, the same root is found in full
    assert len(pyenv_interpreters("3.*", root)) == 4
