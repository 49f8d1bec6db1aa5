"""Fixtures for the relay tests: a real relay over real TLS in a background thread,
stock ``xmlrpc.client`` clients with test certificates, and a fake pool that
answers like the recorded HTCondor ads."""

from __future__ import annotations

import asyncio
import ssl
import threading
import urllib.parse
import xmlrpc.client
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import classad2
import pytest

from jobmon.pools.base import JobAction, NodeAction, NodeInfo, Pool, SubmitResult
from relay import server
from relay.config import RelayConfig, load_config
from relay.core import RelayCore


class FakePool(Pool):
    """In-memory pool with ads shaped like shared/condor-fixtures (ClusterId, ProcId, JobStatus...)."""

    kind = "fake"

    def __init__(self) -> None:
        self.ads: list[classad2.ClassAd] = []
        self.acted: list[tuple[str, str, str | None]] = []
        self.lock = threading.Lock()

    @property
    def address(self) -> str:
        return "fake pool"

    def add(self, cluster: int, proc: int, status: int = 2, owner_dn: str | None = None, **extra: Any) -> None:
        ad = classad2.ClassAd({"ClusterId": cluster, "ProcId": proc, "JobStatus": status, "Owner": "alice",
                               "QDate": 1763700000, "Cmd": "/usr/bin/jobmon-wrapper", "Iwd": "/home/alice"})
        if owner_dn:
            ad["JobMonOwnerDN"] = owner_dn
            ad["JobMonEnabled"] = True
        for k, v in extra.items():
            ad[k] = v
        with self.lock:
            self.ads.append(ad)

    def _match(self, constraint: str) -> list[classad2.ClassAd]:
        expr = classad2.ExprTree(constraint)
        with self.lock:
            return [ad for ad in self.ads if expr.eval(ad) is True]

    def submit(self, submit: Any, *, iwd: str, owner_dn: str | None = None, count: int | None = None) -> SubmitResult:
        cluster = 100 + len(self.ads)
        self.add(cluster, 0, status=1, owner_dn=owner_dn, Iwd=iwd)
        return SubmitResult(cluster, (0,))

    def query(self, constraint: str = "true", projection: Sequence[str] = ()) -> list[classad2.ClassAd]:
        return [ad for ad in self._match(constraint) if ad.get("JobStatus") not in (3, 4)]

    def history(self, constraint: str = "true", projection: Sequence[str] = (), match: int = -1) -> list[classad2.ClassAd]:
        ads = [ad for ad in self._match(constraint) if ad.get("JobStatus") in (3, 4)]
        return ads if match < 0 else ads[:match]

    def act(self, action: JobAction, constraint: str, reason: str | None = None) -> int:
        hits = self._match(constraint)
        self.acted.append((action.value, constraint, reason))
        for ad in hits:
            ad["JobStatus"] = {"remove": 3, "hold": 5, "release": 1}[action.value]
        return len(hits)

    def nodes(self) -> list[NodeInfo]:
        return [NodeInfo("node01.example.org", "up", "Busy", 4, 1, 0.5, ("1.0",), True, False)]

    def node_action(self, node: str, action: NodeAction) -> str:
        return f"{action.value} sent to {node}"


