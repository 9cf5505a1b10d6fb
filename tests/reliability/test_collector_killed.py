"""A collector SIGKILLed mid-request under load loses nothing and stores nothing twice.

Real processes on a Redis of the test's own: ``watchfloor collector`` and one monitor
worker (``watchfloor monitor --worker-id w1 --no-api``). Four producers (the product's
:class:`ProducerClient`, which resends every batch it has no answer for) post batches
with event ids at once, so requests are in flight when the collector is SIGKILLed;
it is started again on the same port. In the ``mid-write`` case Redis is paused
(SIGSTOP) just before the kill, so the writes of the batches in flight are carried out
after the collector died and their answers are lost for sure. Every event must then be
stored once (a batch written before the kill and sent again is dropped by id),
processed once by the worker, and every leaking agent must have exactly one incident.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.monitor.processes import CollectorProcess
from tests.reliability.processes import (
    all_incidents,
    init_data_dir,
    open_fingerprints,
    processed_events,
    registered,
    stored_ids,
    until,
)
from tests.reliability.stack import ADMIN, Counts, WorkerProcess, background, leak
from watchfloor.collector.client import ProducerClient
from watchfloor.core.redis_server import EmbeddedRedis

pytestmark = pytest.mark.slow

PRODUCERS, BATCHES, QUEUES = 4, 30, 24
KILL_AT = 0.4
"""Share of the batches acknowledged when the collector is killed."""
AGENTS_PER_PRODUCER = 2
"""Eight leaking agents: under the per-rule cap of ten new incidents a minute."""
LEAK_RULE = "leak.pii_in_message"


def batch(producer: int, n: int) -> list[dict[str, Any]]:
    """Queue snapshots and one leaking message: each batch lands on several shards."""
    agent = f"a-{producer}-{n % AGENTS_PER_PRODUCER}"
    return [*background(producer * 1000 + n, QUEUES), leak(agent, n)]


class Load:
    """The producers, with the batches in flight and answered counted as they go."""

    def __init__(self, url: str) -> None:
        self.clients = [
            ProducerClient(url, ADMIN, retry_for_s=60, max_backoff_s=0.3, timeout_s=10)
            for _ in range(PRODUCERS)
        ]
        self.in_flight: set[tuple[int, int]] = set()
        self.answered = 0

    async def produce(self, p: int) -> None:
        async with self.clients[p] as client:
            for n in range(BATCHES):
                self.in_flight.add((p, n))
                await client.send_batch(batch(p, n))  # retried until answered
                self.in_flight.discard((p, n))
                self.answered += 1

    def stat(self, name: str) -> int:
        return sum(int(getattr(c.stats, name)) for c in self.clients)


@contextlib.contextmanager
def redis_paused(redis: EmbeddedRedis, pause: bool) -> Iterator[None]:
    """With ``pause``, Redis is SIGSTOPped inside the block: the collector's writes wait
    unread in its socket, and run when it is continued, after the collector is dead."""
    assert redis.process is not None
    if pause:
        os.kill(redis.process.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        if pause:
            os.kill(redis.process.pid, signal.SIGCONT)


@pytest.mark.parametrize("mid_write", [False, True], ids=["under-load", "mid-write"])
async def test_a_collector_killed_mid_request_loses_nothing_and_stores_nothing_twice(
    private_redis: EmbeddedRedis, tmp_path: Path, mid_write: bool
) -> None:
    redis_url = private_redis.url
    data_dir = init_data_dir(tmp_path / "data", "[collector]\nheartbeat_interval_s = 0\n")
    collector = CollectorProcess(redis_url, data_dir)
    worker = WorkerProcess(redis_url, data_dir, "w1")
    load = Load("")
    try:
        await asyncio.to_thread(collector.start)
        worker.start()
        await until(lambda: registered(redis_url, "w1"), 30, "worker w1 registered")
        load = Load(collector.url)
        producing = asyncio.gather(*(load.produce(p) for p in range(PRODUCERS)))
        await until(lambda: load.answered >= KILL_AT * PRODUCERS * BATCHES, 30, "acks")
        with redis_paused(private_redis, mid_write):
            if mid_write:
                await asyncio.sleep(0.5)  # the batches in flight reach Redis's socket
            caught = len(load.in_flight)
            collector.kill()
        killed_at = time.monotonic()
        await asyncio.to_thread(collector.start)  # same port: the producers' retries reach it
        back_s = time.monotonic() - killed_at
        await asyncio.wait_for(producing, 60)

        sent_ids = {e["id"] for p in range(PRODUCERS) for n in range(BATCHES) for e in batch(p, n)}
        distinct, copies = stored_ids(redis_url)
        await until(lambda: processed_events(redis_url) >= distinct, 30, "every event processed")
        agents = {f"a-{p}-{a}" for p in range(PRODUCERS) for a in range(AGENTS_PER_PRODUCER)}
        expected = {f"{LEAK_RULE}|{agent}" for agent in agents}
        await until(lambda: expected <= open_fingerprints(redis_url), 30, "a leak per agent")
        await asyncio.sleep(1.0)  # time for a doubled incident or a late count to show
        counted = processed_events(redis_url)
        leaks = [subject for rule, subject in all_incidents(redis_url) if rule == LEAK_RULE]
        counts = Counts(
            sent=len(sent_ids), acknowledged=load.stat("accepted") + load.stat("duplicates"),
            stored=distinct, processed=counted, duplicates=load.stat("duplicates"),
            incidents_expected=len(agents), incidents_opened=len(leaks),
            extra={"in_flight_at_kill": caught, "retries": load.stat("retries"),
                   "collector_back_s": round(back_s, 2), "copies_stored": copies},
        )  # fmt: skip
        print(
            "\n"
            + counts.row(
                f"collector SIGKILLed mid-request ({'mid-write' if mid_write else 'under load'})"
            )
        )
    finally:
        collector.stop()
        worker.stop()

    assert caught >= 1, "no request was in flight when the collector was killed"
    assert load.stat("retries") >= 1, "no batch was resent"
    if mid_write:  # batches written after the collector died: their resent copies dropped
        assert load.stat("duplicates") > 0, "no batch was written without its answer"
    # each batch is answered once: its events new, or copies of what the killed one wrote
    assert load.stat("accepted") + load.stat("duplicates") == len(sent_ids)
    assert distinct == len(sent_ids) and copies == 0, (distinct, copies)
    assert counted == distinct, f"processed {counted} of {distinct} stored events"
    assert sorted(leaks) == sorted(agents), "one leak incident per agent, none doubled"
