"""Spooling while Redis is really down: nothing accepted is ever lost."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.collector.conftest import Running, StartCollector, all_events
from watchfloor.collector.client import ProducerClient
from watchfloor.collector.spool import Spool
from watchfloor.core.redis_server import EmbeddedRedis
from watchfloor.security.tokens import TokenStore

NOW = time.time()


def contact(i: int) -> dict[str, Any]:
    return {
        "type": "contact", "ts": NOW + i / 1000, "source": "acd-1", "id": f"c-{i}",
        "contact_id": f"c-{i}", "queue": "hotline", "channel": "phone", "action": "offered",
    }  # fmt: skip


async def wait_drained(running: Running, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            async with session.get(f"{running.url}/healthz") as resp:
                health = await resp.json()
            if health["spool_batches"] == 0 and health["redis"] == "up":
                return
            await asyncio.sleep(0.1)
    raise AssertionError(f"spool not drained: {health}")


async def producer_token(redis_url: str) -> str:
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(redis_url)
    try:
        token, _ = await TokenStore(client).create("acd-1", "producer")
    finally:
        await client.aclose()
    return token


async def test_every_event_survives_a_redis_kill_under_a_streaming_producer(
    start_collector: StartCollector, private_redis: EmbeddedRedis
) -> None:
    running = await start_collector(private_redis.url)
    token = await producer_token(private_redis.url)
    total = 3000
    client = ProducerClient(running.url, token, batch_size=40, linger_s=0.01, retry_for_s=20)

    async def stream() -> None:
        async with client:
            for i in range(total):
                await client.send(contact(i))
                if i % 40 == 0:
                    await asyncio.sleep(0.02)

    producing = asyncio.create_task(stream())
    await asyncio.sleep(0.4)
    private_redis.kill()
    await asyncio.sleep(1.2)
    spooled = running.app[_writer_key()].metrics.spooled_batches
    private_redis.start()
    await producing
    await wait_drained(running)

    assert spooled > 0, "the producer should have been spooled while Redis was down"
    assert client.stats.rejected == [] and client.stats.accepted == total
    ids = [e.id for e in await all_events(running.redis)]
    assert sorted(set(ids)) == sorted(f"c-{i}" for i in range(total))
    assert len(ids) == total


async def test_spooled_batches_are_replayed_in_order_after_a_collector_restart(
    start_collector: StartCollector, private_redis: EmbeddedRedis, serve_app: Any
) -> None:
    first = await start_collector(private_redis.url)
    private_redis.kill()
    async with ProducerClient(first.url, first.token, batch_size=10, retry_for_s=5) as client:
        for i in range(50):
            await client.send(contact(i))
    assert client.stats.accepted == 50
    await first.app.shutdown()
    await first.app.cleanup()  # the first collector is gone, its spool stays on disk

    private_redis.start()
    second = await start_collector(private_redis.url, config=first.config)
    await wait_drained(second)
    ids = [e.id for e in await all_events(second.redis)]
    assert ids == [f"c-{i}" for i in range(50)]


async def test_a_full_spool_answers_503_with_retry_after(
    start_collector: StartCollector, private_redis: EmbeddedRedis
) -> None:
    running = await start_collector(
        private_redis.url, collector={"spool_max_bytes": 4000, "heartbeat_interval_s": 0}
    )
    private_redis.kill()
    body = json.dumps([contact(i) for i in range(10)]).encode()
    statuses = []
    async with aiohttp.ClientSession(headers=running.headers) as session:
        for _ in range(5):
            headers = {"Content-Type": "application/json"}
            async with session.post(f"{running.url}/v1/events", data=body, headers=headers) as r:
                statuses.append((r.status, r.headers.get("Retry-After")))
    assert statuses[0] == (202, None)
    assert statuses[-1][0] == 503 and int(statuses[-1][1]) > 0
    private_redis.start()


async def test_duplicates_sent_while_redis_was_down_are_dropped_on_replay(
    start_collector: StartCollector, private_redis: EmbeddedRedis
) -> None:
    running = await start_collector(private_redis.url)
    private_redis.kill()
    async with ProducerClient(running.url, running.token, retry_for_s=5) as client:
        for _ in range(2):  # the same ten events twice, as a retrying producer would
            await client.send_batch([contact(i) for i in range(10)])
    assert client.stats.accepted == 20  # not known yet: suppression runs at replay
    private_redis.start()
    await wait_drained(running)
    assert [e.id for e in await all_events(running.redis)] == [f"c-{i}" for i in range(10)]


@pytest.mark.parametrize("tail", [b"\x05\x00", b"\xff\xff\x00\x00\x01\x02\x03\x04\x00abc"])
async def test_a_torn_tail_is_cut_off_and_earlier_records_kept(tmp_path: Path, tail: bytes) -> None:
    spool = Spool(tmp_path, max_bytes=1 << 20)
    spool.open()
    for i in range(3):
        await spool.append(f"batch-{i}".encode(), deduped=i == 1)
    spool.close()
    with open(tmp_path / "batches.spool", "ab") as fh:
        fh.write(tail)
    reopened = Spool(tmp_path, max_bytes=1 << 20)
    reopened.open()
    records = await reopened.read()
    assert [r.payload for r in records] == [b"batch-0", b"batch-1", b"batch-2"]
    assert [r.deduped for r in records] == [False, True, False]
    await reopened.commit(records[1].end, 2)
    reopened.close()
    again = Spool(tmp_path, max_bytes=1 << 20)
    again.open()
    assert [r.payload for r in await again.read()] == [b"batch-2"]
    assert again.depth_batches == 1
    again.close()


def _writer_key() -> Any:
    from watchfloor.collector.appkeys import WRITER

    return WRITER
