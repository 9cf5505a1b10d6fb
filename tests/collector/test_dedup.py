"""Duplicate suppression in Redis: per source, within the window, across collectors."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiohttp
import pytest

from collector.dedup import Deduplicator
from core.events import Heartbeat
from tests.collector.conftest import StartCollector

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
    await dedup.filter(beats(*first), now=T0)
    fresh, dups = await dedup.filter(beats(*second), now=T0 + later_s)
    assert [e.id for e in fresh] == kept
    assert dups.get("acd-1", 0) == len(second) - len(kept)


async def test_events_without_id_and_other_sources_are_never_duplicates(redis_client: Any) -> None:
    dedup = Deduplicator(redis_client)
    await dedup.filter(beats("a"), now=T0)
    anonymous = [Heartbeat(ts=T0, source="acd-1")] * 2
    fresh, dups = await dedup.filter([*anonymous, *beats("a", source="acd-2")], now=T0)
    assert len(fresh) == 3 and dups == {}


async def test_two_collectors_racing_on_the_same_ids_accept_each_event_once(
    start_collector: StartCollector, redis_url: str
) -> None:
    one, two = await start_collector(redis_url), await start_collector(redis_url)
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
