"""Path confinement: '..', absolute paths and symlinks that lead out are fault 600."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from jobmon_wrapper.faults import PATH_OUTSIDE_SANDBOX, OpFault
from jobmon_wrapper.sandbox import Sandbox


@pytest.fixture
def box(tmp_path: Path) -> Sandbox:
    root = tmp_path / "scratch"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "f.txt").write_text("x")
    (tmp_path / "secret.txt").write_text("outside")
    os.symlink(str(tmp_path / "secret.txt"), str(root / "out_link"))
    os.symlink("/etc", str(root / "etc_link"))
    os.symlink("sub/f.txt", str(root / "in_link"))
    return Sandbox(str(root))


@pytest.mark.parametrize("path", [
    "..", "../secret.txt", "sub/../../secret.txt", "/etc/passwd", "/", "out_link",
    "etc_link/passwd", "etc_link",
])
def test_escapes_are_refused(box: Sandbox, path: str) -> None:
    with pytest.raises(OpFault) as info:
        box.resolve(path)
    assert info.value.code == PATH_OUTSIDE_SANDBOX
    assert path in info.value.message


@pytest.mark.parametrize("path,expected", [
    (".", "."), ("", "."), ("sub", "sub"), ("sub/f.txt", "sub/f.txt"),
    ("sub/../sub/f.txt", "sub/f.txt"), ("in_link", "sub/f.txt"), ("./sub//f.txt", "sub/f.txt"),
])
def test_paths_inside_resolve(box: Sandbox, path: str, expected: str) -> None:
    assert box.relative(box.resolve(path)) == expected


def test_absolute_path_inside_is_allowed(box: Sandbox) -> None:
    inside = os.path.join(box.root, "sub", "f.txt")
    assert box.resolve(inside) == inside


def test_link_itself_can_be_named_without_following(box: Sandbox) -> None:
    assert box.resolve("in_link", follow=False) == os.path.join(box.root, "in_link")
    assert box.resolve("out_link", follow=False) == os.path.join(box.root, "out_link")
