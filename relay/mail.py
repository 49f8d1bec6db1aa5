"""One e-mail to the submitter when a job the relay tracks ends.

Off unless the relay config sets ``smtp_host``. The address is the job's
``notify_user`` (from its submit description, or the web submit form), and
the message says the job id, exit status, run time, events processed and
links to the job page. Sending uses ``smtplib`` in a worker thread
(STARTTLS and login when configured). A job is mailed at most once: the
claim is an ``INSERT`` into ``<state_dir>/mail.sqlite`` before sending, so a
second end report, or a relay restart, sends nothing more.
"""

from __future__ import annotations

import asyncio
import logging
import re
import smtplib
import socket
import sqlite3
import ssl
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Any

log = logging.getLogger("relay.mail")

_EMAIL = re.compile(r"^[^@\s,;<>\"']+@[^@\s,;<>\"']+$")


@dataclass(frozen=True)
class MailSettings:
    host: str
    port: int = 25
    sender: str = "jobmon@localhost"
    starttls: bool = False
    user: str = ""
    password: str = ""
    timeout: float = 30.0
    ssl_context: ssl.SSLContext | None = None  # for STARTTLS; None = system defaults


def base_url_of(config: Any) -> str:
    """``https://host:port`` of the pages, from the relay's public URL."""
    url = str(getattr(config, "url", "") or "")
    return re.sub(r"/(clarens|RPC2)/?$", "", url).rstrip("/")


def _fmt_duration(seconds: float) -> str:
    s = int(round(seconds))
    h, rest = divmod(s, 3600)
    m, sec = divmod(rest, 60)
    if h:
        return f"{h} h {m} min {sec} s"
    if m:
        return f"{m} min {sec} s"
    return f"{sec} s"


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def exit_text(job: Mapping[str, Any]) -> str:
    """How the job ended, in words.

    >>> exit_text({"state": "finished", "exit_code": 0})
    'exit code 0'
    >>> exit_text({"state": "finished", "signal": 9})
    'killed by signal 9'
    >>> exit_text({"state": "removed"})
    'removed'
    """
    if job.get("signal") is not None:
        return f"killed by signal {job['signal']}"
    if job.get("exit_code") is not None:
        return f"exit code {job['exit_code']}"
    return str(job.get("state") or "ended")


def run_time(job: Mapping[str, Any]) -> float | None:
    started, ended = _num(job.get("started")), _num(job.get("ended"))
    if started is not None and ended is not None and ended >= started:
        return ended - started
    for src in (job, job.get("resources") or {}):
        wall = _num(src.get("wall_time")) if isinstance(src, Mapping) else None
        if wall is not None:
            return wall
    return None


def events_text(job: Mapping[str, Any]) -> str:
    progress = job.get("progress") or {}
    done, total = _num(progress.get("done")), _num(progress.get("total"))
    if done is None:
        return "not reported"
    if total:
        return f"{done:,.0f} of {total:,.0f}"
    return f"{done:,.0f}"


