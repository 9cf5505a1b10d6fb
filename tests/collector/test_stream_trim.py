"""The events stream is trimmed by bytes and hours, never past what a consumer acknowledged."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from tests.collector.conftest import StartCollector, all_events, make_config
from tests.collector.test_http_ingest import post
from watchfloor.collector.stream_trim import EventsTrimmer, StreamTrimmer
from watchfloor.core import keys

NOW = time.time()
STREAM = keys.events_shard(0)
HOUR_MS = 3_600_000


async def fill(
    redis: aioredis.Redis, hours_ago: list[float], size: int = 100, stream: str = STREAM
) -> list[str]:
    ids = []
    for h in hours_ago:
        ms = int((NOW - h * 3600) * 1000)
        ids.append((await redis.xadd(stream, {b"b": b"x" * size}, id=f"{ms}-0")).decode())
    return ids


async def consume(redis: aioredis.Redis, n: int, ack: int, stream: str = STREAM) -> list[str]:
    """A monitor group reads ``n`` entries and acknowledges the first ``ack`` of them."""
    await redis.xgroup_create(stream, keys.EVENTS_GROUP, id="0", mkstream=True)
    if not n:
        return []
    reply: Any = await redis.xreadgroup(keys.EVENTS_GROUP, "m1", {stream: ">"}, count=n)
    read = [mid.decode() for mid, _f in reply[0][1]] if reply else []
    if ack:
        await redis.xack(stream, keys.EVENTS_GROUP, *read[:ack])
    return read


async def remaining(redis: aioredis.Redis, stream: str = STREAM) -> list[str]:
    return [mid.decode() for mid, _f in await redis.xrange(stream)]


def trimmer(redis: aioredis.Redis, **budget: Any) -> StreamTrimmer:
    settings = {"max_bytes": 0, "retention_h": 24.0, "stream": STREAM, **budget}
    return StreamTrimmer(redis, **settings)


@pytest.mark.parametrize(
    ("read", "acked", "kept_from"),
    [
        (6, 6, 3),  # all acknowledged: everything older than 24 h goes
        (6, 1, 1),  # the 2nd entry (30 h old) is pending: it and all after it stay
        (2, 2, 2),  # delivered up to the 2nd only: the 3rd (26 h old, never read) stays
        (0, 0, 0),  # the group has read nothing: nothing goes
    ],
)
async def test_entries_older_than_the_retention_go_once_every_group_acknowledged_them(
    redis_client: aioredis.Redis, read: int, acked: int, kept_from: int
) -> None:
    ids = await fill(redis_client, [40, 30, 26, 20, 2, 0.01])
    await consume(redis_client, read, acked)
    plan = await trimmer(redis_client).trim_once(NOW)
    assert await remaining(redis_client) == ids[kept_from:]
    assert plan.trimmed == kept_from


async def test_without_a_consumer_group_nothing_is_trimmed(redis_client: aioredis.Redis) -> None:
    ids = await fill(redis_client, [40, 30, 1])
    plan = await trimmer(redis_client, max_bytes=10).trim_once(NOW)
    assert plan.held_back and await remaining(redis_client) == ids


async def test_the_byte_budget_keeps_about_that_many_bytes_of_the_newest_entries(
    redis_client: aioredis.Redis,
) -> None:
    ids = await fill(redis_client, [i / 100 for i in range(200, 0, -1)], size=1000)
    await consume(redis_client, 200, 200)
    trim = trimmer(redis_client, max_bytes=50_000, retention_h=0)
    runs = 0
    while (plan := await trim.trim_once(NOW)).trimmed:  # the cut is interpolated: it converges
        runs += 1
        assert runs < 6, plan
    kept = await remaining(redis_client)
    assert kept == ids[-len(kept) :]  # the newest survive, in order
    assert 30 <= len(kept) <= 50, len(kept)  # 1 000-byte entries, some overhead each
    assert plan.est_bytes <= 50_000 and plan.wanted is None


async def test_the_byte_budget_never_trims_what_is_pending(redis_client: aioredis.Redis) -> None:
    ids = await fill(redis_client, [i / 100 for i in range(100, 0, -1)], size=1000)
    await consume(redis_client, 100, 10)  # 90 delivered, not acknowledged
    plan = await trimmer(redis_client, max_bytes=5_000, retention_h=0).trim_once(NOW)
    assert await remaining(redis_client) == ids[10:]
    assert plan.held_back


async def test_every_shard_is_trimmed_within_its_share_of_the_budget(
    redis_client: aioredis.Redis,
) -> None:
    shards, streams = 3, [keys.events_shard(n) for n in range(3)]
    filled = {}
    for n, stream in enumerate(streams):  # shard n holds 100, 150, 200 entries of 1 000 bytes
        ages = [i / 100 for i in range(100 + 50 * n, 0, -1)]
        filled[stream] = await fill(redis_client, ages, size=1000, stream=stream)
        await consume(redis_client, len(ages), len(ages), stream=stream)
    trim = EventsTrimmer(redis_client, shards=shards, max_bytes=shards * 25_000, retention_h=0)
    for _run in range(6):  # the cut is interpolated per shard: it converges
        plans = await trim.trim_once(NOW)
        if not any(plan and plan.trimmed for plan in plans):
            break
    for stream in streams:
        kept = await remaining(redis_client, stream)
        assert kept == filled[stream][-len(kept) :], stream  # the newest survive, in order
        assert 15 <= len(kept) <= 25, (stream, len(kept))
    assert trim.est_bytes <= shards * 25_000


async def test_writes_never_trim_entries_a_consumer_has_not_read(
    start_collector: StartCollector, redis_url: str, data_dir: Path
) -> None:
    base = make_config(data_dir)
    config = dataclasses.replace(base, redis=dataclasses.replace(base.redis, events_maxlen=100))
    running = await start_collector(redis_url, config=config)
    await consume(running.redis, 0, 0)  # the monitor's group exists, and is behind
    for i in range(250):
        body = json.dumps([{"type": "heartbeat", "ts": time.time(), "source": "s", "id": str(i)}])
        assert (await post(running, body.encode()))[0] == 202
    assert len(await all_events(running.redis)) == 250
