"""Redis unreachable for a while under load: the collector's spool takes it, nothing is lost.

A Redis of the test's own (AOF, ``appendfsync always``) is SIGKILLed under a steady
producer and started again on the same port after ``OUTAGE_S``; a real ``watchfloor
collector`` keeps acknowledging (into its fsynced spool) and a real monitor worker
waits it out. Afterwards every acknowledged event is in its shard's stream once and
in acceptance order, every one is processed, and the leaks posted during the outage
(incidents of that minute) are open.

The issue asks for 60 s: ``WATCHFLOOR_OUTAGE_S=60 pytest -s tests/reliability/
test_redis_unreachable.py`` is the documented run; CI keeps the default 20 s.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.monitor.processes import CollectorProcess, wait_for
from tests.reliability.processes import (
    alive,
    collector_health,
    ids_by_shard,
    init_data_dir,
    open_fingerprints,
    processed_events,
    registered,
    spool_drained,
    stored_ids,
)
from tests.reliability.stack import ID_TEXT, Counts, Producer, WorkerProcess
from watchfloor.core.redis_server import EmbeddedRedis

pytestmark = pytest.mark.slow

OUTAGE_S = float(os.environ.get("WATCHFLOOR_OUTAGE_S", "20"))
BEFORE_S = AFTER_S = 3.0
QUEUES = 16
POST_EVERY_S = 0.1
OUTAGE_LEAKS = 5
LEAK_RULE = "leak.pii_in_message"


def batch(n: int, leaker: str | None) -> list[dict[str, Any]]:
    """Queue snapshots (and a leaking message): ids sort in the order they were sent."""
    now = time.time()
    events: list[dict[str, Any]] = [
        {"type": "queue.stats", "id": f"e{n:06d}.{q:02d}", "ts": now, "source": "acd",
         "queue": f"q-{q}", "channel": "chat", "waiting": 1, "longest_wait_s": 5.0,
         "agents_available": 4, "agents_busy": 3}
        for q in range(QUEUES)
    ]  # fmt: skip
    if leaker:
        events.append(
            {"type": "agent.message", "id": f"e{n:06d}.99", "ts": now, "source": "im",
             "agent_id": leaker, "conversation_id": f"c-{leaker}", "channel": "chat",
             "direction": "to_customer", "text": ID_TEXT}
        )  # fmt: skip
    return events


class SteadyLoad:
    """One producer posting a batch every ``POST_EVERY_S`` (its resends keep the order)."""

    def __init__(self, url: str) -> None:
        self.producer = Producer(url)
        self.leaks: list[str] = []
        self.pending_leak: str | None = None
        self.ids: list[str] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def leak(self, agent: str) -> None:
        self.pending_leak = agent

    def run(self) -> None:
        n = 0
        while not self.stop.is_set():
            leaker, self.pending_leak = self.pending_leak, None
            events = batch(n, leaker)
            self.producer.post(events)
            self.ids += [e["id"] for e in events]
            if leaker:
                self.leaks.append(leaker)
            n += 1
            time.sleep(POST_EVERY_S)


def outage(redis: EmbeddedRedis, load: SteadyLoad, collector: str) -> int:
    """Kill Redis for ``OUTAGE_S`` while leaks are posted; the deepest spool seen."""
    redis.kill()
    started, deepest = time.monotonic(), 0
    for k in range(OUTAGE_LEAKS):
        while time.monotonic() - started < OUTAGE_S * (k + 0.5) / OUTAGE_LEAKS:
            deepest = max(deepest, int((collector_health(collector) or {}).get("spool_batches", 0)))
            time.sleep(0.2)
        load.leak(f"outage-{k}")
    while time.monotonic() - started < OUTAGE_S:
        deepest = max(deepest, int((collector_health(collector) or {}).get("spool_batches", 0)))
        time.sleep(0.2)
    port = redis.port
    redis.start()
    assert redis.port == port, "Redis came back on another port"
    return deepest


def test_redis_unreachable_under_load_the_spool_replays_in_order_and_nothing_is_lost(
    private_redis: EmbeddedRedis, tmp_path: Path
) -> None:
    url = private_redis.url
    print(f"\n[reliability] Redis outage of {OUTAGE_S:.0f}s (WATCHFLOOR_OUTAGE_S; the issue: 60)")
    data_dir = init_data_dir(tmp_path / "data", "[collector]\nheartbeat_interval_s = 0\n")
    collector = CollectorProcess(url, data_dir)
    worker = WorkerProcess(url, data_dir, "w1")
    load = SteadyLoad("")
    try:
        collector.start()
        worker.start()
        wait_for(lambda: registered(url, "w1"), 30, "worker w1 registered")
        load = SteadyLoad(collector.url)
        load.thread.start()
        time.sleep(BEFORE_S / 2)
        load.leak("before-0")
        time.sleep(BEFORE_S / 2)
        deepest = outage(private_redis, load, collector.url)
        time.sleep(AFTER_S)
        load.stop.set()
        load.thread.join(60)
        wait_for(lambda: spool_drained(collector.url), 60, "the spool replayed")
        distinct, copies = stored_ids(url)
        wait_for(lambda: processed_events(url) >= distinct, 60, "every event processed")
        expected = {f"{LEAK_RULE}|{agent}" for agent in load.leaks}
        wait_for(lambda: expected <= open_fingerprints(url), 30, "the leaks of the outage open")
        opened = expected & open_fingerprints(url)
        by_shard = ids_by_shard(url)
        counts = Counts(
            sent=len(load.ids), acknowledged=load.producer.acknowledged, stored=distinct,
            processed=processed_events(url), duplicates=load.producer.duplicates,
            incidents_expected=len(load.leaks), incidents_opened=len(opened),
            extra={"outage_s": OUTAGE_S, "deepest_spool_batches": deepest,
                   "copies_stored": copies, "worker_alive": alive(worker)},
        )  # fmt: skip
        print(counts.row(f"Redis unreachable {OUTAGE_S:.0f}s"))
    finally:
        load.stop.set()
        collector.stop()
        worker.stop()

    assert load.producer.errors == [], load.producer.errors[:3]
    assert len(load.leaks) == OUTAGE_LEAKS + 1, load.leaks
    assert deepest > 0, "nothing went to the spool while Redis was down"
    assert counts.acknowledged == len(load.ids) == distinct and copies == 0
    assert sorted(i for ids in by_shard.values() for i in ids) == sorted(load.ids)
    for shard, ids in by_shard.items():
        assert ids == sorted(ids), f"shard {shard} out of acceptance order"
    assert counts.processed == distinct, counts.row("processed")
    assert opened == expected
    assert counts.extra["worker_alive"], worker.log()
