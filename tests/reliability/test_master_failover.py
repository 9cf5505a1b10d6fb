"""A Redis Cluster master SIGKILLed under load and its replica promoted.

A real 3-master cluster with one replica each; a real collector and two monitor
workers on it (``redis+cluster://``); a producer posts quiet traffic and agents'
leaks throughout. Mid-stream, ``WAIT`` makes sure master 0's replica has every
write so far; the events acknowledged up to then are *synced*. Master 0 is then
SIGKILLed while writes continue and its replica is promoted. Replication is
asynchronous: what master 0 acknowledged after the last sync and before it died
may be lost. The test counts it (printed) and requires that nothing synced was
lost, that everything stored is processed once, and that the leaks stored open
their incidents once.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from tests.cluster import LocalCluster
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
    stored_ids,
    until,
)


@pytest.mark.slow
def test_a_killed_master_loses_at_most_what_it_had_not_replicated(tmp_path: Path) -> None:
    with LocalCluster(masters=3, replicas=1) as cluster:
        url = cluster.url
        collector = start_collector(url, tmp_path)
        workers = [WorkerProcess(url, tmp_path, w) for w in ("w1", "w2")]
        for w in workers:
            w.start()
        producer = Producer(collector.url)
        acked: list[str] = []
        stop = threading.Event()

        def produce() -> None:
            n = 0
            while not stop.is_set():
                batch = [*background(n, queues=20), leak(f"agent-{n % 9}", n)]
                producer.post(batch, deadline_s=120)
                acked.extend(e["id"] for e in batch)
                n += 1
                time.sleep(0.05)

        sender = threading.Thread(target=produce, daemon=True)
        try:
            until(lambda: _workers_hold(url), 30, "both workers holding shards")
            sender.start()
            time.sleep(3.0)
            synced = list(acked)
            with cluster.client(cluster.master(0)) as master:
                replicas = master.execute_command("WAIT", 1, 5000)
            assert replicas == 1, "the replica never caught up"
            cluster.kill_master(0)
            killed = time.monotonic()
            cluster.promote_replica_of(0)
            promoted_s = time.monotonic() - killed
            time.sleep(4.0)
            stop.set()
            sender.join(150)
            ids = stored_ids(url)
            lost = [i for i in acked if i not in ids]
            until(lambda: processed_ours(url) >= len(ids), 60, "every stored event processed")
            expected = {
                ("leak.pii_in_message", "agent-" + i.split("-")[2])
                for i in ids
                if i.startswith("leak-")
            }
            until(lambda: expected <= set(incidents(url)), 60, "a leak incident per agent")
            found = incidents(url)
            counts = Counts(
                producer.sent, producer.acknowledged, len(ids), processed_ours(url),
                producer.duplicates, len(expected), len(found),
            )  # fmt: skip
            counts.extra.update(
                synced=len(synced), lost_after_sync=len(lost), promoted_s=round(promoted_s, 1)
            )
            print(counts.row("master killed, replica promoted"))
            assert not [i for i in synced if i not in ids], "an event synced before was lost"
            assert counts.processed == counts.stored
            assert expected and sorted(found) == sorted(expected)  # one per agent, none twice
        finally:
            stop.set()
            for w in workers:
                w.stop()
            collector.stop()


def _workers_hold(url: str) -> bool:
    return set(held_shards(url).values()) == {"w1", "w2"}
