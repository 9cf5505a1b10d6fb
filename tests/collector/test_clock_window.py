"""The collector's clock window: events stamped too far from its clock are refused per event."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from tests.collector.conftest import StartCollector, all_events
from tests.collector.test_http_ingest import post


def stats(ts: float, source: str = "pbx-1", **extra: Any) -> dict[str, Any]:
    return {
        "type": "queue.stats", "ts": ts, "source": source, "queue": "presale-chat",
        "channel": "chat", "waiting": 3, "longest_wait_s": 1.5, "agents_available": 3,
        "agents_busy": 5, **extra,
    }  # fmt: skip


@pytest.mark.parametrize(
    ("offset_s", "words"),
    [
        (86_400, "ts is 86400 s ahead of the collector's clock; the window is -21600 s .. +30 s"),
        (45, "ts is 45 s ahead"),
        (-7 * 3600, "ts is 25200 s behind the collector's clock"),
        (-30 * 86_400, "ts is 2592000 s behind"),  # the old curl example's fixed date
    ],
)
async def test_an_event_outside_the_window_is_refused_by_index_and_ts_and_the_rest_kept(
    start_collector: StartCollector, redis_url: str, offset_s: float, words: str
) -> None:
    running = await start_collector(redis_url)
    now = time.time()
    batch = [stats(now), stats(now + offset_s, source="bad-pbx"), stats(now - 5)]
    status, answer = await post(running, json.dumps(batch).encode())
    assert status == 202 and answer["accepted"] == 2
    [refusal] = answer["rejected"]
    assert (refusal["index"], refusal["field"]) == (1, "ts")
    assert words in refusal["error"]
    assert [e.source for e in await all_events(running.redis)] == ["pbx-1", "pbx-1"]
    direction = "ahead" if offset_s > 0 else "behind"
    metrics = await _metrics(running)
    name = "watchfloor_collector_events_clock_refused_total"
    line = f'{name}{{direction="{direction}",source="bad-pbx"}} 1'  # labels sorted by name
    assert line in metrics


async def test_events_near_the_edges_of_the_window_are_accepted(
    start_collector: StartCollector, redis_url: str
) -> None:
    running = await start_collector(redis_url)
    now = time.time()
    batch = [stats(now + 25), stats(now - 6 * 3600 + 60), stats(now)]
    status, answer = await post(running, json.dumps(batch).encode())
    assert (status, answer["accepted"], answer["rejected"]) == (202, 3, [])


async def test_the_window_is_configurable(start_collector: StartCollector, redis_url: str) -> None:
    running = await start_collector(redis_url, collector={"max_ahead_s": 2, "max_behind_s": 60})
    now = time.time()
    batch = [stats(now + 10), stats(now - 120), stats(now)]
    status, answer = await post(running, json.dumps(batch).encode())
    assert (status, answer["accepted"]) == (202, 1)
    assert [r["index"] for r in answer["rejected"]] == [0, 1]
    assert "the window is -60 s .. +2 s" in answer["rejected"][0]["error"]


async def test_the_collectors_own_heartbeats_are_never_refused(
    start_collector: StartCollector, redis_url: str
) -> None:
    from watchfloor.collector.appkeys import INGESTOR
    from watchfloor.core.events import Heartbeat

    running = await start_collector(redis_url, collector={"max_ahead_s": 0, "max_behind_s": 0})
    result = await running.app[INGESTOR].ingest_events([Heartbeat(ts=time.time(), source="c")])
    assert result.accepted == 1


async def _metrics(running: Any) -> str:
    import aiohttp

    async with aiohttp.ClientSession() as session, session.get(f"{running.url}/metrics") as r:
        return await r.text()
