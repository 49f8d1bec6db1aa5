"""Fixtures for the worker-side tests.

* ``python``: parametrized over every pyenv interpreter 3.x on this machine
  (``$(pyenv root)/versions/3.*/bin/python``, found by ``jmtest.interpreters``;
  none readable: the current interpreter).
* ``wrapper_pyz``: the zipapp built by ``jobmon.wrapperzip`` into a private cache.
* ``fake_relay``: a minimal XML-RPC relay over real TLS (certificates from the
  ``pki`` fixture) speaking the daemon side of docs/PROTOCOL.md, so the
  daemon's protocol can be driven without the real relay.
"""

from __future__ import annotations

import base64
import http.server
import itertools
import os
import queue
import socket
import socketserver
import ssl
import sys
import threading
import time
import xmlrpc.client
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from jmtest.interpreters import pyenv_interpreters

from jobmon import wrapperzip

TOKEN = "jm1.eyJ0ZXN0IjoxfQ.dGVzdC1tYWM"
MAX_BODY = 1 << 20


def interpreters() -> list[str]:
    # jmtest.interpreters never raises: a missing or unreadable pyenv root means "none"
    return pyenv_interpreters("3.*") or [sys.executable]


def interpreter_id(path: str) -> str:
    name = Path(path).parents[1].name
    return "py" + name if name[:1].isdigit() else "py-current"


def extreme_interpreters() -> list[str]:
    """The oldest and the newest interpreter (for the costlier daemon tests)."""
    found = interpreters()
    return sorted({found[0], found[-1]}, key=found.index)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "python" in metafunc.fixturenames:
        found = interpreters()
        metafunc.parametrize("python", found, ids=[interpreter_id(p) for p in found])
    if "python_ends" in metafunc.fixturenames:
        found = extreme_interpreters()
        metafunc.parametrize("python_ends", found, ids=[interpreter_id(p) for p in found])


@pytest.fixture(scope="session")
def wrapper_pyz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dest = tmp_path_factory.mktemp("wrapperzip") / "jobmon-wrapper.pyz"
    return wrapperzip.build(dest)


