"""The collector tells the monitor until when everything it acknowledged is written."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import msgpack
import redis.asyncio as aioredis

from tests.collector.conftest import Running, StartCollector, all_events
from tests.collector.test_http_ingest import post
from watchfloor.collector.appkeys import CLOCK
from watchfloor.collector.clock_report import recovered_lower_bound
from watchfloor.collector.spool import Spool
from watchfloor.core import keys
from watchfloor.core.events import Heartbeat, encode_batch
from watchfloor.core.redis_server import EmbeddedRedis


def beat(ts: float, i: int = 0) -> dict[str, Any]:
    return {"type": "heartbeat", "ts": ts, "source": "pbx-1", "id": f"h{i}"}


async def reports(client: aioredis.Redis) -> dict[str, dict[str, float]]:
    raw = await client.hgetall(keys.COLLECTORS)
    return {k.decode(): msgpack.unpackb(v) for k, v in raw.items()}


async def test_an_idle_collector_reports_now_and_withdraws_on_a_clean_stop(
    service: Running, redis_client: aioredis.Redis
) -> None:
    await asyncio.sleep(1.3)
    [(ident, report)] = (await reports(redis_client)).items()
    now = time.time()
    assert ident.count(":") >= 2
    assert now - 2 < report["at"] <= now and report["written_until"] == report["at"]
    service.app.set()  # a clean stop
    deadline = time.monotonic() + 10
    while await reports(redis_client):
        assert time.monotonic() < deadline, "the report outlived a clean stop"
        await asyncio.sleep(0.1)


async def test_a_stalled_write_holds_written_until_at_its_arrival(
    start_collector: StartCollector, redis_url: str, redis_client: aioredis.Redis
) -> None:
    running = await start_collector(redis_url)
    reporter = running.app[CLOCK]
    await redis_client.execute_command("CLIENT", "PAUSE", "1500", "WRITE")
    sent_at = time.time()
    posting = asyncio.create_task(post(running, json.dumps([beat(sent_at)]).encode()))
    await asyncio.sleep(0.8)
    held = reporter.written_until()
    status, _answer = await posting
    assert status == 202
    assert sent_at - 0.1 <= held <= sent_at + 0.2  # not the wall clock, 0.8 s later
    assert reporter.written_until() > time.time() - 0.1  # written: back to now


async def test_a_spooled_batch_holds_written_until_until_its_replay(
    start_collector: StartCollector, private_redis: EmbeddedRedis
) -> None:
    running = await start_collector(private_redis.url)
    reporter = running.app[CLOCK]
    private_redis.stop()
    sent_at = time.time()
    status, _answer = await post(running, json.dumps([beat(sent_at)]).encode())
    assert status == 202
    await asyncio.sleep(0.5)
    assert sent_at - 0.1 <= reporter.written_until() <= sent_at + 0.2
    assert running.app[CLOCK].writer.spool.depth_batches == 1
    private_redis.start()
    client = aioredis.Redis.from_url(private_redis.url)
    try:
        deadline = time.monotonic() + 15
        while (report := (await reports(client)).get(reporter.ident)) is None or (
            report["written_until"] < report["at"]
        ):
            assert time.monotonic() < deadline, "the replayed spool still holds the clock"
            await asyncio.sleep(0.2)
        assert len(await all_events(client)) == 1
    finally:
        await client.aclose()


async def test_a_spool_left_by_an_earlier_process_is_bounded_by_its_oldest_event(
    tmp_path: Path,
) -> None:
    spool = Spool(tmp_path, 1 << 20)
    spool.open()
    await spool.append(encode_batch([Heartbeat(ts=1_800_000_100.0, source="s")]), deduped=False)
    await spool.append(encode_batch([Heartbeat(ts=1_800_000_000.0, source="s")]), deduped=False)
    spool.close()
    again = Spool(tmp_path, 1 << 20)
    again.open()
    assert again.recovered and again.oldest_accepted_at is None
    assert await recovered_lower_bound(again, 30.0) == 1_800_000_070.0
    again.close()
