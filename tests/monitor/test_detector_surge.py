"""Surge detector: tables of traffic shapes -> signals, including those that must not fire."""

from __future__ import annotations

import math
import random
from collections.abc import Callable

import msgspec
import pytest

from watchfloor.core.events import Contact, Event, QueueStats
from watchfloor.monitor.detectors.outage import OutageDetector
from watchfloor.monitor.detectors.surge import SurgeDetector
from watchfloor.monitor.drive import drive
from watchfloor.monitor.rules import RulesError, load_rules

T0 = 1_763_000_000.0  # 2025-11-13 02:13:20 UTC
HOUR = 3600.0


def poisson(rng: random.Random, lam: float) -> int:
    if lam > 50:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    limit, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def stats(
    rate_per_min: Callable[[float], float],
    start: float,
    end: float,
    *,
    queue: str = "presale-chat",
    seed: int = 1,
    waiting: Callable[[float], int] = lambda t: 2,
    staffed: int = 10,
) -> list[Event]:
    """queue.stats every 10 s with Poisson ``offered`` at the given rate."""
    rng = random.Random(seed)
    out: list[Event] = []
    t = start
    while t < end:
        out.append(
            QueueStats(
                ts=t,
                source="acd",
                queue=queue,
                channel="chat",
                waiting=waiting(t),
                longest_wait_s=5.0,
                agents_available=max(0, staffed - 8),
                agents_busy=min(staffed, 8),
                offered=poisson(rng, rate_per_min(t - start) / 6),
                interval_s=10.0,
            )
        )
        t += 10.0
    return out


def contacts_copy(events: list[Event], after: float) -> list[Event]:
    """The same arrivals once more as contact events (a producer sending both)."""
    out: list[Event] = []
    for e in events:
        if isinstance(e, QueueStats) and e.ts >= after:
            for k in range(e.offered or 0):
                out.append(
                    Contact(
                        ts=e.ts + k * 0.1,
                        source="chat",
                        contact_id=f"{e.ts}-{k}",
                        queue=e.queue,
                        channel="chat",
                        action="offered",
                    )
                )
    return out


def step(base: float, factor: float, at: float) -> Callable[[float], float]:
    return lambda t: base * (factor if t >= at else 1.0)


def linear(lo: float, hi: float, over: float) -> Callable[[float], float]:
    return lambda t: lo + (hi - lo) * min(1.0, t / over)


def exponential(lo: float, factor: float, over: float) -> Callable[[float], float]:
    return lambda t: lo * factor ** min(1.0, t / over)


def build(base: float, factor: float, at: float, over: float) -> Callable[[float], float]:
    """A surge that builds linearly from ``base`` to ``factor`` x over ``over`` seconds."""
    return lambda t: base * (1 + (factor - 1) * min(1.0, max(0.0, t - at) / over))


def morning(night: float, day: float, start_h: float, ramp_h: float) -> Callable[[float], float]:
    """Quiet night, then a straight ramp to the day level (a hard kink at ``start_h``)."""
    return lambda t: night + (day - night) * min(1.0, max(0.0, t / HOUR - start_h) / ramp_h)


def recovery(base: float, gap_min: float, flush: float) -> Callable[[float], float]:
    """Intake silent for ``gap_min`` from hour 2, then a 2-minute backlog flush, then normal."""
    gap_end = 2 * HOUR + gap_min * 60

    def rate(t: float) -> float:
        if 2 * HOUR <= t < gap_end:
            return 0.0
        return base * flush if t < gap_end + 120 else base

    return rate


def last_week_busy() -> list[Event]:
    week = 7 * 86400
    busy = stats(lambda t: 30.0, T0 + 2 * HOUR - week, T0 + 3 * HOUR - week, seed=9)
    return busy + stats(step(8.0, 3.5, 2 * HOUR), T0, T0 + 2.5 * HOUR, seed=3)