# --------------------------------------------------------------------------
# A minimal relay: register / poll / result / heartbeat / finish
# --------------------------------------------------------------------------
class FakeRelay:
    """Implements the daemon side of docs/PROTOCOL.md, records every call.

    ``mode``: "ok"; "garbage" (every answer is HTTP 200 with a non-XML body);
    "hang_finish" (finish is accepted but never answered); "old" (refuses the
    three-argument ``jobmon.poll`` that carries results). ``shutting_down.set()``
    makes every call but finish fault 998, as the real relay does while it stops.
    """

    def __init__(self, pki: Any, mode: str = "ok", poll_wait: float = 2.0,
                 heartbeat: float = 0.5, port: int = 0) -> None:
        self.mode = mode
        self.poll_wait = poll_wait
        self.heartbeat = heartbeat
        self.lock = threading.Lock()
        self.calls: list[tuple[str, tuple[Any, ...], str | None]] = []
        self.sessions: dict[str, str] = {}     # session -> job
        self.queues: dict[str, queue.Queue[dict[str, Any]]] = {}
        self.results: dict[str, Any] = {}
        self.result_events: dict[str, threading.Event] = {}
        self.registered = threading.Event()
        self.finished = threading.Event()
        self.heartbeats: list[dict[str, Any]] = []
        self.heartbeat_times: list[float] = []  # when each heartbeat arrived (time.monotonic())
        self.watched: bool | None = None        # announced in the register reply if set
        self.finals: list[dict[str, Any]] = []
        self.registers: list[dict[str, Any]] = []
        self.piggybacked: list[str] = []        # result ids that rode on a poll
        self.posted: list[str] = []             # result ids sent with jobmon.result
        self.conns: list[Any] = []              # open connections, cut by close()
        self.max_body: int | None = None        # announced in the register reply if set
        self.finish_faults = 0                  # this many finish calls fault 998 first
        self.drop_after_result = False          # close the connection after each result
        self.shutting_down = threading.Event()  # set: every daemon call but finish is 998
        self.peers: list[dict[str, str]] = []   # subjects of client certificates seen
        self._ids = itertools.count(1)
        self._stop = threading.Event()
        relay = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def setup(self) -> None:
                http.server.BaseHTTPRequestHandler.setup(self)
                with relay.lock:
                    relay.conns.append(self.connection)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                auth = self.headers.get("Authorization")
                peer = self.connection.getpeercert()
                if peer:
                    with relay.lock:
                        relay.peers.append(dict(x[0] for x in peer["subject"]))
                if relay.mode == "garbage":
                    with relay.lock:
                        relay.calls.append(("?", (), auth))
                    self._send(b"this is not XML-RPC \x00\xff")
                    return
                if len(body) > (relay.max_body or MAX_BODY):   # the real relay's cap: fault 101
                    fault = xmlrpc.client.Fault(101, "body too large")
                    self._send(xmlrpc.client.dumps(fault, methodresponse=True).encode())
                    return
                try:
                    params, method = xmlrpc.client.loads(body)
                    result = relay.dispatch(method or "", params, auth)
                    out = xmlrpc.client.dumps((result,), methodresponse=True)
                except xmlrpc.client.Fault as fault:
                    out = xmlrpc.client.dumps(fault, methodresponse=True)
                self._send(out.encode("utf-8"))
                if relay.drop_after_result and method == "jobmon.result":
                    # as a restarted relay or a proxy timing out idle connections does:
                    # the client learns it only when it next uses the connection
                    self.close_connection = True

            def _send(self, data: bytes) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/xml")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True
            allow_reuse_address = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # connections cut by close() (a "restart") are expected here

        self.server = Server(("127.0.0.1", port), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(pki.host.cert_path), str(pki.host.key_path))
        ctx.load_verify_locations(cafile=str(pki.ca_file))
        ctx.verify_mode = ssl.CERT_OPTIONAL
        self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.url = f"https://127.0.0.1:{self.port}/clarens"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    # -- server side -----------------------------------------------------
    def dispatch(self, method: str, params: tuple[Any, ...], auth: str | None) -> Any:
        with self.lock:
            self.calls.append((method, params, auth))
        expected = "Basic " + base64.b64encode(f"jobmon-job:{TOKEN}".encode()).decode()
        if auth != expected:
            raise xmlrpc.client.Fault(300, "no credential")
        if method == "jobmon.register":
            info = params[0]
            session = f"s{next(self._ids)}"
            with self.lock:
                for old, job in list(self.sessions.items()):
                    if job == info["job"]:
                        del self.sessions[old]
                self.sessions[session] = info["job"]
                self.queues.setdefault(info["job"], queue.Queue())
                self.registers.append(info)
            self.registered.set()
            reply = {"session": session, "poll_wait": self.poll_wait,
                     "heartbeat": self.heartbeat, "relay_version": "fake-1"}
            if self.max_body is not None:
                reply["max_body"] = self.max_body
            if self.watched is not None:
                reply["watched"], reply["watch_interval"] = self.watched, 1.0
            return reply
        if method == "jobmon.joblist":
            with self.lock:
                return [{"id": info["job"], "state": "running",
                         "connected": info["job"] in self.sessions.values(),
                         "cmd": " ".join(info["argv"])} for info in self.registers]
        if self.shutting_down.is_set() and method != "jobmon.finish":
            raise xmlrpc.client.Fault(998, "relay is shutting down")
        job = self._job(params[0])
        if method == "jobmon.poll":
            if len(params) > 2:
                if self.mode == "old":   # a relay from before results rode on the poll
                    raise xmlrpc.client.Fault(105, "jobmon.poll takes 2 arguments")
                for item in params[2]:
                    self._take_result(item["id"], item["result"], piggybacked=True)
            wait = min(float(params[1]), self.poll_wait)
            try:
                first = self.queues[job].get(timeout=wait)
            except queue.Empty:
                return []
            out = [first]
            while True:
                try:
                    out.append(self.queues[job].get_nowait())
                except queue.Empty:
                    return out
        if method == "jobmon.result":
            return self._take_result(params[1], params[2])
        if method == "jobmon.heartbeat":
            with self.lock:
                self.heartbeats.append(params[1])
                self.heartbeat_times.append(time.monotonic())
            return {}
        if method == "jobmon.finish":
            with self.lock:
                refuse = self.finish_faults > 0
                self.finish_faults -= 1
            if refuse:
                raise xmlrpc.client.Fault(998, "relay is shutting down")
            if self.mode == "hang_finish":
                self._stop.wait(60)
            with self.lock:
                self.finals.append(params[1])
            self.finished.set()
            return True
        raise xmlrpc.client.Fault(200, f"no method {method}")

    def _take_result(self, rid: str, result: Any, piggybacked: bool = False) -> bool:
        with self.lock:
            if rid not in self.result_events:
                return False
            self.results[rid] = result
            (self.piggybacked if piggybacked else self.posted).append(rid)
        self.result_events[rid].set()
        return True

    def _job(self, session: str) -> str:
        with self.lock:
            job = self.sessions.get(session)
        if job is None:
            raise xmlrpc.client.Fault(900, "session unknown: register again")
        return job

    # -- test side -------------------------------------------------------
    def submit(self, job: str, op: str, args: dict[str, Any] | None = None,
               timeout: float = 30.0) -> str:
        """Queue one request on the job's poll; returns its id."""
        rid = f"r{next(self._ids)}"
        with self.lock:
            self.result_events[rid] = threading.Event()
            q = self.queues.setdefault(job, queue.Queue())
        q.put({"id": rid, "op": op, "args": args or {}, "deadline": time.time() + timeout})
        return rid

    def request(self, job: str, op: str, args: dict[str, Any] | None = None,
                timeout: float = 30.0) -> Any:
        """Queue one request on the job's poll and wait for its result."""
        rid = self.submit(job, op, args, timeout)
        assert self.result_events[rid].wait(timeout), f"no result for {op} {args}"
        return self.results[rid]

    def forget_sessions(self) -> None:
        """What a relay restart looks like to a daemon: every session unknown."""
        with self.lock:
            self.sessions.clear()
            self.registered.clear()

    def start(self) -> FakeRelay:
        self.thread.start()
        return self

    def close(self) -> None:
        """Stop like a killed relay: no more connections, and the kept-alive ones cut."""
        self._stop.set()
        self.server.shutdown()
        self.server.server_close()
        with self.lock:
            conns, self.conns = self.conns, []
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            conn.close()


@pytest.fixture
def fake_relay(pki: Any) -> Iterator[FakeRelay]:
    relay = FakeRelay(pki).start()
    yield relay
    relay.close()


@pytest.fixture
def make_relay(pki: Any) -> Iterator[Callable[..., FakeRelay]]:
    """Start fake relays in a given mode (and port); all are closed after the test."""
    made: list[FakeRelay] = []

    def make(mode: str = "ok", port: int = 0) -> FakeRelay:
        relay = FakeRelay(pki, mode=mode, port=port).start()
        made.append(relay)
        return relay

    yield make
    for relay in made:
        relay.close()


@pytest.fixture
def relay_env(pki: Any, tmp_path: Path) -> dict[str, str]:
    """Environment for a wrapper talking to a fake relay (URL added by the test)."""
    cred = tmp_path / "jobmon.cred"
    cred.write_text(TOKEN + "\n")
    cred.chmod(0o600)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JOBMON_", "_CONDOR_"))}
    env["JOBMON_CREDENTIAL_FILE"] = str(cred)
    env["JOBMON_CA_FILE"] = str(pki.ca_file)
    env["JOBMON_JOB_ID"] = "42.0"
    return env
