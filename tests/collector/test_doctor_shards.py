"""`watchfloor doctor` checks every events shard's stream and group, and the shard count
Redis was set up with against the configuration's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.watchfloor.test_doctor import doctor, free_ports_env
from watchfloor.core import keys

SHARDS = 4


def lines(out: str) -> list[str]:
    return [line for line in out.splitlines() if "events" in line]


async def test_doctor_names_missing_shard_streams_and_a_changed_shard_count(
    tmp_path: Path, redis_url: str, redis_client: Any
) -> None:
    (tmp_path / "watchfloor.toml").write_text(f"[redis]\nshards = {SHARDS}\n")
    run = ("--data-dir", str(tmp_path), "--redis", redis_url)
    fresh = doctor(*run, env=free_ports_env())
    assert fresh.returncode == 0, fresh.stdout
    assert f"{SHARDS} do not exist yet" in fresh.stdout, lines(fresh.stdout)

    await redis_client.set(keys.SHARDS, SHARDS)
    for n in range(SHARDS - 1):  # the last shard's stream has no monitor group yet
        await redis_client.xgroup_create(keys.events_shard(n), keys.EVENTS_GROUP, mkstream=True)
    await redis_client.xadd(keys.events_shard(SHARDS - 1), {b"b": b""})
    partial = doctor(*run, env=free_ports_env())
    assert "1 lack group 'monitor'" in partial.stdout and keys.events_shard(SHARDS - 1) in (
        partial.stdout
    ), lines(partial.stdout)
    await redis_client.xgroup_create(keys.events_shard(SHARDS - 1), keys.EVENTS_GROUP)
    whole = doctor(*run, env=free_ports_env())
    assert whole.returncode == 0 and f"ok   events stream: {SHARDS} shard streams" in (
        whole.stdout
    ), lines(whole.stdout)

    await redis_client.set(keys.SHARDS, SHARDS * 2)
    changed = doctor(*run, env=free_ports_env())
    assert changed.returncode == 1
    assert f"set up with {SHARDS * 2} events shards but redis.shards says {SHARDS}" in (
        changed.stdout
    ), lines(changed.stdout)
