"""The events bus on a real Redis: at least once, claims after a dead consumer, reconnects.

The tests on ``any_redis`` run twice: on a single Redis and on a 3-master Redis Cluster
(the shard's stream and its dead letters share a hash tag, so the dead-letter
transaction stays in one slot there).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from typing import Any

import redis.asyncio as aioredis

from watchfloor.core import keys
from watchfloor.core.bus import BusUnavailable, EventConsumer, EventProducer
from watchfloor.core.events import Heartbeat, QueueStats
from watchfloor.core.redis_server import EmbeddedRedis

STREAM = keys.events_shard(0)
GROUP = keys.EVENTS_GROUP
DEAD = keys.dead_letter(0)


def beats(n: int, start: int = 0) -> list[Heartbeat]:
    return [Heartbeat(ts=1_763_800_000.0 + i, source=f"s{i}") for i in range(start, start + n)]


def producer_of(redis: aioredis.Redis, **options: Any) -> EventProducer:
    return EventProducer(redis, stream=STREAM, **options)


def consumer_of(redis: aioredis.Redis, name: str, **options: Any) -> EventConsumer:
    return EventConsumer(redis, consumer=name, stream=STREAM, dead_letter=DEAD, **options)


async def test_published_batches_are_consumed_in_order_and_acked(any_redis) -> None:
    producer = producer_of(any_redis)
    consumer = consumer_of(any_redis, "c1", block_ms=50)
    await consumer.ensure_group()
    ids = [await producer.publish_events(beats(3, i * 3)) for i in range(4)]

    entries = await consumer.read()
    assert [e.id for e in entries] == ids
    assert [ev.source for e in entries for ev in e.events] == [f"s{i}" for i in range(12)]
    assert all(e.deliveries == 1 for e in entries)
    await consumer.ack([e.id for e in entries])
    pending = await any_redis.xpending(STREAM, GROUP)
    assert pending["pending"] == 0
    assert await consumer.read() == []


async def test_batches_written_before_the_group_exists_are_not_missed(any_redis) -> None:
    await producer_of(any_redis).publish_events(beats(2))
    consumer = consumer_of(any_redis, "late", block_ms=50)
    await consumer.ensure_group()
    await consumer.ensure_group()  # idempotent
    entries = await consumer.read()
    assert sum(len(e.events) for e in entries) == 2


async def test_a_restarted_consumer_rereads_its_unacked_entries_first(any_redis) -> None:
    producer = producer_of(any_redis)
    first = consumer_of(any_redis, "c1", block_ms=50)
    await first.ensure_group()
    batch_id = await producer.publish_events(beats(1))
    assert [e.id for e in await first.read()] == [batch_id]

    again = consumer_of(any_redis, "c1", block_ms=50)  # same name, new process
    redelivered = await again.read()
    assert [e.id for e in redelivered] == [batch_id]
    assert redelivered[0].deliveries == 2


async def test_an_undecodable_entry_is_reported_and_can_be_dead_lettered(any_redis) -> None:
    await any_redis.xadd(STREAM, {b"b": b"\xc1garbage"})
    consumer = consumer_of(any_redis, "c1", block_ms=50)
    await consumer.ensure_group()
    (entry,) = await consumer.read()
    assert entry.events == [] and entry.error and "undecodable" in entry.error
    await consumer.dead_letter(entry, entry.error)
    dead = await any_redis.xrange(DEAD)
    assert dead[0][1][b"id"].decode() == entry.id
    assert (await any_redis.xpending(STREAM, GROUP))["pending"] == 0


DEAD_CONSUMER = """
import asyncio, sys
from watchfloor.core import keys
from watchfloor.core.bus import EventConsumer
from watchfloor.core.redis_client import connect
async def main():
    r = connect(sys.argv[1])
    c = EventConsumer(r, consumer="doomed", stream=keys.events_shard(0),
                      dead_letter=keys.dead_letter(0), count=3, block_ms=100)
    await c.ensure_group()
    while not (entries := await c.read()):
        pass
    print("READ", len(entries), flush=True)
    await asyncio.sleep(3600)  # dies here, mid-batch, before acking
