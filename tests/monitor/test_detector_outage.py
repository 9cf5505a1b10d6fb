"""Outage detector: probes, heartbeats and intake -> signals, including the quiet cases."""

from __future__ import annotations

import math
import random
from collections.abc import Callable

import pytest

from watchfloor.core.events import Event, Health, Heartbeat, QueueStats
from watchfloor.monitor.detectors.outage import OutageDetector
from watchfloor.monitor.drive import drive
from watchfloor.monitor.rules import load_rules

T0 = 1_763_000_000.0
HOUR = 3600.0


def probes(
    pattern: str,
    *,
    every: float = 10.0,
    component: str = "crm",
    start: float = T0,
    error_rate: float | None = None,
) -> list[Event]:
    """One probe per character: u = up, d = down, g = degraded."""
    status = {"u": "up", "d": "down", "g": "degraded"}
    return [
        Health(
            ts=start + i * every,
            source="prober",
            component=component,
            status=status[c],
            latency_ms=20.0,
            error_rate=error_rate,
            message="connect timeout" if c == "d" else None,
        )
        for i, c in enumerate(pattern)
    ]


def flaky(rate: float, hours: float, seed: int = 1, outage_at: float | None = None) -> list[Event]:
    """A probe every 10 s failing at random with ``rate``; optionally a real 3-min outage."""
    rng = random.Random(seed)
    pattern = []
    for k in range(int(hours * 360)):
        real = outage_at is not None and outage_at * 360 <= k < outage_at * 360 + 18
        pattern.append("d" if real or rng.random() < rate else "u")
    return probes("".join(pattern))


def beats(source: str, every: float, until: float, start: float = T0) -> list[Event]:
    n = int((until - start) / every)
    return [Heartbeat(ts=start + k * every, source=source) for k in range(n)]


def intake(
    rate_per_min: Callable[[float], float],
    hours: float,
    queue: str = "presale-chat",
    channel: str = "chat",
) -> list[Event]:
    """queue.stats every 30 s with the expected offered count (deterministic, rounded)."""
    out: list[Event] = []
    carry = 0.0
    for k in range(int(hours * 120)):
        t = k * 30.0
        carry += rate_per_min(t) / 2
        offered = math.floor(carry)
        carry -= offered
        out.append(
            QueueStats(
                ts=T0 + t,
                source="acd",
                queue=queue,
                channel=channel,
                waiting=1,
                longest_wait_s=3.0,
                agents_available=3,
                agents_busy=5,
                offered=offered,
            )
        )
    return out


def silent_after(hour: float, rate: float = 20.0) -> Callable[[float], float]:
    return lambda t: 0.0 if t >= hour * HOUR else rate


def evening(t: float) -> float:
    """20/min falling linearly to 0.2/min over 3 hours, then quiet (a night)."""
    return max(0.2, 20.0 * (1 - t / (3 * HOUR)))


