"""Opinion detector on bursty topics: news bursts and weekly cycles are not storms, storms are.

Real mention streams are not evenly spaced: interest swings over the hour, news
drives a topic to 2-4x for an hour, weekends are quieter. These cases use
seeded Poisson arrivals with such swings (the same seed always gives the same
mentions).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable

import pytest

from watchfloor.core.events import Event, SocialMention
from watchfloor.monitor.detectors.opinion import OpinionDetector
from watchfloor.monitor.detectors.opinion_storm import NegativeStorm
from watchfloor.monitor.detectors.opinion_volume import nb_sf
from watchfloor.monitor.drive import drive
from watchfloor.monitor.rules import load_rules
from watchfloor.monitor.windows import poisson_sf

T0 = 1_767_196_800.0  # a Thursday, midnight China time
HOUR = 3600.0
DAY = 24 * HOUR
NEUTRAL = "请问这款什么时候有货"
NEGATIVE = "客服太差了，等了半天没人理"


def daily(t: float) -> float:
    """Share of the peak rate: quiet night, morning ramp, evening peak, fall after 22:00."""
    hour = (t % DAY) / HOUR
    return 0.08 + 0.92 * max(0.0, math.sin(math.pi * (hour - 6) / 17)) if 6 <= hour < 23 else 0.08


def swing(seed: int) -> Callable[[float], float]:
    """Slow swings of interest: a sum of waves of 20-90 minutes, about +-30 %."""
    rnd = random.Random(seed)
    waves = [(rnd.uniform(1200, 5400), rnd.uniform(0, 2 * math.pi)) for _ in range(4)]
    return lambda t: math.exp(0.15 * sum(math.sin(2 * math.pi * t / p + f) for p, f in waves))


def mention(at: float, negative: bool) -> Event:
    return SocialMention(
        ts=T0 + at,
        source="listener",
        platform="weibo",
        topic="brand-x",
        text=NEGATIVE if negative else NEUTRAL,
        followers=300,
    )


def arrivals(
    per_10min: Callable[[float], float],
    hours: float,
    *,
    share: Callable[[float], float] = lambda t: 0.15,
    seed: int = 7,
    start_h: float = 0.0,
) -> list[Event]:
    """Poisson mentions at ``per_10min(t)`` from ``start_h`` (the rate held for 10 s at a
    time, exponential gaps within), each negative with probability ``share(t)``."""
    rnd = random.Random(seed)
    out: list[Event] = []
    t = start_h * HOUR
    while t < hours * HOUR:
        rate = per_10min(t) / 600.0
        at = t + rnd.expovariate(rate) if rate > 0 else t + 10.0
        while at < t + 10.0:
            out.append(mention(at, rnd.random() < share(at)))
            at += rnd.expovariate(rate)
        t += 10.0
    return out


SWING = swing(3)


def burst(factor: float, at: float, for_s: float) -> Callable[[float], float]:
    return lambda t: factor if at <= t < at + for_s else 1.0


def busy(t: float) -> float:
    """A busy topic: 100 mentions per 10 min at its evening peak, swinging."""
    return 100.0 * daily(t) * SWING(t)


def fired(events: list[Event]) -> list[tuple[str, str, str, tuple[str, ...]]]:
    trace = drive(OpinionDetector(load_rules()), events, step_s=5.0, until=events[-1].ts + 60)
    return trace.fired_conditions()


CASES = [
    (
        "a busy topic's 3x news burst at its usual share for 40 minutes is not a storm",
        lambda: arrivals(lambda t: busy(t) * burst(3.0, 38 * HOUR, 2400)(t), 40),
        [],
    ),
    (
        "a busy topic's evening fall and quiet night are not a surge",
        lambda: arrivals(busy, 34),
        [],
    ),
    (
        "a weekly cycle: the weekend at 60 % and Monday morning back at full are not a surge",
        lambda: arrivals(
            lambda t: busy(t) * (0.6 if 2 * DAY <= t < 4 * DAY else 1.0),
            4 * 24 + 11,
            seed=11,
            start_h=2 * 24 + 12,
        ),
        [],
    ),
    (
        "the same busy topic jumping to 10x at its usual share is one",
        lambda: arrivals(lambda t: busy(t) * burst(10.0, 38 * HOUR, 1800)(t), 39),
        [("opinion.topic", "brand-x", "critical", ("volume",))],
    ),
]


@pytest.mark.parametrize(("name", "events", "expected"), CASES, ids=[c[0] for c in CASES])
def test_bursty_topic_cases(name: str, events: Callable[[], list[Event]], expected: list) -> None:
    assert fired(events()) == expected


def quiet_topic_storm(mixed: list[bool], storm_at: float = 3 * HOUR) -> list[Event]:
    """A quiet topic (about 15 mentions an hour, 40 % of them negative: the lexicon reads
    its usual complaints as such) and a storm whose first posts come in ``mixed`` order
    (True: negative), one every 3 s, then 80 % negative at 20 a minute."""
    events = arrivals(lambda t: 2.5, storm_at / HOUR, share=lambda t: 0.4, seed=5)
    rnd = random.Random(9)
    t = storm_at
    for negative in [*mixed, *(rnd.random() < 0.8 for _ in range(400))]:
        events.append(mention(t, negative))
        t += 3.0
    return sorted(events, key=lambda e: e.ts)


def test_a_storm_that_opens_among_neutral_posts_is_found_in_half_a_minute() -> None:
    """New Year's Eve on the simulator: the first negatives of a storm on a quiet, usually
    complaint-heavy topic came mixed with neutral posts; the window took 90 s to say so."""
    mixed = [True, False, True, False, True, True, True, True, True]
    events = quiet_topic_storm(mixed)
    trace = drive(OpinionDetector(load_rules()), events, step_s=1.0, until=T0 + 3 * HOUR + 300)
    seen = trace.seen["opinion.topic|brand-x"]
    assert seen.first_at - (T0 + 3 * HOUR) <= 30
    first = seen.fired.evidence["conditions"][0]  # type: ignore[union-attr]
    assert first["condition"] == "negative_share"


def test_the_same_quiet_topic_with_its_usual_complaints_is_not_a_storm() -> None:
    events = arrivals(lambda t: 2.5, 8, share=lambda t: 0.4, seed=5)
    assert fired(events) == []


def test_a_topic_learns_that_it_bursts() -> None:
    """The busy topic's swings give it a dispersion; evenly spaced chatter gives it none."""
    bursty = OpinionDetector(load_rules())
    drive(bursty, arrivals(busy, 30, start_h=10), step_s=10.0)
    steady = OpinionDetector(load_rules())
    evenly = [mention(k * 20.0, False) for k in range(20 * 180)]
    drive(steady, evenly, step_s=10.0)
    assert bursty.topics["brand-x"].dispersion.alpha() > 0.05
    assert steady.topics["brand-x"].dispersion.alpha() < 0.02
    state = bursty.snapshot()
    again = OpinionDetector(load_rules())
    again.restore(state)
    assert again.topics["brand-x"].dispersion.alpha() == bursty.topics["brand-x"].dispersion.alpha()


