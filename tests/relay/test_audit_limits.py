"""The audit log is append-only; output caps hold even against a chatty daemon."""

from __future__ import annotations

import sqlite3
import xmlrpc.client
from pathlib import Path
from typing import Any

import pytest

from relay.audit import AuditLog


def test_audit_rows_cannot_be_changed_or_deleted(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.sqlite")
    log.record("/CN=a", "jobmon.exec", job="1.0", argv=["ls"], exit_status=0, nbytes=3, duration=0.1)
    log.record("/CN=b", "jobmon.exec", job="1.0", allowed=False, note="401 not yours")
    rows = log.query(job="1")
    assert [(r.dn, r.allowed) for r in rows] == [("/CN=a", True), ("/CN=b", False)]
    assert log.query(user="/CN=b")[0].note == "401 not yours"
    assert log.query(since=rows[1].time + 1) == []
    log.close()
    db = sqlite3.connect(str(tmp_path / "audit.sqlite"))
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    for sql in ("UPDATE audit SET allowed = 1", "DELETE FROM audit"):
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            db.execute(sql)
    assert db.execute("SELECT count(*) FROM audit").fetchone()[0] == 2


def test_output_cap_is_enforced_by_the_relay(relay_factory: Any, fake_pool: Any, pki: Any, kit: Any) -> None:
    r = relay_factory(max_output_bytes=1000)
    fake_pool.add(50, 0, owner_dn=pki.alice.dn)

    def chatty(op: str, args: dict[str, Any]) -> Any:
        assert args["max_output"] == 100.0  # the relay passed the caller's smaller cap on
        return {"exit_code": 0, "stdout": xmlrpc.client.Binary(b"x" * 5000), "stderr": xmlrpc.client.Binary(b""),
                "duration": 0.0, "truncated": False, "timed_out": False}

    token = r.client(pki.alice).jobmon.issueCredential({})["token"]
    d = kit.SimDaemon(r, "50.0", token=token, handler=chatty).start()
    try:
        res = r.client(pki.alice).jobmon.exec("50.0", ["yes"], {"max_output": 100})
        assert len(res["stdout"].data) == 100 and res["truncated"] is True
    finally:
        d.stop()