class JobMailer:
    """Mails the submitter once per ended job."""

    def __init__(self, settings: MailSettings, base_url: str, sent_db: Path | None = None) -> None:
        self.settings = settings
        self.base_url = base_url.rstrip("/")
        self._expected: dict[str, str] = {}  # job or cluster id -> address from the web form
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self._sent_memory: set[str] = set()
        if sent_db is not None:
            sent_db.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(sent_db), check_same_thread=False, isolation_level=None)
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS sent (job TEXT PRIMARY KEY, recipient TEXT, sent_at REAL)"
            )

    @classmethod
    def from_config(cls, config: Any) -> JobMailer | None:
        host = str(getattr(config, "smtp_host", "") or "")
        if not host:
            return None
        settings = MailSettings(
            host=host,
            port=int(getattr(config, "smtp_port", 25) or 25),
            sender=str(getattr(config, "smtp_from", "") or "jobmon@localhost"),
            starttls=bool(getattr(config, "smtp_starttls", False)),
            user=str(getattr(config, "smtp_user", "") or ""),
            password=str(getattr(config, "smtp_password", "") or ""),
        )
        state = getattr(config, "state_path", None)
        return cls(settings, base_url_of(config), Path(state) / "mail.sqlite" if state else None)

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    # -- who to mail ------------------------------------------------------------------------
    def expect(self, job_or_cluster: str, address: str) -> None:
        """Remember the address the web form gave for a job (``"C.P"``) or a cluster (``"C"``)."""
        if address and _EMAIL.match(address.strip()):
            with self._lock:
                self._expected[job_or_cluster] = address.strip()

    def recipient(self, job: Mapping[str, Any]) -> str | None:
        for key in ("notify_user", "NotifyUser", "email"):
            value = job.get(key)
            if isinstance(value, str) and _EMAIL.match(value.strip()):
                return value.strip()
        jid = str(job.get("id", ""))
        with self._lock:
            return self._expected.get(jid) or self._expected.get(jid.split(".", 1)[0])

    # -- the message ------------------------------------------------------------------------
    def compose(self, job: Mapping[str, Any], to: str) -> EmailMessage:
        jid = str(job.get("id", "?"))
        status = exit_text(job)
        rt = run_time(job)
        link = f"{self.base_url}/jobs/{jid}"
        name = job.get("name")
        msg = EmailMessage()
        msg["From"] = self.settings.sender
        msg["To"] = to
        msg["Subject"] = f"jobmon: job {jid}{' (' + str(name) + ')' if name else ''} ended: {status}"
        msg["Date"] = formatdate(localtime=False)
        msg["Message-ID"] = make_msgid(domain=socket.getfqdn() or "localhost")
        lines = [
            f"Job {jid}{' (' + str(name) + ')' if name else ''} has ended.",
            "",
            f"  Job id:            {jid}",
            f"  Exit status:       {status}",
            f"  Run time:          {_fmt_duration(rt) if rt is not None else 'unknown'}",
            f"  Events processed:  {events_text(job)}",
        ]
        if job.get("host"):
            lines.append(f"  Ran on:            {job['host']}")
        if job.get("hold_reason") and job.get("state") == "removed":
            lines.append(f"  Reason:            {job['hold_reason']}")
        lines += ["", f"Job page: {link}", "", "-- ", "htcondor-jobmon relay"]
        msg.set_content("\n".join(lines) + "\n")
        return msg

    # -- once per job -----------------------------------------------------------------------
    def _claim(self, jid: str, to: str) -> bool:
        with self._lock:
            if self._db is None:
                if jid in self._sent_memory:
                    return False
                self._sent_memory.add(jid)
                return True
            cur = self._db.execute(
                "INSERT OR IGNORE INTO sent (job, recipient, sent_at) VALUES (?, ?, ?)", (jid, to, time.time())
            )
            return cur.rowcount == 1

    def _unclaim(self, jid: str) -> None:
        with self._lock:
            if self._db is None:
                self._sent_memory.discard(jid)
            else:
                self._db.execute("DELETE FROM sent WHERE job = ?", (jid,))

    def send_now(self, msg: EmailMessage) -> None:
        """Deliver one message (blocking)."""
        s = self.settings
        with smtplib.SMTP(s.host, s.port, timeout=s.timeout) as smtp:
            smtp.ehlo()
            if s.starttls:
                smtp.starttls(context=s.ssl_context or ssl.create_default_context())
                smtp.ehlo()
            if s.user:
                smtp.login(s.user, s.password)
            smtp.send_message(msg)

    async def job_ended(self, job: Mapping[str, Any]) -> bool:
        """Mail the submitter about an ended job; True if a message was sent now."""
        jid = str(job.get("id", ""))
        to = self.recipient(job)
        if not jid or to is None:
            return False
        if not self._claim(jid, to):
            return False
        msg = self.compose(job, to)
        try:
            await asyncio.get_running_loop().run_in_executor(None, self.send_now, msg)
        except (OSError, smtplib.SMTPException) as exc:
            self._unclaim(jid)
            log.warning("mail about job %s to %s failed: %s", jid, to, exc)
            return False
        log.info("mailed %s about the end of job %s", to, jid)
        return True
