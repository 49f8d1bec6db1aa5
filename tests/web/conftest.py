"""A real relay core over a real LocalPool, and the pages served by aiohttp's test server.

The fast tests talk plain HTTP to ``aiohttp.test_utils.TestServer`` and sign in
the way a browser without a certificate does: a one-time login link minted by
the core (``core.web_logins``), redeemed at ``/login``, then the session
cookie. The browser tests (test_browser.py) run the whole relay over HTTPS.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from jobmon.pools.local import LocalPool
from relay.app import build_app
from relay.config import load_config
from relay.core import RelayCore
from relay.identity import Identity

T = TypeVar("T")

ALICE = "/DC=org/DC=example/O=Example/CN=Alice Smith"
BOB = "/DC=org/DC=example/O=Example/CN=Bob Jones"
ADMIN = "/DC=org/DC=example/O=Example/CN=Pool Admin"


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


@dataclass
class Env:
    """What a fast test needs: a LocalPool, relay settings, and ways to serve and wait."""

    root: Path
    pool: LocalPool
    overrides: dict[str, Any]
    alice: str = ALICE
    bob: str = BOB
    admin: str = ADMIN

    def serve(self, **overrides: Any) -> Any:
        return serve(self, **overrides)

    @staticmethod
    def ident(dn: str) -> Identity:
        return ident(dn)

    @staticmethod
    async def wait_for(pred: Callable[[], Any], timeout: float = 30.0, what: str = "condition") -> Any:
        return await wait_for(pred, timeout, what)


@pytest.fixture
def env(tmp_path: Path) -> Any:
    pool = LocalPool(tmp_path / "pool", slots=2, hostname="node01.example.org")
    overrides = {
        "listen": "127.0.0.1:8443",
        "state_dir": str(tmp_path / "relay"),
        "admins": [ADMIN],
        "public_url": "https://relay.example.org:8443/clarens",
        "submit_roots": [str(tmp_path)],  # the tests submit from their temp dirs
    }
    try:
        yield Env(tmp_path, pool, overrides)
    finally:
        pool.kill_all()
        pool.close()


@dataclass
class Web:
    client: TestClient
    core: RelayCore
    app: web.Application

    async def login(self, dn: str) -> str:
        """Sign in through a login link; returns the session cookie's value."""
        token, _ = self.core.web_logins.issue(dn)
        resp = await self.client.get(f"/login?token={token}", allow_redirects=False)
        assert resp.status == 303, await resp.text()
        morsel = resp.cookies["jobmon_session"]
        return morsel.value

    async def get(self, path: str, cookie: str | None = None, **kw: Any) -> tuple[int, str]:
        headers = {"Cookie": f"jobmon_session={cookie}"} if cookie else {}
        resp = await self.client.get(path, headers=headers, allow_redirects=False, **kw)
        return resp.status, await resp.text()

    async def csrf(self, cookie: str, path: str = "/") -> str:
        _, text = await self.get(path, cookie)
        m = re.search(r'name="csrf" value="([0-9a-f]+)"', text)
        assert m, "no CSRF token in the page"
        return m.group(1)

    async def post(self, path: str, cookie: str, data: Any) -> tuple[int, str, str]:
        resp = await self.client.post(path, data=data, headers={"Cookie": f"jobmon_session={cookie}"},
                                      allow_redirects=False)
        return resp.status, await resp.text(), resp.headers.get("Location", "")


@asynccontextmanager
async def serve(env: Env, **overrides: Any) -> AsyncIterator[Web]:
    config = load_config(None, {**env.overrides, **overrides})
    core = RelayCore(config, env.pool)
    app = build_app(core, config)  # the relay's own application; it calls relay.web.setup()
    assert any(r.resource is not None and r.resource.canonical == "/submit" for r in app.router.routes())
    client = TestClient(TestServer(app))
    await client.start_server()
    try:
        yield Web(client, core, app)
    finally:
        await client.close()
        await core.stop()


def ident(dn: str) -> Identity:
    return Identity(dn=dn, kind="certificate")


async def wait_for(pred: Callable[[], Any], timeout: float = 30.0, what: str = "condition") -> Any:
    """Await a condition the code under test reaches on its own (a job ending, ...)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = await pred() if asyncio.iscoroutinefunction(pred) else pred()
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


# ---------------------------------------------------------------- a whole relay over HTTPS

@dataclass
class LiveRelay:
    url: str            # https://localhost:PORT
    origin: str
    pool: LocalPool
    config: Any
    work: Path          # a directory on the relay host for test inputs
    artifacts: Path

    def rpc(self, cert: Any) -> Any:
        """A stock XML-RPC client with ``cert``'s certificate (a ``Cred`` from the pki fixture)."""
        import ssl
        import xmlrpc.client

        ctx = ssl.create_default_context(cafile=str(self.config.ca_file))
        ctx.load_cert_chain(str(cert.cert_path), str(cert.key_path))
        return xmlrpc.client.ServerProxy(self.url + "/clarens", context=ctx)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def live_relay(tmp_path_factory: pytest.TempPathFactory, pki: Any) -> Any:
    """The relay (``relay.server.run``) in a thread, HTTPS with the test CA, over a LocalPool."""
    import threading

    from relay.server import run as run_relay

    root = tmp_path_factory.mktemp("live")
    port = _free_port()
    url = f"https://localhost:{port}"
    pool = LocalPool(root / "pool", slots=4, hostname="node01.example.org")
    config = load_config(None, {
        "listen": f"127.0.0.1:{port}",
        "state_dir": str(root / "relay"),
        "host_cert": str(pki.host.cert_path),
        "host_key": str(pki.host.key_path),
        "ca_file": str(pki.ca_file),
        "admins": [pki.admin.dn],
        "public_url": f"{url}/clarens",
        "heartbeat": 1.0,
        "poll_wait": 5.0,
        "submit_roots": [str(root)],  # the tests submit from their temp dirs
    })
    loop = asyncio.new_event_loop()
    ready: asyncio.Future[Any] = loop.create_future()
    stop = asyncio.Event()
    failure: list[BaseException] = []
    started = threading.Event()
    ready.add_done_callback(lambda _: started.set())

    def main() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(run_relay(config, pool, ready, stop))
        except BaseException as exc:  # noqa: BLE001 - reported to the test below
            failure.append(exc)
            started.set()
        finally:
            loop.close()

    thread = threading.Thread(target=main, name="relay", daemon=True)
    thread.start()
    assert started.wait(60), "the relay did not start within 60 s"
    assert not failure, failure
    work = root / "work"
    work.mkdir()
    artifacts = Path(__file__).resolve().parents[1] / "artifacts"
    artifacts.mkdir(exist_ok=True)
    try:
        yield LiveRelay(url, url, pool, config, work, artifacts)
    finally:
        pool.kill_all()
        loop.call_soon_threadsafe(stop.set)
        thread.join(30)
        assert not failure, failure


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


@pytest.fixture(scope="module")
def chromium() -> Any:
    """Debian's chromium driven by Playwright (nothing downloaded)."""
    from playwright import sync_api  # a test dependency: missing means failing, not skipping
    assert Path(CHROMIUM).exists(), "Debian's chromium is missing: run tools/ensure-browser.sh (make pytest does)"
    pw = sync_api.sync_playwright().start()
    browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    try:
        yield browser
    finally:
        browser.close()
        pw.stop()
