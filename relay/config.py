"""Relay configuration: one TOML file plus overrides from the command line.

Every key, with its default (``relay.toml``)::

    listen = "0.0.0.0:8443"        # host:port of the one HTTPS port
    state_dir = "~/.local/state/jobmon-relay"  # relay.key, audit.sqlite, credentials.sqlite;
                                   #   kept 0700 (narrowed at start if group/others could
                                   #   enter it), the relay runs with umask 077
    host_cert = ""                 # PEM host certificate (chain allowed); "" = <state_dir>/hostcert.pem
    host_key = ""                  # PEM key; "" = <state_dir>/hostkey.pem
    ca_file = ""                   # PEM bundle of trusted CAs
    ca_dir = ""                    # hashed CA directory (X509_CERT_DIR); "" = $X509_CERT_DIR if set
    job_ca_file = ""               # CA bundle every job gets (jobmon-ca.pem) to verify the relay;
                                   #   "" = automatic: nothing when the relay's certificate chains to
                                   #   the system store or the grid CA directory, else the CA
                                   #   certificates of its chain; "none" = never (relay/job_trust.py)
    access_file = ""               # Clarens INI access file; "" = every authenticated DN may call
                                   #   every method (ownership still applies)
    admins = []                    # admin DNs (prefix match on RDN boundaries); group "admins"
                                   #   of the access file counts too
    ownership = []                 # [[ownership]] tables: {user = "regex", job = "regex"};
                                   #   the caller owns a job when both regexes match and every
                                   #   named group they share is equal. Default: equal DNs
    accept_limited_proxies = false # limited proxies authenticate (else fault 303)
    allow_shell = false            # exec with shell=true allowed (else fault 605)
    submit_roots = []              # directories a jobmon.submit options.iwd must lie under (after
                                   #   resolving symlinks); [] = the relay user's home.
                                   #   <state_dir>/submit/ (the uploads area) is always allowed,
                                   #   the rest of <state_dir> always refused (fault 201)
    max_body_bytes = 1048576       # request body cap (fault 101)
    client_timeout = 30.0          # seconds to read a request from a slow client
    poll_wait = 50.0               # longest a daemon's long-poll is held open
    heartbeat = 30.0               # seconds between daemon heartbeats
    reconnect_grace = 120.0        # a daemon silent this long counts as disconnected
    reconnect_allowance = 10.0     # a daemon whose poll connection closed unanswered (killed, node
                                   #   gone) counts as disconnected unless it polls again this soon:
                                   #   its commands then fail at once with 501
    pool_check_interval = 30.0     # how often the pool is asked about jobs whose daemon went silent
    command_timeout = 60.0         # default per-command timeout (seconds)
    max_command_timeout = 3600.0   # largest timeout a caller may ask for
    rate_per_second = 20.0         # per-caller request rate (token bucket refill)
    rate_burst = 100               # per-caller bucket size
    max_commands_per_job = 4       # concurrent commands in one job (fault 702)
    max_output_bytes = 1048576     # per stream, per command; callers may ask for less
    fanout_concurrency = 256       # commands of one execMany in flight at once
    joblist_history = 200          # jobmon.joblist without a cluster: at most this many of the
                                   #   caller's most recently ended jobs from the pool's history
    session_ttl = 43200.0          # Clarens session lifetime (seconds)
    credential_ttl = 1209600.0     # per-job credential lifetime (seconds, 14 days)
    public_url = ""                # URL users and jobs reach the relay at; "" = https://<host>:<port>/clarens
    smtp_host = ""                 # mail when jobs end (relay/mail.py); "" = no mail
    smtp_port = 25
    smtp_from = "jobmon@localhost"
    smtp_starttls = false
    smtp_user = ""
    smtp_password = ""
    log_level = "INFO"
    front_socket = ""              # a Unix socket a TLS front (HAProxy, nginx) forwards plain HTTP to,
                                   #   with the client certificate it verified in X-JobMon-Client-*
                                   #   headers (relay/front.py); "" = none. Whoever can connect to it
                                   #   can claim any identity: made 0660, keep its directory closed
    legacy = { enabled = false }   # the 2005 JobMon daemon (JobMon.* methods, docs/PROTOCOL.md),
                                   #   usually written as a table, with these keys:
    [legacy]
    enabled = false                # serve it: registerJob answers its settings, wake-ups are sent
    wakeup = "tcp"                 # "tcp": it connects out to the wake-up server (TCPbroadcast);
                                   #   "udp": datagrams to the port it registered, sent only to
                                   #   the address its TLS connection came from (UDPbroadcast)
    tcp_listen = "0.0.0.0:2000"    # host:port of the TCP wake-up server (port 0 = any free port)
    tcp_host = ""                  # the name daemons connect to; "" = the public URL's host
    reconnect_time = 300           # JobMon_reconnect_time sent to daemons (seconds, 10-3600)
    max_connections = 4096         # wake-up connections held at once
    max_connections_per_host = 64  # ... from one address (one per legacy job there)
    hello_timeout = 10.0           # a connection must say "register" within this many seconds
"""

