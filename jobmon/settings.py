"""Where the CLI finds its relay, its state directory and its credentials.

Precedence, highest first: command-line flags, environment (``JOBMON_*``,
``X509_*``), the config file (``~/.jobmon/config.toml`` or ``--config``),
HTCondor's configuration (``JOBMON_RELAY_URL`` ...), built-in defaults.
Loaded by ``jobmon.cli.main.main`` only, never at import time.

Credentials are found the way grid tools find them: ``--cert``/``--key`` or
``--proxy``, ``X509_USER_PROXY``, ``/tmp/x509up_u<uid>``,
``~/.globus/usercert.pem`` + ``userkey.pem``, and finally the zero-setup local
user certificate kept in the state directory (made by ``jobmon.pki``).

Every ``jobmon`` command starts here, so nothing is imported that a command
may not need (docs/PERFORMANCE.md, "CLI latency"): no ``dataclasses``, the
TOML parser only when a config file exists, ``jobmon.pki`` (and
``cryptography``) only when the local certificate must be made, and the
HTCondor bindings only when an HTCondor configuration exists
(:func:`_condor_param`). Credential discovery only looks at paths; the TLS
layer reads the certificate and key files.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

from jobmon.errors import AuthError, ConfigError
from jobmon.record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

#: config-file keys and the Settings field they set
CONFIG_KEYS = (
    "relay", "state_dir", "cert", "key", "proxy", "ca_dir", "ca_file", "pool", "slots", "listen",
)
#: HTCondor knobs consulted (lowest precedence before defaults)
CONDOR_KNOBS = {"relay": "JOBMON_RELAY_URL", "state_dir": "JOBMON_STATE_DIR"}
DEFAULT_GRID_CA_DIR = Path("/etc/grid-security/certificates")
#: where HTCondor looks for its configuration when CONDOR_CONFIG is not set (the
#: list the htcondor2 bindings check before they fall back to no configuration)
CONDOR_GLOBAL_CONFIGS = ("/etc/condor/condor_config", "/usr/local/etc/condor_config", "~condor/condor_config")


class Credentials(Record):
    """What the client presents and trusts. ``cert`` may hold the key too (a proxy)."""

    __slots__ = ("cert", "key", "ca_file", "ca_dir", "source")
    cert: Path
    key: Path | None
    ca_file: Path | None
    ca_dir: Path | None
    source: str  # "flags", "proxy", "X509_USER_PROXY", "usercert", "local"

    def __init__(self, cert: Path, key: Path | None, ca_file: Path | None, ca_dir: Path | None,
                 source: str) -> None:
        self._set(cert, key, ca_file, ca_dir, source)


class Settings(Record):
    """The merged settings of one command (immutable; see :func:`load_settings`)."""

    __slots__ = ("relay", "state_dir", "cert", "key", "proxy", "ca_dir", "ca_file", "pool", "slots",
                 "listen", "config_file", "verbose", "origin")
    relay: str | None
    state_dir: Path
    cert: Path | None
    key: Path | None
    proxy: Path | None
    ca_dir: Path | None
    ca_file: Path | None
    pool: str
    slots: int | None
    listen: str | None
    config_file: Path | None
    verbose: int
    #: where each value came from, for `jobmon -v` and tests
    origin: Mapping[str, str]

    def __init__(self, relay: str | None = None, state_dir: Path | None = None, cert: Path | None = None,
                 key: Path | None = None, proxy: Path | None = None, ca_dir: Path | None = None,
                 ca_file: Path | None = None, pool: str = "local", slots: int | None = None,
                 listen: str | None = None, config_file: Path | None = None, verbose: int = 0,
                 origin: Mapping[str, str] | None = None) -> None:
        self._set(relay, Path.home() / ".jobmon" if state_dir is None else state_dir, cert, key, proxy,
                  ca_dir, ca_file, pool, slots, listen, config_file, verbose, dict(origin or {}))

    # ---------------------------------------------------------------- relay
    def relay_url(self) -> str:
        """The relay to talk to: explicit setting, else the local relay's record."""
        if self.relay:
            return self.relay
        rec = read_relay_record(self.state_dir)
        if rec is not None:
            return str(rec["url"])
        raise ConfigError(
            "no relay configured",
            hint=f"start one with `jobmon relay`, or pass --relay URL / set JOBMON_RELAY_URL "
            f"(no {self.state_dir / 'relay.json'})",
        )

    # ---------------------------------------------------------- credentials
    def credentials(self, env: Mapping[str, str] | None = None) -> Credentials:
        """Find the client certificate and the CA to trust (see module doc)."""
        env = os.environ if env is None else env
        cert, key, source = self._find_cert(env)
        ca_file, ca_dir = self.ca_file, self.ca_dir
        if ca_file is None and ca_dir is None:
            # the grid CAs, plus this machine's local CA (a relay started here uses it)
            local_ca = self.state_dir / "pki" / "ca.pem"
            if source == "local" or local_ca.is_file():
                ca_file = local_ca  # when source is local, _find_cert has made sure it exists
            if source != "local" and DEFAULT_GRID_CA_DIR.is_dir():
                ca_dir = DEFAULT_GRID_CA_DIR
            if ca_file is None and ca_dir is None:
                ca_file = local_pki_paths(self.state_dir)["ca"]
        return Credentials(cert, key, ca_file, ca_dir, source)

    def _find_cert(self, env: Mapping[str, str]) -> tuple[Path, Path | None, str]:
        if self.cert is not None:
            _must_exist(self.cert, "--cert")
            if self.key is not None:
                _must_exist(self.key, "--key")
            return self.cert, self.key, "flags"
        if self.proxy is not None:
            _must_exist(self.proxy, "the proxy")
            return self.proxy, None, "proxy"
        env_proxy = env.get("X509_USER_PROXY")
        if env_proxy:
            _must_exist(Path(env_proxy), "X509_USER_PROXY")
            return Path(env_proxy), None, "X509_USER_PROXY"
        tmp_proxy = Path(f"/tmp/x509up_u{os.getuid()}")
        if tmp_proxy.is_file():
            return tmp_proxy, None, "proxy"
        globus = Path(env.get("HOME", str(Path.home()))) / ".globus"
        if (globus / "usercert.pem").is_file() and (globus / "userkey.pem").is_file():
            return globus / "usercert.pem", globus / "userkey.pem", "usercert"
        paths = local_pki_paths(self.state_dir)
        return paths["user_cert"], paths["user_key"], "local"


