"""The daemon side of ``RelayCore``: register, long-poll, results, heartbeats, finish."""

from __future__ import annotations

from typing import Any

from relay.base import CoreBase, _parse_job
from relay.faults import Fault, RelayFault
from relay.identity import Identity
from relay.jobs import owner_dn
from relay.registry import Daemon
from relay.watching import PUSH_INTERVAL


def _need_str(info: dict[str, Any], key: str) -> str:
    val = info.get(key)
    if not isinstance(val, str) or not val.strip():
        raise RelayFault(Fault.BAD_PARAMS, f"jobmon.register: info.{key} must be a non-empty string")
    return val.strip()


class DaemonCore(CoreBase):
    async def register(self, caller: Identity, info: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(info, dict):
            raise RelayFault(Fault.BAD_PARAMS, "jobmon.register: info must be a struct")
        job = _need_str(info, "job")
        if len(job) > 200 or any(c in job for c in "/\\\n\r\t "):
            raise RelayFault(Fault.BAD_PARAMS, f"jobmon.register: {job!r} is not a job id or attach name")
        jid = _parse_job(job)
        if jid is not None and jid.proc is None:
            raise RelayFault(Fault.BAD_PARAMS, f"jobmon.register: {job} names a cluster; register one job (C.P)")
        if caller.kind == "credential":
            if jid is None:
                raise self.deny(caller, "jobmon.register", RelayFault(
                    Fault.CREDENTIAL_INVALID, "a per-job credential can only register an HTCondor job (C.P)"), job)
            try:
                self.credentials.check_job(
                    self._claims(caller), jid.cluster
                )
            except RelayFault as f:
                raise self.deny(caller, "jobmon.register", f, job) from None
        elif jid is not None and self.pool is not None:
            ads = await self.pool_ads(jid.constraint())
            owner = owner_dn(ads[0], None) if ads else None
            if owner is not None and not self.may_act(caller, owner):
                raise self.deny(caller, "jobmon.register", RelayFault(
                    Fault.NOT_OWNER, f"job {job} belongs to {owner}, not to you"), job)
        daemon = self.registry.register(job, caller.dn, caller.kind, info, caller.credential_id)
        self.audit(caller, "jobmon.register", job=job, note=f"host={info.get('host', '?')}")
        self.note_change(daemon)
        self.publish(self.daemon_struct(daemon))
        return {
            "session": daemon.session,
            "poll_wait": self.config.poll_wait,
            "heartbeat": self.config.heartbeat,
            "relay_version": self.version,
            "watched": self.watchers.watched(job),   # someone already looks: report progress live
            "watch_interval": PUSH_INTERVAL,
        }

    def _claims(self, caller: Identity) -> Any:
        from relay.credentials import Claims

        return Claims(dn=caller.dn, tid=caller.credential_id or "", iat=0.0, exp=0.0, scope=caller.job_scope)

    def daemon(self, caller: Identity, session: str) -> Daemon:
        return self.registry.session(str(session), caller.dn)

    def poll_begin(self, caller: Identity, session: str, results: list[Any] | None = None
                   ) -> tuple[Daemon, list[dict[str, Any]] | None]:
        """The part of a poll that never waits: the results riding on it, and the answer when
        there is no need to wait (requests queued, the daemon gone, the relay stopping)."""
        daemon = self.daemon(caller, session)
        for item in results or ():
            if not isinstance(item, dict) or not isinstance(item.get("id"), str) or "result" not in item:
                raise RelayFault(Fault.BAD_PARAMS, "jobmon.poll: results are [{id: str, result: struct}]")
            self.registry.post_result(daemon, item["id"], item["result"])
        if self.registry.released:  # held polls were answered; a new one waits with backoff
            raise RelayFault(Fault.SHUTTING_DOWN, "the relay is stopping; poll again shortly")
        return daemon, self.registry.take(daemon)

    async def poll(self, caller: Identity, session: str, max_wait: float,
                   results: list[Any] | None = None) -> list[dict[str, Any]]:
        daemon, ready = self.poll_begin(caller, session, results)
        if ready is not None:
            return ready
        return await self.registry.poll(daemon, float(max_wait))

    async def result(self, caller: Identity, session: str, request_id: str, result: Any) -> bool:
        daemon = self.daemon(caller, session)
        return self.registry.post_result(daemon, str(request_id), result)

    async def heartbeat(self, caller: Identity, session: str, status: dict[str, Any]) -> dict[str, Any]:
        daemon = self.daemon(caller, session)
        if isinstance(status, dict):
            for key in ("progress", "resources", "time"):
                if key in status:
                    daemon.status[key] = status[key]
        self.registry.touch(daemon)
        self.note_change(daemon)
        self.publish(self.daemon_struct(daemon))
        return {}

    async def finish(self, caller: Identity, session: str, final: dict[str, Any]) -> bool:
        daemon = self.daemon(caller, session)
        self.registry.finish(daemon, final if isinstance(final, dict) else {})
        self.note_change(daemon)
        struct = self.daemon_struct(daemon)
        self.audit(caller, "jobmon.finish", job=daemon.job, exit_status=_int(final.get("exit_code")))
        self.publish(struct)
        self.job_ended(struct)
        return True


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