asyncio.run(main())
"""


async def test_entries_of_a_killed_consumer_are_claimed_and_processed_once(
    any_redis_url: str, any_redis
) -> None:
    producer = producer_of(any_redis)
    await consumer_of(any_redis, "x").ensure_group()
    for i in range(10):
        await producer.publish_events(beats(5, i * 5))
    proc = subprocess.Popen(
        [sys.executable, "-c", DEAD_CONSUMER, any_redis_url],
        stdout=subprocess.PIPE,
        text=True,
        cwd=os.getcwd(),
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().startswith("READ 3")
    proc.send_signal(signal.SIGKILL)
    proc.wait(5)
    proc.stdout.close()

    survivor = consumer_of(any_redis, "survivor", claim_idle_ms=200, claim_every_s=0.1, block_ms=50)
    seen: list[str] = []
    deadline = time.monotonic() + 10
    while len(seen) < 50 and time.monotonic() < deadline:
        for entry in await survivor.read():
            # the idempotent consumer: process an entry id once, whatever the deliveries
            if await any_redis.sadd("test:processed", entry.id):
                seen.extend(ev.source for ev in entry.events)
            await survivor.ack([entry.id])
        await asyncio.sleep(0.05)
    assert sorted(seen) == sorted(f"s{i}" for i in range(50))
    assert (await any_redis.xpending(STREAM, GROUP))["pending"] == 0


async def test_the_producer_rides_out_a_redis_restart(private_redis: EmbeddedRedis) -> None:
    client = aioredis.Redis.from_url(private_redis.url, socket_connect_timeout=0.5)
    producer = producer_of(client, retry_for_s=15)
    sent = 0

    async def restart_later() -> None:
        await asyncio.sleep(0.3)
        private_redis.kill()
        await asyncio.sleep(1.0)
        await asyncio.to_thread(private_redis.start)

    restarter = asyncio.create_task(restart_later())
    deadline = time.monotonic() + 4
    while time.monotonic() < deadline:
        await producer.publish_events(
            [
                QueueStats(
                    ts=1_763_800_000.0,
                    source="acd",
                    queue="q",
                    channel="chat",
                    waiting=sent,
                    longest_wait_s=0.0,
                    agents_available=1,
                    agents_busy=1,
                )
            ]
        )
        sent += 1
        await asyncio.sleep(0.01)
    await restarter
    # every acknowledged XADD survived the crash (AOF with fsync always)
    assert await client.xlen(STREAM) == sent
    await client.aclose()


async def test_the_producer_gives_up_with_bus_unavailable_when_redis_stays_down(
    private_redis: EmbeddedRedis,
) -> None:
    client = aioredis.Redis.from_url(private_redis.url, socket_connect_timeout=0.2)
    private_redis.kill()
    producer = producer_of(client, retry_for_s=0.5)
    started = time.monotonic()
    try:
        await producer.publish_events(beats(1))
    except BusUnavailable as exc:
        assert "cannot write to Redis" in str(exc)
    else:
        raise AssertionError("publish succeeded without Redis")
    assert time.monotonic() - started < 3
    await client.aclose()


async def test_the_consumer_reconnects_after_redis_restarts(private_redis: EmbeddedRedis) -> None:
    client = aioredis.Redis.from_url(private_redis.url, socket_connect_timeout=0.3)
    consumer = consumer_of(client, "c1", block_ms=50)
    await consumer.ensure_group()
    await producer_of(client).publish_events(beats(1))
    private_redis.kill()
    assert await consumer.read() == []  # failure logged, backoff slept, no exception
    await asyncio.to_thread(private_redis.start)
    entries: list = []
    for _ in range(50):
        entries = await consumer.read()
        if entries:
            break
    assert [ev.source for e in entries for ev in e.events] == ["s0"]
    await client.aclose()
