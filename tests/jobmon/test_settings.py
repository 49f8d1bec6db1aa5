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