CASES: list[tuple[str, Callable[[], list[Event]], list[tuple[str, str, str]]]] = [
    (
        "a 4x jump after two quiet hours is a major surge",
        lambda: stats(step(8.0, 4.0, 2 * HOUR), T0, T0 + 2.5 * HOUR),
        [("surge.offered", "presale-chat", "major")],
    ),
    (
        "a 7x jump is critical",
        lambda: stats(step(8.0, 7.0, 2 * HOUR), T0, T0 + 2.5 * HOUR),
        [("surge.offered", "presale-chat", "critical")],
    ),
    (
        "contacts-only producers surge too",
        lambda: contacts_copy(stats(step(6.0, 4.0, 2 * HOUR), T0, T0 + 2.5 * HOUR), T0),
        [("surge.offered", "presale-chat", "major")],
    ),
    (
        "a surge that builds to 4x over 10 minutes is a surge",
        lambda: stats(build(8.0, 4.0, 2 * HOUR, 600), T0, T0 + 2.5 * HOUR),
        [("surge.offered", "presale-chat", "major")],
    ),
    (
        "a promotion opening at midnight from 5 to 120 per minute is critical",
        lambda: stats(step(5.0, 24.0, 2 * HOUR), T0, T0 + 2.2 * HOUR),
        [("surge.offered", "presale-chat", "critical")],
    ),
    (
        "a steep morning ramp from a quiet night (0.5 to 30 per minute) does not fire",
        lambda: stats(morning(0.5, 30.0, 1.0, 3.0), T0, T0 + 5 * HOUR, seed=2),
        [],
    ),
    (
        "a morning ramp from 2 to 30 per minute over 2 hours does not fire",
        lambda: stats(morning(2.0, 30.0, 1.0, 2.0), T0, T0 + 4 * HOUR, seed=3),
        [],
    ),
    (
        "a linear daily ramp from 4 to 60 per minute over 3 hours does not fire",
        lambda: stats(linear(4.0, 60.0, 3 * HOUR), T0, T0 + 4 * HOUR),
        [],
    ),
    (
        "an exponential morning ramp, 8x over 2 hours, does not fire",
        lambda: stats(exponential(5.0, 8.0, 2 * HOUR), T0, T0 + 3 * HOUR, seed=4),
        [],
    ),
    (
        "steady noisy traffic does not fire",
        lambda: stats(lambda t: 12.0, T0, T0 + 4 * HOUR, seed=7),
        [],
    ),
    (
        "a queue backing up with missing agents and normal arrivals is not a surge",
        lambda: stats(
            lambda t: 10.0,
            T0,
            T0 + 3 * HOUR,
            waiting=lambda t: int(max(0.0, t - T0 - 2 * HOUR) / 10),
            staffed=0,
        ),
        [],
    ),
    (
        "a producer that starts sending contacts as well is not counted twice",
        lambda: (s := stats(lambda t: 10.0, T0, T0 + 3 * HOUR)) + contacts_copy(s, T0 + 2 * HOUR),
        [],
    ),
    (
        "a queue seen for the first time at high volume has no baseline yet",
        lambda: stats(lambda t: 100.0, T0, T0 + 0.4 * HOUR),
        [],
    ),
    (
        "a small queue tripling from 0.5 to 3 per minute stays under the minimum count",
        lambda: stats(step(0.5, 6.0, 2 * HOUR), T0, T0 + 2.5 * HOUR),
        [],
    ),
    (
        "a 3x surge on a queue of 100 per minute is major",
        lambda: stats(step(100.0, 3.0, 2 * HOUR), T0, T0 + 2.5 * HOUR),
        [("surge.offered", "presale-chat", "major")],
    ),
    (
        "steady noisy traffic of 100 per minute for 8 hours does not fire",
        lambda: stats(lambda t: 100.0, T0, T0 + 8 * HOUR, seed=5),
        [],
    ),
    (
        "normal traffic returning after a 20-minute silence is not a surge",
        lambda: stats(recovery(100.0, 20, 1.0), T0, T0 + 3.5 * HOUR),
        [],
    ),
    (
        "a 3x backlog flush after a 20-minute silence of a small queue is not a surge",
        lambda: stats(recovery(8.0, 20, 3.0), T0, T0 + 3.5 * HOUR),
        [],
    ),
    (
        "an hour-long outage's recovery is not a surge",
        lambda: stats(recovery(18.0, 60, 1.0), T0, T0 + 4 * HOUR),
        [],
    ),
    (
        "a real 3x surge right after a silence is still a surge",
        lambda: stats(
            lambda t: 0.0 if 2 * HOUR <= t < 2.3 * HOUR else (30.0 if t >= 2.3 * HOUR else 10.0),
            T0,
            T0 + 3 * HOUR,
        ),
        [("surge.offered", "presale-chat", "major")],
    ),
    (
        "the same busy hour last week makes today's rise expected",
        last_week_busy,
        [],
    ),
]


@pytest.mark.parametrize(("name", "events", "expected"), CASES, ids=[c[0] for c in CASES])
def test_surge_cases(
    name: str, events: Callable[[], list[Event]], expected: list[tuple[str, str, str]]
) -> None:
    detector = SurgeDetector(load_rules())
    trace = drive(detector, events(), step_s=5.0)
    assert trace.fired() == expected


