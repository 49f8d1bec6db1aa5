"""Users' commands reach daemons over their open long-poll; ownership, credentials, limits, audit."""

from __future__ import annotations

import threading
import xmlrpc.client
from typing import Any

import pytest


def fault(call: Any, *args: Any) -> tuple[int, str]:
    with pytest.raises(xmlrpc.client.Fault) as info:
        call(*args)
    return info.value.faultCode, info.value.faultString


@pytest.fixture
def site(relay_factory: Any, fake_pool: Any, pki: Any) -> Any:
    r = relay_factory(admins=[pki.admin.dn])
    fake_pool.add(5, 0, owner_dn=pki.alice.dn)
    fake_pool.add(5, 1, owner_dn=pki.alice.dn)
    fake_pool.add(5, 2, owner_dn=pki.alice.dn)
    fake_pool.add(6, 0, status=1, owner_dn=pki.alice.dn)   # waiting: no daemon yet
    fake_pool.add(7, 0, status=4, owner_dn=pki.alice.dn, ExitCode=3, ExitBySignal=False,
                  CompletionDate=1763700100)
    return r


def credential(r: Any, pki: Any, cluster: int | None = None) -> str:
    opts = {} if cluster is None else {"cluster": cluster}
    token: str = r.client(pki.alice).jobmon.issueCredential(opts)["token"]
    return token


def test_exec_reaches_the_daemon_and_audit_records_it(site: Any, pki: Any, kit: Any) -> None:
    d = kit.SimDaemon(site, "5.0", token=credential(site, pki)).start()
    try:
        alice = site.client(pki.alice)
        res = alice.jobmon.exec("5.0", ["ls", "-l", "a b"], {"timeout": 5})
        assert res["exit_code"] == 0 and res["stdout"].data == b"ls -l a b"
        assert d.seen[-1]["op"] == "exec" and d.seen[-1]["args"]["argv"] == ["ls", "-l", "a b"]
        assert d.seen[-1]["args"]["shell"] is False
        st = alice.jobmon.status("5.0")
        assert st["connected"] is True and st["state"] == "running" and st["host"] == "node01.example.org"
        assert st["owner_dn"] == pki.alice.dn
        read = alice.jobmon.read("5.0", "@stdout", 5.0, 100.0, 0.0)
        assert read["data"].data == b"one\nline two\n"
        assert alice.jobmon.listdir("5.0", ".")["entries"][0]["name"] == "out.txt"
        assert alice.jobmon.ps("5.0")["processes"][0]["cmdline"] == "payload"
        assert fault(alice.jobmon.stat, "5.0", "/etc/passwd")[0] == 600
        rows = site.client(pki.admin).jobmon.audit({"job": "5.0"})
        execs = [r for r in rows if r["method"] == "jobmon.exec"]
        assert execs and execs[-1]["argv"] == ["ls", "-l", "a b"] and execs[-1]["exit_status"] == 0
        assert execs[-1]["bytes"] == len(b"ls -l a b") and execs[-1]["allowed"] is True
    finally:
        d.stop()


def test_only_owner_and_admin_may_act(site: Any, pki: Any, kit: Any) -> None:
    d = kit.SimDaemon(site, "5.0", token=credential(site, pki)).start()
    try:
        code, msg = fault(site.client(pki.bob).jobmon.exec, "5.0", ["ls"])
        assert code == 401 and "5.0" in msg
        assert site.client(pki.admin).jobmon.exec("5.0", ["id"])["stdout"].data == b"id"
        assert site.client(pki.bob).jobmon.joblist({}) == []
        assert [j["id"] for j in site.client(pki.admin).jobmon.joblist({"all": True})] == \
            ["5.0", "5.1", "5.2", "6.0", "7.0"]  # 7.0: ended, from the pool's history
        rows = site.client(pki.admin).jobmon.audit({"user": pki.bob.dn})
        assert rows[-1]["allowed"] is False and rows[-1]["job"] == "5.0"
    finally:
        d.stop()


def test_job_states_without_a_daemon(site: Any, pki: Any) -> None:
    alice = site.client(pki.alice)
    assert fault(alice.jobmon.exec, "99.0", ["ls"])[0] == 500
    assert fault(alice.jobmon.exec, "6.0", ["ls"])[0] == 501
    assert fault(alice.jobmon.exec, "7.0", ["ls"])[0] == 502
    assert alice.jobmon.status("6.0")["state"] == "waiting"
    st = alice.jobmon.status("7.0")
    assert st["state"] == "finished" and st["exit_code"] == 3 and st["connected"] is False
    assert fault(site.client(pki.bob).jobmon.status, "6.0")[0] == 401


def test_credentials_bind_to_one_cluster(site: Any, pki: Any, kit: Any) -> None:
    token = credential(site, pki)
    d = kit.SimDaemon(site, "5.0", token=token).start()
    d.stop()
    other = kit.SimDaemon(site, "6.0", token=token)
    code, msg = fault(other.register, other.proxy())
    assert code == 302 and "cluster 5" in msg
    code, _ = fault(kit.SimDaemon(site, "5.0", token=token[:-3] + "xyz").register,
                    kit.SimDaemon(site, "5.0", token=token[:-3] + "xyz").proxy())
    assert code == 302
    scoped = credential(site, pki, cluster=6)
    wrong = kit.SimDaemon(site, "5.1", token=scoped)
    assert fault(wrong.register, wrong.proxy())[0] == 302
    # a job credential may not call user methods
    code, msg = fault(kit.SimDaemon(site, "6.0", token=scoped).proxy().jobmon.joblist, {})
    assert code == 400 and "per-job credential" in msg


