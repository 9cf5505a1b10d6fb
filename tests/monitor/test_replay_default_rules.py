"""Replay at the speed of the data with the default rules: every default detector names its
next timer, so time jumps over quiet stretches, and the incidents are exactly those of
evaluating every second (simulated days, and interval reports every 30 minutes)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.monitor.test_replay_speed import comparable, replay_both
from watchfloor.collector.simulator.runner import write_day
from watchfloor.core.config import Config
from watchfloor.core.events import Event, QueueStats, events_to_json
from watchfloor.monitor.detector_set import build_detectors
from watchfloor.monitor.engine import Engine
from watchfloor.monitor.replay import replay
from watchfloor.monitor.service import build_engine

T0 = 1_763_827_200.0  # 2025-11-23 00:00 China time
HALF_HOUR = 1800.0


def default_engine(every_slot: bool) -> Engine:
    engine = build_engine(Config(), None)
    engine.on_signals = None
    engine.every_slot = every_slot
    return engine


def test_every_default_detector_names_its_next_timer() -> None:
    """One detector without ``next_due`` puts the whole replay back on the old stepping."""
    missing = [d.name for d in build_detectors() if not callable(getattr(d, "next_due", None))]
    assert missing == []


@pytest.mark.parametrize(
    ("start", "minutes", "kinds"),
    [
        # The hour before the viral promotion (history), the surge and its SLA breach.
        ("14:35", 60, {("surge", "presale-chat"), ("sla", "presale-chat")}),
        # The chat gateway's 5 silent minutes: a lost heartbeat, not a silence + surge pair.
        ("16:20", 35, {("outage", "chat-gateway")}),
        # The opinion storm and its high-reach post.
        ("18:55", 50, {("opinion", "云杉优选")}),
    ],
)
async def test_a_simulated_slice_opens_the_same_incidents_as_every_second(
    redis_client, tmp_path: Path, start: str, minutes: int, kinds: set[tuple[str, str]]
) -> None:
    hours, mins = (int(x) for x in start.split(":"))
    source = tmp_path / "slice.jsonl"
    write_day("day-normal", source, seed=1, start_s=hours * 3600 + mins * 60, seconds=minutes * 60)
    (slow, slow_engine), (fast, fast_engine) = await replay_both(
        redis_client, tmp_path, source, default_engine
    )
    assert comparable(fast.incidents) == comparable(slow.incidents)
    assert kinds <= {(i["kind"], i["subject"]) for i in fast.incidents}
    assert fast_engine.stats.evaluations <= slow_engine.stats.evaluations


def reports(days: float, offered: Any) -> list[Event]:
    """One queue's interval report every 30 minutes; ``offered(k)`` contacts in report k."""
    out: list[Event] = []
    for k in range(1, int(days * 86_400 / HALF_HOUR) + 1):
        out.append(
            QueueStats(
                ts=T0 + k * HALF_HOUR,
                source="acd",
                queue="presale-chat",
                channel="chat",
                waiting=1,
                longest_wait_s=4.0,
                agents_available=3,
                agents_busy=6,
                offered=offered(k),
                answered=offered(k),
                abandoned=0,
                interval_s=HALF_HOUR,
            )
        )
    return out


def daily(k: int) -> int:
    """A daily cycle (busy days, quiet nights, ramps of three hours), a silent afternoon on
    day 2 and a 5x half hour that evening."""
    hour = (k * 0.5) % 24
    ramp = min(1.0, max(0.0, (hour - 6) / 3)) if hour < 12 else min(1.0, max(0.0, (23 - hour) / 3))
    base = round(120 + 480 * ramp)
    if 48 + 28 <= k < 48 + 34:
        return 0
    if k == 48 + 40:
        return base * 5
    return base + (k * 37) % 41


async def test_interval_reports_skip_the_quiet_hours_with_the_same_incidents(
    redis_client, tmp_path: Path
) -> None:
    source = tmp_path / "reports.jsonl"
    source.write_text(events_to_json(reports(2.5, daily)) + "\n", encoding="utf-8")
    (slow, slow_engine), (fast, fast_engine) = await replay_both(
        redis_client, tmp_path, source, default_engine
    )
    assert comparable(fast.incidents) == comparable(slow.incidents)
    found = {(i["rule"], i["subject"]) for i in fast.incidents}
    assert ("outage.silent_queue", "presale-chat") in found or (
        "outage.silent_channel",
        "chat",
    ) in found
    assert ("surge.offered", "presale-chat") in found
    assert slow_engine.stats.evaluations > 2 * 86_400
    # A few evaluations per report, plus every second while an incident is open.
    assert fast_engine.stats.evaluations < slow_engine.stats.evaluations / 5


async def test_a_month_of_interval_reports_with_the_default_rules_costs_per_report(
    redis_client, tmp_path: Path
) -> None:
    source = tmp_path / "quarter.jsonl"
    source.write_text(
        events_to_json(reports(30, lambda k: 100 + (k * 7) % 21)) + "\n", encoding="utf-8"
    )
    engine = default_engine(every_slot=False)
    summary = await replay(
        source, tmp_path / "q.jsonl", redis=redis_client, config=Config(), engine=engine
    )
    assert summary.events == 30 * 48
    assert summary.incidents == []  # 30-minute reports of steady traffic: nothing
    assert engine.stats.evaluations < 8 * summary.events  # not one per second (2.6 million)
