"""Replay at the speed of the data: time jumps to the next event or the next timer a detector
names, and the incidents are exactly those of evaluating every second."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

from tests.api.doubles import T0, offered
from watchfloor.collector.simulator.runner import write_day
from watchfloor.core.config import Config
from watchfloor.core.events import Event, events_to_json
from watchfloor.monitor.detectors.base import Signal
from watchfloor.monitor.engine import Engine
from watchfloor.monitor.replay import replay
from watchfloor.monitor.service import build_engine

SNAPSHOT_S = 1800.0


class SilentQueue:
    """Fires when a queue has had no offered contact for ``gap_s``; names when that comes."""

    name: ClassVar[str] = "silent_queue"
    event_types: ClassVar[frozenset[str]] = frozenset({"contact"})

    def __init__(self, gap_s: float) -> None:
        self.gap_s = gap_s
        self.last: dict[str, float] = {}

    def observe(self, event: Event) -> None:
        self.last[event.queue] = event.ts  # type: ignore[attr-defined]

    def evaluate(self, watermark: float) -> list[Signal]:
        return [
            Signal(
                "outage.silent_queue",
                "outage",
                queue,
                "major",
                f"{queue} silent",
                {"since": last},
                keep_firing_for_s=60,
            )
            for queue, last in sorted(self.last.items())
            if watermark - last > self.gap_s
        ]

    def next_due(self, at: float) -> float | None:
        due = [last + self.gap_s for last in self.last.values() if last + self.gap_s >= at]
        return min(due, default=None)

    def snapshot(self) -> dict[str, Any]:
        return {"last": self.last}

    def restore(self, state: dict[str, Any]) -> None:
        self.last = dict(state["last"])


class BusySecond:
    """Fires while 3 or more contacts were offered in the last 60 s (a window that empties)."""

    name: ClassVar[str] = "busy_second"
    event_types: ClassVar[frozenset[str]] = frozenset({"contact"})

    def __init__(self) -> None:
        self.times: list[float] = []

    def observe(self, event: Event) -> None:
        self.times.append(event.ts)

    def evaluate(self, watermark: float) -> list[Signal]:
        self.times = [t for t in self.times if t > watermark - 60]
        recent = [t for t in self.times if t < watermark]
        if len(recent) < 3:
            return []
        return [Signal("surge.busy", "surge", "presale-chat", "minor", "busy", for_s=5)]

    def next_due(self, at: float) -> float | None:
        return None  # quiet stays quiet until a new contact

    def snapshot(self) -> dict[str, Any]:
        return {"times": self.times}

    def restore(self, state: dict[str, Any]) -> None:
        self.times = list(state["times"])


def snapshots(days: int) -> list[Event]:
    """One contact a queue every 30 minutes, a 5-hour silence on day 1 and a burst at noon."""
    events: list[Event] = []
    for k in range(int(days * 86_400 / SNAPSHOT_S)):
        ts = T0 + k * SNAPSHOT_S
        if 30_000 < ts - T0 < 48_000:
            continue  # the silence
        events.append(offered(ts, n=k))
    burst = T0 + 43_200 + 7
    events += [offered(burst + i * 2, queue="presale-chat", n=10_000 + i) for i in range(4)]
    return sorted(events, key=lambda e: e.ts)


def sparse_engine(every_slot: bool) -> Engine:
    engine = Engine([SilentQueue(gap_s=3 * SNAPSHOT_S), BusySecond()])
    engine.every_slot = every_slot
    return engine


def comparable(incidents: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    keys = ("rule", "subject", "state", "severity", "opened_at", "resolved_at", "title")
    return [tuple(i.get(k) for k in keys) for i in incidents]


async def replay_both(redis: Any, tmp_path: Path, source: Path, make: Any) -> tuple[Any, Any]:
    runs = []
    for every_slot in (True, False):
        await redis.flushdb()
        engine = make(every_slot)
        out = tmp_path / f"out-{every_slot}.jsonl"
        summary = await replay(source, out, redis=redis, config=Config(), engine=engine)
        runs.append((summary, engine))
    return runs[0], runs[1]


async def test_sparse_snapshots_jump_to_events_and_timers_with_the_same_incidents(
    redis_client, tmp_path
):
    source = tmp_path / "two-days.jsonl"
    source.write_text(events_to_json(snapshots(days=2)) + "\n", encoding="utf-8")
    (slow, slow_engine), (fast, fast_engine) = await replay_both(
        redis_client, tmp_path, source, sparse_engine
    )
    assert comparable(fast.incidents) == comparable(slow.incidents)
    assert {i["rule"] for i in fast.incidents} == {"outage.silent_queue", "surge.busy"}
    silence = next(i for i in fast.incidents if i["rule"] == "outage.silent_queue")
    # Opened the second the silence passed 3 intervals, as second by second does.
    assert silence["opened_at"] == T0 + 28_800 + 3 * SNAPSHOT_S + 1
    assert slow_engine.stats.evaluations > 170_000  # every second of two days
    # Per event, plus every second only while the silence was open (about 2.5 h).
    assert fast_engine.stats.evaluations < 12_000


async def test_a_quarter_of_30_minute_snapshots_costs_evaluations_per_event_not_per_second(
    redis_client, tmp_path
):
    source = tmp_path / "quarter.jsonl"
    source.write_text(events_to_json(snapshots(days=92)) + "\n", encoding="utf-8")
    engine = sparse_engine(every_slot=False)
    summary = await replay(
        source, tmp_path / "q.jsonl", redis=redis_client, config=Config(), engine=engine
    )
    assert summary.events > 4_000
    assert engine.stats.evaluations < 25_000  # not 92 x 86 400: events + the open incident
    assert summary.span_s > 91 * 86_400 and "simulated days/s" in summary.text()


async def test_a_simulated_hour_replays_the_same_with_the_default_rules(redis_client, tmp_path):
    source = tmp_path / "slice.jsonl"
    write_day("day-normal", source, seed=3, start_s=10 * 3600 + 15 * 60, seconds=900)

    def default_engine(every_slot: bool) -> Engine:
        engine = build_engine(Config(), None)
        engine.on_signals = None
        engine.every_slot = every_slot
        return engine

    (slow, _), (fast, _) = await replay_both(redis_client, tmp_path, source, default_engine)
    assert comparable(fast.incidents) == comparable(slow.incidents)
    assert ("outage", "order-api") in {(i["kind"], i["subject"]) for i in fast.incidents}
    assert json.loads(json.dumps(fast.incidents)) == fast.incidents
