"""The live demo on a real collector and a real monitor: no event from the future, a surge
and its SLA breach within 60 s, and no false outage of the collector's own heartbeat."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from tests.collector.conftest import ADMIN, make_config, shard_entries
from watchfloor.collector.service import Collector
from watchfloor.collector.simulator.live_time import LiveTime, history_start
from watchfloor.collector.simulator.runner import live_start_ts, run_live, send_history
from watchfloor.collector.simulator.scenarios import pre_rolled_s
from watchfloor.core import engine_status
from watchfloor.core.events import decode_batch
from watchfloor.core.incidents import Incident, IncidentStore
from watchfloor.core.redis_server import free_port
from watchfloor.monitor_process import MonitorProcess

DEMO_DEADLINE_S = 60.0
WATCH_AFTER_S = 8.0
"""How long the demo keeps running after the peak's incidents (heartbeats keep coming)."""


@pytest.mark.parametrize("speed", [1.0, 0.5, 4.0, 20.0, 2000.0])
def test_live_event_time_is_the_moment_each_second_is_due_at_any_speed(speed: float) -> None:
    unpaced, paced = pre_rolled_s("all")
    anchor = 1_000_000.0
    clock = LiveTime(anchor, speed)
    start = live_start_ts("all", anchor)
    assert clock.stamp(start) == pytest.approx(history_start(anchor, unpaced, speed))
    assert clock.stamp(start + unpaced) == pytest.approx(anchor)  # the history ends at the anchor
    for paced_s in (0, 1, paced - 1):
        second_ts = start + unpaced + paced_s
        assert clock.stamp(second_ts) == pytest.approx(clock.due(paced_s))


def test_a_paced_part_that_starts_late_shifts_forward_instead_of_sending_stale_events() -> None:
    clock = LiveTime(1_000_000.0, 4.0)
    assert clock.catch_up(0, 1_000_000.5) == 1_000_000.0  # half a second late: as planned
    assert clock.catch_up(4, 1_000_012.0) == pytest.approx(1_000_012.0)  # 11 s late: shifted
    (event,) = clock.restamp([{"type": "heartbeat", "ts": 1_000_000.0 + 8, "source": "acd"}])
    assert event["ts"] == pytest.approx(1_000_012.0 + 1.0)  # 4 scenario seconds after it


async def test_the_demo_shows_a_surge_and_its_sla_breach_within_a_minute_in_real_time(
    redis_url: str, data_dir: Path
) -> None:
    """In the order ``up --demo`` needs: the history first, then the monitor and collector."""
    config = make_config(data_dir, heartbeat_interval_s=1.0, port=free_port())
    config = dataclasses.replace(config, api=dataclasses.replace(config.api, port=free_port()))
    redis = aioredis.Redis.from_url(redis_url)
    stop, sim_stop = asyncio.Event(), asyncio.Event()
    started = time.time()
    await send_history("all", config, redis_url, ADMIN, seed=2, anchor=started)
    collector = Collector(config, redis_url)
    monitor = MonitorProcess.build(config, redis)
    services = [asyncio.create_task(collector.run(stop)), asyncio.create_task(monitor.run(stop))]
    try:
        await asyncio.wait_for(collector.ready.wait(), 10)
        url = f"http://127.0.0.1:{collector.port}"
        demo = asyncio.create_task(run_live("all", url, ADMIN, seed=2, stop=sim_stop,
                                            anchor=started, part="after-history"))  # fmt: skip
        peak = await _wait_for_peak(IncidentStore(redis), started + DEMO_DEADLINE_S)
        took = time.time() - started
        await asyncio.sleep(WATCH_AFTER_S)
        sim_stop.set()
        await asyncio.wait_for(demo, 10)
        opened = await IncidentStore(redis).list("all")
        entries = [(mid, fields) for _n, mid, fields in await shard_entries(redis)]
        late = (await engine_status.read(redis)).get("late_events")
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*services, return_exceptions=True), 20)
        await redis.aclose()
    print(f"surge, SLA breach and their playbook runs on presale-chat after {took:.1f} s")
    assert {i.kind for i in peak} == {"surge", "sla"} and all(i.playbook_run for i in peak)
    assert not [(i.kind, i.subject, i.title) for i in opened if i.kind == "outage"]
    assert int(late or 0) == 0
    sent = _events_with_send_time(entries)
    assert [(e.source, e.ts, at) for at, e in sent if e.ts > at] == []
    assert any(e.source == "collector" for _, e in sent)
    assert any(e.ts > started for _, e in sent if e.source != "collector")  # paced part came


async def _wait_for_peak(store: IncidentStore, deadline: float) -> list[Incident]:
    """The surge and SLA incidents of presale-chat once both have a playbook run."""
    while time.time() < deadline:
        found = {i.kind: i for i in await store.list("all") if i.subject == "presale-chat"}
        peak = [found[k] for k in ("surge", "sla") if k in found]
        if len(peak) == 2 and all(i.playbook_run for i in peak):
            return peak
        await asyncio.sleep(0.5)
    seen = [(i.kind, i.subject, i.opened_at, i.playbook_run) for i in await store.list("all")]
    raise AssertionError(f"no surge and SLA breach with runs in {DEMO_DEADLINE_S} s: {seen}")


def _events_with_send_time(entries: list) -> list:
    """(time of the XADD, 2 ms slack for the id's resolution, event) of every event."""
    out = []
    for entry_id, fields in entries:
        added = int(entry_id.split(b"-")[0]) / 1000 + 0.002
        out += [(added, event) for event in decode_batch(fields[b"b"])]
    return out
