"""Opinion detector: mention streams -> signals, including the quiet cases."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from watchfloor.core.events import Event, SocialMention
from watchfloor.monitor.detectors.opinion import OpinionDetector
from watchfloor.monitor.drive import drive
from watchfloor.monitor.rules import load_rules

T0 = 1_763_000_000.0
HOUR = 3600.0
NEUTRAL = "请问这款什么时候有货"
NEGATIVE = "客服太差了，等了半天没人理"


def mentions(
    per_10min: Callable[[float], float],
    hours: float,
    *,
    topic: str = "brand-x",
    negative_share: Callable[[float], float] = lambda t: 0.1,
) -> list[Event]:
    """Evenly spaced mentions; every k-th one negative to match the share."""
    out: list[Event] = []
    t, k, neg_carry = 0.0, 0, 0.0
    while t < hours * HOUR:
        rate = per_10min(t)
        if rate <= 0:
            t += 60.0
            continue
        neg_carry += negative_share(t)
        negative = neg_carry >= 1.0
        neg_carry -= 1.0 if negative else 0.0
        out.append(
            SocialMention(
                ts=T0 + t,
                source="listener",
                platform="weibo",
                topic=topic,
                text=NEGATIVE if negative else NEUTRAL,
                followers=300,
            )
        )
        k += 1
        t += 600.0 / rate
    return out


def post(followers: int, text: str, at: float = 2 * HOUR, sentiment: float | None = None) -> Event:
    return SocialMention(
        ts=T0 + at,
        source="listener",
        platform="weibo",
        topic="brand-x",
        text=text,
        author="大V张三",
        followers=followers,
        url="https://weibo.example/1",
        sentiment=sentiment,
    )


def spike(
    base: float, peak: float, at: float = 2 * HOUR, for_s: float = 900
) -> Callable[[float], float]:
    return lambda t: peak if at <= t < at + for_s else base


COMPLAINT = "曝光！这家店卖假货，投诉无门，大家避雷"


def complaints(count: int, at: float, every_s: float) -> list[Event]:
    """``count`` negative mentions by small accounts, ``every_s`` apart from ``at``."""
    return [
        SocialMention(
            ts=T0 + at + 0.5 + k * every_s,
            source="listener",
            platform="weibo",
            topic="brand-x",
            text=NEGATIVE,
            followers=300,
        )
        for k in range(count)
    ]


CASES = [
    (
        "a jump from 6 to 80 mentions per 10 min is critical",
        lambda: mentions(spike(6, 80), 2.5),
        [("opinion.topic", "brand-x", "critical", ("volume",))],
    ),
    (
        "a jump from 6 to 30 is major",
        lambda: mentions(spike(6, 30), 2.5),
        [("opinion.topic", "brand-x", "major", ("volume",))],
    ),
    ("steady chatter does not fire", lambda: mentions(lambda t: 8, 3), []),
    (
        "an evening rise from 1 to 40 per 10 min over 2 hours does not fire",
        lambda: mentions(lambda t: 1 + 39 * min(1.0, max(0.0, t - HOUR) / (2 * HOUR)), 4),
        [],
    ),
    (
        "a small topic going from 1 to 8 stays under the minimum count",
        lambda: mentions(spike(1, 8), 2.5),
        [],
    ),
    (
        "a topic first seen at 25 per 10 min is not an event",
        lambda: mentions(lambda t: 25, 0.5),
        [],
    ),
    (
        "a new topic at 90 per 10 min is learned, not an alarm (cold start)",
        lambda: mentions(lambda t: 90, 0.5),
        [],
    ),
    (
        "a new topic, all negative at 60 per 10 min, is learned too",
        lambda: mentions(lambda t: 60, 0.9, negative_share=lambda t: 1.0),
        [],
    ),
    (
        "a new topic's one high-reach complaint still fires without history",
        lambda: [*mentions(lambda t: 90, 0.5), post(2_000_000, COMPLAINT, at=0.4 * HOUR)],
        [("opinion.topic", "brand-x", "critical", ("high_reach",))],
    ),
    (
        "once learned, the same topic jumping from 90 to 600 fires",
        lambda: mentions(spike(90, 600, at=1.5 * HOUR), 1.8),
        [("opinion.topic", "brand-x", "major", ("volume",))],
    ),
    (
        "negative share rising from 10 % to 80 % fires",
        lambda: mentions(lambda t: 30, 2.5, negative_share=lambda t: 0.8 if t >= 2 * HOUR else 0.1),
        [("opinion.topic", "brand-x", "major", ("negative_share",))],
    ),
    (
        "a complaint-heavy topic at its usual 60 % does not fire",
        lambda: mentions(
            lambda t: 20, 2.5, negative_share=lambda t: 0.65 if t >= 2 * HOUR else 0.6
        ),
        [],
    ),
    (
        "a 500k-follower complaint is major",
        lambda: [post(500_000, COMPLAINT)],
        [("opinion.topic", "brand-x", "major", ("high_reach",))],
    ),
    (
        "a 2M-follower complaint is critical",
        lambda: [post(2_000_000, COMPLAINT)],
        [("opinion.topic", "brand-x", "critical", ("high_reach",))],
    ),
    (
        "a high-reach compliment does not fire",
        lambda: [post(2_000_000, "客服很耐心，好评，推荐")],
        [],
    ),
    (
        "a high-reach negative post without complaint words does not fire",
        lambda: [post(2_000_000, "今天物流有点慢")],
        [],
    ),
    ("a small account's complaint does not fire", lambda: [post(900, COMPLAINT)], []),
    (
        "a slow daily rise of mentions, a third of them negative as usual, does not fire",
        lambda: mentions(
            lambda t: 2 + 38 * min(1.0, t / (6 * HOUR)), 7, negative_share=lambda t: 0.33
        ),
        [],
    ),
    (
        "four complaints in a minute on a quiet topic are not a storm",
        lambda: [*mentions(lambda t: 6, 2.5), *complaints(4, 2 * HOUR, 15)],
        [],
    ),
    (
        "eight complaints in two minutes on a quiet topic are one",
        lambda: [*mentions(lambda t: 6, 2.5), *complaints(8, 2 * HOUR, 15)],
        [("opinion.topic", "brand-x", "minor", ("negative_share",))],
    ),
    (
        "a complaint word in a post the producer scored positive does not fire",
        lambda: [post(500_000, "感谢客服帮我投诉成功", sentiment=0.6)],
        [],
    ),
]


@pytest.mark.parametrize(("name", "events", "expected"), CASES, ids=[c[0] for c in CASES])
def test_opinion_cases(name: str, events: Callable[[], list[Event]], expected: list) -> None:
    evs = events()
    trace = drive(OpinionDetector(load_rules()), evs, step_s=5.0, until=max(e.ts for e in evs) + 60)
    assert trace.fired_conditions() == expected


def test_high_reach_evidence_is_masked_and_expires() -> None:
    text = COMPLAINT + " 联系我 13812345678"
    trace = drive(OpinionDetector(load_rules()), [post(500_000, text)], until=T0 + 2 * HOUR + 2000)
    evidence = trace.seen["opinion.topic|brand-x"].last.evidence
    assert evidence["author"] == "大***"
    assert "13812345678" not in evidence["excerpt"]
    assert "138****5678" in evidence["excerpt"]
    assert trace.active_at_end == []


def test_opinion_state_round_trips() -> None:
    events = mentions(spike(6, 80), 2.5)
    cut = T0 + 2 * HOUR + 120
    first = OpinionDetector(load_rules())
    drive(first, [e for e in events if e.ts < cut], step_s=5.0)
    second = OpinionDetector(load_rules())
    second.restore(first.snapshot())
    trace = drive(second, [e for e in events if e.ts >= cut], step_s=5.0)
    assert trace.fired_conditions() == [("opinion.topic", "brand-x", "critical", ("volume",))]


def storm() -> list[Event]:
    """Volume x10 and 80 % negative from 2 h, and a 2M-follower complaint 5 min in."""
    events = mentions(
        spike(6, 60),
        2.5,
        negative_share=lambda t: 0.8 if 2 * HOUR <= t < 2 * HOUR + 900 else 0.1,
    )
    return [*events, post(2_000_000, COMPLAINT, at=2 * HOUR + 300)]


def test_a_storm_about_a_topic_is_one_signal_listing_every_condition() -> None:
    trace = drive(OpinionDetector(load_rules()), storm(), step_s=5.0, until=T0 + 2 * HOUR + 600)
    assert trace.fired_conditions() == [
        ("opinion.topic", "brand-x", "critical", ("high_reach", "negative_share", "volume"))
    ]
    assert list(trace.seen) == ["opinion.topic|brand-x"]
    signal = trace.active_at_end[0]
    by_name = {c["condition"]: c for c in signal.evidence["conditions"]}
    assert by_name["high_reach"]["severity"] == "critical"
    assert by_name["high_reach"]["author"] == "大***"
    assert by_name["volume"]["mentions"] >= 20
    assert by_name["negative_share"]["share"] >= 0.5
    assert by_name["volume"]["severity"] == "critical"
    assert signal.severity == "critical"  # the worst of them (the first of equals)
    assert signal.title.startswith("Mentions of brand-x up ")
    assert signal.title.endswith("(also negative share, high reach)")
    assert signal.evidence["followers"] == 2_000_000  # every condition's figures at the top


def test_the_instant_signal_is_the_topic_rule_with_the_conditions_already_held() -> None:
    det = OpinionDetector(load_rules())
    events = [e for e in storm() if e.ts < T0 + 2 * HOUR + 300]
    drive(det, events, step_s=5.0, until=T0 + 2 * HOUR + 299)
    assert [s.fingerprint for s in det.evaluate(T0 + 2 * HOUR + 299)] == ["opinion.topic|brand-x"]
    signal = det.instant(post(2_000_000, COMPLAINT, at=2 * HOUR + 300))
    assert signal is not None and signal.fingerprint == "opinion.topic|brand-x"
    conditions = sorted(c["condition"] for c in signal.evidence["conditions"])
    assert conditions == ["high_reach", "negative_share", "volume"]
    assert signal.severity == "critical"
    # A quiet topic: the instant signal is the high-reach condition alone.
    fresh = OpinionDetector(load_rules()).instant(post(500_000, COMPLAINT))
    assert fresh is not None and fresh.fingerprint == "opinion.topic|brand-x"
    assert [c["condition"] for c in fresh.evidence["conditions"]] == ["high_reach"]
    assert fresh.severity == "major"


@pytest.mark.parametrize(
    "active",
    [{"brand-x": ["volume"]}, ["opinion.volume|brand-x"]],
    ids=["current checkpoint", "checkpoint of the three-rule detector"],
)
def test_a_restored_detector_keeps_the_hysteresis_of_active_conditions(active: object) -> None:
    events = mentions(spike(6, 80), 2.5)
    cut = T0 + 2 * HOUR + 300
    first = OpinionDetector(load_rules())
    drive(first, [e for e in events if e.ts < cut], step_s=5.0)
    state = first.snapshot()
    assert state["active"] == {"brand-x": ["volume"]}
    second = OpinionDetector(load_rules())
    second.restore({**state, "active": active})
    assert [c["condition"] for c in second.signals["brand-x"].evidence["conditions"]] == ["volume"]
    trace = drive(second, [e for e in events if e.ts >= cut], step_s=5.0)
    assert trace.fired_conditions() == [("opinion.topic", "brand-x", "critical", ("volume",))]


@pytest.mark.parametrize(("per_10min", "within_s"), [(6.0, 60.0), (30.0, 60.0)])
def test_a_negative_storm_is_found_as_it_rises(per_10min: float, within_s: float) -> None:
    """10x the mentions at 80 % negative: the 10-minute window took 60-90 s to say so."""
    events = mentions(
        spike(per_10min, 10 * per_10min),
        2.3,
        negative_share=lambda t: 0.8 if t >= 2 * HOUR else 0.1,
    )
    trace = drive(OpinionDetector(load_rules()), events, step_s=1.0, until=T0 + 2.2 * HOUR)
    seen = trace.seen["opinion.topic|brand-x"]
    assert seen.first_at - (T0 + 2 * HOUR) <= within_s
    first = seen.fired.evidence["conditions"][0]  # type: ignore[union-attr]
    assert first["condition"] == "negative_share"
    assert first["cusum"] >= first["cusum_threshold"]


def test_the_baseline_does_not_learn_a_storm() -> None:
    """Half an hour after a 20-minute storm (10x, 80 % negative) the topic's baselines
    expect what they did before it."""
    events = mentions(
        spike(12, 120, for_s=1200),
        3.0,
        negative_share=lambda t: 0.8 if 2 * HOUR <= t < 2 * HOUR + 1200 else 0.1,
    )
    detector = OpinionDetector(load_rules())
    trace = drive(detector, events, step_s=5.0, until=T0 + 3 * HOUR)
    assert trace.fired_conditions()  # the storm was one
    ring = detector.topics["brand-x"].ring
    per_bucket = 12 / 20  # 12 per 10 min in 30 s buckets
    assert ring.baselines[0].level() == pytest.approx(per_bucket, rel=0.25)
    assert ring.baselines[1].smooth() / ring.baselines[0].smooth() < 0.2