def _must_exist(path: Path, what: str) -> None:
    if not path.is_file():
        raise AuthError(f"{what} {path} does not exist or is not a file")


#: the files of the zero-setup PKI a client needs (the relay also needs hostcert/hostkey)
_CLIENT_PKI = {"ca": "ca.pem", "ca_key": "ca.key", "user_cert": "usercert.pem", "user_key": "userkey.pem"}


def local_pki_paths(state_dir: Path) -> dict[str, Path]:
    """Paths of the zero-setup PKI in ``state_dir`` that a client uses: ``ca``,
    ``user_cert``, ``user_key``.

    When they all exist this only looks at the paths (``jobmon.pki`` and
    ``cryptography`` are not even imported; the TLS layer reads the files).
    Otherwise ``jobmon.pki.ensure_local_pki`` makes what is missing.
    """
    d = Path(state_dir) / "pki"
    paths = {name: d / file for name, file in _CLIENT_PKI.items()}
    if all(p.is_file() for p in paths.values()):
        os.chmod(d, 0o700)  # as ensure_local_pki keeps it
        return paths
    import getpass

    from jobmon import pki

    p = pki.ensure_local_pki(state_dir, getpass.getuser())
    return {"ca": p.ca_cert, "ca_key": p.ca_key, "user_cert": p.user_cert, "user_key": p.user_key}


# ------------------------------------------------------------------ relay record
def relay_record_path(state_dir: Path) -> Path:
    return state_dir / "relay.json"


#: the record as write_relay_record writes it, for which this gives what json.loads gives:
#: strings without escapes or control characters, a JSON integer (anything else: json)
_PLAIN_RECORD = re.compile(r'\{"url": "([^"\\\x00-\x1f]*)", "pid": (0|[1-9][0-9]*)'
                           r'(?:, "pool": "([^"\\\x00-\x1f]*)")?\}')


def parse_relay_record(text: str) -> Any:
    """``json.loads(text)``; a record in the form write_relay_record writes is read without
    importing json (~2 ms of every command that finds its relay this way)."""
    m = _PLAIN_RECORD.fullmatch(text)
    if m is None:
        import json

        return json.loads(text)
    rec: dict[str, Any] = {"url": m.group(1), "pid": int(m.group(2))}
    if m.group(3) is not None:
        rec["pool"] = m.group(3)
    return rec


