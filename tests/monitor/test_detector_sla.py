"""SLA detector: queue snapshots and contacts -> signals, including the quiet cases."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from watchfloor.core.events import Contact, Event, QueueStats
from watchfloor.monitor.detectors.sla import SlaDetector, erlang_c_service_level
from watchfloor.monitor.drive import drive
from watchfloor.monitor.rules import load_rules

T0 = 1_763_000_000.0


def snaps(
    minutes: float,
    *,
    queue: str = "presale-chat",
    channel: str = "chat",
    wait: Callable[[float], float] = lambda t: 10.0,
    waiting: int = 6,
    available: int = 2,
    busy: int = 8,
    offered: int | None = 5,
    answered: int | None = 5,
    in_sla: int | None = 5,
    abandoned: int | None = 0,
    every: float = 20.0,
) -> list[Event]:
    out: list[Event] = []
    t = 0.0
    while t < minutes * 60:
        out.append(
            QueueStats(
                ts=T0 + t,
                source="acd",
                queue=queue,
                channel=channel,
                waiting=waiting,
                longest_wait_s=wait(t),
                agents_available=available,
                agents_busy=busy,
                offered=offered,
                answered=answered,
                answered_in_sla=in_sla,
                abandoned=abandoned,
                interval_s=every,
            )
        )
        t += every
    return out


def contacts(
    minutes: float, *, wait_s: Callable[[int], float], csat: int | None = None
) -> list[Event]:
    out: list[Event] = []
    for k in range(int(minutes * 6)):
        ts = T0 + k * 10
        common = {"source": "chat", "queue": "web-chat", "channel": "chat"}
        out.append(Contact(ts=ts, contact_id=f"c{k}", action="offered", **common))
        out.append(
            Contact(ts=ts + 1, contact_id=f"c{k}", action="answered", wait_s=wait_s(k), **common)
        )
        out.append(
            Contact(
                ts=ts + 2,
                contact_id=f"c{k}",
                action="completed",
                handle_s=200.0,
                csat=csat,
                **common,
            )
        )
    return out


def after(minute: float, value: float, before: float = 10.0) -> Callable[[float], float]:
    return lambda t: value if t >= minute * 60 else before


def few_answers() -> list[Event]:
    """20 answered in 15 min, 15 of them within the threshold (75 %)."""
    return snaps(20, every=180.0, offered=4, answered=4, in_sla=3, abandoned=0)


def few_abandons() -> list[Event]:
    """23 offered in 15 min, 3 abandoned (13 %)."""
    return snaps(20, every=180.0, offered=4, answered=4, in_sla=4, abandoned=0) + snaps(
        3, every=60.0, offered=1, answered=0, in_sla=0, abandoned=1
    )


CASES = [
    (
        "chat longest wait 45 s is minor",
        lambda: snaps(10, wait=after(3, 45)),
        [("sla.queue", "presale-chat", "minor", ("longest_wait",))],
    ),
    (
        "chat longest wait 75 s is major",
        lambda: snaps(10, wait=after(3, 75)),
        [("sla.queue", "presale-chat", "major", ("longest_wait",))],
    ),
    (
        "phone longest wait 70 s is critical (4x 15 s)",
        lambda: snaps(10, queue="hotline", channel="phone", wait=after(3, 70)),
        [("sla.queue", "hotline", "critical", ("longest_wait",))],
    ),
    ("chat wait 25 s is within 30 s", lambda: snaps(10, wait=lambda t: 25.0), []),
    (
        "one or two customers waiting 75 s in a served queue is chance, not a breach",
        lambda: snaps(10, wait=after(3, 75), waiting=2),
        [],
    ),
    ("a service level of 75 % on 20 answers is within chance of 80 %", lambda: few_answers(), []),
    ("3 abandons of 23 offered is within chance of the 10 % limit", lambda: few_abandons(), []),
    (
        "a 40 s blip of one snapshot does not hold for a minute",
        lambda: snaps(10, wait=lambda t: 40.0 if 200 <= t < 220 else 10.0),
        [],
    ),
    (
        "one snapshot at 31 s, then 26 s (under 30, over the clear level) does not fire",
        lambda: snaps(10, wait=lambda t: 31.0 if 200 <= t < 220 else (26.0 if t >= 220 else 10.0)),
        [],
    ),
    (
        "email waiting 2 h is within 24 h",
        lambda: snaps(
            10,
            queue="mail",
            channel="email",
            wait=lambda t: 7200.0,
            answered=None,
            in_sla=None,
            abandoned=None,
        ),
        [],
    ),
    (
        "email waiting 30 h is a breach",
        lambda: snaps(
            10,
            queue="mail",
            channel="email",
            wait=lambda t: 30 * 3600.0,
            answered=None,
            in_sla=None,
            abandoned=None,
        ),
        [("sla.queue", "mail", "minor", ("longest_wait",))],
    ),
    (
        "service level 60 % over 15 min is major",
        lambda: snaps(20, answered=5, in_sla=3),
        [("sla.queue", "presale-chat", "major", ("service_level",))],
    ),
    ("service level 85 % is fine", lambda: snaps(20, answered=20, in_sla=17), []),
    (
        "abandon rate 25 % is major",
        lambda: snaps(20, offered=8, abandoned=2),
        [("sla.queue", "presale-chat", "major", ("abandon_rate",))],
    ),
    (
        "abandon rate 5 % is fine",
        lambda: snaps(20, offered=20, answered=19, in_sla=19, abandoned=1),
        [],
    ),
    (
        "nobody staffed while contacts wait",
        lambda: snaps(
            5, available=0, busy=0, waiting=4, answered=None, in_sla=None, abandoned=None
        ),
        [("sla.queue", "presale-chat", "major", ("no_agents",))],
    ),
    (
        "all agents busy with a short queue is normal",
        lambda: snaps(10, available=0, busy=12, waiting=2),
        [],
    ),
    (
        "nobody staffed and nobody waiting is a closed queue",
        lambda: snaps(
            10, available=0, busy=0, waiting=0, offered=0, answered=0, in_sla=0, abandoned=0
        ),
        [],
    ),
    (
        "contacts answered after 60 s make the service level fail",
        lambda: contacts(20, wait_s=lambda k: 60.0 if k % 3 else 5.0),
        [("sla.queue", "web-chat", "critical", ("service_level",))],
    ),
    ("contacts answered in 10 s are fine", lambda: contacts(20, wait_s=lambda k: 10.0), []),
    (
        "satisfaction 0 % alone is not an incident by default (evidence only)",
        lambda: contacts(70, wait_s=lambda k: 5.0, csat=2),
        [],
    ),
    ("satisfaction all 5 is fine", lambda: contacts(70, wait_s=lambda k: 5.0, csat=5), []),
]


@pytest.mark.parametrize(("name", "events", "expected"), CASES, ids=[c[0] for c in CASES])
def test_sla_cases(name: str, events: Callable[[], list[Event]], expected: list) -> None:
    trace = drive(SlaDetector(load_rules()), events(), step_s=1.0)
    assert trace.fired_conditions() == expected


def test_snapshots_without_in_sla_or_offered_counts_are_not_misread() -> None:
    events = snaps(20, answered=5, in_sla=None, abandoned=1, offered=None)
    trace = drive(SlaDetector(load_rules()), events)
    # 1 of 6, not 1 of 0
    assert trace.fired_conditions() == [("sla.queue", "presale-chat", "minor", ("abandon_rate",))]


def test_satisfaction_is_evidence_by_default_and_a_rule_when_asked() -> None:
    events = contacts(70, wait_s=lambda k: 60.0 if k % 3 else 5.0, csat=2)
    trace = drive(SlaDetector(load_rules()), events)
    assert trace.fired_conditions() == [("sla.queue", "web-chat", "critical", ("service_level",))]
    figures = trace.seen["sla.queue|web-chat"].last.evidence["satisfaction"]
    assert figures["satisfied_share"] == 0.0 and figures["target"] == 0.95
    rules = load_rules(text="[sla]\nsatisfaction_alert = true")
    fired = drive(SlaDetector(rules), events).fired_conditions()
    assert fired == [("sla.queue", "web-chat", "critical", ("satisfaction", "service_level"))]


def test_per_queue_threshold_override() -> None:
    rules = load_rules(text='[sla.queues."vip-phone"]\nlongest_wait_s = 10')
    trace = drive(
        SlaDetector(rules), snaps(5, queue="vip-phone", channel="phone", wait=after(1, 12))
    )
    assert trace.fired_conditions() == [("sla.queue", "vip-phone", "minor", ("longest_wait",))]


def test_a_stale_snapshot_stops_the_signal() -> None:
    events = snaps(5, wait=lambda t: 50.0)
    trace = drive(SlaDetector(load_rules()), events, until=T0 + 5 * 60 + 400)
    assert trace.fired_conditions() == [("sla.queue", "presale-chat", "minor", ("longest_wait",))]
    assert trace.active_at_end == []


def test_signals_carry_an_erlang_forecast_of_agents_short() -> None:
    events = snaps(20, wait=lambda t: 120.0, offered=20, available=0, busy=5)
    trace = drive(SlaDetector(load_rules()), events)
    forecast = trace.seen["sla.queue|presale-chat"].last.evidence["forecast"]
    assert forecast["agents"] == 5
    assert forecast["agents_short"] > 0
    assert forecast["forecast_service_level"] == 0.0


def test_erlang_c_service_level_rises_with_agents() -> None:
    levels = [erlang_c_service_level(n, 10.0, 180.0, 20.0) for n in (10, 11, 12, 14, 20)]
    assert levels[0] == 0.0
    assert levels == sorted(levels)
    assert 0.5 < levels[2] < 0.8
    assert levels[-1] > 0.99


def test_sla_state_round_trips() -> None:
    events = snaps(20, answered=5, in_sla=3)
    first = SlaDetector(load_rules())
    drive(first, events[:30])
    second = SlaDetector(load_rules())
    second.restore(first.snapshot())
    trace = drive(second, events[30:])
    assert trace.fired_conditions() == [("sla.queue", "presale-chat", "major", ("service_level",))]


def test_a_queue_in_trouble_is_one_signal_listing_every_breached_condition() -> None:
    # Long waits, a poor service level and many abandons at once: one incident, not three.
    events = snaps(20, wait=after(3, 75), offered=8, answered=5, in_sla=2, abandoned=3)
    trace = drive(SlaDetector(load_rules()), events)
    assert trace.fired_conditions() == [
        ("sla.queue", "presale-chat", "critical", ("abandon_rate", "longest_wait", "service_level"))
    ]
    evidence = trace.active_at_end[0].evidence
    by_name = {c["condition"]: c for c in evidence["conditions"]}
    assert by_name["longest_wait"]["longest_wait_s"] == 75.0
    assert by_name["longest_wait"]["severity"] == "major"
    assert by_name["abandon_rate"]["abandon_rate"] == 0.375
    assert by_name["abandon_rate"]["severity"] == "critical"
    assert by_name["service_level"]["service_level"] == 0.4
    assert trace.active_at_end[0].severity == "critical"  # the worst of them
    assert "also" in trace.active_at_end[0].title


def test_the_queue_signal_severity_falls_with_its_worst_condition() -> None:
    # 75 s (major) for 5 min, then 45 s (minor): one fingerprint throughout.
    events = snaps(12, wait=lambda t: 75.0 if 60 <= t < 360 else (45.0 if t >= 360 else 10.0))
    trace = drive(SlaDetector(load_rules()), events)
    assert list(trace.seen) == ["sla.queue|presale-chat"]
    assert trace.seen["sla.queue|presale-chat"].severity == "major"
    assert trace.active_at_end[0].severity == "minor"


@pytest.mark.parametrize("events", [few_answers, few_abandons])
def test_without_the_confidence_interval_those_small_samples_would_fire(events) -> None:
    rules = load_rules(text="[sla]\nconfidence_z = 0.0")
    assert drive(SlaDetector(rules), events()).fired() != []
