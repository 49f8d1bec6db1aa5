"""The audit log: append-only SQLite in WAL mode.

One row per user action and per denial: time, caller DN, job, method, argv,
exit status, bytes returned, duration, allowed or denied (and a short note).
Rows are queued in memory and written in one transaction by :meth:`flush`
(the relay flushes every ``flush_interval`` seconds, before every query and
at shutdown), so a burst of commands costs one fsync, not one each. Triggers
refuse UPDATE and DELETE.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time REAL NOT NULL,
    dn TEXT NOT NULL,
    job TEXT,
    method TEXT NOT NULL,
    argv TEXT,
    exit_status INTEGER,
    bytes INTEGER NOT NULL DEFAULT 0,
    duration REAL NOT NULL DEFAULT 0,
    allowed INTEGER NOT NULL,
    note TEXT
);
CREATE INDEX IF NOT EXISTS audit_time ON audit(time);
CREATE INDEX IF NOT EXISTS audit_job ON audit(job);
CREATE INDEX IF NOT EXISTS audit_dn ON audit(dn);
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
"""

_COLUMNS = ("time", "dn", "job", "method", "argv", "exit_status", "bytes", "duration", "allowed", "note")


@dataclass
class AuditRecord:
    time: float
    dn: str
    job: str | None
    method: str
    argv: list[str] | None
    exit_status: int | None
    bytes: int
    duration: float
    allowed: bool
    note: str | None = None

    def as_struct(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "time": self.time, "dn": self.dn, "method": self.method, "bytes": float(self.bytes),
            "duration": self.duration, "allowed": self.allowed,
        }
        if self.job is not None:
            out["job"] = self.job
        if self.argv is not None:
            out["argv"] = list(self.argv)
        if self.exit_status is not None:
            out["exit_status"] = self.exit_status
        if self.note:
            out["note"] = self.note
        return out


class AuditLog:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()      # the queue of rows
        self._db_lock = threading.Lock()   # the database
        self._pending: list[tuple[Any, ...]] = []
        self._db = sqlite3.connect(str(self.path), check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._db.commit()

    def record(
        self,
        dn: str,
        method: str,
        *,
        job: str | None = None,
        argv: list[str] | None = None,
        exit_status: int | None = None,
        nbytes: int = 0,
        duration: float = 0.0,
        allowed: bool = True,
        note: str | None = None,
        when: float | None = None,
    ) -> None:
        row = (
            time.time() if when is None else when, dn, job, method,
            json.dumps(argv) if argv is not None else None, exit_status, int(nbytes),
            float(duration), 1 if allowed else 0, note,
        )
        with self._lock:
            self._pending.append(row)

    def flush(self) -> int:
        # the queue's lock is held only to swap the list: ``record`` (on the event loop) never
        # waits for SQLite; the database has its own lock (flushes and queries in order)
        with self._db_lock:
            with self._lock:
                rows, self._pending = self._pending, []
            if rows:
                self._db.executemany(
                    f"INSERT INTO audit ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})", rows
                )
                self._db.commit()
        return len(rows)

    def query(
        self, *, job: str | None = None, user: str | None = None, since: float | None = None, limit: int = 1000
    ) -> list[AuditRecord]:
        self.flush()
        where, args = [], []  # type: tuple[list[str], list[Any]]
        if job is not None:
            where.append("(job = ? OR job LIKE ?)")
            args += [job, f"{job}.%"]
        if user is not None:
            where.append("dn = ?")
            args.append(user)
        if since is not None:
            where.append("time >= ?")
            args.append(since)
        sql = f"SELECT {', '.join(_COLUMNS)} FROM audit"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id DESC LIMIT ?"
        args.append(int(limit))
        with self._db_lock:
            rows = self._db.execute(sql, args).fetchall()
        out = []
        for r in reversed(rows):
            out.append(AuditRecord(
                time=r[0], dn=r[1], job=r[2], method=r[3], argv=json.loads(r[4]) if r[4] else None,
                exit_status=r[5], bytes=r[6], duration=r[7], allowed=bool(r[8]), note=r[9],
            ))
        return out

    def close(self) -> None:
        self.flush()
        with self._db_lock:
            self._db.close()
