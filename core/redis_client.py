"""The one way a Watchfloor process opens a Redis client.

Every service and command goes through :func:`connect` (asyncio) or
:func:`connect_sync`, so what a connection needs beyond its URL (the embedded
Redis's secret, its Unix socket, the asyncio retry policy that redis-py asks
for) is decided in one place and never copied.
"""

from __future__ import annotations

from typing import Any

import redis
import redis.asyncio as aioredis


def connect(url: str, **options: Any) -> aioredis.Redis:
    """An asyncio client for ``url``; ``options`` are redis-py's (timeouts, retry)."""
    return aioredis.Redis.from_url(url, **options)


def connect_sync(url: str, **options: Any) -> redis.Redis:
    """A blocking client for ``url`` (start-up checks, test fixtures)."""
    return redis.Redis.from_url(url, **options)
