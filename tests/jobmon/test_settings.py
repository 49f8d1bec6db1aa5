"""Settings precedence: flags > environment > config file > HTCondor config > defaults."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from jobmon.errors import AuthError, ConfigError
from jobmon.settings import load_settings, read_relay_record, write_relay_record


def no_condor(knob: str):
    return None


def test_defaults(tmp_path: Path) -> None:
    s = load_settings({}, env={"HOME": str(tmp_path)}, condor_param=no_condor)
    assert s.state_dir == tmp_path / ".jobmon"
    assert s.relay is None and s.pool == "local"


def test_precedence_chain(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('relay = "https://from-file:1/clarens"\nstate_dir = "/from/file"\npool = "condor"\n')
    condor = {"JOBMON_RELAY_URL": "https://from-condor:1/clarens", "JOBMON_STATE_DIR": "/from/condor"}
    env = {"HOME": str(tmp_path), "JOBMON_RELAY_URL": "https://from-env:1/clarens"}
    s = load_settings({"config": str(cfg)}, env=env, condor_param=condor.get)
    assert s.relay == "https://from-env:1/clarens" and s.origin["relay"] == "JOBMON_RELAY_URL"
    assert s.state_dir == Path("/from/file") and s.pool == "condor"
    s = load_settings({"config": str(cfg), "relay": "https://flag:1/clarens"}, env=env, condor_param=condor.get)
    assert s.relay == "https://flag:1/clarens" and s.origin["relay"] == "flag"
    s = load_settings({}, env={"HOME": str(tmp_path)}, condor_param=condor.get)
    assert s.relay == "https://from-condor:1/clarens" and s.state_dir == Path("/from/condor")


def test_default_config_file_in_home(tmp_path: Path) -> None:
    (tmp_path / ".jobmon").mkdir()
    (tmp_path / ".jobmon" / "config.toml").write_text('relay = "https://home:2/clarens"\n')
    s = load_settings({}, env={"HOME": str(tmp_path)}, condor_param=no_condor)
    assert s.relay == "https://home:2/clarens"


def test_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings({"config": str(tmp_path / "missing.toml")}, env={}, condor_param=no_condor)
    bad = tmp_path / "bad.toml"
    bad.write_text("relay = \n")
    with pytest.raises(ConfigError):
        load_settings({"config": str(bad)}, env={}, condor_param=no_condor)
    bad.write_text('relya = "x"\n')
    with pytest.raises(ConfigError, match="unknown key"):
        load_settings({"config": str(bad)}, env={}, condor_param=no_condor)
    with pytest.raises(ConfigError):
        load_settings({"pool": "slurm"}, env={}, condor_param=no_condor)


def test_credential_discovery_order(tmp_path: Path, pki) -> None:
    home = tmp_path / "home"
    (home / ".globus").mkdir(parents=True)
    (home / ".globus" / "usercert.pem").write_bytes(pki.bob.cert_path.read_bytes())
    (home / ".globus" / "userkey.pem").write_bytes(pki.bob.key_path.read_bytes())
    env = {"HOME": str(home)}
    base = {"ca_file": str(pki.ca_file), "state_dir": str(tmp_path / "state")}
    # flags win
    c = load_settings({**base, "cert": str(pki.alice.cert_path), "key": str(pki.alice.key_path)},
                      env=env, condor_param=no_condor).credentials(env)
    assert (c.cert, c.source) == (pki.alice.cert_path, "flags")
    # X509_USER_PROXY next
    penv = {**env, "X509_USER_PROXY": str(pki.alice_proxy.proxy_path)}
    c = load_settings(base, env=penv, condor_param=no_condor).credentials(penv)
    assert c.cert == pki.alice_proxy.proxy_path and c.key is None
    # then ~/.globus (when no /tmp/x509up_u<uid> exists)
    if not Path(f"/tmp/x509up_u{os.getuid()}").exists():
        c = load_settings(base, env=env, condor_param=no_condor).credentials(env)
        assert (c.cert, c.source) == (home / ".globus" / "usercert.pem", "usercert")
    assert c.ca_file == pki.ca_file
    with pytest.raises(AuthError):
        load_settings({**base, "cert": str(tmp_path / "nope.pem")}, env=env,
                      condor_param=no_condor).credentials(env)


def test_zero_setup_local_certificate(tmp_path: Path) -> None:
    if Path(f"/tmp/x509up_u{os.getuid()}").exists():
        pytest.skip("a real proxy exists on this machine")
    env = {"HOME": str(tmp_path)}
    s = load_settings({"state_dir": str(tmp_path / "st")}, env=env, condor_param=no_condor)
    c = s.credentials(env)
    assert c.source == "local"
    assert c.cert == tmp_path / "st" / "pki" / "usercert.pem" and c.ca_file == tmp_path / "st" / "pki" / "ca.pem"
    assert (c.cert.stat().st_mode & 0o777) == 0o600


def test_relay_record(tmp_path: Path) -> None:
    s = load_settings({"state_dir": str(tmp_path)}, env={}, condor_param=no_condor)
    with pytest.raises(ConfigError, match="no relay"):
        s.relay_url()
    write_relay_record(tmp_path, "https://127.0.0.1:4443/clarens", os.getpid())
    assert s.relay_url() == "https://127.0.0.1:4443/clarens"
    # a record left by a relay that is gone is ignored
    write_relay_record(tmp_path, "https://127.0.0.1:4443/clarens", 2**22 + 12345)
    assert read_relay_record(tmp_path) is None


def test_local_certificate_found_by_its_paths_without_cryptography(tmp_path: Path) -> None:
    """Once the local PKI exists, finding it imports neither jobmon.pki nor cryptography."""
    import subprocess
    import sys

    if Path(f"/tmp/x509up_u{os.getuid()}").exists():
        pytest.skip("a real proxy exists on this machine")
    env = {"HOME": str(tmp_path)}
    state = tmp_path / "st"
    first = load_settings({"state_dir": str(state)}, env=env, condor_param=no_condor).credentials(env)
    (state / "pki").chmod(0o755)
    code = ("import sys\nfrom jobmon.settings import load_settings\n"
            f"s = load_settings({{'state_dir': {str(state)!r}}}, env={env!r}, condor_param=lambda k: None)\n"
            f"c = s.credentials({env!r})\n"
            "print(c.cert, c.key, c.ca_file, c.source)\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('cryptography', 'OpenSSL', 'jobmon.pki')"
            " or m == 'jobmon.pki'))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True).stdout
    paths, loaded = out.splitlines()
    assert paths == f"{first.cert} {first.key} {first.ca_file} local"
    assert loaded == "[]"
    assert (state / "pki").stat().st_mode & 0o777 == 0o700  # kept private, as ensure_local_pki keeps it


def test_a_missing_local_file_is_made_again(tmp_path: Path) -> None:
    if Path(f"/tmp/x509up_u{os.getuid()}").exists():
        pytest.skip("a real proxy exists on this machine")
    env = {"HOME": str(tmp_path)}
    s = load_settings({"state_dir": str(tmp_path / "st")}, env=env, condor_param=no_condor)
    c = s.credentials(env)
    c.key.unlink()  # type: ignore[union-attr]
    again = s.credentials(env)
    assert again.key is not None and again.key.is_file() and again.cert == c.cert


@pytest.mark.parametrize("env,expected", [
    ({}, (True, None)),
    ({"_CONDOR_JOBMON_RELAY_URL": "https://r:1/clarens"}, (True, "https://r:1/clarens")),
    ({"_condor_jobmon_relay_url": "https://r:2/clarens"}, (True, "https://r:2/clarens")),
    ({"_CONDOR_JOBMON_RELAY_URL": "https://$(FULL_HOSTNAME):1/clarens"}, (False, None)),
    ({"_CONDOR_JOBMON_RELAY_URL": "a", "_condor_JOBMON_RELAY_URL": "b"}, (False, None)),
])
def test_condor_knob_from_the_environment(env: dict[str, str], expected: tuple[bool, str | None]) -> None:
    from jobmon.settings import condor_env_knob

    assert condor_env_knob("JOBMON_RELAY_URL", env) == expected


def test_condor_configured_follows_the_bindings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from jobmon import settings

    monkeypatch.setattr(settings, "CONDOR_GLOBAL_CONFIGS", (str(tmp_path / "none"),))
    assert not settings.condor_configured({})
    assert not settings.condor_configured({"CONDOR_CONFIG": "/dev/null"})
    assert not settings.condor_configured({"CONDOR_CONFIG": "ONLY_ENV"})
    assert settings.condor_configured({"CONDOR_CONFIG": str(tmp_path / "condor_config")})
    (tmp_path / "none").write_text("")
    assert settings.condor_configured({})


def test_without_a_condor_configuration_the_bindings_are_not_loaded(tmp_path: Path) -> None:
    """Same answer as htcondor2 gives with no configuration, without importing it (~65 ms)."""
    import subprocess
    import sys

    from jobmon.settings import condor_configured

    if condor_configured(os.environ):
        pytest.skip("this machine has an HTCondor configuration")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JOBMON_", "_CONDOR_", "CONDOR_"))}
    env["_CONDOR_JOBMON_RELAY_URL"] = "https://knob.example.org:8443/clarens"
    code = ("import sys\nfrom jobmon.settings import _condor_param\n"
            "print(_condor_param('JOBMON_RELAY_URL'), _condor_param('JOBMON_STATE_DIR'), 'htcondor2' in sys.modules)\n"
            "import htcondor2\n"
            "print(htcondor2.param.get('JOBMON_RELAY_URL'), htcondor2.param.get('JOBMON_STATE_DIR'))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env,
                         check=True).stdout.splitlines()
    assert out == ["https://knob.example.org:8443/clarens None False",
                   "https://knob.example.org:8443/clarens None"]


def test_settings_are_immutable_values(tmp_path: Path) -> None:
    a = load_settings({"state_dir": str(tmp_path)}, env={}, condor_param=no_condor)
    b = load_settings({"state_dir": str(tmp_path)}, env={}, condor_param=no_condor)
    assert a == b and hash(a) == hash(b) and "state_dir=" in repr(a)
    with pytest.raises(AttributeError):
        a.relay = "https://elsewhere/clarens"  # type: ignore[misc]


@pytest.mark.parametrize("record", [
    {"url": "https://127.0.0.1:8443/clarens", "pid": 4242, "pool": "local"},
    {"url": "https://relay.example.org/clarens", "pid": 0},
    {"url": "https://üñí.example/\"quoted\"\\", "pid": 7, "pool": "condor"},
    {"url": "a\tb", "pid": 1},
    {"url": "x", "pid": 1, "pool": "local", "extra": [1, 2]},
])
def test_relay_record_reads_as_json_reads_it(tmp_path: Path, record: dict) -> None:
    import json

    from jobmon.settings import parse_relay_record

    extra = {k: v for k, v in record.items() if k not in ("url", "pid")}
    path = write_relay_record(tmp_path, record["url"], record["pid"], **extra)
    text = path.read_text()
    assert parse_relay_record(text) == json.loads(text) == record


@pytest.mark.parametrize("text", ['{"url": "a", "pid": 007}', '{"url": "a\nb", "pid": 1}', "", "{"])
def test_a_broken_relay_record_is_refused_as_json_refuses_it(text: str) -> None:
    from jobmon.settings import parse_relay_record

    with pytest.raises(ValueError):
        parse_relay_record(text)
