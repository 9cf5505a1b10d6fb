"""Board endpoints: the queue board, the health board and the flags, with freshness.

The engine writes the boards (``keys.QUEUES``, ``keys.HEALTH``: msgpack rows)
and the playbook runner the flags (``keys.FLAGS``). Every board row leaves
here with ``age_s`` (now minus its ``updated_at``) and ``stale`` (older than
``api.stale_after_s``), computed server-side so that a console with a wrong
clock still never shows dead data as live. The same readers build the live
WebSocket's snapshot.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

import msgpack
import redis.asyncio as aioredis
from aiohttp import web

from watchfloor.api.inputs import query_choice
from watchfloor.api.state import CONFIG, REDIS
from watchfloor.core import keys
from watchfloor.core.engine_status import read as read_engine_status
from watchfloor.security.auth import requires
from watchfloor.security.roles import Permission

logger = logging.getLogger(__name__)

routes = web.RouteTableDef()

HEALTH_STATUSES = ("up", "degraded", "down", "lost")


def _unpack(raw: bytes | str) -> dict[str, Any] | None:
    try:
        value = msgpack.unpackb(raw, raw=False)
    except (ValueError, msgpack.UnpackException):
        return None
    return value if isinstance(value, dict) else None


async def _rows(redis: aioredis.Redis, key: str) -> list[dict[str, Any]]:
    raw = await redis.hgetall(key)
    rows = []
    for name, value in raw.items():
        row = _unpack(value)
        if row is None:
            logger.warning("unreadable board row key=%s field=%r", key, name)
            continue
        rows.append(row)
    return rows


def with_freshness(row: dict[str, Any], now: float, stale_after_s: float) -> dict[str, Any]:
    """``row`` plus ``age_s`` and ``stale`` from its ``updated_at`` (NaN figures become null)."""
    row = {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in row.items()}
    updated = row.get("updated_at")
    if isinstance(updated, int | float) and not isinstance(updated, bool):
        age = max(0.0, now - float(updated))
        return {**row, "age_s": round(age, 3), "stale": age > stale_after_s}
    return {**row, "age_s": None, "stale": True}


async def queue_rows(redis: aioredis.Redis, stale_after_s: float) -> list[dict[str, Any]]:
    now = time.time()
    rows = [with_freshness(r, now, stale_after_s) for r in await _rows(redis, keys.QUEUES)]
    rows.sort(key=lambda r: str(r.get("queue", "")))
    return rows


async def health_rows(redis: aioredis.Redis, stale_after_s: float) -> list[dict[str, Any]]:
    now = time.time()
    rows = [with_freshness(r, now, stale_after_s) for r in await _rows(redis, keys.HEALTH)]
    rows.sort(key=lambda r: (str(r.get("kind", "")), str(r.get("subject", ""))))
    return rows


async def flag_map(redis: aioredis.Redis) -> dict[str, Any]:
    raw = await redis.hgetall(keys.FLAGS)
    flags: dict[str, Any] = {}
    for name, value in raw.items():
        row = _unpack(value)
        if row is not None:
            flags[name.decode() if isinstance(name, bytes) else name] = row
    return flags


def _number(text: str) -> Any:
    """``"12"`` -> 12, ``"1.5"`` -> 1.5, anything else stays text."""
    for kind in (int, float):
        try:
            number = kind(text)
        except ValueError:
            continue
        return number if math.isfinite(number) else None  # NaN is not JSON
    return text


async def engine_status(redis: aioredis.Redis) -> dict[str, Any]:
    """Every shard's engine status folded into one (:mod:`core.engine_status`), numbers as
    numbers (an empty map before the engine ran)."""
    folded = await read_engine_status(redis)
    return {name: _number(text) for name, text in folded.items()}


@routes.get("/v1/queues")
@requires(Permission.READ_BOARD)
async def get_queues(request: web.Request) -> web.Response:
    """``{"queues": [row...], "stale_after_s", "now"}``; optional ``channel`` filter."""
    stale_after = request.app[CONFIG].api.stale_after_s
    channel = request.query.get("channel") or None
    rows = await queue_rows(request.app[REDIS], stale_after)
    if channel is not None:
        rows = [r for r in rows if r.get("channel") == channel]
    return web.json_response({"queues": rows, "stale_after_s": stale_after, "now": time.time()})


@routes.get("/v1/health")
@requires(Permission.READ_BOARD)
async def get_health(request: web.Request) -> web.Response:
    """``{"health": [row...], "stale_after_s", "now"}``; optional ``status`` filter."""
    stale_after = request.app[CONFIG].api.stale_after_s
    status = query_choice(request, "status", HEALTH_STATUSES)
    rows = await health_rows(request.app[REDIS], stale_after)
    if status is not None:
        rows = [r for r in rows if r.get("status") == status]
    return web.json_response({"health": rows, "stale_after_s": stale_after, "now": time.time()})


@routes.get("/v1/flags")
@requires(Permission.READ_BOARD)
async def get_flags(request: web.Request) -> web.Response:
    """``{"flags": {name: {"name", "value", "set_by", "at", "run"?}}}``."""
    return web.json_response({"flags": await flag_map(request.app[REDIS])})
