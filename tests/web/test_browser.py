"""The pages in a real browser: Debian's chromium driven by Playwright against a whole relay.

Two ways in, as users have them: a client certificate given to the browser
context, and a one-time login link from ``jobmon.webLogin``. Each test waits
for conditions in the page (never fixed sleeps) and saves a screenshot of
what it saw to tests/artifacts/.
"""

from __future__ import annotations

import re
import stat
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PROCESSOR = r'''#!/usr/bin/env python3
"""A small event processor: one event every 0.2 s, a progress line per event."""
import argparse
import sys
import time

p = argparse.ArgumentParser()
for opt in ("--input", "--output", "--calibration", "--control"):
    p.add_argument(opt)
p.add_argument("--events", type=int)
a = p.parse_args()
with open(a.output, "w") as out:
    for i in range(1, a.events + 1):
        time.sleep(0.2)
        print("event %d: processed %d of %d" % (i, i, a.events), flush=True)
        out.write("%d\n" % i)
print("processor done", file=sys.stderr)
'''

TIMEOUT = 60_000  # ms, for every wait on the page


@pytest.fixture(scope="module")
def inputs(live_relay: Any) -> dict[str, Path]:
    work = live_relay.work
    proc = work / "processor.py"
    proc.write_text(PROCESSOR)
    proc.chmod(proc.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    events = work / "run42.events"
    events.write_text("".join(f"event {i}\n" for i in range(1000)))
    calib = work / "calib.txt"
    calib.write_text("gain = 1.0\n")
    control = work / "control.txt"
    control.write_text("mode = fast\n")
    return {"processor": proc, "events": events, "calibration": calib, "control": control}


def cert_context(chromium: Any, live_relay: Any, cred: Any) -> Any:
    return chromium.new_context(
        ignore_https_errors=True,
        viewport={"width": 1360, "height": 900},
        client_certificates=[{
            "origin": live_relay.origin, "certPath": str(cred.cert_path), "keyPath": str(cred.key_path),
        }],
    )


def link_context(chromium: Any, live_relay: Any, cred: Any) -> Any:
    """A browser with no certificate, signed in through ``jobmon.webLogin``'s one-time link."""
    link = live_relay.rpc(cred).jobmon.webLogin()
    assert link["url"].startswith(live_relay.url + "/login?token=")
    context = chromium.new_context(ignore_https_errors=True, viewport={"width": 1360, "height": 900})
    page = context.new_page()
    page.goto(link["url"])
    page.wait_for_url(live_relay.url + "/", timeout=TIMEOUT)
    cookie = next(c for c in context.cookies() if c["name"] == "jobmon_session")
    assert cookie["httpOnly"] and cookie["secure"] and cookie["sameSite"] == "Strict"
    page.close()
    return context


def shot(page: Any, live_relay: Any, name: str) -> None:
    page.screenshot(path=str(live_relay.artifacts / f"{name}.png"), full_page=True)


def submit_through_form(page: Any, live_relay: Any, inputs: dict[str, Path], n_events: int,
                        email: str, screenshot: str = "") -> str:
    page.goto(live_relay.url + "/submit")
    page.select_option("#template", "events")
    page.fill("#f-executable", str(inputs["processor"]))
    page.set_input_files("#f-input_events-upload", str(inputs["events"]))
    page.fill("#f-output_events", "out.events")
    page.fill("#f-calibration_file", str(inputs["calibration"]))
    page.fill("#f-control_file", str(inputs["control"]))
    page.fill("#f-n_events", str(n_events))
    page.fill("#f-priority", "5")
    page.fill("#f-notify_user", email)
    # no backslashes: LocalPool parses +Attr values in the new ClassAd syntax, which eats "\d"
    page.click("details.more summary")
    page.fill("#f-progress_regex", "processed (?P<done>[0-9]+) of (?P<total>[0-9]+)")
    page.click("button[value=preview]")
    page.wait_for_selector("[data-description]", timeout=TIMEOUT)
    description = page.inner_text("[data-description]")
    assert "--events" in description and str(n_events) in description
    assert "priority                = 5" in description
    if screenshot:
        shot(page, live_relay, screenshot)
    # the preview kept the typed values; the upload has to be given again
    page.set_input_files("#f-input_events-upload", str(inputs["events"]))
    page.click("button[value=submit]")
    page.wait_for_url(re.compile(r".*/jobs/\d+\.\d+$"), timeout=TIMEOUT)
    return page.url.rsplit("/", 1)[1]


def progress_value(page: Any, scope: str) -> float:
    value = page.get_attribute(f"{scope} [role=progressbar]", "aria-valuenow")
    return float(value) if value else 0.0


def watch_running_job(page: Any, live_relay: Any, job: str, who: str) -> None:
    """Progress moves, the tail grows without a reload, the console answers."""
    # the daemon connects and reports progress: the bar appears and moves (pushed by SSE)
    page.wait_for_selector("[data-part=progress] [role=progressbar][aria-valuenow]", timeout=TIMEOUT)
    first = progress_value(page, "[data-part=progress]")
    page.wait_for_function(
        """(first) => { const b = document.querySelector('[data-part=progress] [role=progressbar]');
                         return b && parseFloat(b.getAttribute('aria-valuenow')) > first; }""",
        arg=first, timeout=TIMEOUT,
    )
    assert progress_value(page, "[data-part=progress]") > first
    assert "running" in page.inner_text("[data-part=head]")
    # the tail follows stdout: lines with higher event numbers arrive without reloading
    page.wait_for_function(
        "() => /processed \\d+ of/.test(document.querySelector('pre[data-tail]').textContent)",
        timeout=TIMEOUT,
    )
    seen = max(int(n) for n in re.findall(r"processed (\d+) of", page.inner_text("pre[data-tail]")))
    page.wait_for_function(
        """(seen) => { const m = [...document.querySelector('pre[data-tail]').textContent
                                    .matchAll(/processed (\\d+) of/g)].map(x => parseInt(x[1]));
                       return m.length && Math.max(...m) > seen + 2; }""",
        arg=seen, timeout=TIMEOUT,
    )
    # the console runs a command in the sandbox and shows its output and exit code
    page.fill(".console input[name=command]", "ls -l")
    page.click(".console button[type=submit]")
    page.wait_for_selector("#console-out [data-exit-code]", timeout=TIMEOUT)
    assert page.get_attribute("#console-out [data-exit-code]", "data-exit-code") == "0"
    listing = page.inner_text("#console-out [data-stdout]")
    assert "run42.events" in listing and "out.events" in listing
    page.fill(".console input[name=command]", "cat no-such-file")
    page.click(".console button[type=submit]")
    page.wait_for_function(
        "() => { const e = document.querySelector('#console-out [data-exit-code]');"
        " return e && e.getAttribute('data-exit-code') !== '0'; }", timeout=TIMEOUT)
    assert "no-such-file" in page.inner_text("#console-out [data-stderr]")
    # the process tree shows the payload under the wrapper (refreshed live)
    page.wait_for_function(
        "() => document.querySelector('[data-part=ps]').textContent.includes('processor.py')",
        timeout=TIMEOUT,
    )
    shot(page, live_relay, f"job-running-{who}")


@pytest.mark.parametrize("how", ["certificate", "login-link"])
def test_user_submits_and_watches_a_job(how: str, chromium: Any, live_relay: Any, pki: Any,
                                        inputs: dict[str, Path]) -> None:
    user = pki.alice if how == "certificate" else pki.bob
    context = (cert_context if how == "certificate" else link_context)(chromium, live_relay, user)
    page = context.new_page()
    page.on("dialog", lambda d: d.accept())
    try:
        page.goto(live_relay.url + "/")
        assert user.dn in page.inner_text(".who")
        assert "Nodes" not in page.inner_text(".nav")
        assert "slots" in page.inner_text(".farm").lower() or "Slots" in page.inner_text(".farm")
        job = submit_through_form(page, live_relay, inputs, 600, "someone@example.org",
                                  screenshot=f"submit-preview-{how}")
        watch_running_job(page, live_relay, job, how)

        # the jobs page lists it, and its progress moves there too without a reload
        page.goto(live_relay.url + "/")
        row = f"tr[data-job='{job}']"
        page.wait_for_selector(f"{row} [role=progressbar][aria-valuenow]", timeout=TIMEOUT)
        before = progress_value(page, row)
        page.wait_for_function(
            """([row, before]) => { const b = document.querySelector(row + ' [role=progressbar]');
                                    return b && parseFloat(b.getAttribute('aria-valuenow')) > before; }""",
            arg=[row, before], timeout=TIMEOUT,
        )
        page.wait_for_selector(".live.on", timeout=TIMEOUT)
        assert "running" in page.inner_text(row)
        shot(page, live_relay, f"jobs-{how}")

        # remove it (the page asks first)
        page.goto(live_relay.url + f"/jobs/{job}")
        page.click("button[value=remove]")
        page.wait_for_url(re.compile(r".*\?done=removed$"), timeout=TIMEOUT)
        page.wait_for_function(
            "() => document.querySelector('[data-part=head]').textContent.includes('removed')",
            timeout=TIMEOUT,
        )
    finally:
        context.close()


def test_finished_job_shows_exit_and_returned_files(chromium: Any, live_relay: Any, pki: Any,
                                                    inputs: dict[str, Path]) -> None:
    context = cert_context(chromium, live_relay, pki.alice)
    page = context.new_page()
    try:
        job = submit_through_form(page, live_relay, inputs, 5, "alice@example.org")
        assert page.url.endswith(f"/jobs/{job}")
        # the page learns of the end and of the returned files by itself (SSE)
        page.wait_for_function(
            "() => document.querySelector('[data-part=head]').textContent.includes('finished')",
            timeout=TIMEOUT,
        )
        link = page.locator("a[href$='/files/out.events']")
        link.wait_for(timeout=TIMEOUT)
        page.reload()
        assert "exit code 0" in page.inner_text("[data-part=head]")
        resp = context.request.get(live_relay.url + link.get_attribute("href"))
        assert resp.status == 200 and resp.text() == "1\n2\n3\n4\n5\n"
        assert page.locator(".console").count() == 0  # no console for an ended job
        shot(page, live_relay, "job-finished")
    finally:
        context.close()


def test_bad_submit_input_is_shown_next_to_the_field(chromium: Any, live_relay: Any, pki: Any,
                                                    inputs: dict[str, Path]) -> None:
    before = len(live_relay.pool.query("true"))
    context = cert_context(chromium, live_relay, pki.alice)
    page = context.new_page()
    try:
        page.goto(live_relay.url + "/submit")
        page.fill("#f-executable", str(inputs["processor"]))
        page.fill("#f-priority", "-3")
        page.fill("#f-n_events", "")
        page.click("button[value=submit]")
        page.wait_for_selector("[data-error=priority]", timeout=TIMEOUT)
        assert "between 0 and 20" in page.inner_text("[data-error=priority]")
        assert "required" in page.inner_text("[data-error=n_events]")
        assert "required" in page.inner_text("[data-error=input_events]")
        assert page.input_value("#f-executable") == str(inputs["processor"])
        assert page.url.endswith("/submit")
        shot(page, live_relay, "submit-errors")
    finally:
        context.close()
    assert len(live_relay.pool.query("true")) == before  # nothing was submitted


def test_admin_drains_a_node_and_users_get_no_nodes_page(chromium: Any, live_relay: Any, pki: Any) -> None:
    user = cert_context(chromium, live_relay, pki.alice)
    try:
        page = user.new_page()
        resp = page.goto(live_relay.url + "/nodes")
        assert resp is not None and resp.status == 403
        assert "pool administrators" in page.inner_text("main")
        shot(page, live_relay, "nodes-forbidden")
    finally:
        user.close()

    admin = cert_context(chromium, live_relay, pki.admin)
    try:
        page = admin.new_page()
        page.on("dialog", lambda d: d.accept())
        page.goto(live_relay.url + "/nodes")
        row = "tr[data-node='node01.example.org']"
        assert page.get_attribute(row, "data-state") == "up"
        drain = page.locator(f"{row} button[data-action=drain]")
        assert "running jobs finish" in drain.inner_text()
        shot(page, live_relay, "nodes")
        drain.click()
        page.wait_for_selector("[data-notice]", timeout=TIMEOUT)
        assert "Draining node01.example.org" in page.inner_text("[data-notice]")
        assert "0 up" in " ".join(page.inner_text(".farm").split())
        assert page.get_attribute(row, "data-state") in ("draining", "drained")
        assert live_relay.pool.nodes()[0].state in ("draining", "drained")
        shot(page, live_relay, "nodes-drained")
        page.click(f"{row} button[data-action=undrain]")
        page.wait_for_function(
            f"() => document.querySelector(\"{row}\").getAttribute('data-state') === 'up'", timeout=TIMEOUT)
        assert live_relay.pool.nodes()[0].state == "up"
        # admins may list everyone's jobs, with their owners
        page.goto(live_relay.url + "/?all=1")
        page.wait_for_selector("tr[data-job]", timeout=TIMEOUT)
        assert "Alice Smith" in page.inner_text("#jobs") or "root" in page.inner_text("#jobs")
        shot(page, live_relay, "jobs-all-admin")
    finally:
        admin.close()


def test_signing_in_and_out_without_a_certificate(chromium: Any, live_relay: Any, pki: Any) -> None:
    context = chromium.new_context(ignore_https_errors=True, viewport={"width": 1360, "height": 900})
    page = context.new_page()
    try:
        resp = page.goto(live_relay.url + "/")
        assert resp is not None and resp.status == 401
        assert "jobmon web" in page.inner_text("main")
        shot(page, live_relay, "sign-in")
        url = live_relay.rpc(pki.bob).jobmon.webLogin()["url"]
        page.goto(url)
        page.wait_for_url(live_relay.url + "/", timeout=TIMEOUT)
        assert pki.bob.dn in page.inner_text(".who")
        resp = page.goto(url)  # a login link works once
        assert resp is not None and resp.status == 403
        assert "does not work" in page.inner_text("main")
        shot(page, live_relay, "login-link-used")
        page.goto(live_relay.url + "/")
        page.click(".who button")
        page.wait_for_selector("text=Signed out", timeout=TIMEOUT)
        resp = page.goto(live_relay.url + "/")
        assert resp is not None and resp.status == 401
    finally:
        context.close()


def test_everything_but_live_updates_works_without_javascript(chromium: Any, live_relay: Any, pki: Any,
                                                              inputs: dict[str, Path]) -> None:
    context = chromium.new_context(
        ignore_https_errors=True, java_script_enabled=False, viewport={"width": 1360, "height": 900},
        client_certificates=[{"origin": live_relay.origin, "certPath": str(pki.alice.cert_path),
                              "keyPath": str(pki.alice.key_path)}],
    )
    page = context.new_page()
    try:
        page.goto(live_relay.url + "/submit?template=wrapped")
        assert page.locator("#f-arguments").count() == 1  # the template was chosen without script
        job = submit_through_form(page, live_relay, inputs, 600, "alice@example.org")
        # no live updates: reload until the daemon has connected (a user would press reload)
        for _ in range(100):
            if "daemon connected" in page.inner_text("[data-part=head]"):
                break
            page.wait_for_timeout(200)
            page.reload()
        assert "daemon connected" in page.inner_text("[data-part=head]")
        page.fill(".console input[name=command]", "ls")
        page.click(".console button[type=submit]")  # a full POST and a re-rendered page
        page.wait_for_selector("#console-out [data-exit-code='0']", timeout=TIMEOUT)
        assert "run42.events" in page.inner_text("#console-out [data-stdout]")
        page.click("button[value=remove]")  # without script the confirmation is a page
        page.wait_for_selector("text=Remove job", timeout=TIMEOUT)
        shot(page, live_relay, "confirm-remove-no-js")
        page.click("form button.danger")
        page.wait_for_url(re.compile(r".*\?done=removed$"), timeout=TIMEOUT)
        assert page.inner_text(".notice") == "Job removed."
        assert job in page.url
    finally:
        context.close()