CASES = [
    (
        "two failed probes in a row of a known healthy probe are an outage",
        lambda: probes("u" * 40 + "dduuu"),
        [("outage.component", "crm", "critical", ("down",))],
    ),
    (
        "a probe without history needs three failures in a row",
        lambda: probes("uuuudduuu"),
        [],
    ),
    (
        "three failures in a row of a new probe are an outage",
        lambda: probes("uuudddu"),
        [("outage.component", "crm", "critical", ("down",))],
    ),
    ("one failed probe is not an outage", lambda: probes("uuuuduuuuu"), []),
    (
        "occasional single failures are not an outage",
        lambda: probes("uuuuuuduuuuuuuuuduuuuuuuuuuu"),
        [],
    ),
    (
        "a slow prober's single failure is not an outage either",
        lambda: probes("uuudu", every=60.0),
        [],
    ),
    (
        "a day of a probe failing 3 % of the time at random is not an outage",
        lambda: flaky(0.03, 24.0),
        [],
    ),
    (
        "a day of a probe failing 10 % of the time at random is not an outage",
        lambda: flaky(0.10, 24.0, seed=2),
        [],
    ),
    (
        "a real 3-minute outage of a flaky probe is still an outage",
        lambda: flaky(0.05, 6.0, seed=3, outage_at=5.0),
        [("outage.component", "crm", "critical", ("down",))],
    ),
    (
        "a probe flapping for 10 minutes is one flapping signal, not pages",
        lambda: probes("uu" + "du" * 30 + "uuu"),
        [("outage.component", "crm", "minor", ("flapping",))],
    ),
    (
        "a flap that settles within 2 minutes is not an incident",
        lambda: probes("u" * 40 + "du" * 6 + "u" * 20),
        [],
    ),
    (
        "down, one good probe, down again stays one outage",
        lambda: probes("uudddudddduu"),
        [("outage.component", "crm", "critical", ("down",))],
    ),
    (
        "degraded on consecutive probes is minor",
        lambda: probes("uugggguu"),
        [("outage.component", "crm", "minor", ("degraded",))],
    ),
    (
        "an error rate of 30 % is a major degradation",
        lambda: probes("uuuuu", error_rate=0.3),
        [("outage.component", "crm", "major", ("degraded",))],
    ),
    ("an error rate of 1 % is fine", lambda: probes("uuuuu", error_rate=0.01), []),
    (
        "a source that stops beating is lost",
        lambda: beats("acd-1", 10.0, T0 + 300),
        [("outage.heartbeat", "acd-1", "major")],
    ),
    (
        "a slow source beating every 60 s is not lost after 90 s",
        lambda: (
            [*beats("crm-sync", 60.0, T0 + 600), Heartbeat(ts=T0 + 600 + 90, source="crm-sync")]
        ),
        [],
    ),
    (
        "a queue whose intake stops during the day is silent",
        lambda: intake(silent_after(2.0), 2.5) + intake(lambda t: 20.0, 2.5, queue="after-chat"),
        [("outage.silent_queue", "presale-chat", "major")],
    ),
    (
        "a channel whose only queue stops is a silent channel",
        lambda: intake(silent_after(2.0), 2.5),
        [("outage.silent_channel", "chat", "critical")],
    ),
    ("an evening ramp down into a quiet night is not silence", lambda: intake(evening, 5.0), []),
    (
        "a producer that sends no snapshots for 5 minutes is no silent intake (no news)",
        lambda: [
            e
            for e in intake(lambda t: 20.0, 2.5)
            if not T0 + 2 * HOUR <= e.ts < T0 + 2 * HOUR + 300
        ],
        [],
    ),
    (
        "a small queue of 1 per minute going to 0 is not judged",
        lambda: intake(silent_after(2.0, rate=1.0), 2.5),
        [],
    ),
]


@pytest.mark.parametrize(("name", "events", "expected"), CASES, ids=[c[0] for c in CASES])
def test_outage_cases(name: str, events: Callable[[], list[Event]], expected: list) -> None:
    made = events()
    # Intake cases: the clock stops with the data, as replay's does; past their end
    # every queue is silent (and found so within a minute).
    tail = 1.0 if isinstance(made[-1], QueueStats) else 120.0
    trace = drive(OutageDetector(load_rules()), made, step_s=1.0, until=made[-1].ts + tail)
    fired = [f if f[0] == "outage.component" else f[:3] for f in trace.fired_conditions()]
    assert fired == expected


def test_heartbeat_limit_is_learned_per_source_with_a_30_s_floor() -> None:
    events = beats("fast", 2.0, T0 + 100) + beats("slow", 20.0, T0 + 100)
    trace = drive(OutageDetector(load_rules()), events, until=T0 + 300)
    fast = trace.seen["outage.heartbeat|fast"]
    slow = trace.seen["outage.heartbeat|slow"]
    assert fast.last.evidence["limit_s"] == 30.0
    assert slow.last.evidence["limit_s"] == 60.0
    assert fast.first_at < slow.first_at


