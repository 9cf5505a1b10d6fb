"""Configuration: TOML plus WATCHFLOOR_* overrides; unknown keys and bad values name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from watchfloor.core.config import ConfigError, Secret, load_config, redacted


def test_defaults_need_no_file() -> None:
    config = load_config()
    assert config.redis.url is None
    assert config.monitor.allowed_lateness_s == 5.0
    assert config.collector.host == "127.0.0.1"


def test_toml_sections_and_probe_tables_are_read(tmp_path: Path) -> None:
    path = tmp_path / "watchfloor.toml"
    path.write_text(
        "[collector]\nport = 9000\n[monitor]\nallowed_lateness_s = 2\n"
        '[[probes]]\nname = "order-api"\ntarget = "http://127.0.0.1:1/health"\n'
        '[[webhooks]]\nname = "duty"\nkind = "dingtalk"\nurl = "http://127.0.0.1:1/robot"\n'
        'secret = "SECabc"\n'
    )
    config = load_config(path)
    assert config.collector.port == 9000
    assert config.monitor.allowed_lateness_s == 2.0
    assert config.probes[0].name == "order-api" and config.probes[0].kind == "http"
    assert config.webhooks[0].secret == Secret("SECabc")


def test_environment_overrides_the_file() -> None:
    config = load_config(
        "[collector]\nport = 9000\n",
        {
            "WATCHFLOOR_COLLECTOR_PORT": "9100",
            "WATCHFLOOR_REDIS_URL": "redis://127.0.0.1:7/0",
            "WATCHFLOOR_ADMIN_TOKEN": "s3cret",
            "WATCHFLOOR_PLAYBOOKS_AUTO_START": "off",
            "WATCHFLOOR_TOKEN": "not-a-config-key",
        },
    )
    assert config.collector.port == 9100
    assert config.redis.url == "redis://127.0.0.1:7/0"
    assert config.security.admin_token == Secret("s3cret")
    assert config.playbooks.auto_start is False


@pytest.mark.parametrize(
    ("text", "env", "message"),
    [
        ("[collector]\nprot = 1\n", {}, "collector.prot: unknown key"),
        ("[nonsense]\nx = 1\n", {}, "nonsense: unknown key"),
        ("[collector]\nport = 'high'\n", {}, "collector.port: must be a non-negative integer"),
        ("[collector]\nport = -1\n", {}, "collector.port: must be a non-negative integer"),
        ("[monitor]\nallowed_lateness_s = true\n", {}, "monitor.allowed_lateness_s"),
        ("[[probes]]\nkind = 'http'\n", {}, "probes[0]"),
        ("[[probes]]\nname = 'x'\ncolour = 'red'\n", {}, "probes[0].colour: unknown key"),
        ("collector = 3\n", {}, "collector: must be a table"),
        ("[collector\n", {}, "not valid TOML"),
        ("", {"WATCHFLOOR_API_PORT": "eighty"}, "api.port: bad value 'eighty'"),
        ("", {"WATCHFLOOR_PLAYBOOKS_AUTO_START": "maybe"}, "playbooks.auto_start: bad value"),
    ],
)
def test_bad_config_names_the_key(text: str, env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_config(text, env)


def test_secrets_never_show_in_repr_or_config_show() -> None:
    config = load_config(
        '[security]\nadmin_token = "topsecret"\n'
        '[[webhooks]]\nname = "d"\nurl = "http://127.0.0.1/robot?access_token=t"\n'
    )
    assert "topsecret" not in repr(config)
    shown = redacted(config)
    assert shown["security"]["admin_token"] == "***"
    assert shown["webhooks"][0]["url"] == "***"
    assert "topsecret" not in str(shown)