from __future__ import annotations

import dataclasses
import os
import socket
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jobmon.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.9/3.10
    import tomli as tomllib  # type: ignore[no-redef]


@dataclass(frozen=True)
class OwnershipRule:
    user: str
    job: str


_WAKEUPS = ("tcp", "udp")


@dataclass(frozen=True)
class LegacyConfig:
    """The ``[legacy]`` table: serving the 2005 JobMon daemon (relay/legacy*.py)."""

    enabled: bool = False
    wakeup: str = "tcp"
    tcp_listen: str = "0.0.0.0:2000"
    tcp_host: str = ""
    reconnect_time: int = 300
    max_connections: int = 4096
    max_connections_per_host: int = 64
    hello_timeout: float = 10.0

    @property
    def tcp_bind(self) -> tuple[str, int]:
        host, _, port = self.tcp_listen.rpartition(":")
        return host or "0.0.0.0", int(port)


def _legacy_value(key: str, default: Any, value: Any) -> Any:
    kind = type(default)
    if kind is bool and isinstance(value, bool):
        return value
    if kind is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if kind is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if kind is str and isinstance(value, str):
        return value
    raise ConfigError(f"relay config: legacy.{key} must be {kind.__name__}, got {value!r}")


def _legacy(value: Any) -> LegacyConfig:
    if isinstance(value, LegacyConfig):
        return value
    if not isinstance(value, Mapping):
        raise ConfigError(f"relay config: [legacy] must be a table, got {value!r}")
    value = {str(k).replace("-", "_"): v for k, v in value.items()}
    known = {f.name: f for f in dataclasses.fields(LegacyConfig)}
    unknown = sorted(set(value) - set(known))
    if unknown:
        raise ConfigError(f"relay config: unknown key(s) in [legacy]: {', '.join(unknown)}")
    kwargs = {k: _legacy_value(k, known[k].default, v) for k, v in value.items()}
    cfg = LegacyConfig(**kwargs)
    if cfg.wakeup not in _WAKEUPS:
        raise ConfigError(f"relay config: legacy.wakeup must be \"tcp\" or \"udp\", got {cfg.wakeup!r}")
    host, sep, port = cfg.tcp_listen.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise ConfigError(f"relay config: legacy.tcp_listen must be HOST:PORT, got {cfg.tcp_listen!r}")
    if not 10 <= cfg.reconnect_time <= 3600:
        raise ConfigError(f"relay config: legacy.reconnect_time must be 10-3600 seconds, got {cfg.reconnect_time}")
    if cfg.max_connections < 1 or cfg.max_connections_per_host < 1 or cfg.hello_timeout <= 0:
        raise ConfigError("relay config: legacy.max_connections, max_connections_per_host and "
                          "hello_timeout must be positive")
    if any(c.isspace() or c == "=" for c in cfg.tcp_host) or not cfg.tcp_host.isascii():
        raise ConfigError(f"relay config: legacy.tcp_host must be a host name, got {cfg.tcp_host!r}")
    return cfg