def test_a_silent_channel_covers_its_queues() -> None:
    events = intake(silent_after(2.0), 2.5, queue="a-chat") + intake(
        silent_after(2.0), 2.5, queue="b-chat"
    )
    trace = drive(OutageDetector(load_rules()), events, until=T0 + 2.5 * HOUR)
    assert trace.fired() == [("outage.silent_channel", "chat", "critical")]


@pytest.mark.parametrize(
    ("per_min", "rules", "within_s"),
    [
        (18.0, "", 90.0),
        (100.0, "", 60.0),
        (1.0, "[outage]\nsilent_min_expected = 5", 15 * 60.0),
    ],
)
def test_silent_intake_is_found_as_soon_as_the_sequential_test_is_sure(
    per_min: float, rules: str, within_s: float
) -> None:
    """The window had to fill: 18/min going silent opened its incident after ~10 min."""
    events = intake(silent_after(2.0, rate=per_min), 2.5) + intake(
        lambda t: 20.0, 2.5, queue="after-chat"
    )
    trace = drive(OutageDetector(load_rules(text=rules)), events, until=events[-1].ts)
    seen = trace.seen["outage.silent_queue|presale-chat"]
    assert seen.first_at - (T0 + 2 * HOUR) <= within_s
    assert seen.last.evidence["cusum"] >= seen.last.evidence["cusum_threshold"] == 9.9


def test_heartbeat_comes_back_and_the_signal_clears() -> None:
    events = beats("acd-1", 10.0, T0 + 300) + beats("acd-1", 10.0, T0 + 600, start=T0 + 400)
    trace = drive(OutageDetector(load_rules()), events, until=T0 + 600)
    assert trace.fired() == [("outage.heartbeat", "acd-1", "major")]
    assert trace.active_at_end == []


def test_outage_state_round_trips_mid_outage() -> None:
    events = probes("uuuuddddddduu") + beats("acd-1", 10.0, T0 + 100)
    first = OutageDetector(load_rules())
    drive(first, events[:6])
    second = OutageDetector(load_rules())
    second.restore(first.snapshot())
    trace = drive(second, events[6:], until=T0 + 200)
    assert ("outage.component", "crm", "critical") in trace.fired()
    assert ("outage.heartbeat", "acd-1", "major") in trace.fired()


def test_a_component_degraded_then_down_then_degraded_is_one_signal_whose_severity_moves() -> None:
    # Degraded, down, two good probes (the outage clears), degraded again, healthy.
    events = probes("u" * 40 + "gggdddduuggguuu")
    trace = drive(OutageDetector(load_rules()), events, until=events[-1].ts + 120)
    assert trace.fired_conditions() == [
        ("outage.component", "crm", "critical", ("degraded", "down"))
    ]
    severities = []
    det = OutageDetector(load_rules())
    for event in events:
        det.observe(event)
        found = [s for s in det.evaluate(event.ts) if s.rule == "outage.component"]
        severities.append(found[0].severity if found else None)
    moves = [s for i, s in enumerate(severities) if i == 0 or s != severities[i - 1]]
    assert moves == [None, "minor", "critical", None, "minor", None]


def test_the_checkpoint_keeps_its_keys_across_the_split_by_evidence() -> None:
    # Probes, heartbeats and silent intake live in three modules; a checkpoint written
    # before they were split (one flat table) must still restore.
    det = OutageDetector(load_rules())
    drive(det, probes("u" * 40 + "dddd"), until=T0 + 500)
    state = det.snapshot()
    assert set(state) == {
        "components",
        "sources",
        "queues",
        "channels",
        "active",
        "flapping",
        "flapping_since",
        "blind_until",
        "silent_cusum",  # added with the sequential silence test; the older keys stay
        "merged",  # added with the queue merges of the rules file
    }
    assert state["active"] == ["outage.component|crm"]
