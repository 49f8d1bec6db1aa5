"""The local starter (jobmon/pools/local_shepherd.py): whom a job runs as and what it cannot read.

As root the shepherd runs the job as another user (``--user``). As a normal
user it covers the relay's state directory in a private user and mount
namespace (``--hide``); that case is run here for real as ``nobody`` with the
system's python3 (the shepherd needs only the standard library).
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from jobmon.pools import local_shepherd

REPO = Path(__file__).resolve().parents[2]
NOBODY = pwd.getpwnam("nobody")


def test_command_line_parsing() -> None:
    assert local_shepherd.parse(["s", "i", "o", "e", "--", "true"]) == (["s", "i", "o", "e"], None, [], ["true"])
    assert local_shepherd.parse(["s", "i", "o", "e", "--user", "65534:65534", "--hide", "/a", "--hide", "/b",
                                 "--", "sh", "-c", "x"]) == (["s", "i", "o", "e"], (65534, 65534), ["/a", "/b"],
                                                            ["sh", "-c", "x"])
    for bad in (["s", "i", "o", "e"], ["s", "i", "--", "x"], ["s", "i", "o", "e", "--user", "x:y", "--", "x"],
                ["s", "i", "o", "e", "--what", "1", "--", "x"], ["s", "i", "o", "e", "--", ]):
        assert local_shepherd.parse(bad) is None


@pytest.fixture()
def shared_dir() -> Iterator[Path]:
    """A directory ``nobody`` can use (pytest's own tmp dirs are private to root)."""
    d = Path(tempfile.mkdtemp(prefix="jobmon-shepherd-test-"))
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def _own(path: Path, mode: int) -> None:
    os.chown(path, NOBODY.pw_uid, NOBODY.pw_gid)
    os.chmod(path, mode)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to become another user (CI runs as root)")
def test_as_a_normal_user_the_state_directory_is_covered(shared_dir: Path) -> None:
    python3 = shutil.which("python3", path="/usr/bin:/bin")
    assert python3, "the system's python3 (Debian's) runs the shepherd as nobody"
    state = shared_dir / "state"
    state.mkdir()
    (state / "secret").write_text("relay key\n")
    (state / "shepherd").mkdir()
    scratch = shared_dir / "scratch"
    scratch.mkdir()
    for path, mode in ((state, 0o700), (state / "secret", 0o600), (state / "shepherd", 0o700), (scratch, 0o700)):
        _own(path, mode)
    job = f"cat {state}/secret; echo rc=$?; ls {state} >/dev/null 2>&1 && echo listed || echo hidden; id -u"

    def run(*extra: str) -> tuple[dict[str, object], str]:
        status = state / "shepherd" / "1.0.json"
        cmd = ["setpriv", f"--reuid={NOBODY.pw_uid}", f"--regid={NOBODY.pw_gid}", "--clear-groups",
               python3, "-m", "jobmon.pools.local_shepherd", str(status), "/dev/null",
               str(scratch / "out"), str(scratch / "err"), *extra, "--", "/bin/sh", "-c", job]
        subprocess.run(cmd, cwd=str(scratch), env={"PYTHONPATH": str(REPO)}, check=True, timeout=60)
        return json.loads(status.read_text()), (scratch / "out").read_text()

    # the same user without the cover reads the state directory (as on a personal pool) ...
    result, out = run()
    assert result["returncode"] == 0 and "relay key" in out and "listed" in out
    (scratch / "out").unlink()
    # ... and with it cannot, while STATUS is still written into the covered directory
    result, out = run("--hide", str(state))
    assert result == {"hidden": True, "returncode": 0}, result
    assert "relay key" not in out and "rc=1" in out and "hidden" in out
    assert out.split()[-1] == str(NOBODY.pw_uid)  # the job's own uid, mapped to itself
    assert (state / "secret").read_text() == "relay key\n"  # only covered, never touched


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to become another user (CI runs as root)")
def test_as_root_the_job_runs_as_the_job_user_without_our_groups(shared_dir: Path) -> None:
    status = shared_dir / "status.json"
    out = shared_dir / "out"
    subprocess.run([sys.executable, "-m", "jobmon.pools.local_shepherd", str(status), "/dev/null", str(out),
                    str(shared_dir / "err"), "--user", f"{NOBODY.pw_uid}:{NOBODY.pw_gid}", "--",
                    "/bin/sh", "-c", "id -u; id -g; id -G; umask"], check=True, timeout=60, cwd=str(shared_dir))
    assert json.loads(status.read_text()) == {"returncode": 0}
    uid, gid, groups, umask = out.read_text().split()
    assert (int(uid), int(gid), groups) == (NOBODY.pw_uid, NOBODY.pw_gid, str(NOBODY.pw_gid))
    assert umask == "0022"


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to become another user (CI runs as root)")
def test_job_user_must_exist_and_not_be_root() -> None:
    from jobmon.errors import ConfigError
    from jobmon.pools.local_exec import job_user

    assert job_user().name == "nobody"  # type: ignore[union-attr]
    with pytest.raises(ConfigError, match="no such user"):
        job_user("no-such-user-here")
    with pytest.raises(ConfigError, match="not run jobs as root"):
        job_user("root")
