"""The relay's JobMon.* methods and TCP wake-up server, driven over real TLS and real sockets by a
daemon made of a stock XML-RPC client and a raw socket (the 2005 daemon's exchange, step by step)."""

from __future__ import annotations

import concurrent.futures
import socket
import time
import xmlrpc.client
from typing import Any

import pytest
from jmtest.waiting import wait_for

from relay import legacy_hub
from relay import legacy_wire as wire

ON = {"enabled": True, "tcp_listen": "127.0.0.1:0"}


class Wire:
    """One 2005-style daemon: calls with the job owner's proxy, wake-ups on a raw TCP socket."""

    def __init__(self, relay: Any, cred: Any, job: str) -> None:
        self.relay, self.job = relay, job
        self.rpc = relay.client(cred, proxy=True)
        self.settings: dict[str, str] = {}
        self.socks: list[socket.socket] = []

    def register(self) -> list[Any]:
        reply = self.rpc.JobMon.registerJob(self.job, "wn1.example.org", 4444, 4242)
        if reply[0] == 0:
            self.settings = wire.parse_settings(reply[1])
        return reply

    def connect(self, source: str = "127.0.0.1", hello: bytes = b"register") -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", int(self.settings["JobMon_tcpserver_port"])),
                                        timeout=10, source_address=(source, 0))
        sock.sendall(hello)
        self.socks.append(sock)
        return sock

    def wakeup(self, sock: socket.socket, timeout: float = 10.0) -> str:
        sock.settimeout(timeout)
        msg = sock.recv(1024).decode()
        words = dict(w.split("=", 1) for w in msg.split(" "))
        assert words["jobname"] == self.job, msg
        return words["fifo_usercommand"]

    def close(self) -> None:
        for s in self.socks:
            s.close()


def silent(sock: socket.socket, seconds: float) -> bool:
    """Nothing arrives on ``sock`` for ``seconds`` (and it stays open)."""
    sock.settimeout(seconds)
    try:
        return sock.recv(1024) == b"x"   # any data or EOF is a failure
    except socket.timeout:
        return True


def closed_by_peer(sock: socket.socket, timeout: float = 5.0) -> bool:
    sock.settimeout(timeout)
    try:
        return sock.recv(1024) == b""
    except ConnectionResetError:
        return True


def refused(d: Wire, timeout: float, **connect: Any) -> bool:
    """A further wake-up connection is closed or reset by the relay, whenever the reset lands:
    during connect, while sending the hello, or on the first read."""
    try:
        sock = d.connect(**connect)
    except (ConnectionResetError, BrokenPipeError):
        return True
    return closed_by_peer(sock, timeout)


def user_exec(relay: Any, cred: Any, job: str, argv: list[str], timeout: float = 20.0) -> concurrent.futures.Future:
    pool = concurrent.futures.ThreadPoolExecutor(1)
    fut = pool.submit(lambda: relay.client(cred).jobmon.exec(job, argv, {"timeout": timeout}))
    pool.shutdown(wait=False)
    return fut


def fault_of(call: Any) -> tuple[int, str]:
    with pytest.raises(xmlrpc.client.Fault) as info:
        call()
    return info.value.faultCode, info.value.faultString


def test_a_relay_without_legacy_says_so(relay: Any, pki: Any) -> None:
    rpc = relay.client(pki.alice_proxy, proxy=True)
    status, text = rpc.JobMon.registerJob("analysis-7", "wn1", 4444, 4242)
    assert status == 1 and "[legacy] enabled = true" in text
    assert rpc.JobMon.getJobToDo("jm0123456789abcdef0123.fo") == [0, ""]


