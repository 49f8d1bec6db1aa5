"""The relay config's [legacy] table (relay/config.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobmon.errors import ConfigError
from relay.config import LegacyConfig, load_config


def test_off_by_default_with_the_2005_defaults() -> None:
    cfg = load_config(None).legacy
    assert cfg == LegacyConfig() and cfg.enabled is False
    assert (cfg.wakeup, cfg.tcp_bind, cfg.reconnect_time) == ("tcp", ("0.0.0.0", 2000), 300)


@pytest.mark.parametrize("text", [
    'listen = "127.0.0.1:8443"\n[legacy]\nenabled = true\nwakeup = "udp"\ntcp_listen = "10.0.0.1:2001"\n',
    '[relay]\nlisten = "127.0.0.1:8443"\n[legacy]\nenabled = true\nwakeup = "udp"\ntcp_listen = "10.0.0.1:2001"\n',
])
def test_the_table_beside_top_level_keys_or_a_relay_table(text: str, tmp_path: Path) -> None:
    path = tmp_path / "relay.toml"
    path.write_text(text)
    cfg = load_config(str(path))
    assert cfg.listen == "127.0.0.1:8443"
    assert cfg.legacy.enabled is True and cfg.legacy.wakeup == "udp" and cfg.legacy.tcp_bind == ("10.0.0.1", 2001)
    assert cfg.effective()["legacy"]["tcp_listen"] == "10.0.0.1:2001"


@pytest.mark.parametrize("table, words", [
    ({"wakeup": "multicast"}, 'legacy.wakeup must be "tcp" or "udp"'),
    ({"tcp_listen": "2000"}, "legacy.tcp_listen must be HOST:PORT"),
    ({"reconnect_time": 1}, "legacy.reconnect_time must be 10-3600"),
    ({"reconnect_time": "300"}, "legacy.reconnect_time must be int"),
    ({"enabled": "yes"}, "legacy.enabled must be bool"),
    ({"tcp_host": "relay host"}, "legacy.tcp_host must be a host name"),
    ({"max_connections_per_host": 0}, "must be positive"),
    ({"udp": True}, "unknown key(s) in [legacy]: udp"),
])
def test_bad_values_get_one_clear_line(table: dict, words: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(None, {"legacy": table})
    assert words in str(info.value) and "\n" not in str(info.value)
