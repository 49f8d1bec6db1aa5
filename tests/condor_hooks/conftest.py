"""Run the execute-node programs the way HTCondor does, against a real TLS XML-RPC relay stand-in.

``recording(name)`` loads one recorded hook call (argv, env, stdin) from
shared/condor-fixtures/hooks; ``run_hook`` runs a program as a subprocess with
that stdin and environment, in a scratch directory made for the test;
``relay`` is a stdlib XML-RPC server over real TLS (certificates from the
``pki`` fixture) that records every ``jobmon.nodeReport`` with the caller's
Authorization header.
"""

from __future__ import annotations

import base64
import json
import shutil
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xmlrpc.server import SimpleXMLRPCRequestHandler, SimpleXMLRPCServer

import pytest

HOOKS_DIR = Path(__file__).resolve().parents[2] / "condor_hooks"
TOKEN = "jm1.eyJ0ZXN0Ijp0cnVlfQ.c2lnbmF0dXJl"


@dataclass
class Relay:
    url: str
    calls: list[tuple[str, Any, Any, str | None]] = field(default_factory=list)
    event: threading.Event = field(default_factory=threading.Event)


@pytest.fixture
def relay(pki: Any) -> Iterator[Relay]:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(pki.host.cert_path), str(pki.host.key_path))
    state: dict[str, Any] = {}

    class Handler(SimpleXMLRPCRequestHandler):
        rpc_paths = ("/clarens", "/RPC2")

        def decode_request_content(self, data: bytes) -> bytes | None:
            state["auth"] = self.headers.get("Authorization")
            return super().decode_request_content(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = SimpleXMLRPCServer(("127.0.0.1", 0), requestHandler=Handler, logRequests=False, allow_none=False)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    rec = Relay(url=f"https://localhost:{server.server_address[1]}/clarens")

    def node_report(job: str, report: dict[str, Any]) -> bool:
        rec.calls.append(("jobmon.nodeReport", job, report, state.get("auth")))
        rec.event.set()
        return True

    server.register_function(node_report, "jobmon.nodeReport")  # type: ignore[arg-type]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield rec
    finally:
        server.shutdown()
        server.server_close()


def recording(fixtures: Path, rel: str) -> dict[str, Any]:
    return json.loads((fixtures / "hooks" / rel).read_text())


def env_of(rec: dict[str, Any], scratch: Path, **extra: str) -> dict[str, str]:
    """The recorded environment, with the scratch paths pointing at the test's directory."""
    lines = rec["env"] if isinstance(rec["env"], list) else []
    env: dict[str, str] = {}
    old_scratch = None
    for line in lines:
        key, _, value = line.partition("=")
        if key == "_CONDOR_SCRATCH_DIR":
            old_scratch = value
        env[key] = value
    if old_scratch:
        env = {k: v.replace(old_scratch, str(scratch)) for k, v in env.items()}
    env.pop("_", None)
    env.update(extra)
    return env


def with_relay(stdin: str, url: str) -> str:
    out = []
    for line in stdin.splitlines():
        if line.startswith("JobMonRelay = "):
            line = f'JobMonRelay = "{url}"'
        out.append(line)
    return "\n".join(out) + "\n"


def run_hook(program: str, argv: list[str], stdin: str, env: dict[str, str], cwd: Path,
             python: str | None = None, hooks_dir: Path = HOOKS_DIR) -> subprocess.CompletedProcess[str]:
    cmd = [python or sys.executable, str(hooks_dir / program), *argv]
    return subprocess.run(cmd, input=stdin, capture_output=True, text=True, env=env, cwd=str(cwd), timeout=60)


@pytest.fixture
def scratch(tmp_path: Path) -> Path:
    d = tmp_path / "scratch"
    d.mkdir()
    return d


@pytest.fixture
def credential(scratch: Path) -> Path:
    cred = scratch / "jobmon.cred"
    cred.write_text(TOKEN + "\n")
    cred.chmod(0o644)  # as HTCondor's file transfer leaves it
    return cred


def basic_token(auth: str | None) -> str | None:
    if not auth or not auth.startswith("Basic "):
        return None
    user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
    assert user == "jobmon-job"
    return password


def install_flat(dest: Path) -> Path:
    """Copy the programs flat, the way INSTALL.md says, with the wrapper zipapp next to them."""
    from jobmon.wrapperzip import wrapper_path

    dest.mkdir(parents=True, exist_ok=True)
    for f in HOOKS_DIR.glob("*.py"):
        if f.name != "__init__.py":
            shutil.copy2(f, dest / f.name)
    shutil.copy2(wrapper_path(), dest / "jobmon-wrapper.pyz")
    return dest


@pytest.fixture(scope="session")
def hk() -> Any:
    """The helpers above, for the test modules (conftest is not importable under importlib mode)."""
    import types

    return types.SimpleNamespace(
        TOKEN=TOKEN, HOOKS_DIR=HOOKS_DIR, basic_token=basic_token, env_of=env_of, install_flat=install_flat,
        recording=recording, run_hook=run_hook, with_relay=with_relay,
    )