def test_tcp_round_trip_refusals_audit_and_unregister(relay_factory: Any, fake_pool: Any, pki: Any) -> None:
    fake_pool.add(41, 0, owner_dn=pki.alice.dn)
    relay = relay_factory(legacy=ON, admins=[pki.admin.dn])
    d = Wire(relay, pki.alice_proxy, "41.0")
    status, text = d.register()
    assert status == 0 and text.startswith("registered 41.0 ")
    assert d.settings["JobMon_wakeup_method"] == "TCPbroadcast"
    assert d.settings["JobMon_tcpserver_hostname"] == "127.0.0.1"
    assert d.settings["JobMon_reconnect_time"] == "300"
    sock = d.connect()
    alice = relay.client(pki.alice)
    st = alice.jobmon.status("41.0")
    assert st["connected"] is True and st["daemon"] == "legacy" and st["host"] == "wn1.example.org"
    assert [j["daemon"] for j in alice.jobmon.joblist() if j["id"] == "41.0"] == ["legacy"]

    fut = user_exec(relay, pki.alice, "41.0", ["ls", "-l", "my file; rm -rf ~"])
    name = d.wakeup(sock)
    assert wire.is_request_name(name)
    assert relay.client(pki.bob).JobMon.getJobToDo(name) == [0, ""]     # not his registration
    status, line = d.rpc.JobMon.getJobToDo(name)
    assert status == 0 and line == "ls -l 'my file; rm -rf ~' 2>&1 | head -c 196608"
    assert d.rpc.JobMon.getJobToDo(name) == [0, ""]                     # handed out once
    assert d.rpc.JobMon.outputJobResult(name.replace(".fo", ".fi"), "total 0\n") == [0, "result accepted"]
    res = fut.result(20)
    assert res["exit_code"] == 0 and res["stdout"].data == b"total 0\n" and res["truncated"] is False
    assert d.rpc.JobMon.outputJobResult(name.replace(".fo", ".fi"), "late") == [1, "no command waits for this result"]

    # refused by the relay before any wake-up: a clear fault, nothing sent to the daemon
    code, msg = fault_of(lambda: alice.jobmon.exec("41.0", ["rm", "-rf", "."], {"timeout": 5}))
    assert code == 604 and "runs only ls, cat, tail, head, du and ps; 'rm' refused" in msg
    code, msg = fault_of(lambda: alice.jobmon.ps("41.0"))
    assert code == 604 and "jobmon exec 41.0 -- ps" in msg
    code, msg = fault_of(lambda: alice.jobmon.exec("41.0", ["tail", "-f", "log"], {"timeout": 5}))
    assert code == 604 and "never ends" in msg
    assert silent(sock, 0.3)
    code, _ = fault_of(lambda: relay.client(pki.bob).jobmon.exec("41.0", ["ls"], {"timeout": 5}))
    assert code == 401                                                    # same ownership rules

    audit = relay.client(pki.admin).jobmon.audit({"job": "41.0"})
    methods = [(r["method"], r.get("argv")) for r in audit]
    assert ("JobMon.getJobToDo", ["ls", "-l", "my file; rm -rf ~"]) in methods
    assert ("jobmon.exec", ["ls", "-l", "my file; rm -rf ~"]) in methods
    assert ("jobmon.exec", ["rm", "-rf", "."]) in methods                 # refusals are audited too

    assert d.rpc.JobMon.unregisterJob("41.0", "wn1.example.org", 4444, 4242) == [0, "job 41.0 unregistered"]
    assert alice.jobmon.status("41.0")["connected"] is False
    assert silent(sock, 0.3)            # left open: the 2005 daemon spins on a closed connection
    d.close()


def test_ownership_rules_apply_to_registration(relay_factory: Any, fake_pool: Any, pki: Any) -> None:
    fake_pool.add(31, 0, owner_dn=pki.bob.dn)
    relay = relay_factory(legacy=ON)
    status, text = Wire(relay, pki.alice_proxy, "31.0").register()
    assert status == 401 and "belongs to" in text and text.isascii()
    status, text = Wire(relay, pki.alice_proxy, "bad=name").register()
    assert status == 201 and "without spaces, '='" in text
    d = Wire(relay, pki.alice_proxy, "mine")
    assert d.register()[0] == 0
    assert relay.client(pki.bob, proxy=False).JobMon.unregisterJob("mine", "h", 1, 1)[0] == 900
    assert relay.client(pki.alice).jobmon.status("mine")["connected"] is True


def test_reregistration_keeps_the_job_and_moves_its_wakeups(relay_factory: Any, fake_pool: Any, pki: Any) -> None:
    fake_pool.add(42, 0, owner_dn=pki.alice.dn)
    relay = relay_factory(legacy=ON)
    d = Wire(relay, pki.alice_proxy, "42.0")
    d.register()
    old = d.connect()
    wait_for(lambda: relay.client(pki.alice).jobmon.status("42.0")["connected"], what="registration")
    time.sleep(legacy_hub.SETTLE)
    fut = user_exec(relay, pki.alice, "42.0", ["du", "-s", "."])
    name = d.wakeup(old)      # sent; say the daemon had not read it when it registered again
    d.register()              # every reconnect_time, before it opens a new connection
    new = d.connect()
    old.close()
    assert d.wakeup(new) == name                  # sent again where the daemon now listens
    assert d.rpc.JobMon.getJobToDo(name)[1].startswith("du -s . 2>&1")
    d.rpc.JobMon.outputJobResult(name.replace(".fo", ".fi"), "20\t.\n")
    assert fut.result(20)["stdout"].data == b"20\t.\n"
    fut = user_exec(relay, pki.alice, "42.0", ["cat", "x"])
    assert d.wakeup(new) != name
    assert relay.client(pki.alice).jobmon.status("42.0")["connected"] is True
    new.close()                # the daemon went away: disconnected at once, its command fails
    wait_for(lambda: not relay.client(pki.alice).jobmon.status("42.0")["connected"], what="disconnect")
    assert fault_of(lambda: fut.result(20))[0] == 501


