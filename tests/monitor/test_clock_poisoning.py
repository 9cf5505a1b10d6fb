"""One producer's clock never blinds a real ``watchfloor monitor`` process, across a SIGKILL.

A single event stamped a day ahead is written to the stream; correct events written
after it must still open incidents, the unplaceable event is counted for its source
on ``/healthz`` and ``/metrics``, and a monitor killed and restarted on the
checkpoint it left keeps seeing the present.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis as sync_redis

from tests.monitor.processes import MonitorProcess, open_fingerprints, publish, wait_for
from watchfloor.core import engine_status, keys
from watchfloor.core.events import AgentMessage, QueueStats

pytestmark = pytest.mark.slow

ID_TEXT = "您的身份证号是11010519491231002X，已登记"


def leak(agent: str, ts: float) -> AgentMessage:
    return AgentMessage(ts=ts, source="im", agent_id=agent, conversation_id=f"c-{agent}",
                        channel="chat", direction="to_customer", text=ID_TEXT)  # fmt: skip


def stats(ts: float, source: str = "pbx-wrong-tz") -> QueueStats:
    return QueueStats(ts=ts, source=source, queue="presale", channel="phone", waiting=3,
                      longest_wait_s=10.0, agents_available=2, agents_busy=5)  # fmt: skip


@pytest.fixture
def monitor(redis_url: str, tmp_path: Path) -> Iterator[MonitorProcess]:
    process = MonitorProcess(redis_url, tmp_path)
    yield process
    process.stop()


def open_subjects(client: sync_redis.Redis) -> set[str]:
    return {fp.split("|", 1)[1] for fp in open_fingerprints(client)}


def test_an_event_a_day_ahead_neither_blinds_the_monitor_nor_its_restart(
    monitor: MonitorProcess, redis_url: str
) -> None:
    client = sync_redis.Redis.from_url(redis_url)
    monitor.start()
    publish(client, [stats(time.time() + 86_400)])
    time.sleep(1.5)  # the poisoned batch is read (and checkpointed) first
    publish(client, [stats(time.time(), source="pbx-ok"), leak("a-1", time.time())])
    wait_for(lambda: "a-1" in open_subjects(client), 20, "leak incident for a-1")

    health = wait_for(
        lambda: (h := monitor.get("/healthz")) and h["problems"] and h, 10, "a problem line"
    )
    assert any("pbx-wrong-tz" in p and "ahead" in p for p in health["problems"]), health
    metrics = monitor.get("/metrics")
    assert (
        'watchfloor_engine_unplaced_events_total{reason="ahead",source="pbx-wrong-tz"} 1' in metrics
    )
    assert 'source="pbx-ok"' not in metrics

    time.sleep(1.5)  # a checkpoint after the incident
    monitor.kill()
    monitor.start()
    publish(client, [leak("a-2", time.time())])
    wait_for(lambda: "a-2" in open_subjects(client), 20, "leak incident for a-2 after SIGKILL")
    watermark = float(engine_status.read_sync(client).get("watermark") or 0)
    assert watermark <= time.time(), "the watermark stays behind the wall clock"


def test_a_poisoned_checkpoint_is_repaired_at_start_and_counted(
    monitor: MonitorProcess, redis_url: str
) -> None:
    """A checkpoint written by an older monitor that let one event move its clock a day ahead."""
    from watchfloor.core.config import Config
    from watchfloor.monitor.checkpoint import Checkpoint, encode
    from watchfloor.monitor.service import build_engine

    engine = build_engine(Config())
    now = time.time()
    engine.process([stats(now - 30, source="pbx-ok"), stats(now + 86_400)])
    engine.tick(now + 86_400)  # what the old engine did: evaluated a day ahead
    client = sync_redis.Redis.from_url(redis_url)
    client.set(keys.engine_checkpoint(0), encode(Checkpoint(engine=engine.snapshot())))

    monitor.start()
    publish(client, [leak("a-3", time.time())])
    wait_for(lambda: "a-3" in open_subjects(client), 20, "leak incident after the repair")
    status = wait_for(  # every shard's status, folded: shard 0's was the poisoned one
        lambda: (s := engine_status.read_sync(client)).get("checkpoint_repairs", "0") != "0" and s,
        10,
        "the repair counted in the status",
    )
    assert int(status["checkpoint_repairs"]) == 1
    assert float(status["watermark"]) <= time.time()
