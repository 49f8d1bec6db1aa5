from __future__ import annotations

import os
from pathlib import Path

import pytest

from jobmon.errors import ConfigError
from relay.config import OwnershipRule, RelayConfig, load_config
from relay.ownership import Ownership


def test_defaults_and_documented_keys() -> None:
    import relay.config as mod

    cfg = load_config(None, {"ca_dir": ""})
    assert cfg == RelayConfig()
    for name in RelayConfig.__dataclass_fields__:
        assert f"\n    {name} = " in (mod.__doc__ or ""), f"{name} is not documented"


def test_toml_and_overrides(tmp_path: Path) -> None:
    f = tmp_path / "relay.toml"
    f.write_text("""
listen = "127.0.0.1:9443"
admins = ["/DC=org/DC=example/CN=Boss"]
allow_shell = true
max_body_bytes = 2048
submit_roots = ["/data/jobs", "~/work"]

[[ownership]]
user = '^/DC=org/DC=example/CN=(?P<name>[^/]+)$'
job = '^/DC=org/DC=example/OU=Robots/CN=(?P<name>[^/]+)$'
""")
    cfg = load_config(str(f), {"max_body_bytes": "4096", "state_dir": None})
    assert cfg.port == 9443 and cfg.allow_shell is True and cfg.max_body_bytes == 4096
    assert cfg.admins == ("/DC=org/DC=example/CN=Boss",)
    assert cfg.submit_roots == ("/data/jobs", "~/work")
    assert cfg.submit_root_paths[1] == Path(os.path.realpath(os.path.expanduser("~/work")))
    assert cfg.ownership[0] == OwnershipRule(user=cfg.ownership[0].user, job=cfg.ownership[0].job)
    own = Ownership(cfg.ownership)
    assert own.owns("/DC=org/DC=example/CN=jane", "/DC=org/DC=example/OU=Robots/CN=jane")
    assert not own.owns("/DC=org/DC=example/CN=bob", "/DC=org/DC=example/OU=Robots/CN=jane")
    assert own.owns("/X=1", "/X=1") and not own.owns("/X=1", None)
    assert cfg.effective()["smtp_password"] == ""


@pytest.mark.parametrize("text, msg", [
    ('nosuch = 1', "unknown key"),
    ('allow_shell = "maybe"', "true or false"),
    ('listen = "8443"', "HOST:PORT"),
    ('poll_wait = "soon"', "number"),
    ('[[ownership]]\nuser = "(?P<a>x)"\njob = "(?P<b>y)"', None),
    ('this is not toml', "not valid TOML"),
])
def test_bad_config(tmp_path: Path, text: str, msg: str | None) -> None:
    f = tmp_path / "relay.toml"
    f.write_text(text + "\n")
    with pytest.raises(ConfigError) as info:
        cfg = load_config(str(f), {})
        Ownership(cfg.ownership)
    if msg:
        assert msg in str(info.value)
