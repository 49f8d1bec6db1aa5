"""The pages through aiohttp's test server: a real RelayCore over a real LocalPool.

Browsers without certificates sign in with a one-time login link; that is
how these tests sign in too (``Web.login``), so the cookie path is exercised
on every request.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from pathlib import Path
from typing import Any

import aiohttp

import relay.web.submit as submit_mod
from relay.web.context import CTX_KEY

SLEEP_JOB = "executable = /bin/sleep\narguments = 300\nqueue\n"


async def _submit(w: Any, env: Any, dn: str, text: str = SLEEP_JOB, before: dict[str, bytes] | None = None) -> str:
    """Submit ``text`` from a fresh iwd holding the files ``before`` (name -> content)."""
    iwd = env.root / f"iwd-{len(list(env.root.glob('iwd-*')))}"
    iwd.mkdir()
    for name, content in (before or {}).items():
        (iwd / name).write_bytes(content)
        old = time.time() - 3600  # there well before the job: the relay tells them apart by mtime
        os.utime(iwd / name, (old, old))
    res = await w.core.submit(env.ident(dn), text, {"iwd": str(iwd)})
    return f"{res['cluster']}.{res['procs'][0]}"


def status_of(env: Any, job: str) -> Any:
    return env.pool.query(f"ClusterId == {job.split('.')[0]}")[0]["JobStatus"]


def _rows(html: str) -> list[str]:
    return re.findall(r'<tr data-job="([0-9.]+)"', html)


def test_without_credentials_the_pages_say_how_to_sign_in(env: Any) -> None:
    async def main() -> None:
        async with env.serve() as w:
            for path in ("/", "/nodes", "/submit", "/jobs/1.0"):
                status, text = await w.get(path)
                assert status == 401, path
                assert "jobmon web" in text
            status, _ = await w.get("/", cookie="not-a-session")
            assert status == 401

    asyncio.run(main())


def test_login_link_works_once_and_sets_a_strict_session_cookie(env: Any) -> None:
    async def main() -> None:
        async with env.serve() as w:
            token, _ = w.core.web_logins.issue(env.alice)
            resp = await w.client.get(f"/login?token={token}", allow_redirects=False)
            assert resp.status == 303 and resp.headers["Location"] == "/"
            cookie = resp.headers["Set-Cookie"]
            assert cookie.startswith("jobmon_session=")
            for flag in ("HttpOnly", "Secure", "SameSite=Strict", "Path=/"):
                assert flag.lower() in cookie.lower(), flag
            value = resp.cookies["jobmon_session"].value
            again = await w.client.get(f"/login?token={token}", allow_redirects=False)
            assert again.status == 403 and "does not work" in await again.text()
            status, text = await w.get("/", value)
            assert status == 200 and env.alice in text and "Log out" in text

    asyncio.run(main())


def test_logout_ends_the_session(env: Any) -> None:
    async def main() -> None:
        async with env.serve() as w:
            cookie = await w.login(env.alice)
            csrf = await w.csrf(cookie)
            status, text, _ = await w.post("/logout", cookie, {"csrf": csrf})
            assert status == 200 and "Signed out" in text
            status, _ = await w.get("/", cookie)
            assert status == 401

    asyncio.run(main())


def test_users_see_only_their_jobs_and_admins_see_all(env: Any) -> None:
    async def main() -> None:
        async with env.serve() as w:
            a = await _submit(w, env, env.alice)
            b = await _submit(w, env, env.bob)
            alice = await w.login(env.alice)
            _, text = await w.get("/", alice)
            assert _rows(text) == [a]
            status, text = await w.get(f"/jobs/{b}", alice)
            assert status == 403 and "may not act on job" in text
            status, _ = await w.get(f"/jobs/{a}", alice)
            assert status == 200
            status, _ = await w.get("/jobs/999.0", alice)
            assert status == 404
            admin = await w.login(env.admin)
            _, text = await w.get("/", admin)
            assert _rows(text) == []
            _, text = await w.get("/?all=1", admin)
            assert sorted(_rows(text)) == sorted([a, b])
            _, text = await w.get("/?all=1", alice)  # not an admin: the flag is ignored
            assert _rows(text) == [a]

    asyncio.run(main())


def test_hold_and_release_need_csrf_and_confirmation(env: Any) -> None:
    async def main() -> None:
        async with env.serve() as w:
            job = await _submit(w, env, env.alice)
            alice = await w.login(env.alice)
            bob = await w.login(env.bob)
            csrf = await w.csrf(alice, f"/jobs/{job}")

            status, text, _ = await w.post(f"/jobs/{job}/hold", alice, {"confirm": "yes"})
            assert status == 403 and "form expired" in text
            status, text, _ = await w.post(f"/jobs/{job}/hold", bob, {"csrf": csrf, "confirm": "yes"})
            assert status == 403  # alice's token is no good in bob's session
            status, text, _ = await w.post(f"/jobs/{job}/hold", alice, {"csrf": csrf})
            assert status == 200 and 'name="confirm" value="yes"' in text and "Hold job" in text
            assert status_of(env, job) != 5

            status, _, location = await w.post(f"/jobs/{job}/hold", alice, {"csrf": csrf, "confirm": "yes"})
            assert status == 303 and location == f"/jobs/{job}?done=held"
            await env.wait_for(lambda: status_of(env, job) == 5, what="the hold")
            _, text = await w.get("/?state=held", alice)
            assert _rows(text) == [job]
            _, text = await w.get("/?state=running", alice)
            assert _rows(text) == []
            _, text = await w.get(location, alice)
            assert "Job held." in text and "Release" in text

            status, _, location = await w.post(f"/jobs/{job}/release", alice, {"csrf": csrf, "confirm": "yes"})
            assert status == 303
            await env.wait_for(lambda: status_of(env, job) in (1, 2), what="the release")

    asyncio.run(main())


def test_nodes_page_is_for_admins_and_drains_a_node(env: Any) -> None:
    async def main() -> None:
        async with env.serve() as w:
            alice = await w.login(env.alice)
            status, text = await w.get("/nodes", alice)
            assert status == 403 and "pool administrators" in text
            assert 'href="/nodes"' not in text
            csrf = await w.csrf(alice)
            status, _, _ = await w.post("/nodes/node01.example.org/drain", alice, {"csrf": csrf, "confirm": "yes"})
            assert status == 403
            assert env.pool.nodes()[0].state == "up"

            admin = await w.login(env.admin)
            status, text = await w.get("/nodes", admin)
            assert status == 200 and "node01.example.org" in text
            assert "running jobs finish; no new jobs start" in text
            csrf = await w.csrf(admin, "/nodes")
            status, _, location = await w.post("/nodes/node01.example.org/drain", admin,
                                               {"csrf": csrf, "confirm": "yes"})
            assert status == 303 and location.startswith("/nodes?")
            assert env.pool.nodes()[0].state in ("draining", "drained")
            _, text = await w.get(location, admin)
            assert "Draining node01.example.org" in text
            status, _, location = await w.post("/nodes/no-such-node/undrain", admin, {"csrf": csrf})
            _, text = await w.get(location, admin)
            assert "failed" in text and "no-such-node" in text
            status, _, _ = await w.post("/nodes/node01.example.org/undrain", admin, {"csrf": csrf})
            assert status == 303 and env.pool.nodes()[0].state == "up"

    asyncio.run(main())


def _form(csrf: str, fields: dict[str, str], files: dict[str, tuple[str, bytes]] | None = None) -> aiohttp.FormData:
    form = aiohttp.FormData()
    form.add_field("csrf", csrf)
    for k, v in fields.items():
        form.add_field(k, v)
    for k, (name, data) in (files or {}).items():
        form.add_field(k, data, filename=name, content_type="application/octet-stream")
    return form


def _events_fields(work: Path, **over: str) -> dict[str, str]:
    fields = {
        "template": "events", "executable": str(work / "proc.sh"), "output_events": "out.events",
        "calibration_file": str(work / "calib.txt"), "control_file": str(work / "control.txt"),
        "n_events": "10", "priority": "3", "notify_user": "alice@example.org", "do": "submit",
    }
    fields.update(over)
    return fields


def _inputs(env: Any) -> Path:
    work = env.root / "work"
    work.mkdir(exist_ok=True)
    (work / "proc.sh").write_text("#!/bin/sh\nexit 0\n")
    (work / "proc.sh").chmod(0o755)
    (work / "calib.txt").write_text("gain 1\n")
    (work / "control.txt").write_text("mode fast\n")
    return work


def test_bad_submit_input_is_shown_next_to_the_field_and_nothing_is_queued(env: Any, monkeypatch: Any) -> None:
    monkeypatch.setattr(submit_mod, "MAX_UPLOAD", 1024)

    async def main() -> None:
        async with env.serve() as w:
            work = _inputs(env)
            alice = await w.login(env.alice)
            csrf = await w.csrf(alice, "/submit")
            form = _form(csrf, _events_fields(work, priority="-4", n_events=""),
                         {"input_events__upload": ("big.events", b"x" * 2048)})
            status, text, _ = await w.post("/submit", alice, form)
            assert status == 422
            assert "nothing was submitted" in text
            errors = dict(re.findall(r'data-error="(\w+)">([^<]*)<', text))
            assert "between 0 and 20" in errors["priority"]
            assert "required" in errors["n_events"]
            assert "too big" in errors["input_events"]
            assert f'value="{work / "calib.txt"}"' in text  # what was typed is kept
            form = _form(csrf, _events_fields(work, notify_user="not-an-address"),
                         {"input_events__upload": ("ok.events", b"e\n")})
            status, text, _ = await w.post("/submit", alice, form)
            assert status == 422
            assert "not a mail address" in dict(re.findall(r'data-error="(\w+)">([^<]*)<', text))["notify_user"]
            form = _form(csrf, _events_fields(work), {"input_events__upload": ("my run.events", b"e\n")})
            status, text, _ = await w.post("/submit", alice, form)
            assert status == 422 and "no spaces" in text
            assert env.pool.query("true") == []

    asyncio.run(main())


def test_preview_shows_the_description_without_submitting(env: Any) -> None:
    async def main() -> None:
        async with env.serve() as w:
            work = _inputs(env)
            alice = await w.login(env.alice)
            csrf = await w.csrf(alice, "/submit")
            form = _form(csrf, _events_fields(work, do="preview"), {"input_events__upload": ("run.events", b"e\n")})
            status, text, _ = await w.post("/submit", alice, form)
            assert status == 200
            desc = re.search(r"<pre class=\"desc\" data-description>(.*?)</pre>", text, re.S)
            assert desc is not None
            assert "--input run.events" in desc.group(1) and "priority                = 3" in desc.group(1)
            assert "+JobMonOwnerDN" in desc.group(1) and "Alice Smith" in desc.group(1)
            assert 'data-reupload="input_events"' in text
            assert env.pool.query("true") == []

    asyncio.run(main())


def test_submit_queues_the_job_and_lands_on_its_page(env: Any) -> None:
    async def main() -> None:
        async with env.serve() as w:
            work = _inputs(env)
            alice = await w.login(env.alice)
            csrf = await w.csrf(alice, "/submit")
            big = b"e1\ne2\n" + b"x" * (3 * 1024 * 1024)  # larger than the relay's XML-RPC body cap
            form = _form(csrf, _events_fields(work), {"input_events__upload": ("run.events", big)})
            status, text, location = await w.post("/submit", alice, form)
            assert status == 303, text
            assert re.fullmatch(r"/jobs/\d+\.0", location)
            job = location.rsplit("/", 1)[1]
            ad = env.pool.query(f"ClusterId == {job.split('.')[0]}")[0]
            assert ad["JobMonOwnerDN"] == env.alice
            assert ad.get("JobMonCredentialId")
            iwd = Path(str(ad["Iwd"]))
            assert (iwd / "run.events").read_bytes() == big
            assert (iwd / "jobmon.cred").read_text().startswith("jm1.")
            status, text = await w.get(location, alice)
            assert status == 200 and f"Job <span class=\"mono\">{job}</span>" in text

    asyncio.run(main())


def test_finished_job_links_its_returned_files(env: Any) -> None:
    job_text = ("executable = /bin/sh\narguments = \"-c 'echo to-stdout; echo hello > result.txt; exit 3'\"\n"
                "output = job.out\nshould_transfer_files = YES\nqueue\n")

    async def main() -> None:
        async with env.serve() as w:
            # a file that was in iwd before the job ran is the submitter's, not the job's output
            job = await _submit(w, env, env.alice, job_text, before={"secret.txt": b"not an output\n"})
            cluster = job.split(".")[0]
            await env.wait_for(lambda: env.pool.history(f"ClusterId == {cluster}")
                               or [a for a in env.pool.query(f"ClusterId == {cluster}") if a["JobStatus"] == 4],
                               what="the job to finish")
            alice = await w.login(env.alice)
            status, text = await w.get(f"/jobs/{job}", alice)
            assert status == 200
            assert "exit code 3" in text
            assert f'href="/jobs/{job}/files/result.txt"' in text
            assert f'href="/jobs/{job}/files/job.out"' in text
            assert "secret.txt" not in text
            assert "to-stdout" in text and "returned job.out" in text  # the output panel after the end
            assert "Hold" not in text and "Remove" not in text
            resp = await w.client.get(f"/jobs/{job}/files/result.txt",
                                      headers={"Cookie": f"jobmon_session={alice}"})
            assert resp.status == 200 and await resp.read() == b"hello\n"
            assert "attachment" in resp.headers["Content-Disposition"]
            resp = await w.client.get(f"/jobs/{job}/files/job.out", headers={"Cookie": f"jobmon_session={alice}"})
            assert resp.status == 200 and await resp.read() == b"to-stdout\n"
            status, text = await w.get(f"/jobs/{job}?file=secret.txt", alice)
            assert status == 200 and "not an output" not in text  # nor shown in the output panel
            for bad in ("..%2F..%2Fetc%2Fpasswd", "jobmon.cred", "nothing.txt", "secret.txt"):
                status, _ = await w.get(f"/jobs/{job}/files/{bad}", alice)
                assert status == 404, bad
            bob = await w.login(env.bob)
            status, _ = await w.get(f"/jobs/{job}/files/result.txt", bob)
            assert status == 403

    asyncio.run(main())


def test_console_on_a_job_without_daemon_says_why(env: Any) -> None:
    async def main() -> None:
        async with env.serve() as w:
            job = await _submit(w, env, env.alice)
            alice = await w.login(env.alice)
            csrf = await w.csrf(alice, f"/jobs/{job}")
            resp = await w.client.post(f"/jobs/{job}/exec", data={"csrf": csrf, "command": "ls -l"},
                                       headers={"Cookie": f"jobmon_session={alice}",
                                                "Accept": "text/html-fragment"})
            text = await resp.text()
            assert resp.status == 200 and "not connected" in text and "fault 501" in text
            status, text, _ = await w.post(f"/jobs/{job}/exec", alice, {"csrf": csrf, "command": "ls 'unclosed"})
            assert status == 200 and "Cannot split the command line" in text

    asyncio.run(main())


async def _next_event(resp: aiohttp.ClientResponse, name: str) -> str:
    """The data of the next server-sent event called ``name``."""
    event = None
    while True:
        line = (await asyncio.wait_for(resp.content.readline(), 30)).decode()
        if not line:
            raise AssertionError("event stream closed")
        if line.startswith("event: "):
            event = line[7:].strip()
        elif line.startswith("data: ") and event == name:
            return line[6:]


def test_event_stream_pushes_job_rows_as_they_change(env: Any) -> None:
    async def main() -> None:
        async with env.serve() as w:
            job = await _submit(w, env, env.alice)
            alice = await w.login(env.alice)
            resp = await w.client.get("/events", headers={"Cookie": f"jobmon_session={alice}"})
            assert resp.headers["Content-Type"].startswith("text/event-stream")
            first = await _next_event(resp, "jobs")
            assert f'data-job=\\"{job}\\"' in first
            farm = await _next_event(resp, "farm")
            assert "slots" in farm.lower()
            await w.core.hold(env.ident(env.alice), job, "test")
            w.app[CTX_KEY].changes_bump_soon()  # what an action on the page does
            while True:
                data = await _next_event(resp, "jobs")
                if "state-held" in data:
                    break
            resp.close()

    asyncio.run(main())


def test_live_job_page_keeps_ad_fields_an_update_lacks(env: Any) -> None:
    """A struct made from the daemon's report alone has no submit time, executable or directory;
    the live job page keeps showing them instead of blanking them."""
    async def main() -> None:
        async with env.serve() as w:
            job = await _submit(w, env, env.alice)
            alice = await w.login(env.alice)
            real_status = w.core.status
            daemon_only = asyncio.Event()

            async def status(caller: Any, jid: str) -> dict[str, Any]:
                data = dict(await real_status(caller, jid))
                if daemon_only.is_set():
                    for key in ("submitted", "cmd", "iwd"):
                        data.pop(key, None)
                return data

            w.core.status = status  # type: ignore[method-assign]
            resp = await w.client.get(f"/events/{job}", headers={"Cookie": f"jobmon_session={alice}"})
            first = await _next_event(resp, "job")
            assert "/bin/sleep" in first and "Submitted" in first
            daemon_only.set()
            await w.core.hold(env.ident(env.alice), job, "test")
            w.app[CTX_KEY].changes_bump_soon()
            while True:
                data = await _next_event(resp, "job")
                if "state-held" in data:
                    break
            assert "/bin/sleep" in data and "Submitted" in data and "iwd-" in data
            resp.close()

    asyncio.run(main())


def test_keep_known_fills_only_missing_ad_fields_of_the_same_job() -> None:
    from relay.web.jobs import keep_known

    before = {"id": "1.0", "cmd": "/bin/sleep", "iwd": "/w", "submitted": 10.0, "state": "waiting", "host": "a"}
    merged = keep_known({"id": "1.0", "cmd": None, "state": "held", "host": None}, before)
    assert merged["cmd"] == "/bin/sleep" and merged["iwd"] == "/w" and merged["submitted"] == 10.0
    assert merged["state"] == "held" and merged["host"] is None  # live fields come from the update
    assert keep_known({"id": "2.0"}, before) == {"id": "2.0"}


def test_pages_say_when_a_jobs_daemon_cannot_verify_the_relay(env: Any) -> None:
    """The relay saw TLS handshakes from the job's execute host refused with 'unknown ca': the job
    list and the job page say why the monitor is missing (issue 9)."""
    async def main() -> None:
        async with env.serve() as w:
            job = await _submit(w, env, env.alice)
            await env.wait_for(lambda: status_of(env, job) == 2, what="running")
            alice = await w.login(env.alice)
            _, before = await w.get("/", cookie=alice)
            assert "cannot verify the relay" not in before
            w.core.tls_refusals.record("127.0.0.1", "TLSV1_ALERT_UNKNOWN_CA")
            for path in ("/", f"/jobs/{job}"):
                status, text = await w.get(path, cookie=alice)
                assert status == 200 and "daemon cannot verify the relay&#39;s certificate" in text, path
                assert "unknown ca" in text

    asyncio.run(main())
