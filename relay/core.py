"""``RelayCore``: every user and daemon operation, with no HTTP in sight.

Methods are async, take the caller's :class:`relay.identity.Identity` first
and raise :class:`relay.faults.RelayFault`; the XML-RPC methods
(:mod:`relay.methods`) and the web pages (``relay.web``) both call them.
Hooks for the web pages: :meth:`subscribe` (async iterator of job structs)
and :meth:`on_job_end` (callback with the job struct when a daemon reports
its end). Daemon operations live in :mod:`relay.daemon_ops`, live-progress
watching in :mod:`relay.watch_ops`.
"""

from __future__ import annotations

import asyncio
import base64
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jobmon.errors import JobmonError
from jobmon.jobstate import State
from jobmon.pools.base import JobAction
from jobmon.routing import same_relay
from relay import returned
from relay.admin_ops import AdminCore
from relay.base import _parse_job
from relay.faults import Fault, RelayFault
from relay.identity import Identity
from relay.jobs import ad_id, owner_dn

_EXEC_KEYS = {"timeout", "shell", "max_output", "cwd"}


def _str_list(value: Any, what: str) -> list[str]:
    if not isinstance(value, (list, tuple)) or not value or not all(isinstance(v, str) for v in value):
        raise RelayFault(Fault.BAD_PARAMS, f"{what} must be a non-empty array of strings")
    return list(value)


def _number(options: Mapping[str, Any], key: str, default: float) -> float:
    val = options.get(key, default)
    if isinstance(val, bool) or not isinstance(val, (int, float)):
        raise RelayFault(Fault.BAD_PARAMS, f"option {key} must be a number")
    return float(val)


