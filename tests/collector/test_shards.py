"""Sharded events: the collector splits each batch by subject, stores each event once in
its shard's stream (on a single Redis and on a Redis Cluster), survives a crash between
the shard writes of one batch, and refuses a Redis set up with another shard count."""

from __future__ import annotations

import json
import time
import zlib
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp

from tests.collector.conftest import (
    SHARDS,
    Running,
    StartCollector,
    all_events,
    events_by_shard,
)
from tests.collector.test_crash_points import CollectorProcess, send, up, wait_for
from tests.collector.test_spool import wait_drained
from watchfloor.collector.service import connect_redis
from watchfloor.core.redis_server import EmbeddedRedis
from watchfloor.playbooks.shift_figures import shift_figures

NOW = time.time()


def shard(subject: str) -> int:
    """The shard the partition contract names: CRC-32 of the subject, modulo the count."""
    return zlib.crc32(subject.encode()) % SHARDS


def contact(i: int, queue: str) -> dict[str, Any]:
    return {
        "type": "contact", "ts": NOW, "source": "acd-1", "id": f"c-{i}",
        "contact_id": f"c-{i}", "queue": queue, "channel": "chat", "action": "offered",
    }  # fmt: skip


def health(i: int, component: str) -> dict[str, Any]:
    return {"type": "health", "ts": NOW, "source": "probe", "id": f"h-{i}",
            "component": component, "status": "up"}  # fmt: skip


def subject(event: dict[str, Any]) -> str:
    return str(event.get("queue") or event.get("component"))


async def post(running: Running, events: list[dict[str, Any]]) -> dict[str, Any]:
    headers = {**running.headers, "Content-Type": "application/json"}
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{running.url}/v1/events", data=json.dumps(events), headers=headers) as r,
    ):
        assert r.status == 202, await r.text()
        return dict(await r.json())


async def test_a_batch_over_many_subjects_lands_split_by_shard_each_event_once(
    any_service: Running,
) -> None:
    batch = [contact(i, f"queue-{i % 40}") for i in range(300)]
    batch += [health(i, f"node-{i % 9}") for i in range(60)]
    answer = await post(any_service, batch)
    assert (answer["accepted"], answer["duplicates"]) == (len(batch), 0)
    stored = await events_by_shard(any_service.redis)
    assert len(stored) == len({shard(subject(e)) for e in batch}) > 10  # many shards touched
    for n, events in stored.items():
        sent_here = [e["id"] for e in batch if shard(subject(e)) == n]
        assert [e.id for e in events] == sent_here, n  # right shard, in the batch's order
    again = await post(any_service, batch)  # a resend: every part is recognised
    assert (again["accepted"], again["duplicates"]) == (0, len(batch))
    assert Counter(e.id for e in await all_events(any_service.redis)) == Counter(
        e["id"] for e in batch
    )


def queues_apart(count: int) -> list[str]:
    """``count`` queue names in distinct shards."""
    names: dict[int, str] = {}
    i = 0
    while len(names) < count:
        names.setdefault(shard(f"queue-{i}"), f"queue-{i}")
        i += 1
    return list(names.values())


async def stored_counts(redis_url: str) -> Counter[str]:
    client = connect_redis(redis_url)
    try:
        return Counter(str(e.id) for e in await all_events(client))
    finally:
        await client.aclose()


async def test_a_resend_after_a_crash_between_shard_writes_stores_each_event_once(
    tmp_path: Path, private_redis: EmbeddedRedis
) -> None:
    first, *others = queues_apart(6)
    proc = CollectorProcess(tmp_path / "data", private_redis.url)
    seen = [contact(0, first)]
    # The part of ``first``'s shard holds a duplicate: the other parts are written in the
    # first round, that one's rest in a second: the fault point is between them.
    batch = [*seen, contact(1, first)] + [contact(10 + i, q) for i, q in enumerate(others)]
    proc.start(fault="ingest.shard_written")
    try:
        await wait_for(lambda: up(proc), "collector up")
        assert await send(proc.url, seen) is not None
        assert await send(proc.url, batch) is None, "the fault point was not reached"
        assert proc.wait_exit() == 137
        partial = await stored_counts(private_redis.url)
        assert set(partial) == {"c-0"} | {f"c-{10 + i}" for i in range(len(others))}
        proc.start()
        await wait_for(lambda: up(proc), "collector up again")
        answer = await send(proc.url, batch)
    finally:
        proc.stop()
    assert answer is not None
    assert (answer["accepted"], answer["duplicates"]) == (1, len(batch) - 1)  # only c-1 new
    stored = await stored_counts(private_redis.url)
    print(f"\nsent {len(batch) + 1} acknowledged {len(batch)} stored {stored.total()}")
    assert stored == Counter(e["id"] for e in batch)


async def test_a_collector_configured_with_another_shard_count_refuses_to_start(
    tmp_path: Path, private_redis: EmbeddedRedis
) -> None:
    proc = CollectorProcess(tmp_path / "data", private_redis.url)
    proc.start()
    try:
        await wait_for(lambda: up(proc), "collector up")
    finally:
        proc.stop()
    other = SHARDS // 2
    with (proc.data_dir / "watchfloor.toml").open("a") as toml:
        toml.write(f"[redis]\nshards = {other}\n")
    proc.start()
    assert proc.wait_exit() not in (0, 137)
    said = (proc.data_dir / "collector.out").read_text()
    assert f"set up with {SHARDS} events shards" in said and f"says {other}" in said, said
    assert "Traceback" not in said  # one line the operator can act on
    assert not await up(proc)


async def test_the_shift_figures_count_the_events_of_every_shard(
    start_collector: StartCollector, redis_url: str
) -> None:
    running = await start_collector(redis_url)
    queues = queues_apart(5)
    batch = [
        {"type": "queue.stats", "ts": NOW, "source": "acd-1", "queue": q, "channel": "phone",
         "waiting": 1, "longest_wait_s": 3.0, "agents_available": 1, "agents_busy": 1,
         "offered": 10 * (i + 1) + k, "answered": 5, "abandoned": 1}
        for i, q in enumerate(queues) for k in range(3)
    ]  # fmt: skip
    assert (await post(running, batch))["accepted"] == len(batch)
    figures = await shift_figures(running.redis, NOW - 60, time.time() + 1)
    offered = {q: sum(e["offered"] for e in batch if e["queue"] == q) for q in queues}
    assert {q: f["offered"] for q, f in figures["queues"].items()} == offered
    assert figures["total"]["offered"] == sum(offered.values())


async def test_a_spooled_batch_whose_parts_were_partly_written_is_replayed_each_event_once(
    start_collector: StartCollector, private_redis: EmbeddedRedis
) -> None:
    running = await start_collector(private_redis.url)
    queues = queues_apart(6)
    batch = [contact(i, queues[i % 6]) for i in range(60)]
    # Before Redis failed, the parts of the first three shards were written...
    early = [e for e in batch if e["queue"] in queues[:3]]
    assert (await post(running, early))["accepted"] == len(early)
    private_redis.kill()
    answer = await post(running, batch)  # ...and the whole batch is spooled, then replayed
    assert answer["accepted"] == len(batch)
    private_redis.start()
    await wait_drained(running)
    stored = Counter(e.id for e in await all_events(running.redis))
    assert stored == Counter(e["id"] for e in batch)
    by_shard = await events_by_shard(running.redis)
    for q in queues:  # each shard in acceptance order: the early part, then the replayed rest
        assert [e.id for e in by_shard[shard(q)]] == [e["id"] for e in batch if e["queue"] == q]