def test_daemon_with_someone_elses_proxy_is_refused(site: Any, pki: Any, kit: Any) -> None:
    d = kit.SimDaemon(site, "5.1", cred=pki.bob)
    assert fault(d.register, d.proxy())[0] == 401
    ok = kit.SimDaemon(site, "5.1", cred=pki.alice_proxy).start()
    try:
        assert site.client(pki.alice).jobmon.exec("5.1", ["true"])["exit_code"] == 0
    finally:
        ok.stop()


def test_fanout_to_a_cluster(site: Any, pki: Any, kit: Any) -> None:
    token = credential(site, pki, cluster=5)
    daemons = [kit.SimDaemon(site, f"5.{p}", token=token).start() for p in range(3)]
    try:
        alice = site.client(pki.alice)
        started = alice.jobmon.execMany({"cluster": 5}, ["hostname"], {})
        assert started["jobs"] == ["5.0", "5.1", "5.2"]
        got: dict[str, Any] = {}
        done = False
        while not done:
            reply = alice.jobmon.batchResults(started["batch"], 10.0)
            got.update({r["job"]: r for r in reply["results"]})
            done = reply["done"]
        assert sorted(got) == ["5.0", "5.1", "5.2"]
        assert all(r["result"]["stdout"].data == b"hostname" for r in got.values())
        listed = alice.jobmon.execMany({"jobs": ["5.0", "99.0"]}, ["x"], {})
        reply = alice.jobmon.batchResults(listed["batch"], 10.0)
        while not reply["done"]:
            more = alice.jobmon.batchResults(listed["batch"], 10.0)
            reply = {"results": reply["results"] + more["results"], "done": more["done"]}
        faults = {r["job"]: r.get("fault") for r in reply["results"]}
        assert faults == {"5.0": None, "99.0": 500}
        assert fault(site.client(pki.bob).jobmon.batchResults, started["batch"], 0.0)[0] == 401
    finally:
        for d in daemons:
            d.stop()


def test_timeout_and_concurrency_limits_are_faults(relay_factory: Any, fake_pool: Any, pki: Any, kit: Any) -> None:
    r = relay_factory(max_commands_per_job=1)
    fake_pool.add(8, 0, owner_dn=pki.alice.dn)
    release = threading.Event()

    def slow(op: str, args: dict[str, Any]) -> Any:
        if args.get("argv") == ["hang"]:
            release.wait(30)
            return None  # never answers
        return kit.exec_echo(op, args)

    token = r.client(pki.alice).jobmon.issueCredential({})["token"]
    d = kit.SimDaemon(r, "8.0", token=token, handler=slow).start()
    try:
        hung: list[Any] = []
        t = threading.Thread(target=lambda: hung.append(
            fault(r.client(pki.alice).jobmon.exec, "8.0", ["hang"], {"timeout": 0.5})))
        t.start()
        while not d.seen:
            release.wait(0.05)
        code, msg = fault(r.client(pki.alice).jobmon.exec, "8.0", ["ls"])
        assert code == 702 and "limit 1" in msg
        release.set()
        t.join(30)
        assert hung and hung[0][0] == 700
    finally:
        release.set()
        d.stop()


def test_rate_limit_is_a_fault(relay_factory: Any, pki: Any) -> None:
    r = relay_factory(rate_per_second=0.5, rate_burst=3)
    c = r.client(pki.alice)
    for _ in range(3):
        c.jobmon.whoami()
    code, msg = fault(c.jobmon.whoami)
    assert code == 701 and "retry in" in msg
    assert r.client(pki.bob).jobmon.whoami()["dn"] == pki.bob.dn  # per caller


def test_shell_needs_site_permission(site: Any, pki: Any) -> None:
    assert fault(site.client(pki.alice).jobmon.exec, "5.0", ["ls; rm -rf ~"], {"shell": True})[0] == 605


def test_pool_actions_and_nodes(site: Any, fake_pool: Any, pki: Any) -> None:
    alice = site.client(pki.alice)
    assert alice.jobmon.hold("5", "checking")["jobs"] == ["5.0", "5.1", "5.2"]
    assert fake_pool.acted[-1] == ("hold", "ClusterId == 5", "checking")
    assert fault(site.client(pki.bob).jobmon.remove, "6.0", "mine now")[0] == 401
    assert fault(alice.jobmon.nodes)[0] == 400
    admin = site.client(pki.admin)
    assert admin.jobmon.nodes()[0]["name"] == "node01.example.org"
    assert "drain" in admin.jobmon.nodeAction("node01.example.org", "drain")["message"]
    assert fault(admin.jobmon.nodeAction, "node99", "drain")[0] == 802


def test_results_riding_on_the_next_poll(site: Any, pki: Any, kit: Any) -> None:
    d = kit.SimDaemon(site, "5.2", token=credential(site, pki), piggyback=True).start()
    try:
        alice = site.client(pki.alice)
        for word in ("one", "two"):
            assert alice.jobmon.exec("5.2", ["echo", word])["stdout"].data == f"echo {word}".encode()
        bad = site.client(None, basic=("jobmon-job", d.token))
        assert fault(bad.jobmon.poll, d.session, 0.0, [{"nope": 1}])[0] == 201
    finally:
        d.stop()