def test_strangers_learn_nothing_and_races_wake_nobody(relay_factory: Any, pki: Any) -> None:
    relay = relay_factory(legacy=dict(ON, hello_timeout=1.0))
    d = Wire(relay, pki.alice_proxy, "race")
    d.register()
    assert refused(d, 2.0, source="127.0.0.2")         # no registration from there
    assert refused(d, 2.0, hello=b"GET / HTTP/1.0\r\n\r\n")
    quiet = d.connect(hello=b"")
    assert closed_by_peer(quiet, 5.0)                                  # said nothing in hello_timeout
    first = d.connect()
    second = d.connect()                                               # a second claim right away
    fut = user_exec(relay, pki.alice, "race", ["ls"], timeout=2.0)
    assert silent(first, 2.5) and silent(second, 0.1)                 # nobody gets the wake-up
    assert fault_of(lambda: fut.result(20))[0] == 700
    d.register()                                                       # the next registration pairs again
    third = d.connect()
    fut = user_exec(relay, pki.alice, "race", ["ls"])
    d.rpc.JobMon.getJobToDo(name := d.wakeup(third))
    d.rpc.JobMon.outputJobResult(name.replace(".fo", ".fi"), "ok\n")
    assert fut.result(20)["stdout"].data == b"ok\n"
    d.close()


def test_connection_limits_and_reset_on_stop(relay_factory: Any, pki: Any) -> None:
    relay = relay_factory(legacy=dict(ON, max_connections_per_host=1))
    d = Wire(relay, pki.alice_proxy, "limits")
    d.register()
    held = d.connect()
    assert refused(d, 2.0)                                              # over the per-host limit
    wait_for(lambda: relay.client(pki.alice).jobmon.status("limits")["connected"], what="registration")
    relay.stop()
    held.settimeout(10)
    with pytest.raises(ConnectionResetError):   # a reset, never an end-of-file the 2005 daemon spins on
        held.recv(1024)
    d.close()


def test_a_daemon_without_wakeup_connection_gets_a_clear_fault(relay_factory: Any, pki: Any,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(legacy_hub, "PAIR_WINDOW", 0.3)
    relay = relay_factory(legacy=ON)
    d = Wire(relay, pki.alice_proxy, "firewalled")
    d.register()
    time.sleep(0.5)
    code, msg = fault_of(lambda: relay.client(pki.alice).jobmon.exec("firewalled", ["ls"], {"timeout": 5}))
    assert code == 501 and f"reach 127.0.0.1:{d.settings['JobMon_tcpserver_port']}" in msg


def test_two_daemons_on_one_worker_get_their_own_wakeups(relay_factory: Any, pki: Any) -> None:
    """Registrations from one address are answered one at a time, so each connection pairs right."""
    relay = relay_factory(legacy=ON)
    a, b = Wire(relay, pki.alice_proxy, "job-a"), Wire(relay, pki.alice_proxy, "job-b")
    assert a.register()[0] == 0
    pool = concurrent.futures.ThreadPoolExecutor(1)
    b_registered = pool.submit(b.register)
    time.sleep(0.5)
    assert not b_registered.done()              # held until job-a's connection has come
    sock_a = a.connect()
    assert b_registered.result(10)[0] == 0
    sock_b = b.connect()
    pool.shutdown()
    fut_b = user_exec(relay, pki.alice, "job-b", ["ls"])
    fut_a = user_exec(relay, pki.alice, "job-a", ["ps"])
    for d, sock, fut, text in ((b, sock_b, fut_b, "b\n"), (a, sock_a, fut_a, "a\n")):
        name = d.wakeup(sock)                    # asserts the message names this daemon's job
        d.rpc.JobMon.getJobToDo(name)
        d.rpc.JobMon.outputJobResult(name.replace(".fo", ".fi"), text)
        assert fut.result(20)["stdout"].data == text.encode()
    a.close()
    b.close()