@dataclass(frozen=True)
class RelayConfig:
    listen: str = "0.0.0.0:8443"
    state_dir: str = "~/.local/state/jobmon-relay"
    host_cert: str = ""
    host_key: str = ""
    ca_file: str = ""
    ca_dir: str = ""
    job_ca_file: str = ""
    access_file: str = ""
    admins: tuple[str, ...] = ()
    ownership: tuple[OwnershipRule, ...] = ()
    accept_limited_proxies: bool = False
    allow_shell: bool = False
    submit_roots: tuple[str, ...] = ()
    max_body_bytes: int = 1048576
    client_timeout: float = 30.0
    poll_wait: float = 50.0
    heartbeat: float = 30.0
    reconnect_grace: float = 120.0
    reconnect_allowance: float = 10.0
    pool_check_interval: float = 30.0
    command_timeout: float = 60.0
    max_command_timeout: float = 3600.0
    rate_per_second: float = 20.0
    rate_burst: int = 100
    max_commands_per_job: int = 4
    max_output_bytes: int = 1048576
    fanout_concurrency: int = 256
    joblist_history: int = 200
    session_ttl: float = 43200.0
    credential_ttl: float = 1209600.0
    public_url: str = ""
    smtp_host: str = ""
    smtp_port: int = 25
    smtp_from: str = "jobmon@localhost"
    smtp_starttls: bool = False
    smtp_user: str = ""
    smtp_password: str = field(default="", repr=False)
    log_level: str = "INFO"
    front_socket: str = ""
    legacy: LegacyConfig = field(default_factory=LegacyConfig)

    @property
    def host(self) -> str:
        return self.listen.rsplit(":", 1)[0] or "0.0.0.0"

    @property
    def port(self) -> int:
        return int(self.listen.rsplit(":", 1)[1])

    @property
    def state_path(self) -> Path:
        return Path(os.path.expanduser(self.state_dir))

    @property
    def submit_root_paths(self) -> tuple[Path, ...]:
        """Where ``options.iwd`` may point (resolved); the default is home + the uploads area."""
        roots = self.submit_roots or (os.path.expanduser("~"), str(self.state_path / "submit"))
        return tuple(Path(os.path.realpath(os.path.expanduser(r))) for r in roots)

    @property
    def cert_path(self) -> Path:
        return Path(self.host_cert) if self.host_cert else self.state_path / "hostcert.pem"

    @property
    def key_path(self) -> Path:
        return Path(self.host_key) if self.host_key else self.state_path / "hostkey.pem"

    @property
    def url(self) -> str:
        if self.public_url:
            return self.public_url
        host = self.host if self.host not in ("0.0.0.0", "::", "") else socket.getfqdn()
        return f"https://{host}:{self.port}/clarens"

    def effective(self) -> dict[str, Any]:
        """The configuration as logged at start (secrets masked)."""
        out = dataclasses.asdict(self)
        if out.get("smtp_password"):
            out["smtp_password"] = "***"
        return out


_FIELDS = {f.name: f for f in dataclasses.fields(RelayConfig)}


def _coerce(name: str, value: Any) -> Any:
    if name == "legacy":
        return _legacy(value)
    default = _FIELDS[name].default
    if name in ("admins", "submit_roots"):
        what = "DNs" if name == "admins" else "directories"
        if isinstance(value, str):
            return tuple(v.strip() for v in value.split(",") if v.strip())
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"relay config: {name} must be a list of {what}, got {value!r}")
        return tuple(value)
    if name == "ownership":
        rules = []
        for item in value or ():
            if isinstance(item, OwnershipRule):
                rules.append(item)
            elif isinstance(item, Mapping) and isinstance(item.get("user"), str) and isinstance(item.get("job"), str):
                rules.append(OwnershipRule(user=item["user"], job=item["job"]))
            else:
                raise ConfigError(f"relay config: ownership rules are {{user = 'regex', job = 'regex'}}, got {item!r}")
        return tuple(rules)
    if isinstance(default, bool):
        if isinstance(value, str):
            if value.lower() in ("1", "true", "yes", "on"):
                return True
            if value.lower() in ("0", "false", "no", "off"):
                return False
        if isinstance(value, bool):
            return value
        raise ConfigError(f"relay config: {name} must be true or false, got {value!r}")
    try:
        if isinstance(default, int):
            return int(value)
        if isinstance(default, float):
            return float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"relay config: {name} must be a number, got {value!r}") from None
    if not isinstance(value, str):
        raise ConfigError(f"relay config: {name} must be a string, got {value!r}")
    return value


def load_config(path: str | None, overrides: Mapping[str, Any] | None = None) -> RelayConfig:
    """Read ``path`` (TOML; ``None`` = defaults only) and apply ``overrides`` (``None`` values ignored)."""
    values: dict[str, Any] = {}
    if path:
        try:
            with open(path, "rb") as fh:
                data = tomllib.load(fh)
        except OSError as exc:
            raise ConfigError(f"cannot read relay config {path}: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"relay config {path} is not valid TOML: {exc}") from None
        top = data
        data = dict(data.get("relay", data)) if isinstance(data.get("relay"), dict) else dict(data)
        if "legacy" in top and "legacy" not in data:  # [legacy] beside a [relay] table
            data["legacy"] = top["legacy"]
        values.update(data)
    for key, val in (overrides or {}).items():
        if val is not None:
            values[key.replace("-", "_")] = val
    unknown = sorted(set(values) - set(_FIELDS))
    if unknown:
        raise ConfigError(f"relay config: unknown key(s) {', '.join(unknown)}")
    kwargs = {k: _coerce(k, v) for k, v in values.items()}
    if "ca_dir" not in kwargs and os.environ.get("X509_CERT_DIR"):
        kwargs["ca_dir"] = os.environ["X509_CERT_DIR"]
    cfg = RelayConfig(**kwargs)
    if ":" not in cfg.listen or not cfg.listen.rsplit(":", 1)[1].isdigit():
        raise ConfigError(f"relay config: listen must be HOST:PORT, got {cfg.listen!r}")
    return cfg