def test_surge_is_seen_within_three_minutes_and_says_why() -> None:
    detector = SurgeDetector(load_rules())
    trace = drive(detector, stats(step(8.0, 4.0, 2 * HOUR), T0, T0 + 2.5 * HOUR), step_s=1.0)
    seen = trace.seen["surge.offered|presale-chat"]
    assert seen.first_at - (T0 + 2 * HOUR) < 180
    evidence = seen.last.evidence
    assert evidence["ratio"] >= 1.5
    assert evidence["source"] == "queue.stats"


@pytest.mark.parametrize(
    ("per_min", "factor", "within_s"),
    [(100.0, 3.0, 60.0), (18.0, 3.0, 60.0), (8.0, 4.0, 90.0), (1.5, 5.0, 240.0)],
)
def test_a_step_is_an_incident_as_soon_as_the_sequential_test_is_sure(
    per_min: float, factor: float, within_s: float
) -> None:
    """The window had to fill: a 3x step at 100/min opened its incident after 200 s."""
    rules = load_rules()
    trace = drive(SurgeDetector(rules), stats(step(per_min, factor, 2 * HOUR), T0, T0 + 2.5 * HOUR))
    seen = trace.seen["surge.offered|presale-chat"]
    incident_after = seen.first_at + seen.fired.for_s - (T0 + 2 * HOUR)  # type: ignore[union-attr]
    assert incident_after <= within_s
    assert seen.last.evidence["cusum_threshold"] == pytest.approx(11.0, abs=0.1)


def test_surge_clears_when_the_new_level_becomes_the_baseline() -> None:
    detector = SurgeDetector(load_rules())
    trace = drive(detector, stats(step(8.0, 4.0, 2 * HOUR), T0, T0 + 4 * HOUR), step_s=5.0)
    assert trace.fired() == [("surge.offered", "presale-chat", "major")]
    assert trace.active_at_end == []


def test_surge_state_survives_a_snapshot_round_trip() -> None:
    events = stats(step(8.0, 4.0, 2 * HOUR), T0, T0 + 2.5 * HOUR)
    half = [e for e in events if e.ts < T0 + 2 * HOUR + 60]
    rest = [e for e in events if e.ts >= T0 + 2 * HOUR + 60]
    first = SurgeDetector(load_rules())
    drive(first, half, step_s=5.0)
    second = SurgeDetector(load_rules())
    second.restore(first.snapshot())
    trace = drive(second, rest, step_s=5.0)
    assert trace.fired() == [("surge.offered", "presale-chat", "major")]


def test_per_queue_override_changes_the_ratio() -> None:
    rules = load_rules(text='[surge.queues."presale-chat"]\nratio = 6.0\nmajor_ratio = 8.0')
    trace = drive(
        SurgeDetector(rules), stats(step(8.0, 4.0, 2 * HOUR), T0, T0 + 2.5 * HOUR), step_s=5.0
    )
    assert trace.fired() == []


def at_cadence(rate_per_min: Callable[[float], float], hours: float, every_s: float) -> list[Event]:
    """The same Poisson arrivals (drawn per 5 s) reported as ``queue.stats`` every ``every_s``."""
    rng = random.Random(11)
    counts = [poisson(rng, rate_per_min(k * 5.0) / 12) for k in range(int(hours * 720))]
    per = round(every_s / 5.0)
    out: list[Event] = []
    for i in range(0, len(counts), per):
        out.append(
            QueueStats(
                ts=T0 + (i + per) * 5.0,  # a snapshot reports the interval that ends at ts
                source="acd",
                queue="presale-chat",
                channel="chat",
                waiting=2,
                longest_wait_s=5.0,
                agents_available=2,
                agents_busy=8,
                offered=sum(counts[i : i + per]),
                interval_s=every_s,
            )
        )
    return out


CADENCE_CASES = [
    ("steady traffic", lambda t: 18.0, []),
    (
        "a 4x surge for an hour",
        lambda t: 72.0 if 4 * HOUR <= t < 5 * HOUR else 18.0,
        [("surge.offered", "presale-chat", "major")],
    ),
    (
        "intake silent for an hour",
        lambda t: 0.0 if 4 * HOUR <= t < 5 * HOUR else 18.0,
        [("outage.silent_channel", "chat", "critical")],
    ),
]


@pytest.mark.parametrize(
    ("name", "rate", "expected"), CADENCE_CASES, ids=[c[0] for c in CADENCE_CASES]
)
@pytest.mark.parametrize("every_s", [5.0, 300.0, 1800.0])
def test_the_same_traffic_at_any_reporting_cadence_gives_the_same_incidents(
    name: str, rate: Callable[[float], float], expected: list, every_s: float
) -> None:
    """Snapshots every 5 s, 5 min or 30 min: counts per interval, never per snapshot."""
    rules = load_rules()
    detectors = [SurgeDetector(rules), OutageDetector(rules)]
    events = at_cadence(rate, 7.0, every_s)
    trace = drive(detectors, events, step_s=5.0, until=events[-1].ts)
    assert trace.fired() == expected


