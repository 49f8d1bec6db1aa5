#!/usr/bin/env python3
"""Simulated job daemons for benchmarks/relay_load.py: many real TLS connections per process.

Each simulated daemon does on the wire what jobmon_wrapper's daemon does: it
registers (a per-job credential as HTTP Basic, or a client certificate),
holds one long-poll, answers ``exec`` requests with their results riding on
its next poll, registers again on fault 900, and after a connection error or
fault 998 waits as the wrapper does (jobmon_wrapper/backoff.py: 0.5 s doubling
to 60 s, jitter between half and all of it) before it reconnects. A second
connection carries heartbeats (``--heartbeat``) and live progress
(``--watched``), as the wrapper's second connection does. It is written for
little CPU (a plain asyncio protocol, XML by template): on this 2-core machine
the simulators share the cores with the relay, and in a pool they would not.

Commands ``sleep S MARK`` take S seconds and post their result with
``jobmon.result`` on the second connection (as the wrapper does for a result
that is ready while its poll is open); every one run is appended to
``--markers`` (``job MARK request-id``), so the harness can see a command
run twice.

Output lines: ``READY`` once all registered; ``REREGISTERED <count> <epoch>``
each time all of them have registered again after losing their session.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import random
import re
import ssl
import time
import xmlrpc.client
from typing import Any

OK = {"exit_code": 0, "stdout": xmlrpc.client.Binary(b""), "stderr": xmlrpc.client.Binary(b""),
      "duration": 0.0, "truncated": False, "timed_out": False}
_FAULT = re.compile(rb"<name>faultCode</name>\s*<value><int>(-?\d+)</int>")
_SESSION = re.compile(rb"<name>session</name>\s*<value><string>([^<]+)</string>")
_ID = re.compile(rb"<name>id</name>\s*<value><string>([^<]+)</string>")
_OP = re.compile(rb"<name>op</name>\s*<value><string>([^<]+)</string>")


class Fault(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


class Conn(asyncio.Protocol):
    """One HTTP/1.1 keep-alive connection, one request at a time."""

    def __init__(self, head: bytes) -> None:
        self.head = head
        self.buf = b""
        self.fut: asyncio.Future[bytes] | None = None
        self.transport: Any = None
        self.closed = False

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buf += data
        end = self.buf.find(b"\r\n\r\n")
        if end < 0 or self.fut is None:
            return
        head = self.buf[:end].lower()  # HAProxy writes header names in lower case
        i = head.find(b"content-length:")
        if i < 0:
            self.transport.close()
            return
        length = int(head[i + 15 : head.index(b"\r\n", i) if b"\r\n" in head[i:] else end])
        if len(self.buf) < end + 4 + length:
            return
        body, self.buf = self.buf[end + 4 : end + 4 + length], self.buf[end + 4 + length :]
        fut, self.fut = self.fut, None
        if not fut.done():
            fut.set_result(body)

    def connection_lost(self, exc: BaseException | None) -> None:
        self.closed = True
        if self.fut is not None and not self.fut.done():
            self.fut.set_exception(ConnectionError("relay closed the connection"))

    async def call(self, body: bytes) -> bytes:
        if self.closed:
            raise ConnectionError("closed")
        self.fut = asyncio.get_running_loop().create_future()
        self.transport.write(self.head + b"%d\r\n\r\n" % len(body) + body)
        return await self.fut

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


def check(body: bytes) -> bytes:
    if b"<fault>" in body:
        m = _FAULT.search(body)
        raise Fault(int(m.group(1)) if m else 0)
    return body


class Backoff:
    """jobmon_wrapper/backoff.py's pacing."""

    def __init__(self) -> None:
        self.failures = 0

    def next(self) -> float:
        ceiling = min(60.0, 0.5 * (2 ** min(self.failures, 30)))
        self.failures += 1
        return random.uniform(ceiling / 2.0, ceiling)