class RelayCore(AdminCore):
    # -- who am I --------------------------------------------------------
    async def whoami(self, caller: Identity) -> dict[str, Any]:
        return {"dn": caller.dn, "admin": self.is_admin(caller), "auth": caller.kind}

    # -- jobs ------------------------------------------------------------
    async def joblist(self, caller: Identity, filt: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        filt = dict(filt or {})
        everyone = bool(filt.get("all")) and self.is_admin(caller)
        parts = []
        cluster = filt.get("cluster")
        if cluster is not None:
            if isinstance(cluster, bool) or not isinstance(cluster, int):
                raise RelayFault(Fault.BAD_PARAMS, "filter.cluster must be an int")
            parts.append(f"ClusterId == {cluster}")
        constraint = filt.get("constraint")
        if constraint is not None:
            if not isinstance(constraint, str):
                raise RelayFault(Fault.BAD_PARAMS, "filter.constraint must be a ClassAd expression string")
            parts.append(f"({constraint})")
        expr = " && ".join(parts) or "true"
        ads = await self.pool_ads(expr)
        ads += await self._ended_ads(caller, expr, everyone, whole_cluster=cluster is not None)
        seen: set[str] = set()
        out: list[dict[str, Any]] = []
        for ad in ads:
            jid = ad_id(ad)
            if jid is None or jid in seen:
                continue
            seen.add(jid)
            daemon = self.registry.by_job.get(jid)
            owner = owner_dn(ad, daemon)
            if everyone or (owner is not None and self.ownership.owns(caller.dn, owner)):
                out.append(self.struct(ad, daemon))
        if constraint is None:
            rest = [(jid, d) for jid, d in list(self.registry.by_job.items()) if jid not in seen
                    and (cluster is None or jid.startswith(f"{cluster}."))
                    and (everyone or self.ownership.owns(caller.dn, d.dn))]
            past = {} if cluster is not None else await self._history_of(
                [jid for jid, d in rest if d.final is not None or not self.registry.connected(jid)])
            for jid, daemon in rest:
                out.append(self.struct(past.get(jid), daemon))
        state = filt.get("state")
        if isinstance(state, str) and state:
            out = [j for j in out if j.get("state") == state]
        out.sort(key=_job_sort_key)
        return out

    async def status(self, caller: Identity, job: str) -> dict[str, Any]:
        ad, daemon = await self.authorize_job(caller, "jobmon.status", str(job))
        return self.struct(ad, daemon)

    async def returned_files(self, caller: Identity, job: str) -> list[dict[str, Any]] | None:
        """``[{name, size, mtime}]`` of the output files an ended job returned to its iwd
        (its output, error, log and transfer_output_files, or without transfer_output_files
        the files it created or changed; nothing else); None while it runs."""
        ad, daemon = await self.authorize_job(caller, "jobmon.returnedFiles", str(job))
        struct = self.struct(ad, daemon)
        if not State(struct["state"]).ended:
            return None
        if ad is None:
            return []
        return await asyncio.to_thread(returned.returned_files, ad)

    async def _live(self, caller: Identity, method: str, job: str, argv: list[str] | None = None) -> str:
        """Authorize a live operation on one job whose daemon must be connected."""
        job = str(job)
        ad, daemon = await self.authorize_job(caller, method, job, argv, with_ad=False)
        if daemon is not None and daemon.final is None and self.registry.connected(job):
            return job
        if daemon is not None and daemon.final is not None:
            raise RelayFault(Fault.JOB_ENDED, f"job {job} has ended; live commands are no longer possible")
        if ad is not None and State(self.struct(ad, None)["state"]).ended:
            raise RelayFault(Fault.JOB_ENDED, f"job {job} has ended; live commands are no longer possible")
        raise RelayFault(Fault.JOB_NOT_CONNECTED, f"job {job} exists but its daemon is not connected (yet)")

    async def _op(self, caller: Identity, method: str, job: str, op: str, args: dict[str, Any],
                  timeout: float, argv: list[str] | None = None) -> dict[str, Any]:
        started = time.monotonic()
        status: int | None = None
        nbytes = 0
        note = None
        try:
            job = await self._live(caller, method, job, argv)
            with self.concurrency.slot(job):
                result = await self.registry.call(job, op, args, timeout)
            if not isinstance(result, dict):
                raise RelayFault(Fault.INTERNAL, f"job {job}'s daemon answered {op} with a non-struct")
            if "fault" in result:
                code = result.get("fault")
                raise RelayFault(int(code) if isinstance(code, int) else Fault.INTERNAL,
                                 str(result.get("message", f"{op} failed in job {job}")))
            if op == "exec":
                _cap_output(result, int(args.get("max_output", self.config.max_output_bytes)))
            status = result.get("exit_code") if isinstance(result.get("exit_code"), int) else None
            nbytes = sum(len(v) for k in ("stdout", "stderr", "data")
                         if isinstance(v := result.get(k), (bytes, bytearray)))
            return result
        except RelayFault as f:
            note = f"{f.code} {f.message}"
            raise
        finally:
            if note is None or not note.startswith(str(Fault.NOT_OWNER.value)):
                self.audit(caller, method, job=job, argv=argv, exit_status=status, nbytes=nbytes,
                           duration=time.monotonic() - started, note=note)

    def _exec_args(self, argv: Any, options: Mapping[str, Any] | None) -> tuple[dict[str, Any], float]:
        argv = _str_list(argv, "argv")
        options = dict(options or {})
        unknown = set(options) - _EXEC_KEYS
        if unknown:
            raise RelayFault(Fault.BAD_PARAMS, f"unknown exec option(s): {', '.join(sorted(unknown))}")
        shell = bool(options.get("shell", False))
        if shell and not self.config.allow_shell:
            raise RelayFault(Fault.SHELL_NOT_ALLOWED, "this relay does not allow shell commands; pass an argument list")
        timeout = _number(options, "timeout", self.config.command_timeout)
        if timeout <= 0 or timeout > self.config.max_command_timeout:
            raise RelayFault(Fault.BAD_PARAMS, f"timeout must be in (0, {self.config.max_command_timeout:g}] s")
        max_output = min(_number(options, "max_output", self.config.max_output_bytes), self.config.max_output_bytes)
        cwd = options.get("cwd", ".")
        if not isinstance(cwd, str):
            raise RelayFault(Fault.BAD_PARAMS, "option cwd must be a string")
        args = {"argv": argv, "shell": shell, "timeout": timeout, "max_output": float(max_output), "cwd": cwd}
        return args, timeout

    async def exec(self, caller: Identity, job: str, argv: Any, options: Mapping[str, Any] | None = None) -> dict[str, Any]:
        args, timeout = self._exec_args(argv, options)
        return await self._op(caller, "jobmon.exec", job, "exec", args, _grace(timeout), args["argv"])

    exec_ = exec

    async def exec_many(self, caller: Identity, target: Mapping[str, Any], argv: Any,
                        options: Mapping[str, Any] | None = None) -> dict[str, Any]:
        args, timeout = self._exec_args(argv, options)
        jobs, elsewhere = await self._targets(caller, target)
        allowed = []
        may: dict[str, bool] = {}  # by owner DN: a cluster's daemons share one
        for job in jobs:
            daemon = self.registry.by_job.get(job)
            if daemon is None:
                allowed.append(job)  # checked per job (pool ad) when it runs
                continue
            ok = may.get(daemon.dn)
            if ok is None:
                ok = may[daemon.dn] = self.may_act(caller, daemon.dn)
            if ok:
                allowed.append(job)
        self.audit(caller, "jobmon.execMany", argv=args["argv"], note=f"{len(allowed)} jobs")

        async def run(job: str) -> dict[str, Any]:
            return await self._op(caller, "jobmon.exec", job, "exec", dict(args), _grace(timeout), args["argv"])

        batch = self.batches.start(caller.dn, allowed, run)
        out: dict[str, Any] = {"batch": batch.id, "jobs": allowed}
        if elsewhere:
            out["elsewhere"] = elsewhere
        return out

    async def _targets(self, caller: Identity, target: Mapping[str, Any]) -> tuple[list[str], dict[str, list[str]]]:
        """The jobs to run on here, and by relay URL those whose ad names another relay and whose
        daemon is not here (the caller runs them there: jobmon/routing.py)."""
        if not isinstance(target, Mapping) or len(target) != 1:
            raise RelayFault(Fault.BAD_PARAMS, "target must be {cluster: int}, {jobs: [...]} or {constraint: str}")
        if "jobs" in target:
            return [str(j) for j in _str_list(target["jobs"], "target.jobs")], {}
        everyone = self.is_admin(caller)
        if "cluster" in target:
            c = target["cluster"]
            if isinstance(c, bool) or not isinstance(c, int):
                raise RelayFault(Fault.BAD_PARAMS, "target.cluster must be an int")
            found = {j for j in self.registry.by_job if j.startswith(f"{c}.")}
            expr = f"ClusterId == {c}"
        elif "constraint" in target and isinstance(target["constraint"], str):
            found = set()
            expr = f"({target['constraint']})"
        else:
            raise RelayFault(Fault.BAD_PARAMS, "target must be {cluster: int}, {jobs: [...]} or {constraint: str}")
        elsewhere: dict[str, list[str]] = {}
        for ad in await self.pool_ads(f"{expr} && JobStatus == 2"):
            jid = ad_id(ad)
            if jid and (everyone or self.ownership.owns(caller.dn, owner_dn(ad, self.registry.by_job.get(jid)) or "")):
                relay = ad.get("JobMonRelay")
                if isinstance(relay, str) and relay and jid not in self.registry.by_job \
                        and not same_relay(relay, self.config.url):
                    elsewhere.setdefault(relay, []).append(jid)
                else:
                    found.add(jid)
        for ids in elsewhere.values():
            ids.sort(key=_id_key)
        return sorted(found, key=_id_key), elsewhere

    async def batch_results(self, caller: Identity, batch: str, wait: float = 0.0) -> dict[str, Any]:
        b = self.batches.get(str(batch), caller.dn, self.is_admin(caller))
        results, done = await b.take(min(max(0.0, float(wait)), self.config.poll_wait))
        return {"results": results, "done": done}

    async def read(self, caller: Identity, job: str, path: str, offset: float = 0.0,
                   length: float = 65536.0, wait: float = 0.0) -> dict[str, Any]:
        wait = max(0.0, min(float(wait), self.config.poll_wait))
        length = max(0.0, min(float(length), float(self.config.max_output_bytes)))
        args = {"path": str(path), "offset": float(offset), "length": length, "wait": wait}
        return await self._op(caller, "jobmon.read", job, "read", args, self.config.command_timeout + wait)

    async def listdir(self, caller: Identity, job: str, path: str = ".") -> dict[str, Any]:
        return await self._op(caller, "jobmon.listdir", job, "list", {"path": str(path)}, self.config.command_timeout)

    async def stat(self, caller: Identity, job: str, path: str) -> dict[str, Any]:
        return await self._op(caller, "jobmon.stat", job, "stat", {"path": str(path)}, self.config.command_timeout)

    async def ps(self, caller: Identity, job: str) -> dict[str, Any]:
        return await self._op(caller, "jobmon.ps", job, "ps", {}, self.config.command_timeout)

    # -- pool actions ----------------------------------------------------
    async def _act(self, caller: Identity, action: JobAction, job: str, reason: str | None) -> dict[str, Any]:
        method = f"jobmon.{action.value}"
        jid = _parse_job(str(job))
        if jid is None:
            raise RelayFault(Fault.BAD_PARAMS, f"{job!r} is not a job id (C.P or C)")
        ads = await self.pool_ads(jid.constraint())
        if not ads:
            raise RelayFault(Fault.UNKNOWN_JOB, f"no job {job} in the pool's queue")
        ids = []
        for ad in ads:
            jobid = ad_id(ad) or "?"
            if not self.may_act(caller, owner_dn(ad, self.registry.by_job.get(jobid))):
                raise self.deny(caller, method, RelayFault(Fault.NOT_OWNER, f"you may not act on job {jobid}"), jobid)
            ids.append(jobid)
        assert self.pool is not None
        await self.pool_call(action.value, self.pool.act, action, jid.constraint(), reason)
        self.audit(caller, method, job=str(job), note=reason)
        return {"jobs": sorted(ids, key=_id_key)}

    async def remove(self, caller: Identity, job: str, reason: str = "") -> dict[str, Any]:
        return await self._act(caller, JobAction.REMOVE, job, reason or f"removed via jobmon by {caller.dn}")

    async def hold(self, caller: Identity, job: str, reason: str = "") -> dict[str, Any]:
        return await self._act(caller, JobAction.HOLD, job, reason or f"held via jobmon by {caller.dn}")

    async def release(self, caller: Identity, job: str) -> dict[str, Any]:
        return await self._act(caller, JobAction.RELEASE, job, None)

    async def submit(self, caller: Identity, description: str, options: Mapping[str, Any] | None = None) -> dict[str, Any]:
        from relay import submit as submit_mod

        result = await submit_mod.submit(self, caller, str(description), dict(options or {}))
        self.watcher.clusters.add(int(result["cluster"]))
        self.audit(caller, "jobmon.submit", job=str(result["cluster"]))
        return result

    # -- credentials and web login -----------------------------------------
    async def issue_credential(self, caller: Identity, options: Mapping[str, Any] | None = None) -> dict[str, Any]:
        if caller.kind == "credential":
            raise RelayFault(Fault.ACCESS_DENIED, "a job credential cannot issue credentials")
        cluster = (options or {}).get("cluster")
        if cluster is not None and (isinstance(cluster, bool) or not isinstance(cluster, int)):
            raise RelayFault(Fault.BAD_PARAMS, "options.cluster must be an int")
        token, claims = self.credentials.issue(caller.dn, cluster)
        self.audit(caller, "jobmon.issueCredential", job=str(cluster) if cluster is not None else None,
                   note=f"id={claims.tid}")
        out: dict[str, Any] = {"token": token, "id": claims.tid, "expires": claims.exp}
        if self.job_trust.pem:
            out["ca_pem"] = self.job_trust.pem  # public: the CA jobs need to verify this relay
        return out

    async def job_trust_info(self, caller: Identity) -> dict[str, Any]:
        """What a job of this relay must carry to verify it: ``{ca_pem, reason}`` (ca_pem "" = nothing)."""
        return {"ca_pem": self.job_trust.pem, "reason": self.job_trust.reason}

    async def bind_credential(self, caller: Identity, cred_id: str, cluster: int) -> bool:
        if isinstance(cluster, bool) or not isinstance(cluster, int):
            raise RelayFault(Fault.BAD_PARAMS, "cluster must be an int")
        self.credentials.bind(str(cred_id), cluster, caller.dn)
        return True

    async def web_login(self, caller: Identity) -> dict[str, Any]:
        if self.web_login_hook is not None:
            url, expires = self.web_login_hook(caller.dn)
        else:
            token, expires = self.web_logins.issue(caller.dn)
            base = self.config.url.rsplit("/clarens", 1)[0]
            url = f"{base}/login?token={token}"
        self.audit(caller, "jobmon.webLogin")
        return {"url": url, "expires": expires}

    def submit_dir(self) -> Path:
        d = self.config.state_path / "submit" / f"{int(time.time())}-{os.urandom(4).hex()}"
        d.mkdir(parents=True, exist_ok=False)
        return d

    @staticmethod
    def decode_files(files: Mapping[str, Any]) -> dict[str, bytes]:
        out = {}
        for name, data in files.items():
            if not isinstance(name, str) or "/" in name or name in ("", ".", ".."):
                raise RelayFault(Fault.BAD_PARAMS, f"file name {name!r} must be a plain name")
            if isinstance(data, (bytes, bytearray)):
                out[name] = bytes(data)
            elif isinstance(data, str):
                out[name] = base64.b64decode(data)
            else:
                raise RelayFault(Fault.BAD_PARAMS, f"file {name!r} must be base64")
        return out


def _cap_output(result: dict[str, Any], cap: int) -> None:
    """Enforce the output limit even if a daemon sends more than it was asked to."""
    for key in ("stdout", "stderr"):
        data = result.get(key)
        if isinstance(data, (bytes, bytearray)) and len(data) > cap:
            result[key] = bytes(data[:cap])
            result["truncated"] = True


def _grace(timeout: float) -> float:
    """How long the relay waits for an exec the daemon itself stops after ``timeout`` s."""
    return timeout + 2.0 + 0.1 * timeout


def _id_key(job: str) -> tuple[int, int, str]:
    c, _, p = job.partition(".")
    if c.isdigit() and p.isdigit():
        return (int(c), int(p), "")
    return (1 << 62, 0, job)


def _job_sort_key(j: dict[str, Any]) -> tuple[int, int, str]:
    return _id_key(str(j.get("id", "")))


__all__ = ["RelayCore", "JobmonError"]
