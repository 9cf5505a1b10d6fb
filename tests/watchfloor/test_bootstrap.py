"""First start of a data directory: folders, private keys, a commented config, stable tokens."""

from __future__ import annotations

from pathlib import Path

from watchfloor.bootstrap import ensure_token, prepare_data_dir
from watchfloor.core.config import load_config, load_for_cli


def test_a_new_data_dir_gets_its_layout_keys_and_a_config_that_loads(tmp_path: Path) -> None:
    config = load_config(env={"WATCHFLOOR_DATA_DIR": str(tmp_path / "wf")})
    created = prepare_data_dir(config)
    base = tmp_path / "wf"
    for name in ("redis", "keys", "audit", "logs", "spool", "tokens"):
        assert (base / name).is_dir()
        assert (base / name).stat().st_mode & 0o077 == 0
    assert (base / "keys" / "field-keys.json").stat().st_mode & 0o777 == 0o600
    assert (base / "keys" / "audit-signing.pem").exists()
    assert (base / "keys" / "tokens.key").stat().st_mode & 0o777 == 0o600
    assert base / "watchfloor.toml" in created
    assert load_for_cli(str(base), None).webhooks == ()  # the template is all comments
    (base / "watchfloor.toml").write_text("[collector]\nport = 9999\n")
    assert prepare_data_dir(config) == []  # a second start changes nothing
    assert load_for_cli(str(base), None).collector.port == 9999


async def test_the_stack_token_is_kept_and_renewed_only_when_no_longer_valid(
    redis_client, tmp_path: Path
) -> None:
    first = await ensure_token(redis_client, tmp_path, "admin", "admin")
    again = await ensure_token(redis_client, tmp_path, "admin", "admin")
    assert first.created and not again.created and again.token == first.token
    assert first.path.stat().st_mode & 0o777 == 0o600
    await redis_client.flushall()  # Redis lost its data: the file's token no longer works
    renewed = await ensure_token(redis_client, tmp_path, "admin", "admin")
    assert renewed.created and renewed.token != first.token


async def test_the_stack_tokens_are_sealed_with_the_data_dirs_key(
    redis_client, tmp_path: Path
) -> None:
    from watchfloor.security.tokens import TokenStore, load_seal

    admin = await ensure_token(redis_client, tmp_path, "admin", "admin")
    sealed = TokenStore(redis_client, seal=load_seal(tmp_path, create=False))
    assert (await sealed.verify(admin.token)).role == "admin"
    unsealed, _ = await TokenStore(redis_client).create("old", "viewer")  # before sealing
    assert await sealed.verify(unsealed) is None
    again = await ensure_token(redis_client, tmp_path, "admin", "admin")
    assert not again.created and again.token == admin.token
