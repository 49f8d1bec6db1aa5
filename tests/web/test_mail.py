"""End-of-job mail through a real SMTP server (aiosmtpd, in-process)."""

from __future__ import annotations

import asyncio
import re
import socket
import ssl
import threading
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from relay.config import load_config
from relay.mail import JobMailer, MailSettings

JOB = {
    "id": "12.0", "cluster": 12, "proc": 0, "name": "calib-run", "state": "finished", "exit_code": 0,
    "started": 1_700_000_000.0, "ended": 1_700_000_100.0, "host": "node01.example.org",
    "progress": {"done": 500.0, "total": 1000.0},
}


class Inbox:
    """An aiosmtpd handler that keeps what it is given."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], Message]] = []
        self.arrived = threading.Condition()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.arrived:
            self.messages.append((envelope.mail_from, list(envelope.rcpt_tos),
                                  message_from_bytes(envelope.content)))
            self.arrived.notify_all()
        return "250 OK"

    def wait(self, count: int, timeout: float = 30.0) -> None:
        with self.arrived:
            assert self.arrived.wait_for(lambda: len(self.messages) >= count, timeout), "no mail arrived"


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def smtp() -> Any:
    inbox = Inbox()
    ctl = Controller(inbox, hostname="127.0.0.1", port=_port())
    ctl.start()
    try:
        yield ctl, inbox
    finally:
        ctl.stop()


def _body(msg: Message) -> str:
    payload = msg.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode()


def test_one_mail_per_job_with_status_runtime_events_and_link(smtp: Any, tmp_path: Path) -> None:
    ctl, inbox = smtp
    db = tmp_path / "mail.sqlite"
    mailer = JobMailer(MailSettings(host=ctl.hostname, port=ctl.port, sender="relay@example.org"),
                       "https://relay.example.org:8443", db)
    job = dict(JOB, notify_user="alice@example.org")

    async def main() -> None:
        assert await mailer.job_ended(job) is True
        assert await mailer.job_ended(job) is False          # the same end reported twice
        again = JobMailer(mailer.settings, mailer.base_url, db)  # a relay restart
        assert await again.job_ended(job) is False
        again.close()

    asyncio.run(main())
    mailer.close()
    inbox.wait(1)
    assert len(inbox.messages) == 1
    sender, rcpts, msg = inbox.messages[0]
    assert sender == "relay@example.org" and rcpts == ["alice@example.org"]
    assert msg["Subject"] == "jobmon: job 12.0 (calib-run) ended: exit code 0"
    body = _body(msg)
    assert re.search(r"Job id:\s+12\.0", body)
    assert re.search(r"Exit status:\s+exit code 0", body)
    assert re.search(r"Run time:\s+1 min 40 s", body)
    assert re.search(r"Events processed:\s+500 of 1,000", body)
    assert "https://relay.example.org:8443/jobs/12.0" in body


def test_signal_and_no_address(smtp: Any) -> None:
    ctl, inbox = smtp
    mailer = JobMailer(MailSettings(host=ctl.hostname, port=ctl.port), "https://r:8443")

    async def main() -> None:
        assert await mailer.job_ended({"id": "3.0", "state": "finished", "signal": 9}) is False  # nobody to mail
        mailer.expect("3", "bob@example.org")  # the address the web form gave for cluster 3
        assert await mailer.job_ended({"id": "3.0", "state": "finished", "signal": 9}) is True

    asyncio.run(main())
    inbox.wait(1)
    _, rcpts, msg = inbox.messages[0]
    assert rcpts == ["bob@example.org"]
    assert "killed by signal 9" in msg["Subject"]
    assert re.search(r"Events processed:\s+not reported", _body(msg))


def test_failed_delivery_is_retried_on_the_next_report(smtp: Any, tmp_path: Path) -> None:
    ctl, inbox = smtp
    closed = _port()
    down = JobMailer(MailSettings(host="127.0.0.1", port=closed, timeout=5), "https://r", tmp_path / "m.sqlite")
    job = dict(JOB, notify_user="alice@example.org")

    async def main() -> None:
        assert await down.job_ended(job) is False
        down.close()
        up = JobMailer(MailSettings(host=ctl.hostname, port=ctl.port), "https://r", tmp_path / "m.sqlite")
        assert await up.job_ended(job) is True
        up.close()

    asyncio.run(main())
    inbox.wait(1)
    assert len(inbox.messages) == 1


def test_starttls_and_login(pki: Any) -> None:
    inbox = Inbox()
    logins: list[str] = []

    def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (b"jobmon", b"s3cret")
        if ok:
            logins.append(data.login.decode())
        return AuthResult(success=ok)

    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(str(pki.host.cert_path), str(pki.host.key_path))
    ctl = Controller(inbox, hostname="127.0.0.1", port=_port(), tls_context=server_tls,
                     require_starttls=True, authenticator=authenticator, auth_required=True,
                     server_hostname="localhost")
    ctl.start()
    try:
        client_tls = ssl.create_default_context(cafile=str(pki.ca_file))
        client_tls.check_hostname = False  # the test server listens on 127.0.0.1 with a "localhost" cert
        settings = MailSettings(host="127.0.0.1", port=ctl.port, starttls=True, user="jobmon",
                                password="s3cret", ssl_context=client_tls)
        mailer = JobMailer(settings, "https://r")
        assert asyncio.run(mailer.job_ended(dict(JOB, notify_user="alice@example.org"))) is True
        inbox.wait(1)
        assert logins == ["jobmon"]  # the server demands STARTTLS first, then the login
    finally:
        ctl.stop()


def test_mail_is_off_without_smtp_host(tmp_path: Path) -> None:
    assert JobMailer.from_config(load_config(None, {"state_dir": str(tmp_path)})) is None
    mailer = JobMailer.from_config(load_config(None, {
        "state_dir": str(tmp_path), "smtp_host": "mail.example.org", "smtp_port": 587,
        "smtp_starttls": True, "public_url": "https://relay.example.org:8443/clarens",
    }))
    assert mailer is not None
    assert (mailer.settings.host, mailer.settings.port, mailer.settings.starttls) == ("mail.example.org", 587, True)
    assert mailer.base_url == "https://relay.example.org:8443"
    mailer.close()


def test_relay_mails_when_a_daemon_reports_the_end_of_a_web_submitted_job(smtp: Any, env: Any) -> None:
    """setup() hooks the mailer to core.on_job_end; the submit form's address is used."""
    ctl, inbox = smtp
    work = env.root / "work"
    work.mkdir()
    for name in ("proc.sh", "calib.txt", "control.txt"):
        (work / name).write_text("#!/bin/sh\n")

    async def main() -> None:
        import aiohttp

        async with env.serve(smtp_host=ctl.hostname, smtp_port=ctl.port) as w:
            alice = await w.login(env.alice)
            csrf = await w.csrf(alice, "/submit")
            form = aiohttp.FormData()
            for k, v in {
                "csrf": csrf, "template": "events", "executable": str(work / "proc.sh"),
                "input_events": str(work / "calib.txt"), "output_events": "out.events",
                "calibration_file": str(work / "calib.txt"), "control_file": str(work / "control.txt"),
                "n_events": "5", "notify_user": "carol@example.org", "do": "submit",
            }.items():
                form.add_field(k, v)
            status, text, location = await w.post("/submit", alice, form)
            assert status == 303, text
            job = location.rsplit("/", 1)[1]
            # what the core hands its job-end callbacks when a daemon calls jobmon.finish
            w.core.job_ended({"id": job, "state": "finished", "exit_code": 2, "progress": {"done": 5.0}})
            w.core.job_ended({"id": job, "state": "finished", "exit_code": 2, "progress": {"done": 5.0}})
            await asyncio.get_running_loop().run_in_executor(None, inbox.wait, 1)

    asyncio.run(main())
    assert len(inbox.messages) == 1
    _, rcpts, msg = inbox.messages[0]
    assert rcpts == ["carol@example.org"]
    assert "exit code 2" in msg["Subject"]
    assert "https://relay.example.org:8443/jobs/" in _body(msg)