class Sim:
    def __init__(self, a: argparse.Namespace) -> None:
        self.a = a
        host_port, _, path = a.url.removeprefix("https://").partition("/")
        self.host, _, port = host_port.rpartition(":")
        self.port = int(port)
        self.ctx = ssl.create_default_context(cafile=a.ca)
        self.ctx.check_hostname = False
        if a.auth == "certificate":
            self.ctx.load_cert_chain(a.cert, a.key)
        auth = b""
        if a.auth == "credential":
            auth = b"Authorization: Basic " + base64.b64encode(b"jobmon-job:" + a.token.encode()) + b"\r\n"
        self.head = (b"POST /" + path.encode() + b" HTTP/1.1\r\nHost: relay\r\nContent-Type: text/xml\r\n"
                     + auth + b"Content-Length: ")
        ok_item = xmlrpc.client.dumps(({"id": "@ID@", "result": OK},), methodresponse=True)
        self.item = ok_item[ok_item.index("<value><struct>"): ok_item.rindex("</value>") + 8]
        self.registered = 0
        self.again: set[int] = set()
        self.lost = 0
        self.sem = asyncio.Semaphore(50)  # concurrent handshakes while first connecting
        self.markers = open(a.markers, "a", buffering=1) if a.markers else None

    async def connect(self) -> Conn:
        loop = asyncio.get_running_loop()
        _, conn = await loop.create_connection(lambda: Conn(self.head), self.host, self.port, ssl=self.ctx,
                                               server_hostname="localhost")
        return conn

    def poll_body(self, session: str, outbox: list[str]) -> bytes:
        items = "".join(self.item.replace("@ID@", rid) for rid in outbox)
        return (f"<?xml version='1.0'?>\n<methodCall>\n<methodName>jobmon.poll</methodName>\n<params>\n"
                f"<param>\n<value><string>{session}</string></value>\n</param>\n<param>\n"
                f"<value><double>{self.a.poll_wait}</double></value>\n</param>\n<param>\n<value><array><data>\n"
                f"{items}</data></array></value>\n</param>\n</params>\n</methodCall>\n").encode()

    async def daemon(self, i: int) -> None:
        job = f"{self.a.cluster}.{i}"
        info = xmlrpc.client.dumps(({"job": job, "host": "sim", "sandbox": "/scratch", "pid": 1000 + i,
                                     "user": "bench", "capabilities": ["exec"]},), "jobmon.register").encode()
        conn: Conn | None = None
        session: str | None = None
        outbox: list[str] = []
        backoff = Backoff()
        first = True
        side: list[Any] = [None, None]  # the second connection, the session it serves
        while True:
            try:
                if conn is None or conn.closed:
                    if first:
                        async with self.sem:
                            conn = await self.connect()
                    else:
                        conn = await self.connect()
                if session is None:
                    body = check(await conn.call(info))
                    m = _SESSION.search(body)
                    assert m is not None, body[:200]
                    session = m.group(1).decode()
                    self.note_registered(i, first)
                    first = False
                    if i < self.a.watched or self.a.heartbeat:
                        side[1] = session
                        if side[0] is None:
                            side[0] = asyncio.ensure_future(self.second(i, side))
                asked = time.monotonic()
                body = check(await asyncio.wait_for(conn.call(self.poll_body(session, outbox)),
                                                    self.a.poll_wait + 30))
                outbox = []
                backoff.failures = 0
                if b"<string>" in body:
                    self.serve(job, session, body, outbox)
                elif time.monotonic() - asked < 0.5:  # the wrapper's MIN_EMPTY_POLL
                    await asyncio.sleep(0.5)
            except Fault as f:
                if f.code == 900:
                    session = None
                    self.lost += 1
                    continue
                await asyncio.sleep(backoff.next())
            except (OSError, ConnectionError, asyncio.TimeoutError):
                if conn is not None:
                    conn.close()
                conn = None
                await asyncio.sleep(backoff.next())

    def serve(self, job: str, session: str, body: bytes, outbox: list[str]) -> None:
        if b"<string>sleep</string>" in body:
            for req in xmlrpc.client.loads(body)[0][0]:
                if req["op"] == "exec" and req["args"]["argv"][0] == "sleep":
                    asyncio.ensure_future(self.slow(job, session, req))
                elif req["op"] == "exec":
                    outbox.append(req["id"])
            return
        for rid, op in zip(_ID.findall(body), _OP.findall(body)):
            if op == b"exec":
                outbox.append(rid.decode())

    async def slow(self, job: str, session: str, req: dict[str, Any]) -> None:
        argv = req["args"]["argv"]
        if self.markers is not None:
            self.markers.write(f"{job} {argv[2] if len(argv) > 2 else '-'} {req['id']}\n")
        await asyncio.sleep(float(argv[1]))
        body = xmlrpc.client.dumps((session, req["id"], OK), "jobmon.result").encode()
        for _attempt in range(3):  # as the wrapper: once more on a fresh connection
            try:
                conn = await self.connect()
                try:
                    await conn.call(body)
                finally:
                    conn.close()
                return
            except (OSError, ConnectionError):
                await asyncio.sleep(0.5)

    async def second(self, i: int, side: list[Any]) -> None:
        """The wrapper's second connection: heartbeats every --heartbeat s, progress every
        --push-interval s while watched."""
        watched = i < self.a.watched
        interval = self.a.push_interval if watched else self.a.heartbeat
        await asyncio.sleep(random.uniform(0, interval))
        done = 0.0
        conn: Conn | None = None
        while True:
            done += 1.0
            body = xmlrpc.client.dumps((side[1], {"time": time.time(), "progress": {"done": done, "total": 1e6}}),
                                       "jobmon.heartbeat").encode()
            try:
                if conn is None or conn.closed:
                    conn = await self.connect()
                check(await conn.call(body))
            except (Fault, OSError, ConnectionError):
                conn = None
            await asyncio.sleep(interval)

    def note_registered(self, i: int, first: bool) -> None:
        if first:
            self.registered += 1
            if self.registered == self.a.count:
                print("READY", flush=True)
            return
        self.again.add(i)
        if len(self.again) == self.a.count:
            self.again.clear()
            print(f"REREGISTERED {self.a.count} {time.time():.3f}", flush=True)

    async def run(self) -> None:
        await asyncio.gather(*(self.daemon(i) for i in range(self.a.start, self.a.start + self.a.count)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--url", required=True)
    ap.add_argument("--ca", required=True)
    ap.add_argument("--auth", choices=("credential", "certificate"), default="credential")
    ap.add_argument("--token", default="")
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--cluster", type=int, default=1000)
    ap.add_argument("--start", type=int, default=0)
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--poll-wait", type=float, default=50.0)
    ap.add_argument("--watched", type=int, default=0)
    ap.add_argument("--push-interval", type=float, default=1.0)
    ap.add_argument("--heartbeat", type=float, default=0.0, help="seconds between heartbeats (0: none)")
    ap.add_argument("--markers", help="append 'job mark request-id' for every sleep command run")
    asyncio.run(Sim(ap.parse_args()).run())


if __name__ == "__main__":
    main()