@dataclass
class Relay:
    core: RelayCore
    config: RelayConfig
    port: int
    loop: asyncio.AbstractEventLoop
    thread: threading.Thread
    stop_event: asyncio.Event
    pool: FakePool | None
    ca_file: Path
    clients: list[Any] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}/clarens"

    def ssl_context(self, cred: Any = None, proxy: bool = False) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.ca_file))
        if cred is not None:
            if proxy:
                ctx.load_cert_chain(str(cred.proxy_path))
            else:
                ctx.load_cert_chain(str(cred.cert_path), str(cred.key_path))
        return ctx

    def client(self, cred: Any = None, *, proxy: bool = False, basic: tuple[str, str] | None = None,
               path: str = "/clarens") -> xmlrpc.client.ServerProxy:
        auth = ""
        if basic is not None:
            auth = f"{urllib.parse.quote(basic[0], safe='')}:{urllib.parse.quote(basic[1], safe='')}@"
        url = f"https://{auth}127.0.0.1:{self.port}{path}"
        sp = xmlrpc.client.ServerProxy(url, context=self.ssl_context(cred, proxy))
        self.clients.append(sp)
        return sp

    def run(self, coro: Any, timeout: float = 30.0) -> Any:
        """Run a coroutine on the relay's loop (for inspecting the core)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        if self.thread.is_alive():
            self.loop.call_soon_threadsafe(self.stop_event.set)
            self.thread.join(30)


def start_relay(pki: Any, state: Path, pool: FakePool | None, **overrides: Any) -> Relay:
    values: dict[str, Any] = {
        "listen": "127.0.0.1:0", "state_dir": str(state), "host_cert": str(pki.host.cert_path),
        "host_key": str(pki.host.key_path), "ca_file": str(pki.ca_file), "poll_wait": 5.0,
        "command_timeout": 10.0,
    }
    values.update(overrides)
    config = load_config(None, values)
    loop = asyncio.new_event_loop()
    ready: asyncio.Future[Any] = loop.create_future()
    stop = asyncio.Event()

    def main() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(server.run(config, pool, ready=ready, stop=stop))
        loop.close()

    thread = threading.Thread(target=main, name="relay", daemon=True)
    thread.start()
    _host, port, core = asyncio.run_coroutine_threadsafe(_wait(ready), loop).result(30)
    return Relay(core, config, port, loop, thread, stop, pool, pki.ca_file)


async def _wait(fut: asyncio.Future[Any]) -> Any:
    return await fut


@pytest.fixture
def fake_pool() -> FakePool:
    return FakePool()


@pytest.fixture
def relay(pki: Any, tmp_path: Path, fake_pool: FakePool) -> Iterator[Relay]:
    r = start_relay(pki, tmp_path / "state", fake_pool)
    yield r
    r.stop()


@pytest.fixture
def relay_factory(pki: Any, tmp_path: Path, fake_pool: FakePool) -> Iterator[Any]:
    made: list[Relay] = []

    def make(state: str = "state", **overrides: Any) -> Relay:
        r = start_relay(pki, tmp_path / state, fake_pool, **overrides)
        made.append(r)
        return r

    yield make
    for r in made:
        r.stop()


def exec_echo(op: str, args: dict[str, Any]) -> dict[str, Any] | None:
    """Default daemon behaviour: exec echoes its argv, read serves a fixed text."""
    if op == "exec":
        out = " ".join(args["argv"]).encode()
        return {"exit_code": 0, "stdout": xmlrpc.client.Binary(out), "stderr": xmlrpc.client.Binary(b""),
                "duration": 0.01, "truncated": False, "timed_out": False}
    if op == "read":
        data = b"line one\nline two\n"
        off = int(args.get("offset", 0))
        chunk = data[off:]
        return {"data": xmlrpc.client.Binary(chunk), "offset": float(off), "next_offset": float(len(data)),
                "size": float(len(data)), "eof": True, "path": args["path"]}
    if op == "list":
        return {"path": args.get("path", "."), "entries": [{"name": "out.txt", "type": "file", "size": 3.0,
                                                             "mtime": 1.0, "mode": 0o644}]}
    if op == "stat":
        if args["path"].startswith("/"):
            return {"fault": 600, "message": f"{args['path']} is outside the sandbox"}
        return {"path": args["path"], "type": "file", "size": 3.0, "mtime": 1.0, "mode": 0o644}
    if op == "ps":
        return {"processes": [{"pid": 1, "ppid": 0, "state": "S", "cpu_percent": 0.0, "rss_kb": 10,
                               "elapsed": 1.0, "cmdline": "payload"}]}
    return None


class SimDaemon:
    """A job daemon made of plain xmlrpc.client calls in a thread (the protocol's daemon side)."""

    def __init__(self, relay: Relay, job: str, *, token: str | None = None, cred: Any = None,
                 handler: Any = exec_echo, max_wait: float = 5.0, piggyback: bool = False) -> None:
        self.relay, self.job, self.token, self.cred = relay, job, token, cred
        self.handler = handler
        self.piggyback = piggyback  # results ride on the next poll instead of jobmon.result
        self.outbox: list[dict[str, Any]] = []
        self.max_wait = max_wait
        self.session: str | None = None
        self.stopping = threading.Event()
        self.registered = threading.Event()
        self.seen: list[dict[str, Any]] = []
        self.errors: list[BaseException] = []
        self.reconnects = 0
        self.tracebacks: list[str] = []
        self.thread = threading.Thread(target=self._run, name=f"daemon-{job}", daemon=True)

    def proxy(self) -> Any:
        basic = ("jobmon-job", self.token) if self.token else None
        return self.relay.client(self.cred, proxy=self.cred is not None, basic=basic)

    def register(self, rpc: Any) -> None:
        reply = rpc.jobmon.register({"job": self.job, "host": "node01.example.org", "sandbox": "/scratch/x",
                                     "pid": 4242, "wrapper_pid": 4241, "wrapper_version": "test",
                                     "start_time": 1763700000.0, "argv": ["payload", "--n", "3"],
                                     "user": "alice", "python": "3.11", "capabilities": ["exec", "read", "watch"]})
        self.session = reply["session"]
        self.registered.set()

    def start(self) -> SimDaemon:
        self.thread.start()
        assert self.registered.wait(20), f"daemon {self.job} did not register: {self.errors}"
        return self

    def _run(self) -> None:
        poll_rpc, result_rpc = self.proxy(), self.proxy()
        try:
            self.register(poll_rpc)
            while not self.stopping.is_set():
                try:
                    if self.piggyback:
                        outbox, self.outbox = self.outbox, []
                        requests = poll_rpc.jobmon.poll(self.session, self.max_wait, outbox)
                    else:
                        requests = poll_rpc.jobmon.poll(self.session, self.max_wait)
                except xmlrpc.client.Fault as f:
                    if f.faultCode == 900 and not self.stopping.is_set():
                        self.registered.clear()
                        self.register(poll_rpc)
                        continue
                    if f.faultCode != 998:
                        raise
                    if self.stopping.wait(0.2):  # relay stopping: retry shortly
                        return
                    continue  # (not the previous poll's requests again)
                except OSError:
                    if self.stopping.wait(0.2):  # relay gone: reconnect after a short delay, as daemons do
                        return
                    poll_rpc, result_rpc = self.proxy(), self.proxy()
                    self.reconnects += 1
                    continue
                for req in requests:
                    self.seen.append(req)
                    res = self.handler(req["op"], req["args"])
                    if res is not None and self.piggyback:
                        self.outbox.append({"id": req["id"], "result": res})
                    elif res is not None:
                        try:
                            result_rpc.jobmon.result(self.session, req["id"], res)
                        except xmlrpc.client.Fault as f:
                            if f.faultCode not in (900, 998):  # session gone: the next poll re-registers
                                raise
                        except OSError:
                            # a kept-alive connection to a relay that restarted: retry once, fresh
                            result_rpc = self.proxy()
                            try:
                                result_rpc.jobmon.result(self.session, req["id"], res)
                            except (OSError, xmlrpc.client.Fault):
                                result_rpc = self.proxy()  # relay really gone: the result goes with it
        except (OSError, xmlrpc.client.Error) as exc:
            if not self.stopping.is_set():
                import traceback

                self.errors.append(exc)
                self.tracebacks.append(traceback.format_exc())

    def stop(self) -> None:
        self.stopping.set()
        reg = self.relay.core.registry
        daemon = reg.by_session.get(self.session or "")
        if daemon is not None and not self.relay.loop.is_closed():
            self.relay.loop.call_soon_threadsafe(reg.unregister, daemon)  # the daemon leaves: poll ends now
        self.thread.join(15)


@dataclass(frozen=True)
class Kit:
    SimDaemon: type[SimDaemon]
    exec_echo: Any


@pytest.fixture
def kit() -> Kit:
    """The daemon simulator for tests (conftest modules are not importable under importlib mode)."""
    return Kit(SimDaemon, exec_echo)
