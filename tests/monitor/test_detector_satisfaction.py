"""Satisfaction detector: contact ratings -> 95 % / 90 % signals per queue, beyond chance only."""

from __future__ import annotations

from collections.abc import Callable

import msgspec
import pytest

from watchfloor.core.events import Contact, Event
from watchfloor.monitor.board import Board, read_queues
from watchfloor.monitor.detector_set import build_detectors
from watchfloor.monitor.detectors.satisfaction import SatisfactionDetector
from watchfloor.monitor.drive import drive
from watchfloor.monitor.rules import load_rules
from watchfloor.playbooks.handover_markdown import _figure_lines

DAY = 1_762_999_200.0
H = 3600.0


def ratings(
    per_hour: float,
    share: float,
    hours: float = 2.0,
    start: float = 0.0,
    queue: str = "presale-chat",
    channel: str = "chat",
) -> list[Event]:
    """``per_hour`` ratings, ``share`` of them 4-5 (spread evenly), the rest 1-2."""
    count = int(per_hour * hours)
    gap = 3600.0 / per_hour
    out: list[Event] = []
    good = 0
    for k in range(count):
        satisfied = good < share * (k + 1) - 1e-9
        good += satisfied
        out.append(
            Contact(
                ts=DAY + start + k * gap,
                source="acd",
                contact_id=f"{queue}-{start}-{k}",
                queue=queue,
                channel=channel,
                action="completed",
                csat=(5 if k % 2 else 4) if satisfied else (1 if k % 2 else 2),
            )
        )
    return out


CASES: list[tuple[str, Callable[[], list[Event]], list[tuple[str, str, str]]]] = [
    ("96 % on a busy queue", lambda: ratings(600, 0.96), []),
    ("exactly at the 95 % target on a very busy queue", lambda: ratings(3000, 0.95), []),
    ("93 % on 60 ratings is within chance of 95 %", lambda: ratings(60, 0.93), []),
    ("94 % on 100 ratings is within chance", lambda: ratings(100, 0.94), []),
    ("all bad but only 30 ratings an hour", lambda: ratings(30, 0.4), []),
    (
        "93 % on 1 000 ratings an hour is not past the false-alarm budget",
        lambda: ratings(1000, 0.93),
        [],
    ),
    ("87 % on 60 ratings in a quiet evening", lambda: ratings(60, 0.87), []),
    (
        "92 % on 1 500 ratings an hour",
        lambda: ratings(1500, 0.92),
        [("satisfaction.queue", "presale-chat", "minor")],
    ),
    (
        "80 % on 100 ratings an hour",
        lambda: ratings(100, 0.80),
        [("satisfaction.queue", "presale-chat", "major")],
    ),
    (
        "85 % on 200 ratings an hour",
        lambda: ratings(200, 0.85),
        [("satisfaction.queue", "presale-chat", "major")],
    ),
    (
        "one bad queue among good ones",
        lambda: ratings(600, 0.97) + ratings(600, 0.80, queue="aftersales-chat"),
        [("satisfaction.queue", "aftersales-chat", "major")],
    ),
    (
        "ratings without a csat are not ratings",
        lambda: [
            Contact(
                ts=DAY + k,
                source="acd",
                contact_id=f"x{k}",
                queue="q",
                channel="chat",
                action="completed",
            )
            for k in range(500)
        ],
        [],
    ),
]


@pytest.mark.parametrize(("name", "make", "expected"), CASES, ids=[c[0] for c in CASES])
def test_satisfaction_cases(name, make, expected):
    detector = SatisfactionDetector(load_rules())
    trace = drive(detector, make(), start=DAY, until=DAY + 2 * H, step_s=60.0)
    assert trace.fired() == expected


def test_is_on_by_default_and_its_figures_are_the_share_of_4_and_5():
    assert any(isinstance(d, SatisfactionDetector) for d in build_detectors())
    detector = SatisfactionDetector(load_rules())
    drive(detector, ratings(600, 0.9), start=DAY, until=DAY + 2 * H, step_s=60.0)
    figures = detector.figures("presale-chat", DAY + 2 * H)
    assert figures is not None and figures["ratings"] == 600
    assert figures["satisfied_share"] == pytest.approx(0.9, abs=0.002)
    assert (figures["target"], figures["floor"]) == (0.95, 0.9)


def test_thresholds_per_channel():
    rules = load_rules(text="[satisfaction.channels.email]\ntarget = 0.9\nfloor = 0.8\n")
    events = ratings(1500, 0.92, channel="email", queue="mail") + ratings(1500, 0.92)
    trace = drive(SatisfactionDetector(rules), events, start=DAY, until=DAY + 2 * H, step_s=60.0)
    assert trace.fired() == [("satisfaction.queue", "presale-chat", "minor")]


def test_clears_once_the_share_is_back_and_state_survives_a_checkpoint():
    rules = load_rules()
    first = SatisfactionDetector(rules)
    bad = ratings(600, 0.85, hours=1.5)
    trace = drive(first, bad, start=DAY, until=DAY + 1.5 * H, step_s=60.0)
    assert trace.fired() == [("satisfaction.queue", "presale-chat", "major")]
    saved = msgspec.msgpack.decode(msgspec.msgpack.encode(first.snapshot()))
    second = SatisfactionDetector(rules)
    second.restore(saved)
    assert [s.subject for s in second.evaluate(DAY + 1.5 * H)] == ["presale-chat"]
    good = ratings(600, 0.99, hours=2.0, start=1.5 * H)
    trace = drive(second, good, start=DAY + 1.5 * H, until=DAY + 3.6 * H, step_s=60.0)
    assert trace.active_at_end == []
    assert second.next_due(DAY + 3.6 * H + 1) == DAY + 3.6 * H + 300 - (DAY + 3.6 * H) % 300


async def test_the_board_row_shows_the_last_hours_satisfaction(redis_client):
    board = Board()
    old = ratings(120, 0.5, hours=1.0)  # a bad hour that has passed
    recent = ratings(120, 0.9, hours=1.0, start=1.5 * H)
    for event in old + recent:
        board.observe(event)
    async with redis_client.pipeline(transaction=True) as pipe:
        board.flush(pipe)
        await pipe.execute()
    (row,) = await read_queues(redis_client)
    assert row["ratings_1h"] == 120 and row["satisfaction"] == pytest.approx(0.9, abs=0.01)
    again = Board()
    again.restore(msgspec.msgpack.decode(msgspec.msgpack.encode(board.snapshot())))
    assert again.queue_row("presale-chat")["satisfaction"] == row["satisfaction"]


def test_the_handover_marks_a_shift_below_the_target_or_the_floor():
    def queue(share: float | None, count: int) -> dict:
        return {
            "channel": "chat",
            "offered": 900,
            "answered": 800,
            "service_level": 0.8,
            "abandon_rate": 0.05,
            "satisfaction": share,
            "csat_count": count,
            "resolution_rate": None,
        }

    figures = {
        "queues": {"a": queue(0.97, 300), "b": queue(0.93, 300), "c": queue(0.85, 300)},
        "total": queue(0.917, 900),
        "partial": False,
    }
    lines = "\n".join(_figure_lines(figures))
    assert "satisfaction (target 95%, floor 90%)" in lines
    assert "| 97.0 % of 300 |" in lines
    assert "| 93.0 % of 300 below target |" in lines
    assert "| 85.0 % of 300 **below floor** |" in lines