def planned(start_h: float, end_h: float, factor: float, queue: str = "presale-chat") -> str:
    return (
        f'[[planned]]\nname = "promotion"\nqueues = ["{queue}"]\n'
        f"start = {T0 + start_h * HOUR:.0f}\nend = {T0 + end_h * HOUR:.0f}\nfactor = {factor}\n"
    )


def window(base: float, factor: float, start_h: float, end_h: float) -> Callable[[float], float]:
    """``factor`` x ``base`` from ``start_h`` to ``end_h``, ``base`` before and after."""
    return lambda t: base * (factor if start_h * HOUR <= t < end_h * HOUR else 1.0)


def merged_traffic() -> list[Event]:
    """aftersale-email (18 a minute) moves into aftersale-chat (18 a minute) at hour 2."""
    email = stats(
        lambda t: 18.0 if t < 2 * HOUR else 0.0, T0, T0 + 3 * HOUR, queue="aftersale-email"
    )
    email = [msgspec.structs.replace(e, channel="email") for e in email]
    chat = stats(
        lambda t: 18.0 if t < 2 * HOUR else 36.0, T0, T0 + 3 * HOUR, queue="aftersale-chat", seed=5
    )
    return email + chat


MERGE = (
    f'[[merged]]\nqueue = "aftersale-email"\ninto = "aftersale-chat"\nat = {T0 + 2 * HOUR:.0f}\n'
)

CALENDAR_CASES: list[tuple[str, str, Callable[[], list[Event]], list[tuple[str, str, str]]]] = [
    (
        "a 4x promotion announced in the rules file is not a surge, nor is its end",
        planned(1.98, 2.75, 5.0),
        lambda: stats(window(8.0, 4.0, 2.0, 2.75), T0, T0 + 3.5 * HOUR),
        [],
    ),
    (
        "the same promotion unannounced is a surge",
        "",
        lambda: stats(window(8.0, 4.0, 2.0, 2.75), T0, T0 + 3.5 * HOUR),
        [("surge.offered", "presale-chat", "major")],
    ),
    (
        "a promotion at 4x its plan is still a surge",
        planned(1.98, 2.75, 2.0),
        lambda: stats(window(8.0, 8.0, 2.0, 2.75), T0, T0 + 3.5 * HOUR),
        [("surge.offered", "presale-chat", "major")],
    ),
    (
        "a queue merged into another (declared) is neither a silence nor a surge",
        MERGE,
        merged_traffic,
        [],
    ),
]


@pytest.mark.parametrize(
    ("name", "text", "events", "expected"), CALENDAR_CASES, ids=[c[0] for c in CALENDAR_CASES]
)
def test_planned_events_and_merges(
    name: str, text: str, events: Callable[[], list[Event]], expected: list
) -> None:
    rules = load_rules(text=text)
    trace = drive([SurgeDetector(rules), OutageDetector(rules)], events(), step_s=5.0)
    assert trace.fired() == expected


def test_an_undeclared_merge_looks_like_a_silent_channel() -> None:
    rules = load_rules()
    trace = drive([SurgeDetector(rules), OutageDetector(rules)], merged_traffic(), step_s=5.0)
    assert ("outage.silent_channel", "email", "critical") in trace.fired()


def test_a_planned_event_in_the_rules_file_is_checked() -> None:
    bad = '[[planned]]\nname = "x"\nstart = 10\nend = 5\nfactor = 0.5\n'
    with pytest.raises(RulesError) as caught:
        load_rules(text=bad)
    problems = caught.value.errors
    assert "planned[0].queues: name at least one queue or channel" in problems
    assert "planned[0].end: must be after start" in problems
    assert "planned[0].factor: must be a number >= 1" in problems


@pytest.mark.parametrize(
    ("name", "rate"),
    [
        ("a 40-minute silence", window(20.0, 0.0, 2.0, 2.67)),
        ("a 30-minute 4x surge", window(20.0, 4.0, 2.0, 2.5)),
    ],
)
def test_the_baseline_does_not_learn_the_problem(name: str, rate: Callable[[float], float]) -> None:
    """Half an hour after the problem the baseline expects what it did before it."""
    rules = load_rules()
    detector = SurgeDetector(rules)
    drive(detector, stats(rate, T0, T0 + 3.2 * HOUR), step_s=10.0)
    per_bucket = detector.queues["presale-chat"].ring.baselines[0].level()
    assert per_bucket == pytest.approx(20.0 / 6, rel=0.15)