@pytest.mark.parametrize(("k", "mu"), [(3, 0.5), (20, 6.0), (400, 180.0)])
def test_the_negative_binomial_tail_is_poisson_without_dispersion_and_heavier_with(
    k: int, mu: float
) -> None:
    assert nb_sf(k, mu, 0.0) == pytest.approx(poisson_sf(k, mu))
    assert nb_sf(k, mu, 1e-7) == pytest.approx(poisson_sf(k, mu), rel=1e-3)
    assert nb_sf(k, mu, 0.1) > poisson_sf(k, mu)
    assert nb_sf(k, mu, 0.1) == pytest.approx(_nb_sf_by_sum(k, mu, 0.1), rel=1e-6)


def _nb_sf_by_sum(k: int, mu: float, alpha: float) -> float:
    """1 - P(X < k), summed from zero (a slower, independent reference)."""
    r = 1.0 / alpha
    p0 = r / (r + mu)
    term, total = p0**r, 0.0
    for i in range(k):
        total += term
        term *= (i + r) / (i + 1) * (1.0 - p0)
    return 1.0 - total


def test_a_storm_test_restored_from_an_older_checkpoint_starts_its_share_at_zero() -> None:
    storm = NegativeStorm()
    storm.restore([3.0, T0, 4.0, 5.0, 6.5])
    assert storm.state == [3.0, T0, 4.0, 5.0, 6.5, 0.0]
    again = NegativeStorm()
    again.restore(storm.snapshot())
    assert again.state == storm.state
