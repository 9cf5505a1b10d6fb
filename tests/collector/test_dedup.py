"""Duplicate suppression in Redis: per source, within the window, across collectors,
recorded in the same atomic script as the write."""

from __future__ import annotations

import asyncio
import json
import time
import zlib
from typing import Any

import aiohttp
import pytest

from tests.collector.conftest import SHARDS, StartCollector, all_events, shard_entries
from watchfloor.collector.dedup import Deduplicator
from watchfloor.core.events import Heartbeat, encode_batch

T0 = 1_800_000_000.0


def beats(*ids: str, source: str = "acd-1") -> list[Heartbeat]:
    return [Heartbeat(ts=T0, source=source, id=i) for i in ids]


@pytest.mark.parametrize(
    ("first", "second", "later_s", "kept"),
    [
        (["a", "b"], ["a", "c"], 1, ["c"]),
        (["a"], ["a"], 599, []),  # still inside the 10-minute window
        (["a"], ["a"], 1300, ["a"]),  # two windows later: forgotten
        (["x\ny", "x"], ["x\ny", "y"], 1, ["y"]),  # an id holding a newline
        ([], ["d", "d", "e"], 1, ["d", "e"]),  # repeated inside one batch
    ],
)
async def test_an_id_seen_from_the_same_source_within_the_window_is_dropped(
    redis_client: Any, first: list[str], second: list[str], later_s: float, kept: list[str]
) -> None:
    dedup = Deduplicator(redis_client, window_s=600)
    if first:
        await dedup.write(beats(*first), now=T0)
    written = await dedup.write(beats(*second), now=T0 + later_s)
    assert [e.id for e in written.kept] == kept
    assert written.duplicates.get("acd-1", 0) == len(second) - len(kept)
    assert [e.id for e in (await all_events(redis_client))[len(first) :]] == kept


async def test_events_without_id_and_other_sources_are_never_duplicates(redis_client: Any) -> None:
    dedup = Deduplicator(redis_client)
    await dedup.write(beats("a"), now=T0)
    anonymous = [Heartbeat(ts=T0, source="acd-1")] * 2
    written = await dedup.write([*anonymous, *beats("a", source="acd-2")], now=T0)
    assert len(written.kept) == 3 and written.duplicates == {}
    assert len(await all_events(redis_client)) == 4


async def test_a_batch_of_only_duplicates_writes_no_entry(redis_client: Any) -> None:
    dedup = Deduplicator(redis_client)
    first = await dedup.write(beats("a", "b"), now=T0)
    again = await dedup.write(beats("b", "a"), now=T0)
    assert len(first.entries) == 1 and again.entries == {}
    assert again.kept == [] and again.duplicates == {"acd-1": 2}
    assert len(await shard_entries(redis_client)) == 1


@pytest.mark.parametrize("size", [1, 15, 16, 65_535, 65_536])
async def test_the_entry_the_script_builds_is_the_batch_encoding(
    redis_client: Any, size: int
) -> None:
    events = [Heartbeat(ts=T0 + i, source=f"s{i % 3}", id=f"e{i}") for i in range(size)]
    await Deduplicator(redis_client).write(events, now=T0)
    by_shard: dict[int, list[Heartbeat]] = {}
    for event in events:  # a heartbeat's subject is its source: CRC-32 of it picks the shard
        by_shard.setdefault(zlib.crc32(event.source.encode()) % SHARDS, []).append(event)
    entries = await shard_entries(redis_client)
    assert {n: fields[b"b"] for n, _id, fields in entries} == {
        n: encode_batch(part) for n, part in by_shard.items()
    }
    assert len(entries) == len(by_shard)  # one entry per shard touched


async def test_two_collectors_racing_on_the_same_ids_accept_each_event_once(
    start_collector: StartCollector, any_redis_url: str
) -> None:
    one, two = await start_collector(any_redis_url), await start_collector(any_redis_url)
    batch = [{"type": "heartbeat", "ts": time.time(), "source": "acd-1", "id": f"h{i}"}
             for i in range(200)]  # fmt: skip
    body = json.dumps(batch).encode()
    headers = {**one.headers, "Content-Type": "application/json"}

    async def post(url: str) -> dict[str, Any]:
        async with (
            aiohttp.ClientSession() as session,
            session.post(f"{url}/v1/events", data=body, headers=headers) as resp,
        ):
            return await resp.json()

    answers = await asyncio.gather(*(post(r.url) for r in (one, two, one, two)))
    assert sum(a["accepted"] for a in answers) == 200
    assert sum(a["duplicates"] for a in answers) == 600
    assert sorted(e.id for e in await all_events(one.redis)) == sorted(e["id"] for e in batch)
