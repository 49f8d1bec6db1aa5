"""Per-job credentials: bearer tokens the relay mints and job daemons present.

Token: ``jm1.<payload>.<mac>``; ``payload`` is base64url JSON
``{"dn", "tid", "iat", "exp", "scope"?}``, ``mac`` base64url HMAC-SHA256 of
``jm1.<payload>`` under ``<state>/relay.key`` (32 random bytes, 0600).
The relay keeps only token ids, owners and cluster bindings (SQLite,
``credentials.sqlite``), never the token: a token unbound at issue is bound to
the first cluster that registers with it (trust on first use).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from relay.faults import Fault, RelayFault

PREFIX = "jm1"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def load_key(state_dir: Path) -> bytes:
    """The relay's secret key, created (0600) on first use."""
    path = Path(state_dir) / "relay.key"
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes()
    with os.fdopen(fd, "wb") as fh:
        fh.write(key)
    return key


@dataclass(frozen=True)
class Claims:
    dn: str
    tid: str
    iat: float
    exp: float
    scope: int | None


class CredentialStore:
    def __init__(self, state_dir: Path, ttl: float = 1209600.0) -> None:
        self.key = load_key(Path(state_dir))
        self.ttl = ttl
        self._lock = threading.Lock()
        self._owners: dict[str, str] = {}   # token id -> owner DN (never changes)
        self._bound: dict[str, int] = {}    # token id -> cluster, once bound (never changes)
        self._db = sqlite3.connect(str(Path(state_dir) / "credentials.sqlite"), check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS credentials (tid TEXT PRIMARY KEY, dn TEXT NOT NULL,"
            " issued REAL NOT NULL, expires REAL NOT NULL, cluster INTEGER)"
        )
        self._db.commit()

    def close(self) -> None:
        self._db.close()

    def _mac(self, signed: str) -> str:
        return _b64(hmac.new(self.key, signed.encode("ascii"), hashlib.sha256).digest())

    def issue(self, dn: str, cluster: int | None = None, now: float | None = None) -> tuple[str, Claims]:
        now = time.time() if now is None else now
        claims = Claims(dn=dn, tid=secrets.token_hex(8), iat=now, exp=now + self.ttl, scope=cluster)
        body: dict[str, Any] = {"dn": dn, "tid": claims.tid, "iat": now, "exp": claims.exp}
        if cluster is not None:
            body["scope"] = cluster
        signed = f"{PREFIX}.{_b64(json.dumps(body, separators=(',', ':')).encode())}"
        with self._lock:
            self._db.execute(
                "INSERT INTO credentials (tid, dn, issued, expires, cluster) VALUES (?, ?, ?, ?, ?)",
                (claims.tid, dn, now, claims.exp, cluster),
            )
            self._db.commit()
        return f"{signed}.{self._mac(signed)}", claims

    def verify(self, token: str, now: float | None = None) -> Claims:
        """Check the MAC and expiry; fault 302 otherwise."""
        now = time.time() if now is None else now
        parts = token.strip().split(".")
        if len(parts) != 3 or parts[0] != PREFIX:
            raise RelayFault(Fault.CREDENTIAL_INVALID, "per-job credential is malformed (expected jm1.<payload>.<mac>)")
        signed = f"{parts[0]}.{parts[1]}"
        if not hmac.compare_digest(self._mac(signed), parts[2]):
            raise RelayFault(Fault.CREDENTIAL_INVALID, "per-job credential was not issued by this relay (bad signature)")
        try:
            body = json.loads(_unb64(parts[1]))
            claims = Claims(
                dn=str(body["dn"]), tid=str(body["tid"]), iat=float(body["iat"]),
                exp=float(body["exp"]), scope=int(body["scope"]) if body.get("scope") is not None else None,
            )
        except (ValueError, KeyError, TypeError):
            raise RelayFault(Fault.CREDENTIAL_INVALID, "per-job credential payload is unreadable") from None
        if claims.exp < now:
            raise RelayFault(Fault.CREDENTIAL_INVALID, f"per-job credential {claims.tid} expired; submit again")
        return claims

    def bound_cluster(self, tid: str) -> int | None:
        if tid in self._bound:  # a binding never changes: 10,000 daemons of a cluster ask once
            return self._bound[tid]
        with self._lock:
            row = self._db.execute("SELECT cluster FROM credentials WHERE tid = ?", (tid,)).fetchone()
        if row is not None and row[0] is not None:
            self._bound[tid] = int(row[0])
        return None if row is None else row[0]

    def owner(self, tid: str) -> str | None:
        if tid in self._owners:
            return self._owners[tid]
        with self._lock:
            row = self._db.execute("SELECT dn FROM credentials WHERE tid = ?", (tid,)).fetchone()
        if row is None:
            return None
        self._owners[tid] = str(row[0])
        return str(row[0])

    def bind(self, tid: str, cluster: int, dn: str | None = None) -> None:
        """Bind ``tid`` to ``cluster`` (its owner ``dn`` if given must match); idempotent."""
        if self._bound.get(tid) == cluster and (dn is None or self._owners.get(tid) == dn):
            return
        with self._lock:
            row = self._db.execute("SELECT dn, cluster FROM credentials WHERE tid = ?", (tid,)).fetchone()
            if row is None:
                raise RelayFault(Fault.CREDENTIAL_INVALID, f"no credential {tid} at this relay")
            if dn is not None and row[0] != dn:
                raise RelayFault(Fault.NOT_OWNER, f"credential {tid} belongs to someone else")
            if row[1] is not None and row[1] != cluster:
                raise RelayFault(
                    Fault.CREDENTIAL_INVALID, f"credential {tid} is bound to cluster {row[1]}, not {cluster}"
                )
            if row[1] is None:
                self._db.execute("UPDATE credentials SET cluster = ? WHERE tid = ?", (cluster, tid))
                self._db.commit()
            self._bound[tid], self._owners[tid] = cluster, str(row[0])

    def check_job(self, claims: Claims, cluster: int) -> None:
        """A daemon with these claims registers a job of ``cluster``: enforce the binding (TOFU)."""
        if claims.scope is not None and claims.scope != cluster:
            raise RelayFault(
                Fault.CREDENTIAL_INVALID, f"credential {claims.tid} is for cluster {claims.scope}, not {cluster}"
            )
        if self.owner(claims.tid) is None:
            raise RelayFault(Fault.CREDENTIAL_INVALID, f"credential {claims.tid} is unknown to this relay")
        self.bind(claims.tid, cluster)
