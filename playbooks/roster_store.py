"""The roster in Redis (``wf:roster``): saved whole by an import, overrides added in place."""

from __future__ import annotations

from typing import Any

import msgspec
import redis.asyncio as aioredis

from watchfloor.core import keys
from watchfloor.core.redis_tx import transact
from watchfloor.playbooks.roster import Override, Roster

_ENCODER = msgspec.msgpack.Encoder()
_DECODER = msgspec.msgpack.Decoder(Roster)


async def save_roster(redis: aioredis.Redis, roster: Roster) -> None:
    await redis.set(keys.ROSTER, _ENCODER.encode(roster))


async def load_roster(redis: aioredis.Redis) -> Roster | None:
    """The stored roster, or ``None`` when none was imported."""
    raw = await redis.get(keys.ROSTER)
    return None if raw is None else _DECODER.decode(_as_bytes(raw))


async def add_override(redis: aioredis.Redis, override: Override) -> Roster:
    """Append ``override`` to the stored roster (atomically: a concurrent import wins or waits)."""

    async def apply(pipe: Any) -> Roster:
        raw = await pipe.get(keys.ROSTER)
        if raw is None:
            raise LookupError("no roster imported yet: run `watchfloor roster import FILE` first")
        roster = _DECODER.decode(_as_bytes(raw))
        updated = msgspec.structs.replace(roster, overrides=[*roster.overrides, override])
        pipe.multi()
        pipe.set(keys.ROSTER, _ENCODER.encode(updated))
        return updated

    return await transact(redis, [keys.ROSTER], apply)


def _as_bytes(raw: bytes | str) -> bytes:
    # Our clients run without decode_responses; a str here would be a misconfigured client.
    return raw.encode("latin-1") if isinstance(raw, str) else raw
