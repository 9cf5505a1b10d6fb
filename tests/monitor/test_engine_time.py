"""Engine time in live mode: bounded by the wall clock, late events within a horizon still
evaluated, what cannot be placed counted per source, a checkpoint run ahead repaired."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.doubles import T0
from watchfloor.core.config import Config
from watchfloor.core.events import AgentMessage, Event, Health, Heartbeat, QueueStats
from watchfloor.monitor.engine import Engine
from watchfloor.monitor.lifecycle import Action
from watchfloor.monitor.service import build_engine

ID_TEXT = "您的身份证号是11010519491231002X，已登记"


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def live(clock: Clock) -> Engine:
    return build_engine(Config(), clock=clock)


def leak(ts: float, agent: str = "a-7") -> AgentMessage:
    return AgentMessage(ts=ts, source="im", agent_id=agent, conversation_id=f"c-{ts}",
                        channel="chat", direction="to_customer", text=ID_TEXT)  # fmt: skip


def stats(ts: float, source: str = "acd") -> QueueStats:
    return QueueStats(ts=ts, source=source, queue="presale", channel="phone", waiting=1,
                      longest_wait_s=3.0, agents_available=4, agents_busy=2)  # fmt: skip


def beat(ts: float, source: str = "acd") -> Heartbeat:
    return Heartbeat(ts=ts, source=source)


def probe(ts: float, status: str, component: str = "crm") -> Health:
    return Health(ts=ts, source="probe", component=component, status=status)


def fired(actions: list[Action]) -> list[tuple[str, str]]:
    return [(a.signal.rule, a.signal.subject) for a in actions if a.op == "fire"]


def test_an_event_a_day_ahead_is_unplaced_for_its_source_and_moves_no_time() -> None:
    clock = Clock(T0)
    engine = live(clock)
    engine.process([stats(T0 - 1, "pbx-ok"), stats(T0 + 86_400, "pbx-wrong-tz")])
    assert engine.watermark == pytest.approx(T0 - 1 - engine.lateness_s)
    assert engine.stats.to_map()["unplaced"] == {"pbx-wrong-tz": {"ahead": 1}}
    actions = engine.process([leak(T0 + 0.5)])
    assert ("leak.pii_in_message", "a-7") in fired(actions)


def test_an_event_a_little_ahead_waits_and_never_pushes_the_watermark_past_now() -> None:
    clock = Clock(T0)
    engine = live(clock)
    engine.process([stats(T0, "pbx-ok"), stats(T0 + 40, "pbx-fast")])
    assert engine.watermark <= T0 + 1 - engine.lateness_s
    assert engine.stats.unplaced_total == 0
    engine.process([stats(T0 + 0.5, "pbx-ok")])  # on time next to the wall clock: not late
    assert engine.stats.late_events == 0
    clock.now = T0 + 10
    engine.tick(clock.now)
    assert engine.buffered == 1  # the early one waits until the clock reaches it


@pytest.mark.parametrize("behind_s", [8.0, 15.0, 300.0])
def test_a_leak_message_arriving_late_within_the_horizon_still_opens_its_incident(
    behind_s: float,
) -> None:
    clock = Clock(T0)
    engine = live(clock)
    engine.process([beat(T0 - 60 + i) for i in range(60)])
    engine.tick(T0 + behind_s)  # the idle clock went on while the collector stalled
    actions = engine.process([leak(T0 - 1)])
    assert engine.stats.late_folded == 1
    assert ("leak.pii_in_message", "a-7") in fired(actions)
    (fire,) = [a for a in actions if a.op == "fire"]
    assert fire.first_at == T0  # opened as of the evaluation that would have seen it on time


def test_failing_probes_arriving_late_make_their_component_down() -> None:
    clock = Clock(T0)
    engine = live(clock)
    engine.process([probe(T0 - 120 + 10 * i, "up") for i in range(10)])
    engine.tick(T0 + 15)
    actions: list[Action] = []
    for i in range(3):
        actions += engine.process([probe(T0 - 3 + i, "down")])
    actions += engine.tick(T0 + 17)
    assert ("outage.component", "crm") in fired(actions)


def test_an_event_beyond_the_late_horizon_is_counted_unplaced_for_its_source() -> None:
    clock = Clock(T0)
    engine = live(clock)
    engine.process([beat(T0)])
    actions = engine.process([leak(T0 - 700)])
    assert fired(actions) == []
    assert engine.stats.to_map()["unplaced"] == {"im": {"too_late": 1}}


def test_a_checkpoint_whose_clock_ran_ahead_is_repaired_and_counted() -> None:
    poisoned = build_engine(Config())  # an engine of the old kind: no wall clock
    events: list[Event] = [beat(T0 - 30 + i) for i in range(30)]
    poisoned.process([*events, stats(T0 + 86_400, "pbx-wrong-tz"), stats(T0 + 86_410, "x")])
    poisoned.tick(T0 + 86_400)
    saved: dict[str, Any] = poisoned.snapshot()

    clock = Clock(T0 + 5)
    engine = live(clock)
    engine.restore(saved)
    assert engine.repair_clock(clock()) is True
    assert engine.watermark == pytest.approx(T0 + 5 - engine.lateness_s)
    assert engine.stats.checkpoint_repairs == 1
    assert engine.stats.to_map()["unplaced"] == {"x": {"checkpoint_ahead": 1}}
    assert engine.repair_clock(clock()) is False, "a repaired state needs no second repair"
    assert ("leak.pii_in_message", "a-9") in fired(engine.process([leak(T0 + 4, "a-9")]))


def test_replay_has_no_wall_clock_and_keeps_its_event_time() -> None:
    engine = build_engine(Config())
    engine.process([stats(T0 + 86_400)])
    assert engine.watermark == pytest.approx(T0 + 86_400 - engine.lateness_s)
    assert engine.stats.unplaced_total == 0


def test_the_monitors_own_downtime_is_no_lost_heartbeat_but_silence_after_it_is() -> None:
    before = build_engine(Config())
    before.process([beat(T0 - 100 + 5 * i, src) for i in range(21) for src in ("acd", "gw")])
    saved = before.snapshot()

    clock = Clock(T0 + 120)  # down for two minutes
    engine = live(clock)
    engine.restore(saved)
    assert engine.resume(clock(), down_s=5.0) is False  # a quick restart is no downtime
    assert engine.resume(clock(), down_s=120.0) is True
    quiet = engine.tick(clock())
    assert fired(quiet) == []
    engine.process([beat(T0 + 121 + 5 * i, "acd") for i in range(10)])
    clock.now = T0 + 175
    assert fired(engine.tick(clock())) == [("outage.heartbeat", "gw")]


def test_a_late_queue_snapshot_does_not_replace_the_newer_one_the_sla_rule_judges() -> None:
    clock = Clock(T0)
    engine = live(clock)
    sla = next(d for d in engine.detectors if d.name == "sla")
    engine.process([stats(T0 - 1)])
    engine.tick(T0 + 20)
    old = QueueStats(ts=T0 - 12, source="acd", queue="presale", channel="phone", waiting=0,
                     longest_wait_s=0.0, agents_available=9, agents_busy=0)  # fmt: skip
    engine.process([old])
    assert engine.stats.late_folded == 1
    assert sla.queues["presale"].snap["ts"] == T0 - 1  # type: ignore[attr-defined]


def offered(ts: float) -> Event:
    from watchfloor.core.events import Contact

    return Contact(ts=ts, source="acd", contact_id=f"c-{ts}", queue="presale", channel="chat",
                   action="offered")  # fmt: skip


def test_a_late_contact_is_taken_where_its_window_reaches_and_counted_where_it_does_not() -> None:
    import dataclasses

    config = Config()
    config = dataclasses.replace(
        config, monitor=dataclasses.replace(config.monitor, late_horizon_s=7200.0)
    )
    clock = Clock(T0)
    engine = build_engine(config, clock=clock)
    engine.process([offered(T0 - 600 + i) for i in range(0, 600, 2)])
    engine.tick(T0)
    engine.process([offered(T0 - 12)])  # late, its window still reaches it
    assert engine.stats.unplaced_total == 0
    engine.process([offered(T0 - 3600)])  # within the horizon, but no window reaches back
    assert engine.stats.to_map()["unplaced"] == {"acd": {"window_gone": 1}}
    assert engine.stats.late_folded == 2
