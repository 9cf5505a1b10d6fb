"""Two monitor workers started at the same moment on the same shards: exactly one
processes each shard, every event is folded in once and no incident is doubled.

Before workers had leases, a second ``watchfloor monitor`` on the same Redis read
half of the entries into its own windows and wrote the same checkpoint key.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.reliability.stack import (
    Counts,
    Producer,
    WorkerProcess,
    background,
    held_shards,
    incidents,
    leak,
    processed_ours,
    start_collector,
    stored,
    until,
)
from watchfloor.core import keys
from watchfloor.core.redis_client import connect_sync

AGENTS = [f"agent-{n}" for n in range(8)]


@pytest.mark.slow
def test_two_workers_started_at_once_split_the_shards_and_judge_each_event_once(
    redis_url: str, tmp_path: Path
) -> None:
    collector = start_collector(redis_url, tmp_path)
    workers = [WorkerProcess(redis_url, tmp_path, w) for w in ("w1", "w2")]
    for w in workers:
        w.start()  # together: both race for all 16 shards
    try:
        until(lambda: set(held_shards(redis_url).values()) == {"w1", "w2"}, 30, "both holding")
        until(lambda: _balanced(redis_url), 30, "8 shards each")
        producer = Producer(collector.url)
        for n in range(20):
            batch = background(n)
            if n % 2 == 0 and n // 2 < len(AGENTS):
                batch.append(leak(AGENTS[n // 2], 0))
            producer.post(batch)
            time.sleep(0.05)
        distinct, copies, _ = stored(redis_url)
        until(lambda: processed_ours(redis_url) >= distinct, 30, "every event processed")
        expected = {("leak.pii_in_message", a) for a in AGENTS}
        until(lambda: expected <= set(incidents(redis_url)), 30, "a leak per agent")
        time.sleep(1.0)
        found = incidents(redis_url)
        counts = Counts(
            producer.sent, producer.acknowledged, distinct, processed_ours(redis_url), copies,
            len(expected), len(found),
        )  # fmt: skip
        owners = _status_owners(redis_url)
        counts.extra["shards_per_worker"] = {
            w: list(owners.values()).count(w) for w in ("w1", "w2")
        }
        print(counts.row("two workers started together"))
        # Every shard's committed state is one worker's, and both hold half.
        assert sorted(owners) == list(range(16)) and set(owners.values()) == {"w1", "w2"}
        assert counts.sent == counts.acknowledged == counts.stored == counts.processed
        assert counts.duplicates == 0
        assert sorted(found) == sorted(expected)  # one incident each, none doubled
    finally:
        for w in workers:
            w.stop()
        collector.stop()


def _balanced(url: str) -> bool:
    held = list(held_shards(url).values())
    return held.count("w1") == held.count("w2") == 8


def _status_owners(url: str) -> dict[int, str]:
    """Shard -> the worker whose commit wrote its status last."""
    client = connect_sync(url)
    try:
        out = {}
        for shard in range(int(client.get(keys.SHARDS) or 0)):
            raw = client.hget(keys.engine_status(shard), "consumer")
            if raw is not None:
                out[shard] = raw.decode()
        return out
    finally:
        client.close()
