"""Logistics detector: delayed deliveries -> a signal when no solution came within 2 h."""

from __future__ import annotations

from collections.abc import Callable

import msgspec
import pytest

from watchfloor.core.events import Event, LogisticsDelay
from watchfloor.monitor.detectors.logistics import LogisticsDetector
from watchfloor.monitor.drive import drive
from watchfloor.monitor.rules import load_rules

DAY = 1_762_999_200.0
H = 3600.0
STEP = 30.0


def delay(action: str, n: int = 1, at: float = 0.0, queue: str = "after-sales") -> Event:
    return LogisticsDelay(
        ts=DAY + at,
        source="oms",
        case_id=f"d-{n}",
        queue=queue,
        action=action,
        order_id=f"2025111100{n:04d}",
        carrier="SF",
    )


def reported(count: int) -> list[Event]:
    return [delay("reported", n=k, at=k * 30.0) for k in range(count)]


CASES: list[tuple[str, Callable[[], list[Event]], float, list[tuple[str, str, str]]]] = [
    (
        "no solution 2 h after the delay was reported",
        lambda: [delay("reported")],
        2.5,
        [("logistics.unanswered", "after-sales", "minor")],
    ),
    (
        "a solution offered at 1 h 50",
        lambda: [delay("reported"), delay("solution_offered", at=110 * 60)],
        6,
        [],
    ),
    (
        "resolved outright within the 2 h",
        lambda: [delay("reported"), delay("resolved", at=30 * 60)],
        6,
        [],
    ),
    (
        "a busy afternoon of delays, each answered within 90 min",
        lambda: [
            e
            for k in range(60)
            for e in (
                delay("reported", n=k, at=k * 300.0),
                delay("resolved", n=k, at=k * 300 + 5400),
            )
        ],
        8,
        [],
    ),
    (
        "four hours without a solution",
        lambda: [delay("reported")],
        4.1,
        [("logistics.unanswered", "after-sales", "major")],
    ),
    (
        "five delays without a solution",
        lambda: reported(5),
        2.5,
        [("logistics.unanswered", "after-sales", "major")],
    ),
    (
        "twenty delays without a solution",
        lambda: reported(20),
        2.5,
        [("logistics.unanswered", "after-sales", "critical")],
    ),
    (
        "a solution offered late still ends the incident, it opened first",
        lambda: [delay("reported"), delay("solution_offered", at=2.5 * H)],
        3,
        [("logistics.unanswered", "after-sales", "minor")],
    ),
]


@pytest.mark.parametrize(("name", "make", "hours", "expected"), CASES, ids=[c[0] for c in CASES])
def test_logistics_cases(name, make, hours, expected):
    detector = LogisticsDetector(load_rules())
    trace = drive(detector, make(), start=DAY, until=DAY + hours * H, step_s=STEP)
    assert trace.fired() == expected


def test_opens_at_two_hours_names_the_order_and_clears_on_the_solution():
    detector = LogisticsDetector(load_rules())
    events = [delay("reported", n=7), delay("solution_offered", n=7, at=2.5 * H)]
    trace = drive(detector, events, start=DAY, until=DAY + 3 * H, step_s=STEP)
    seen = trace.seen["logistics.unanswered|after-sales"]
    assert DAY + 2 * H <= seen.first_at <= DAY + 2 * H + STEP
    assert (
        seen.fired is not None and seen.fired.evidence["cases"][0]["order_id"] == "20251111000007"
    )
    assert trace.active_at_end == []


def test_state_survives_a_checkpoint_through_msgpack():
    rules = load_rules()
    first = LogisticsDetector(rules)
    drive(first, [delay("reported"), delay("reported", n=2)], start=DAY, until=DAY + H, step_s=STEP)
    saved = msgspec.msgpack.decode(msgspec.msgpack.encode(first.snapshot()))
    second = LogisticsDetector(rules)
    second.restore(saved)
    later = [delay("solution_offered", n=2, at=H + 60)]
    trace = drive(second, later, start=DAY + H, until=DAY + 2.5 * H, step_s=STEP)
    assert trace.fired() == [("logistics.unanswered", "after-sales", "minor")]
    assert trace.active_at_end[0].evidence["overdue"] == 1
    assert second.next_due(DAY + 3 * H) is None  # the only case is overdue: nothing ahead
