"""Fixtures of the collector tests: a real collector app on 127.0.0.1 over real Redis."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import msgpack
import pytest
import redis.asyncio as aioredis

from watchfloor.collector.app import create_app
from watchfloor.collector.service import Collector, connect_redis
from watchfloor.core import keys
from watchfloor.core.config import CollectorConfig, Config, RedisConfig, Secret, SecurityConfig
from watchfloor.core.events import decode_batch

ADMIN = "test-admin-token-0123456789"


def make_config(data_dir: Path, **collector: Any) -> Config:
    settings = {"heartbeat_interval_s": 0.0, **collector}
    return Config(
        data_dir=str(data_dir),
        collector=CollectorConfig(**settings),
        security=SecurityConfig(admin_token=Secret(ADMIN)),
    )


@dataclasses.dataclass
class Running:
    url: str
    token: str
    config: Config
    redis: aioredis.Redis
    app: Any
    """The aiohttp app; for the ``service`` fixture, the event that stops it."""

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


StartCollector = Callable[..., Awaitable[Running]]


@pytest.fixture
async def start_collector(serve_app: Any, data_dir: Path) -> AsyncIterator[StartCollector]:
    """``await start_collector(redis_url, **create_app/collector options)`` -> Running."""
    clients: list[aioredis.Redis] = []

    async def start(redis_url: str, *, config: Config | None = None, **options: Any) -> Running:
        cfg = config or make_config(data_dir, **options.pop("collector", {}))
        redis = connect_redis(redis_url)
        clients.append(redis)
        options.setdefault("background", False)
        app = create_app(cfg, redis, **options)
        url = await serve_app(app)
        return Running(url, ADMIN, cfg, redis, app)

    yield start
    for client in clients:
        await client.aclose()


@pytest.fixture
async def service(redis_url: str, data_dir: Path) -> AsyncIterator[Running]:
    """The collector as ``watchfloor collector`` serves it (it inflates bodies itself)."""
    async with serving(redis_url, data_dir) as running:
        yield running


@pytest.fixture
async def any_service(any_redis_url: str, data_dir: Path) -> AsyncIterator[Running]:
    """The ``service`` on a single Redis, then on a Redis Cluster."""
    async with serving(any_redis_url, data_dir) as running:
        yield running


@contextlib.asynccontextmanager
async def serving(redis_url: str, data_dir: Path) -> AsyncIterator[Running]:
    config = make_config(data_dir)
    config = dataclasses.replace(config, collector=dataclasses.replace(config.collector, port=0))
    collector, stop = Collector(config, redis_url), asyncio.Event()
    serving = asyncio.create_task(collector.run(stop))
    await asyncio.wait_for(collector.ready.wait(), 10)
    redis = connect_redis(redis_url)
    yield Running(f"http://127.0.0.1:{collector.port}", ADMIN, config, redis, stop)
    stop.set()
    await asyncio.wait_for(serving, 10)
    await redis.aclose()


@pytest.fixture
async def collector(start_collector: StartCollector, redis_url: str) -> Running:
    return await start_collector(redis_url)


SHARDS = RedisConfig().shards
"""The shard count of the configs these tests build (the default)."""


def _sid(raw: bytes) -> tuple[int, int]:
    ms, _, seq = raw.partition(b"-")
    return int(ms), int(seq)


async def shard_entries(redis: aioredis.Redis, shards: int = SHARDS) -> list[tuple[int, Any, Any]]:
    """(shard, id, fields) of every entry of every shard's stream, merged by stream id."""
    out = []
    for n in range(shards):
        out += [(n, mid, fields) for mid, fields in await redis.xrange(keys.events_shard(n))]
    return sorted(out, key=lambda entry: (_sid(entry[1]), entry[0]))


async def all_events(redis: aioredis.Redis, shards: int = SHARDS) -> list[Any]:
    """Every event in the events shards: each shard in order, shards merged by stream id."""
    entries = await shard_entries(redis, shards)
    return [e for _n, _id, fields in entries for e in decode_batch(fields[b"b"])]


async def events_by_shard(redis: aioredis.Redis, shards: int = SHARDS) -> dict[int, list[Any]]:
    """Shard -> the events of its stream, in order (shards without any left out)."""
    out: dict[int, list[Any]] = {}
    for n, _id, fields in await shard_entries(redis, shards):
        out.setdefault(n, []).extend(decode_batch(fields[b"b"]))
    return out


def pack(events: list[Any]) -> bytes:
    return msgpack.packb(events, use_bin_type=True)
