"""Abandon surges found sequentially (the ``abandon_rate`` condition of ``sla.queue``).

Traffic is drawn per 5 s (offered contacts and how many of them abandoned) and
reported as ``queue.stats`` at a cadence: every 5 s, every 5 minutes or every
30 minutes, the same counts summed per interval.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable

import pytest

from watchfloor.core.events import Contact, Event, QueueStats
from watchfloor.monitor.detectors.abandon import BUCKET_S
from watchfloor.monitor.detectors.sequential import binomial_delay_s, threshold
from watchfloor.monitor.detectors.sla import SlaDetector
from watchfloor.monitor.drive import Trace, drive
from watchfloor.monitor.rules import load_rules

T0 = 1_763_000_000.0  # a multiple of 1800 s: 30-minute reports end on the half hour
HOUR = 3600.0
STEP = 5.0
FIRED = [("sla.queue", "q", "critical", ("abandon_rate",))]

Rate = Callable[[float], float]


def traffic(
    hours: float,
    per_min: Rate,
    share: Rate,
    seed: int = 1,
    gaps: tuple[tuple[float, float], ...] = (),
) -> list[tuple[float, int, int]]:
    """(end of the 5 s, offered, abandoned) from ``T0``; ``gaps``: spans (s) nobody reports."""
    rnd = random.Random(seed)
    out = []
    for k in range(int(hours * HOUR / STEP)):
        t = k * STEP
        offered = _poisson(rnd, per_min(t) * STEP / 60)
        abandoned = sum(rnd.random() < share(t) for _ in range(offered))
        if not any(a <= t < b for a, b in gaps):
            out.append((T0 + t + STEP, offered, abandoned))
    return out


def _poisson(rnd: random.Random, mean: float) -> int:
    limit, k, p = math.exp(-mean), 0, rnd.random()
    while p > limit:
        p *= rnd.random()
        k += 1
    return k


def reports(counts: list[tuple[float, int, int]], every: float) -> list[Event]:
    """The counts summed per ``every`` seconds, one snapshot at the end of each interval."""
    sums: dict[float, list[int]] = {}
    for ts, offered, abandoned in counts:
        end = T0 + math.ceil((ts - T0) / every - 1e-9) * every
        row = sums.setdefault(end, [0, 0])
        row[0] += offered
        row[1] += abandoned
    return [
        QueueStats(
            ts=end,
            source="acd",
            queue="q",
            channel="chat",
            waiting=0,
            longest_wait_s=0.0,
            agents_available=4,
            agents_busy=6,
            offered=offered,
            answered=offered - abandoned,
            answered_in_sla=offered - abandoned,
            abandoned=abandoned,
            interval_s=every,
        )
        for end, (offered, abandoned) in sorted(sums.items())
    ]


def run(events: list[Event], text: str = "", until: float | None = None) -> Trace:
    detector = SlaDetector(load_rules(text=text))
    return drive(detector, events, step_s=10.0, until=until)


def flat(value: float) -> Rate:
    return lambda t: value


def step_at(at_s: float, before: float, after: float, until_s: float = math.inf) -> Rate:
    return lambda t: after if at_s <= t < until_s else before


def detected_after(trace: Trace, onset: float) -> float:
    seen = trace.seen["sla.queue|q"]
    return seen.first_at - (T0 + onset)


# --- positives: found within a minute or two ----------------------------------------------

POSITIVES = [
    # (name, per minute, share before -> after, mean seconds the sequential test may take)
    ("5 % -> 40 % on a queue of 30 a minute", 30.0, 0.05, 0.40, 120.0),
    ("5 % -> 25 % on a queue of 100 a minute", 100.0, 0.05, 0.25, 75.0),
]
SEEDS = range(1, 6)


@pytest.mark.parametrize(("name", "per_min", "before", "after", "within"), POSITIVES)
def test_an_abandon_surge_is_found_within_a_minute_or_two(
    name: str, per_min: float, before: float, after: float, within: float
) -> None:
    onset = 2 * HOUR
    sequential, window = [], []
    for seed in SEEDS:
        events = reports(traffic(3, flat(per_min), step_at(onset, before, after), seed), 5.0)
        sequential.append(detected_after(run(events), onset))
        window.append(detected_after(run(events, "[sla]\nabandon_sequential = false"), onset))
    h = threshold(0.006, BUCKET_S)
    limit = binomial_delay_s(per_min / 60, after, before, 0.10, h)
    print(
        f"{name}: sequential mean {sum(sequential) / len(sequential):.0f} s "
        f"(max {max(sequential):.0f}), window mean {sum(window) / len(window):.0f} s "
        f"(max {max(window):.0f}), expected delay {limit:.0f} s + a 10 s bucket"
    )
    assert sum(sequential) / len(sequential) <= within
    assert max(sequential) <= 2 * within
    assert all(s < w for s, w in zip(sequential, window, strict=True))


# --- hard negatives ---------------------------------------------------------------------------


def steady_day() -> list[Event]:
    """A queue of 30 a minute that always loses 8 % (under the 10 % limit) for a day."""
    return reports(traffic(24, flat(30.0), flat(0.08), seed=2), 10.0)


def tiny_queue() -> list[Event]:
    """Half a contact a minute, 3 % abandon; then 2 of 4 contacts abandon."""
    counts = traffic(3, flat(0.5), flat(0.03), seed=3)
    burst = [(T0 + 3 * HOUR + 60 * k, 1, int(k < 2)) for k in range(4)]
    return reports(counts + burst, 5.0)


def lunch_shift_change() -> list[Event]:
    """A small queue (5 a minute, 4 % abandon) at 12 % for the 10 minutes of a shift change."""
    share = step_at(3 * HOUR, 0.04, 0.12, 3 * HOUR + 600)
    return reports(traffic(4, flat(5.0), share, seed=4), 10.0)


def recovery_after_outage() -> list[Event]:
    """The feed is down 20 minutes; after it, the backlog abandons at 35 % for 5 minutes."""
    down = (2 * HOUR, 2 * HOUR + 1200)
    share = step_at(down[1], 0.05, 0.35, down[1] + 300)
    return reports(traffic(3, flat(30.0), share, seed=5, gaps=(down,)), 10.0)


NEGATIVES = [
    ("a steady 8 % abandon queue for a day", steady_day),
    ("2 of 4 contacts abandoning on a tiny queue", tiny_queue),
    ("a shift change at lunch: 12 % for 10 minutes on a small queue", lunch_shift_change),
    ("the backlog after a feed outage is the outage's", recovery_after_outage),
]


@pytest.mark.parametrize(("name", "events"), NEGATIVES)
def test_what_is_not_an_abandon_surge(name: str, events: Callable[[], list[Event]]) -> None:
    assert run(events()).fired() == []


def test_without_the_outage_the_same_backlog_is_a_surge() -> None:
    # The recovery case's abandons, with the feed up all along: found (the case can fail).
    share = step_at(2 * HOUR + 1200, 0.05, 0.35, 2 * HOUR + 1500)
    events = reports(traffic(3, flat(30.0), share, seed=5), 10.0)
    [(rule, subject, severity, conditions)] = run(events).fired_conditions()
    assert (rule, subject, conditions) == ("sla.queue", "q", ("abandon_rate",))
    assert severity in ("major", "critical")


# --- any cadence ------------------------------------------------------------------------------


@pytest.mark.parametrize("every", [5.0, 300.0, 1800.0])
def test_the_same_traffic_gives_the_same_incidents_at_any_cadence(every: float) -> None:
    surge = step_at(3 * HOUR, 0.05, 0.40, 3.5 * HOUR)
    counts = traffic(6, flat(30.0), surge, seed=6)
    trace = run(reports(counts, every))
    assert trace.fired_conditions() == FIRED
    onset = T0 + 3 * HOUR
    # Found once the report that holds the surge is in (the first bucket after it at 5 s).
    assert onset < trace.seen["sla.queue|q"].first_at <= onset + max(every, 150.0) + 10
    steady = reports(traffic(6, flat(30.0), flat(0.08), seed=7), every)
    assert run(steady).fired() == []


def contact_events(counts: list[tuple[float, int, int]], patience_s: float) -> list[Event]:
    """Each contact offered, and ``patience_s`` later the abandoned ones (a feed of contacts)."""
    out: list[Event] = []
    for ts, offered, abandoned in counts:
        for k in range(offered):
            cid = f"c{ts}-{k}"
            common = {"source": "chat", "queue": "q", "channel": "chat", "contact_id": cid}
            out.append(Contact(ts=ts - 1, action="offered", **common))
            if k < abandoned:
                out.append(Contact(ts=ts - 1 + patience_s, action="abandoned", **common))
    return out


def test_a_feed_of_contacts_is_judged_on_its_abandons_too() -> None:
    # Abandons come a minute after their offers: a short run can hold more abandons
    # than offers; the surge is still found first by the sequential test.
    onset = 2 * HOUR
    events = contact_events(traffic(3, flat(30.0), step_at(onset, 0.05, 0.40), seed=11), 60.0)
    sequential = run(events)
    window = run(events, "[sla]\nabandon_sequential = false")
    [(rule, _, _, conditions)] = sequential.fired_conditions()
    assert (rule, conditions) == ("sla.queue", ("abandon_rate",))
    assert detected_after(sequential, onset) < detected_after(window, onset)


def test_a_queue_always_over_the_limit_is_still_found_by_the_window() -> None:
    # No change for the sequential test to find: the 15-minute window still judges the limit.
    events = reports(traffic(2, flat(30.0), flat(0.25), seed=8), 10.0)
    trace = run(events)
    assert trace.fired_conditions() == [("sla.queue", "q", "major", ("abandon_rate",))]
    assert trace.seen["sla.queue|q"].last.evidence.get("found_by") != "sequential"


def test_the_usual_share_does_not_learn_a_long_surge() -> None:
    # An hour at 40 %: the usual share stays near 5 % (the queue's incident is never learned).
    share = step_at(2 * HOUR, 0.05, 0.40, 3 * HOUR)
    detector = SlaDetector(load_rules())
    drive(detector, reports(traffic(3, flat(30.0), share, seed=9), 10.0), step_s=10.0)
    usual = detector.queues["q"].abandons.usual(load_rules().sla.get(channel="chat", queue="q"))
    assert usual < 0.08


def test_the_sequential_state_round_trips() -> None:
    share = step_at(2 * HOUR, 0.05, 0.40)
    events = reports(traffic(2.1, flat(30.0), share, seed=10), 10.0)
    first = SlaDetector(load_rules())
    drive(first, events, step_s=10.0)
    second = SlaDetector(load_rules())
    second.restore(first.snapshot())
    a, b = first.queues["q"].abandons, second.queues["q"].abandons
    assert (a.stat, a.run, a.folded, a.raised) == (b.stat, b.run, b.folded, b.raised)
    assert a.stat > 0


def test_a_warm_small_queues_chance_clusters_of_abandons_open_nothing() -> None:
    """Two contacts a minute, 5 % usually abandoned, for two days: some 15-minute windows
    hold 5 or 6 abandons of 25-30 (a Wilson bound just over the limit). Looked at every
    10 s of every day, the window alone read one of them as a breach about once a
    queue-week; on a warm queue under the limit only the sequential test opens."""
    counts = traffic(48.0, flat(2.0), flat(0.05), seed=1)
    trace = run(reports(counts, 300.0))
    assert trace.fired() == []
    window = SlaDetector(load_rules(text="[sla]\nabandon_sequential = false\n"))
    alone = drive(window, reports(counts, 300.0), step_s=10.0)
    assert alone.fired(), "the traffic must hold a cluster the window alone would read"
