"""Start a real relay for tests: ``start_relay(tmp_path, pki)`` → ``RelayProcess``.

API (kept simple for every test folder):

* ``start_relay(state_dir, pki=None, *, admins=(), config=None, slots=2, listen="127.0.0.1:0")``
  runs ``jobmon relay`` (embedded local pool) in a subprocess with its state in
  ``state_dir`` and waits until it accepts TLS connections. With the session
  ``pki`` fixture it serves ``pki.host`` and trusts ``pki.ca_file`` (so the test
  users ``pki.alice``, ``pki.bob``... are accepted) and ``pki.admin`` is an admin;
  without it the zero-setup local PKI of ``state_dir`` is used. ``config`` adds
  relay config keys (see relay/config.py), e.g. ``{"heartbeat": 1.0}``.
  The result has ``.url``, ``.port``, ``.state_dir``, ``.log_text()``, ``.stop()``
  (the relay only: local jobs keep running, as across a restart), ``.cleanup()``
  (stop and kill the jobs it left) and is a context manager (cleanup on exit). ``listen`` with a fixed port restarts a relay at
  the same address.
* ``jobmon(relay, cred, *args, timeout=60, cwd=None)`` runs the real ``jobmon``
  command as the user ``cred`` (a ``pki`` credential) against ``relay`` and
  returns the ``subprocess.CompletedProcess`` (text mode).
* ``client(relay, cred)`` is a ``jobmon.client.Client`` for direct calls.
* ``wait_for(pred, timeout=30, what=...)`` polls ``pred`` until it is truthy.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from jmtest.waiting import wait_for  # noqa: F401  (re-exported for the tests)

from jobmon.client import Client, make_ssl_context
from jobmon.demo import RelayProcess
from jobmon.demo import start_relay as _start

#: quick heartbeats so progress and liveness show up fast in tests
TEST_CONFIG = {"heartbeat": 1.0, "poll_wait": 10.0}


def start_relay(state_dir: Path, pki: Any = None, *, admins: Sequence[str] = (),
                config: Mapping[str, Any] | None = None, slots: int = 2,
                listen: str = "127.0.0.1:0", timeout: float = 60.0) -> RelayProcess:
    cfg: dict[str, Any] = dict(TEST_CONFIG)
    if pki is not None:
        cfg.update(host_cert=str(pki.host.cert_path), host_key=str(pki.host.key_path),
                   ca_file=str(pki.ca_file), admins=list(admins) or [pki.admin.dn])
    elif admins:
        cfg["admins"] = list(admins)
    if _relay_knows("submit_roots"):
        # tests submit from pytest's temporary directories, not from the home directory
        cfg["submit_roots"] = [tempfile.gettempdir()]
    cfg.update(config or {})
    return _start(Path(state_dir), config=cfg, slots=slots, listen=listen, env=test_env(),
                  timeout=timeout)


def _relay_knows(key: str) -> bool:
    import dataclasses

    from relay.config import RelayConfig

    return any(f.name == key for f in dataclasses.fields(RelayConfig))


def test_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for subprocesses: no grid credentials or relay leaking in from outside."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("X509_", "JOBMON_", "PYTEST_"))}
    env["JOBMON_NO_CONDOR_CONFIG"] = "1"
    env.update(extra or {})
    return env


def jobmon_command() -> list[str]:
    exe = Path(sys.executable).parent / "jobmon"
    if exe.exists():
        return [str(exe)]
    found = shutil.which("jobmon")
    return [found] if found else [sys.executable, "-m", "jobmon.cli.main"]


def jobmon(relay: RelayProcess | None, cred: Any, *args: str, timeout: float = 60.0,
           cwd: Path | None = None, state_dir: Path | None = None,
           ca_file: Path | None = None) -> subprocess.CompletedProcess[str]:
    cmd = jobmon_command()
    if state_dir is not None or relay is not None:
        cmd += ["--state-dir", str(state_dir or (relay.state_dir / "cli"))]  # type: ignore[union-attr]
    if relay is not None:
        cmd += ["--relay", relay.url]
    if cred is not None:
        cmd += ["--cert", str(cred.cert_path), "--key", str(cred.key_path)]
    if ca_file is not None:
        cmd += ["--ca-file", str(ca_file)]
    return subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=timeout,
                          cwd=cwd, env=test_env(), stdin=subprocess.DEVNULL)


def client(relay: RelayProcess, cred: Any, ca_file: Path, timeout: float = 60.0) -> Client:
    return Client(relay.url, make_ssl_context(cred.cert_path, cred.key_path, ca_file, None), timeout)


