"""The collector's ``GET /metrics`` through prometheus_client, on a real collector app.

Producers' batches go in over HTTP; the exposition is parsed back with
prometheus_client's parsers (Prometheus text and OpenMetrics), so the checks are
about the figures each series carries, not about text layout.
"""

from __future__ import annotations

import json
import time
from typing import Any

import aiohttp
import pytest
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from tests.collector.conftest import Running, StartCollector
from tests.collector.test_http_ingest import post

SOURCES = ('pbx "east" \\ 1', "acd}{,=", "呼叫中心-北京", 'x"} 1 # TYPE fake_metric counter')
"""Source names as producers may send them: quotes, backslashes, braces, Chinese."""


def contact(n: int, source: str, ts: float | None = None) -> dict[str, Any]:
    return {
        "type": "contact", "ts": time.time() if ts is None else ts, "source": source,
        "id": f"c-{n}", "contact_id": f"c-{n}", "queue": "presale", "channel": "chat",
        "action": "offered",
    }  # fmt: skip


async def scrape(running: Running, accept: str | None = None) -> tuple[str, list[Sample]]:
    headers = {"Accept": accept} if accept else {}
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{running.url}/metrics", headers=headers) as r,
    ):
        assert r.status == 200
        text = await r.text()
    content_type = r.headers["Content-Type"]
    parse = openmetrics_families if accept else text_string_to_metric_families
    return content_type, [s for family in parse(text) for s in family.samples]


def by_label(found: list[Sample], name: str, label: str) -> dict[str, float]:
    return {s.labels[label]: s.value for s in found if s.name == name}


async def send(running: Running, events: list[dict[str, Any]]) -> dict[str, Any]:
    status, answer = await post(running, json.dumps(events).encode())
    assert status == 202, answer
    return answer


async def test_counts_of_accepted_rejected_and_duplicate_events_parse_back_exactly(
    collector: Running,
) -> None:
    await send(collector, [contact(i, source) for i, source in enumerate(SOURCES)])
    await send(collector, [contact(i, source) for i, source in enumerate(SOURCES[:2])])
    await send(collector, [contact(9, SOURCES[0]), {"type": "contact", "ts": time.time()}])
    content_type, found = await scrape(collector)
    assert content_type == "text/plain; version=0.0.4; charset=utf-8"
    accepted = by_label(found, "watchfloor_collector_events_accepted_total", "type")
    assert accepted == {"contact": len(SOURCES) + 1}
    duplicates = by_label(found, "watchfloor_collector_events_duplicate_total", "source")
    assert duplicates == {SOURCES[0]: 1, SOURCES[1]: 1}
    rejected = by_label(found, "watchfloor_collector_events_rejected_total", "type")
    assert rejected == {"contact": 1}
    batches = by_label(found, "watchfloor_collector_batches_total", "transport")
    assert batches == {"http": 3}
    sizes = {s.name: s.value for s in found if s.name.startswith("watchfloor_collector_batch_")}
    assert sizes["watchfloor_collector_batch_events_count"] == 3
    assert sizes["watchfloor_collector_batch_events_sum"] == len(SOURCES) + 2 + 2
    assert not [s for s in found if s.name.startswith("fake_metric")]


async def test_a_scraper_asking_for_openmetrics_gets_it_with_the_same_figures(
    collector: Running,
) -> None:
    ahead = time.time() + 86_400
    await send(collector, [contact(1, SOURCES[3]), contact(2, SOURCES[2], ts=ahead)])
    content_type, found = await scrape(collector, "application/openmetrics-text; version=1.0.0")
    assert content_type.startswith("application/openmetrics-text; version=1.0.0")
    refused = [s for s in found if s.name == "watchfloor_collector_events_clock_refused_total"]
    assert [(s.labels, s.value) for s in refused] == [
        ({"source": SOURCES[2], "direction": "ahead"}, 1.0)
    ]
    accepted = by_label(found, "watchfloor_collector_events_accepted_total", "type")
    assert accepted == {"contact": 1}
    write = [s for s in found if s.name == "watchfloor_collector_redis_write_seconds_count"]
    assert [s.value for s in write] == [1.0]


async def test_two_collector_apps_in_one_process_keep_their_own_counts(
    start_collector: StartCollector, redis_url: str
) -> None:
    first, second = await start_collector(redis_url), await start_collector(redis_url)
    await send(first, [contact(1, "acd-1"), contact(2, "acd-1")])
    await send(second, [{"type": "heartbeat", "ts": time.time(), "source": "acd-2"}])
    _, one = await scrape(first)
    _, two = await scrape(second)
    assert by_label(one, "watchfloor_collector_events_accepted_total", "type") == {"contact": 2}
    assert by_label(two, "watchfloor_collector_events_accepted_total", "type") == {"heartbeat": 1}


@pytest.mark.parametrize(
    "accept",
    ["text/plain; version=abc", "application/openmetrics-text; version=1.x", ";;==,;version=x"],
)
async def test_a_malformed_accept_header_gets_the_plain_text_format(
    collector: Running, accept: str
) -> None:
    await send(collector, [contact(1, "acd-1")])
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{collector.url}/metrics", headers={"Accept": accept}) as r,
    ):
        assert (r.status, r.headers["Content-Type"]) == (
            200, "text/plain; version=0.0.4; charset=utf-8")  # fmt: skip
        found = [s for f in text_string_to_metric_families(await r.text()) for s in f.samples]
    assert by_label(found, "watchfloor_collector_events_accepted_total", "type") == {"contact": 1}
