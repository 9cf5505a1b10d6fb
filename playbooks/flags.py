"""Named operational flags (``auto_reply=on``) set by playbook steps, read at ``GET /v1/flags``.

A flag is a field of the ``wf:flags`` hash holding msgpack
``{"name", "value", "set_by", "at", "run"?}``; every write also appends a
``flag`` change so consoles see it at once. Contact-centre systems poll the
flags (or the API) to switch their auto-reply, FAQ bot or overflow routing.
"""

from __future__ import annotations

import time
from typing import Any

import msgpack
import redis.asyncio as aioredis

from watchfloor.core import keys
from watchfloor.core.changes import add_change


async def get_flags(redis: aioredis.Redis) -> dict[str, dict[str, Any]]:
    """Every flag by name."""
    raw = await redis.hgetall(keys.FLAGS)
    return {
        (k.decode() if isinstance(k, bytes) else k): msgpack.unpackb(v, raw=False)
        for k, v in raw.items()
    }


async def get_flag(redis: aioredis.Redis, name: str) -> dict[str, Any] | None:
    raw = await redis.hget(keys.FLAGS, name)
    return None if raw is None else msgpack.unpackb(raw, raw=False)


async def set_flag(
    redis: aioredis.Redis,
    name: str,
    value: Any,
    actor: str,
    run: str | None = None,
    at: float | None = None,
) -> dict[str, Any]:
    """Set ``name`` to ``value`` (one transaction with its change entry); returns the flag."""
    flag: dict[str, Any] = {
        "name": name,
        "value": value,
        "set_by": actor,
        "at": time.time() if at is None else at,
    }
    if run is not None:
        flag["run"] = run
    async with redis.pipeline(transaction=True) as pipe:
        pipe.hset(keys.FLAGS, name, msgpack.packb(flag, use_bin_type=True))
        add_change(pipe, "flag", "set", flag)
        await pipe.execute()
    return flag
