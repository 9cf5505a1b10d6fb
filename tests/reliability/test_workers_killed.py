"""A monitor worker SIGKILLed mid-batch under load: its shards are taken over, and the
incidents are those of an uninterrupted run, none doubled.

Two real ``watchfloor monitor`` workers share the 16 events shards of a real Redis;
a real collector takes a producer's traffic: quiet queue snapshots of 40 queues
(~800 events/s) with, spread through it, 8 agents leaking a customer's ID number
and 5 components failing their probes. Mid-stream the worker holding shards is
SIGKILLed. The same traffic through an uninterrupted pair is the control run.
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
    probe,
    processed_ours,
    start_collector,
    stored,
    until,
)

AGENTS = [f"agent-{n}" for n in range(8)]  # within the cap of 10 new incidents a minute
COMPONENTS = [f"svc-{n}" for n in range(5)]
ROUNDS = 40


def run(redis_url: str, data_dir: Path, kill_at: int | None) -> tuple[Counts, list]:
    import redis as sync_redis

    sync_redis.Redis.from_url(redis_url).flushall()
    data_dir.mkdir()
    collector = start_collector(redis_url, data_dir)
    workers = [WorkerProcess(redis_url, data_dir, w) for w in ("w1", "w2")]
    for w in workers:
        w.start()
    counts = Counts(incidents_expected=len(AGENTS) + len(COMPONENTS))
    try:
        until(lambda: set(held_shards(redis_url).values()) == {"w1", "w2"}, 30, "both workers")
        producer = Producer(collector.url)
        killed_at = None
        for n in range(ROUNDS):
            batch = background(n)
            if n % 4 == 1 and n // 4 < len(AGENTS):
                batch.append(leak(AGENTS[n // 4], 0))
            if n % 5 == 0 and n // 5 < len(COMPONENTS):
                c = COMPONENTS[n // 5]
                batch += [probe(c, "down", k) for k in range(3)]  # no history: 3 in a row
            producer.post(batch)
            if kill_at is not None and n == kill_at:
                victim = next(w for w in workers if w.id == "w1")
                victim.kill()  # SIGKILL: no goodbye, no final checkpoint, leases left
                killed_at = time.monotonic()
            time.sleep(0.05)
        if killed_at is not None:
            until(lambda: set(held_shards(redis_url).values()) == {"w2"}, 30, "w2 taking over")
            counts.extra["takeover_s"] = round(time.monotonic() - killed_at, 1)
        distinct, copies, _ = stored(redis_url)
        until(lambda: processed_ours(redis_url) >= distinct + copies, 30, "all processed")
        expected = {("leak.pii_in_message", a) for a in AGENTS} | {
            ("outage.component", c) for c in COMPONENTS
        }
        until(lambda: expected <= set(incidents(redis_url)), 30, "every expected incident")
        time.sleep(1.0)  # what a doubled write would need to show up
        found = incidents(redis_url)
        counts.sent, counts.acknowledged = producer.sent, producer.acknowledged
        counts.stored, counts.duplicates = distinct, copies
        counts.processed = processed_ours(redis_url)
        counts.incidents_opened = len(found)
        assert not producer.errors, producer.errors[:3]
        return counts, found
    finally:
        for w in workers:
            w.stop()
        collector.stop()


@pytest.mark.slow
def test_a_worker_killed_mid_stream_leaves_the_incidents_of_an_uninterrupted_run(
    redis_url: str, tmp_path: Path
) -> None:
    control, expected = run(redis_url, tmp_path / "control", None)
    print(control.row("uninterrupted"))
    counts, found = run(redis_url, tmp_path / "killed", kill_at=ROUNDS // 3)
    print(counts.row("worker SIGKILLed mid-stream"))
    assert found == expected  # the same incidents, none doubled
    assert len(set(found)) == len(found) == counts.incidents_expected
    assert counts.sent == counts.acknowledged == counts.stored == counts.processed
    assert counts.duplicates == 0
    assert counts.extra["takeover_s"] <= 3.0 * 2 + 3  # lease + two ticks, with slack