def read_relay_record(state_dir: Path) -> dict[str, Any] | None:
    """The record a running ``jobmon relay`` left, or None if there is none or it is stale."""
    path = relay_record_path(state_dir)
    try:
        rec = parse_relay_record(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(rec, dict) or "url" not in rec:
        return None
    pid = rec.get("pid")
    if isinstance(pid, int) and not _pid_alive(pid):
        return None
    return rec


def write_relay_record(state_dir: Path, url: str, pid: int, **extra: Any) -> Path:
    import json

    path = relay_record_path(state_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"url": url, "pid": pid, **extra}))
    tmp.replace(path)
    return path


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# ------------------------------------------------------------------------ loading
def load_settings(
    flags: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    condor_param: Callable[[str], Any] | None = None,
) -> Settings:
    """Merge flags > environment > config file > HTCondor config > defaults.

    ``flags`` holds the global options the user gave (None = not given):
    relay, state_dir, cert, key, proxy, ca_dir, ca_file, pool, config, verbose.
    """
    flags = dict(flags or {})
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    origin: dict[str, str] = {}

    def put(name: str, value: Any, where: str) -> None:
        if value is not None and value != "" and name not in values:
            values[name] = value
            origin[name] = where

    for name in CONFIG_KEYS:
        put(name, flags.get(name), "flag")
    put("relay", env.get("JOBMON_RELAY_URL"), "JOBMON_RELAY_URL")
    put("state_dir", env.get("JOBMON_STATE_DIR"), "JOBMON_STATE_DIR")
    put("proxy", env.get("X509_USER_PROXY") if "cert" not in values else None, "X509_USER_PROXY")
    put("ca_dir", env.get("X509_CERT_DIR"), "X509_CERT_DIR")
    put("pool", env.get("JOBMON_POOL"), "JOBMON_POOL")

    home = Path(env.get("HOME", str(Path.home())))
    config_path = flags.get("config") or env.get("JOBMON_CONFIG")
    explicit = config_path is not None
    cfg_file = Path(config_path) if config_path else home / ".jobmon" / "config.toml"
    for name, value in _read_config(cfg_file, explicit).items():
        put(name, value, f"config {cfg_file}")

    param = condor_param if condor_param is not None else _condor_param
    for name, knob in CONDOR_KNOBS.items():
        if name not in values:
            put(name, param(knob), f"HTCondor {knob}")

    kwargs: dict[str, Any] = {}
    for name, value in values.items():
        if name in ("state_dir", "cert", "key", "proxy", "ca_dir", "ca_file"):
            kwargs[name] = Path(os.path.expanduser(str(value)))
        elif name == "slots":
            try:
                kwargs[name] = int(value)
            except (TypeError, ValueError) as exc:
                raise ConfigError(f"slots must be a number, not {value!r}") from exc
        else:
            kwargs[name] = str(value)
    if "state_dir" not in kwargs:
        kwargs["state_dir"] = home / ".jobmon"
        origin["state_dir"] = "default"
    if kwargs.get("pool", "local") not in ("local", "condor"):
        raise ConfigError(f"pool must be 'local' or 'condor', not {kwargs['pool']!r}")
    if kwargs.get("key") is not None and kwargs.get("cert") is None:
        raise ConfigError("--key needs --cert")
    return Settings(
        config_file=cfg_file if cfg_file.exists() else None,
        verbose=int(flags.get("verbose") or 0),
        origin=origin,
        **kwargs,
    )


def _read_config(path: Path, explicit: bool) -> dict[str, Any]:
    if not path.exists():
        if explicit:
            raise ConfigError(f"config file {path} does not exist")
        return {}
    toml = _toml_module()
    if toml is None:  # pragma: no cover
        raise ConfigError(f"cannot read {path}: no TOML parser (install tomli)")
    try:
        data = toml.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"config file {path}: {exc}") from exc
    unknown = sorted(set(data) - set(CONFIG_KEYS))
    if unknown:
        raise ConfigError(f"config file {path}: unknown key(s) {', '.join(unknown)}",
                          hint=f"known: {', '.join(CONFIG_KEYS)}")
    return {k: v for k, v in data.items() if k in CONFIG_KEYS}


def _toml_module() -> Any:
    if sys.version_info >= (3, 11):  # pragma: no cover - depends on interpreter
        import tomllib

        return tomllib
    try:  # pragma: no cover
        import tomli

        return tomli
    except ImportError:  # pragma: no cover
        return None


def condor_configured(env: Mapping[str, str]) -> bool:
    """Whether HTCondor has a configuration to read: ``CONDOR_CONFIG`` names one, or one of
    the global files exists (the test the htcondor2 bindings make before they fall back to
    an empty configuration, where only ``_CONDOR_*`` environment variables count)."""
    where = env.get("CONDOR_CONFIG")
    if where is not None:
        return where not in ("/dev/null", "ONLY_ENV")
    return any(os.path.isfile(os.path.expanduser(p)) for p in CONDOR_GLOBAL_CONFIGS)


def condor_env_knob(knob: str, env: Mapping[str, str]) -> tuple[bool, str | None]:
    """A knob set by ``_CONDOR_<KNOB>`` (any case, as HTCondor reads it) when that is all the
    configuration there is: (True, value), or (False, None) when only the bindings can tell
    (the value uses ``$(...)`` macros, or more than one spelling is set)."""
    want = f"_CONDOR_{knob}".upper()
    found = [v for k, v in env.items() if k.upper() == want]
    if not found:
        return True, None
    if len(found) > 1 or "$" in found[0]:
        return False, None
    return True, found[0].strip()


def _condor_param(knob: str) -> Any:
    """``htcondor2.param.get(knob)``, or None when the bindings or the knob are missing.

    Without an HTCondor configuration (:func:`condor_configured`) the bindings would
    only read ``_CONDOR_<KNOB>`` from the environment; that is done here without
    importing them (about 65 ms).
    """
    env = os.environ
    if env.get("JOBMON_NO_CONDOR_CONFIG"):
        return None
    if not condor_configured(env):
        known, value = condor_env_knob(knob, env)
        if known:
            return value or None
    try:
        import htcondor2
    except ImportError:  # pragma: no cover
        return None
    try:
        return htcondor2.param.get(knob)
    except (RuntimeError, OSError, KeyError, ValueError):  # pragma: no cover
        return None
