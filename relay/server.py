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
import os
import signal
import socket
import stat
from collections.abc import Callable
from typing import Any

from jobmon.pools.base import Pool
from relay.app import build_app
from relay.config import RelayConfig
from relay.core import RelayCore
from relay.faults import RelayFault
from relay.job_trust import JobTrust, job_trust
from relay.plainio import PlainTransport
from relay.rpc import RpcService
from relay.rpcconn import KEEPALIVE, ConnServer, front_certificate
from relay.slowclients import HeaderDeadlineRunner
from relay.statedir import private_umask
from relay.tls import REFUSALS_ATTR, server_context
from relay.tlsio import TLSListener

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


def listen_socket(host: str, port: int) -> socket.socket:
    """The relay's listening TCP socket (IPv6 when ``host`` is an IPv6 address)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family, backlog=4096)
    except OSError as exc:
        from jobmon.errors import ConfigError

        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


async def open_front(core: RelayCore, web_server: Any, path: str) -> tuple[TLSListener, ConnServer]:
    """Listen on ``path`` for a TLS front's plain HTTP (relay/front.py: who may connect there is
    the trust boundary, so the socket is 0660 and never replaces anything but a stale socket)."""
    conns = ConnServer(core, RpcService(core), web_server, certificate=front_certificate)
    if os.path.lexists(path):
        if not stat.S_ISSOCK(os.lstat(path).st_mode):
            from jobmon.errors import ConfigError

            raise ConfigError(f"front_socket {path} exists and is not a socket")
        os.unlink(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(path)
    os.chmod(path, 0o660)
    sock.listen(4096)
    listener = TLSListener(asyncio.get_running_loop(), sock, None, conns.protocol, transport=PlainTransport)
    listener.start()
    core.auth.front_paths.add(path)
    log.info("serving a TLS front on %s (requests there carry the client certificate in headers)", path)
    return listener, conns


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
    jobmon wrapper and a fresh per-job credential, using ``jobmon.submit.preparer``.

    Imported on the first submission, not at start: it loads the htcondor2 bindings
    (14 MiB of a relay's resident memory), which a relay without submissions never needs."""
    def issue(dn: str) -> tuple[str, str]:
        token, claims = core.credentials.issue(dn)
        return token, claims.tid

    made: list[Callable[[Any, str, str], Any]] = []

    def prepare(submit: Any, caller_dn: str, iwd: str) -> Any:
        if not made:
            try:
                from jobmon.submit.preparer import make_submit_preparer
            except ImportError:  # pragma: no cover - user side not installed
                log.warning("jobmon.submit.preparer unavailable: relay submissions are queued unwrapped")
                made.append(lambda submit, _dn, _iwd: submit)
            else:
                made.append(make_submit_preparer(core.config.url, core.config.state_path, issue=issue,
                                                 ca_pem=core.job_trust.pem))
        return made[0](submit, caller_dn, iwd)

    core.submit_preparer = prepare


async def run(config: RelayConfig, pool: Pool | None, ready: asyncio.Future[Any] | None = None,
              stop: asyncio.Event | None = None, on_ready: Callable[[str], None] | None = None) -> None:
    """Serve until ``stop`` is set (or a signal arrives); ``ready`` gets ``(host, port, core)`` and
    ``on_ready(url)`` is called once the port is bound and the relay answers."""
    ssl_ctx = make_ssl(config)
    core = RelayCore(config, pool)
    setattr(ssl_ctx, REFUSALS_ATTR, core.tls_refusals)  # noqa: B010 - an attribute SSLContext lacks
    legacy = await _start_legacy(core, config)
    app = build_app(core, config)
    runner = HeaderDeadlineRunner(app, header_timeout=config.client_timeout, auto_decompress=False, access_log=None,
                                  keepalive_timeout=KEEPALIVE, handle_signals=False, shutdown_timeout=5.0)
    await runner.setup()
    assert runner.server is not None
    loop = asyncio.get_running_loop()
    conns = ConnServer(core, RpcService(core), runner.server)
    sock = listen_socket(config.host, config.port)
    listener = TLSListener(loop, sock, ssl_ctx, conns.protocol, handshake_timeout=config.client_timeout)
    listener.start()
    front = await open_front(core, runner.server, config.front_socket) if config.front_socket else None
    stop = stop or asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # pragma: no cover - not the main thread
            pass
    host, port = sock.getsockname()[:2]
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
        log.info("stopping: no new commands; waiting for those running, then answering open long-polls")
        t0 = loop.time()
        core.begin_stop()
        # still accepting: results of commands already running may come on a new connection
        if legacy is not None:
            await legacy.stop()
        await core.drain()
        listener.close()
        if front is not None:
            front[0].close()
        # then the held polls get [] and their connections close: a daemon's next poll finds no
        # relay and waits (its backoff) instead of asking a stopping one again and again
        await core.release_polls()  # aiohttp's cleanup would cancel the long-polls instead of answering them
        log.info("drained in %.2f s; closing %d connections", loop.time() - t0, len(conns.conns))
        conns.close()
        if front is not None:
            front[1].close()
        listener.abort_handshakes()
        await runner.cleanup()
        await core.close()
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                loop.remove_signal_handler(sig)
            except (NotImplementedError, RuntimeError):  # pragma: no cover
                pass
        if pool is not None:
            pool.close()
        log.info("relay stopped in %.2f s", loop.time() - t0)


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
