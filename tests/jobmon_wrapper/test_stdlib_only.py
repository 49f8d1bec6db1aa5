"""jobmon_wrapper/ imports only the standard library, parses as Python 3.6, and its
fault codes equal jobmon/faults.py's."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import jobmon_wrapper
from jobmon.faults import Fault
from jobmon_wrapper import faults as wfaults

PKG = Path(jobmon_wrapper.__file__).resolve().parent


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
        elif isinstance(node, ast.Call) and getattr(node.func, "id", None) == "__import__":
            names.add("__import__")
    return names


def test_only_stdlib_is_imported() -> None:
    assert sys.version_info >= (3, 10)
    allowed = set(sys.stdlib_module_names) | {"jobmon_wrapper"}
    offenders = {}
    for path in sorted(PKG.glob("*.py")):
        bad = _imports(path) - allowed
        if bad:
            offenders[path.name] = sorted(bad)
    assert offenders == {}
    assert len(list(PKG.glob("*.py"))) >= 10


def test_every_module_imports_from_the_zipapp(python_ends: str, wrapper_pyz: Path) -> None:
    """Parses and imports (typing at runtime included) under the oldest and newest Python."""
    code = ("import importlib, pkgutil, sys\nsys.path.insert(0, sys.argv[1])\n"
            "import jobmon_wrapper\nnames = sorted(m.name for m in "
            "pkgutil.iter_modules(jobmon_wrapper.__path__))\n"
            "for n in names:\n    importlib.import_module('jobmon_wrapper.' + n)\n"
            "print(' '.join(names))\n")
    out = subprocess.run([python_ends, "-c", code, str(wrapper_pyz)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, timeout=60)
    assert out.returncode == 0, out.stderr.decode()
    imported = set(out.stdout.decode().split())
    assert imported == {p.stem for p in PKG.glob("*.py")} - {"__init__"}


def test_fault_codes_equal_the_relays() -> None:
    assert wfaults.ALL
    for name, code in wfaults.ALL.items():
        assert Fault[name] == code, name
    for name in ("PATH_OUTSIDE_SANDBOX", "NO_SUCH_FILE", "NOT_A_DIRECTORY", "PERMISSION_DENIED",
                 "EXEC_FAILED", "SHELL_NOT_ALLOWED", "TIMEOUT", "NOT_REGISTERED"):
        assert getattr(wfaults, name) == Fault[name]
