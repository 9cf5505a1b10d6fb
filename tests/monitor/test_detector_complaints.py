"""Complaints detector: complaint events -> overdue signals per queue, including the quiet cases."""

from __future__ import annotations

from collections.abc import Callable

import msgspec
import pytest

from watchfloor.core.events import Complaint, Event
from watchfloor.monitor.detectors.complaints import ComplaintDetector
from watchfloor.monitor.drive import drive
from watchfloor.monitor.engine import Engine
from watchfloor.monitor.rules import load_rules

DAY = 1_762_999_200.0  # 2025-11-13 10:00 China Standard Time
H = 3600.0
STEP = 60.0


def complaint(
    action: str, n: int = 1, at: float = 0.0, promised: float | None = None, queue: str = "cx"
) -> Event:
    return Complaint(
        ts=DAY + at,
        source="crm",
        complaint_id=f"c-{n}",
        queue=queue,
        action=action,
        promised_ts=None if promised is None else DAY + promised,
    )


def opened_many(count: int) -> list[Event]:
    return [complaint("opened", n=k, at=k * 60.0) for k in range(count)]


# (name, events, hours to run, expected (rule, subject, highest severity))
CASES: list[tuple[str, Callable[[], list[Event]], float, list[tuple[str, str, str]]]] = [
    (
        "open past 48 h with the customer never told",
        lambda: [complaint("opened")],
        49,
        [("complaint.overdue", "cx", "minor")],
    ),
    (
        "resolved at 47 h",
        lambda: [complaint("opened"), complaint("resolved", at=47 * H)],
        60,
        [],
    ),
    (
        "takes longer, but the customer was told at 40 h",
        lambda: [complaint("opened"), complaint("customer_told", at=40 * H)],
        80,
        [],
    ),
    (
        "told again every 40 h, still open after four days",
        lambda: (
            [complaint("opened")] + [complaint("customer_told", at=k * 40 * H) for k in (1, 2, 3)]
        ),
        150,
        [],
    ),
    (
        "told with a new promised time and resolved before it",
        lambda: [
            complaint("opened"),
            complaint("customer_told", at=40 * H, promised=70 * H),
            complaint("resolved", at=69 * H),
        ],
        80,
        [],
    ),
    (
        "past the time promised when the customer was told",
        lambda: [complaint("opened"), complaint("customer_told", at=40 * H, promised=50 * H)],
        51,
        [("complaint.overdue", "cx", "major")],
    ),
    (
        "past a promise sooner than 48 h made when it was opened",
        lambda: [complaint("opened", promised=12 * H)],
        13,
        [("complaint.overdue", "cx", "major")],
    ),
    (
        "a promise later than 48 h at opening does not stretch the 48 h",
        lambda: [complaint("opened", promised=72 * H)],
        49,
        [("complaint.overdue", "cx", "minor")],
    ),
    (
        "six overdue complaints on one queue",
        lambda: opened_many(6),
        49,
        [("complaint.overdue", "cx", "major")],
    ),
    (
        "twenty overdue complaints on one queue",
        lambda: opened_many(20),
        49,
        [("complaint.overdue", "cx", "critical")],
    ),
    (
        "a day late",
        lambda: [complaint("opened")],
        73,
        [("complaint.overdue", "cx", "major")],
    ),
    (
        "a repeated 'opened' after the resolution does not reopen it",
        lambda: [
            complaint("opened"),
            complaint("resolved", at=10 * H),
            complaint("opened", at=11 * H),
        ],
        70,
        [],
    ),
    (
        "overdue complaints on two queues are two incidents",
        lambda: [complaint("opened"), complaint("opened", n=2, queue="vip")],
        49,
        [("complaint.overdue", "cx", "minor"), ("complaint.overdue", "vip", "minor")],
    ),
    (
        "a complaint only ever resolved (opened before the monitor) is quiet",
        lambda: [complaint("resolved", at=60 * H)],
        70,
        [],
    ),
]


@pytest.mark.parametrize(("name", "make", "hours", "expected"), CASES, ids=[c[0] for c in CASES])
def test_complaint_cases(name, make, hours, expected):
    detector = ComplaintDetector(load_rules())
    trace = drive(detector, make(), start=DAY, until=DAY + hours * H, step_s=STEP)
    assert trace.fired() == expected


def test_the_incident_opens_at_the_48th_hour_and_clears_when_the_customer_is_told():
    detector = ComplaintDetector(load_rules())
    events = [complaint("opened"), complaint("customer_told", at=50 * H)]
    trace = drive(detector, events, start=DAY, until=DAY + 52 * H, step_s=STEP)
    seen = trace.seen["complaint.overdue|cx"]
    assert DAY + 48 * H <= seen.first_at <= DAY + 48 * H + STEP
    assert trace.active_at_end == []
    evidence = seen.fired.evidence if seen.fired else {}
    assert evidence["never_told"] == 1 and evidence["complaints"][0]["complaint_id"] == "c-1"


def test_handling_time_is_set_per_queue():
    rules = load_rules(text="[complaints.queues.vip]\nhandle_s = 86400\n")
    detector = ComplaintDetector(rules)
    events = [complaint("opened", queue="vip"), complaint("opened", n=2)]
    trace = drive(detector, events, start=DAY, until=DAY + 25 * H, step_s=STEP)
    assert trace.fired() == [("complaint.overdue", "vip", "minor")]


def test_state_survives_a_checkpoint_through_msgpack():
    rules = load_rules()
    events = [complaint("opened"), complaint("opened", n=2, at=H), complaint("resolved", n=2)]
    first = ComplaintDetector(rules)
    drive(first, events, start=DAY, until=DAY + 2 * H, step_s=STEP)
    saved = msgspec.msgpack.decode(msgspec.msgpack.encode(first.snapshot()))
    second = ComplaintDetector(rules)
    second.restore(saved)
    # The resolved complaint stays closed: its late repeat does not reopen it.
    later = [complaint("opened", n=2, at=2 * H + 60)]
    trace = drive(second, later, start=DAY + 2 * H, until=DAY + 51 * H, step_s=STEP)
    assert trace.fired() == [("complaint.overdue", "cx", "minor")]
    assert trace.active_at_end[0].evidence["overdue"] == 1


def test_replay_jumps_to_the_due_time_with_the_same_incidents():
    events = [complaint("opened", n=k, at=k * 7 * H) for k in range(3)]
    events += [
        complaint("customer_told", n=2, at=40 * H),
        complaint("resolved", n=0, at=50 * H),
        complaint("resolved", n=1, at=54 * H),
        complaint("resolved", n=2, at=60 * H),
    ]
    runs = []
    for every_slot in (True, False):
        engine = Engine([ComplaintDetector(load_rules())])
        engine.every_slot = every_slot
        actions = [a for e in sorted(events, key=lambda e: e.ts) for a in engine.process([e])]
        actions += engine.flush()
        runs.append(([(a.op, a.signal.subject, a.at, a.signal.severity) for a in actions], engine))
    (slow, slow_engine), (fast, fast_engine) = runs
    assert fast == slow
    assert [(op, at) for op, _, at, _ in fast if op == "fire"] == [("fire", DAY + 48 * H)]
    assert fast_engine.stats.evaluations < slow_engine.stats.evaluations / 10
