"""The ``set_flag`` action: ``auto_reply=on`` and the like, readable at ``GET /v1/flags``.

Setting a flag twice to the same value is harmless, so the action is naturally
idempotent. A drill never sets a real flag: it records what it would have set.
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis

from watchfloor.playbooks.actions.http import ActionResult
from watchfloor.playbooks.flags import set_flag


async def run_set_flag(
    redis: aioredis.Redis, action: dict[str, Any], *, run_id: str, drill: bool, at: float
) -> ActionResult:
    name, value = action["flag"], action.get("value", "on")
    if drill:
        return ActionResult(True, f"drill: {name}={value} not set", 1, suppressed=True)
    await set_flag(redis, name, value, actor=f"playbook:{run_id}", run=run_id, at=at)
    return ActionResult(True, f"{name}={value}", 1)
