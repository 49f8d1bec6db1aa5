"""``serve(config, pool)``: run the relay in the foreground until SIGTERM/SIGINT.

Logs the address it serves and its effective configuration at start. On
SIGTERM or SIGINT: stop accepting, answer every open long-poll (daemons see
an empty poll and reconnect to the next relay), fail waiting commands with
fault 998, flush the audit log, close the pool.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import signal
from collections.abc import Callable
from typing import Any

from aiohttp import web

from jobmon.pools.base import Pool
from relay.app import build_app
from relay.config import RelayConfig
from relay.core import RelayCore
from relay.faults import RelayFault
from relay.job_trust import JobTrust, job_trust
from relay.slowclients import HeaderDeadlineRunner
from relay.statedir import private_umask
from relay.tls import REFUSALS_ATTR, server_context

log = logging.getLogger("relay.server")


def make_ssl(config: RelayConfig) -> Any:
    try:
        return server_context(
            str(config.cert_path), str(config.key_path), config.ca_file or None, config.ca_dir or None
        )
    except RelayFault as f:
        from jobmon.errors import ConfigError

        raise ConfigError(f.message) from None
    except (OSError, ValueError) as exc:
        from jobmon.errors import ConfigError

        raise ConfigError(f"cannot load host certificate {config.cert_path} / key {config.key_path}: {exc}") from None


def work_out_job_trust(config: RelayConfig) -> JobTrust:
    """What every job must carry to verify this relay (relay/job_trust.py), logged once."""
    trust = job_trust(config.url, config.cert_path, config.key_path, config.ca_file, config.ca_dir,
                      config.job_ca_file)
    log.info("jobs and the relay's certificate: %s", trust.reason)
    if trust.problem:
        log.warning("%s", trust.problem)
    return trust


def install_submit_preparer(core: RelayCore) -> None:
    """Wrap descriptions submitted through the relay (web form, plain clients) with the
    jobmon wrapper and a fresh per-job credential, using ``jobmon.submit.preparer``."""
    try:
        from jobmon.submit.preparer import make_submit_preparer
    except ImportError:  # pragma: no cover - user side not installed
        log.warning("jobmon.submit.preparer unavailable: relay submissions are queued unwrapped")
        return

    def issue(dn: str) -> tuple[str, str]:
        token, claims = core.credentials.issue(dn)
        return token, claims.tid

    core.submit_preparer = make_submit_preparer(core.config.url, core.config.state_path, issue=issue,
                                                ca_pem=core.job_trust.pem)


async def run(config: RelayConfig, pool: Pool | None, ready: asyncio.Future[Any] | None = None,
              stop: asyncio.Event | None = None, on_ready: Callable[[str], None] | None = None) -> None:
    """Serve until ``stop`` is set (or a signal arrives); ``ready`` gets ``(host, port, core)`` and
    ``on_ready(url)`` is called once the port is bound and the relay answers."""
    ssl_ctx = make_ssl(config)
    core = RelayCore(config, pool)
    setattr(ssl_ctx, REFUSALS_ATTR, core.tls_refusals)  # noqa: B010 - an attribute SSLContext lacks
    legacy = await _start_legacy(core, config)
    app = build_app(core, config)
    runner = HeaderDeadlineRunner(app, header_timeout=config.client_timeout, auto_decompress=False, access_log=None, keepalive_timeout=75.0,
                           handle_signals=False, shutdown_timeout=5.0)
    await runner.setup()
    site = web.TCPSite(runner, config.host, config.port, ssl_context=ssl_ctx, backlog=4096)
    await site.start()
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # pragma: no cover - not the main thread
            pass
    sockets = site._server.sockets if site._server is not None else []  # type: ignore[union-attr,attr-defined]
    host, port = sockets[0].getsockname()[:2] if sockets else (config.host, config.port)
    if config.port == 0:  # an ephemeral port (tests): the URL jobs are given must name the real one
        config = dataclasses.replace(config, listen=f"{config.host}:{port}")
        core.config = config
    core.job_trust = work_out_job_trust(config)
    install_submit_preparer(core)
    log.info("effective configuration: %s", json.dumps(config.effective(), default=str, sort_keys=True))
    log.info("JobMon relay %s serving https://%s:%s/clarens (public URL %s)", core.version, host, port, config.url)
    if ready is not None and not ready.done():
        ready.set_result((host, port, core))
    if on_ready is not None:
        on_ready(config.url)
    try:
        await stop.wait()
    finally:
        log.info("stopping: answering open long-polls, flushing the audit log")
        core.begin_stop()
        if legacy is not None:
            await legacy.stop()
        await core.drain()  # aiohttp's cleanup would cancel the long-polls instead of answering them
        await runner.cleanup()
        await core.close()
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                loop.remove_signal_handler(sig)
            except (NotImplementedError, RuntimeError):  # pragma: no cover
                pass
        if pool is not None:
            pool.close()
        log.info("relay stopped")


async def _start_legacy(core: RelayCore, config: RelayConfig) -> Any:
    """The 2005 JobMon daemon's wake-up server, when ``[legacy] enabled = true`` (relay/legacy_hub.py)."""
    if not config.legacy.enabled:
        return None
    from relay.legacy_hub import LegacyHub

    hub = LegacyHub(core, config.legacy)
    await hub.start()
    return hub


def serve(config: RelayConfig, pool: Pool | None, on_ready: Callable[[str], None] | None = None) -> None:
    """Blocking entry point for ``jobmon relay``. Sets the process umask to 077 first:
    the relay's files (audit log, credentials, the pool's job table) are owner-only."""
    private_umask()
    logging.basicConfig(level=getattr(logging, config.log_level.upper(), logging.INFO),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    asyncio.run(run(config, pool, on_ready=on_ready))
