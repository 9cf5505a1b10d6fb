"""False alarms per subject-week of the default rules on bursty, real-like traffic.

No public series is on disk, so the series are synthetic but shaped like the
real ones the rules get wrong: contact intake per queue with a daily curve, a
weekly cycle (weekends at 60 %), a public holiday at 1.6x, and slow random
swings of +-30 % over tens of minutes (overdispersed, not Poisson); social
mentions per topic with the same cycles plus news-driven bursts (a few a week,
2-4x the volume for 20-90 minutes, at the topic's usual negative share); each
queue's abandons at its usual share (2-5 %) swinging +-15 %, never near the
10 % limit. None
of it is an incident: every incident opened is a false alarm.

The queues report ``queue.stats`` every ``--every`` seconds (interval reports,
counts per interval) through the engine, as replay does (time advances to the
next event or timer). Prints incidents per rule and false alarms per
subject-week.

Run: python bench/false_alarms.py [--weeks 4] [--queues 12] [--topics 8] [--every 300]
"""

from __future__ import annotations

import argparse
import math
import random
import time
from collections import Counter

from watchfloor.core.config import Config
from watchfloor.core.events import Event, QueueStats, SocialMention
from watchfloor.monitor.engine import time_slices
from watchfloor.monitor.service import build_engine

T0 = 1_767_196_800.0  # Thursday 2026-01-01 00:00 China time (UTC+8 midnight)
DAY = 86_400.0
HOLIDAY = 15  # day index of a public holiday (1.6x)


def daily(t: float) -> float:
    """Share of the full rate at time ``t``: quiet night, ramps, lunch dip, evening peak."""
    hour = ((t - T0) % DAY) / 3600
    shape = 0.08 + 0.92 * max(0.0, math.sin(math.pi * (hour - 6) / 17)) if 6 <= hour < 23 else 0.08
    return shape * (0.75 if 12 <= hour < 13 else 1.0)


def weekly(t: float) -> float:
    day = int((t - T0) // DAY)
    factor = 0.6 if day % 7 in (2, 3) else 1.0  # Jan 1 2026 is a Thursday: Sat, Sun
    return factor * (1.6 if day == HOLIDAY else 1.0)


class Swing:
    """Slow multiplicative noise: a mean-reverting random walk of the log rate."""

    def __init__(self, rnd: random.Random, sd: float = 0.3, tau_s: float = 1800.0) -> None:
        self.rnd, self.sd, self.tau, self.x = rnd, sd, tau_s, 0.0

    def step(self, dt: float) -> float:
        a = math.exp(-dt / self.tau)
        self.x = a * self.x + math.sqrt(1 - a * a) * self.sd * self.rnd.gauss(0, 1)
        return math.exp(self.x - self.sd * self.sd / 2)


def poisson(rnd: random.Random, lam: float) -> int:
    if lam > 60:
        return max(0, round(rnd.gauss(lam, math.sqrt(lam))))
    limit, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rnd.random()
        if p <= limit:
            return k
        k += 1


def queues(n: int, weeks: int, every: float, rnd: random.Random, seed: int = 1) -> list[Event]:
    out: list[Event] = []
    for q in range(n):
        peak = 2.0 * (100.0 / 2.0) ** (q / max(1, n - 1))  # 2 to 100 contacts a minute
        swing = Swing(rnd)
        # Abandons draw from a stream of their own: the contacts and mentions stay the
        # series that the figures before abandons were counted were measured on.
        arnd = random.Random(f"abandons-{seed}-{q}")
        # +-15 % around a usual share of 2-5 %: at its highest (3 sd) under 8 %, short of the
        # 10 % limit, so an abandon alarm here is noise read as a breach, never a real one
        abandon_swing = Swing(arnd, sd=0.15)
        usual = 0.02 + 0.03 * arnd.random()
        t = T0 + every
        while t <= T0 + weeks * 7 * DAY:
            lam = peak / 60 * every * daily(t) * weekly(t) * swing.step(every)
            offered = poisson(rnd, lam)
            share = usual * abandon_swing.step(every)
            abandoned = sum(arnd.random() < share for _ in range(offered))
            out.append(
                QueueStats(
                    ts=t, source="acd", queue=f"q{q:02d}", channel="chat", waiting=1,
                    longest_wait_s=5.0, agents_available=5, agents_busy=5,
                    offered=offered, answered=offered - abandoned,
                    answered_in_sla=offered - abandoned, abandoned=abandoned,
                    interval_s=every,
                )
            )  # fmt: skip
            t += every
    return out


def mentions(n: int, weeks: int, rnd: random.Random) -> list[Event]:
    out: list[Event] = []
    for k in range(n):
        per_min = 0.3 * (20.0 / 0.3) ** (k / max(1, n - 1))  # 0.3 to 20 a minute at the peak
        share = 0.08 + 0.2 * rnd.random()  # the topic's usual negative share
        swing = Swing(rnd)
        bursts = [
            (T0 + rnd.random() * weeks * 7 * DAY, 1200 + rnd.random() * 4200, 2 + 2 * rnd.random())
            for _ in range(3 * weeks)
        ]
        t = T0
        while t < T0 + weeks * 7 * DAY:
            burst = max((f for s, d, f in bursts if s <= t < s + d), default=1.0)
            rate = per_min / 60 * daily(t) * weekly(t) * burst * swing.step(10.0)
            for _ in range(poisson(rnd, rate * 10.0)):
                negative = rnd.random() < share
                out.append(
                    SocialMention(
                        ts=t + rnd.random() * 10, source="listener", platform="weibo",
                        topic=f"topic-{k}", text="客服太差了，等了半天没人理" if negative
                        else "请问这款什么时候有货", followers=300,
                        sentiment=-0.8 if negative else 0.2,
                    )
                )  # fmt: skip
            t += 10.0
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weeks", type=int, default=4)
    parser.add_argument("--queues", type=int, default=12)
    parser.add_argument("--topics", type=int, default=8)
    parser.add_argument("--every", type=float, default=300.0, help="queue report interval, s")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rnd = random.Random(args.seed)
    events = queues(args.queues, args.weeks, args.every, rnd, args.seed) + mentions(
        args.topics, args.weeks, rnd
    )
    events.sort(key=lambda e: e.ts)
    engine = build_engine(Config())
    engine.on_signals = None
    began = time.perf_counter()
    opened: Counter[str] = Counter()
    subjects: Counter[str] = Counter()
    for chunk in time_slices(events):
        for action in engine.process(chunk):
            if action.op == "fire" and action.reason == "opened":
                opened[action.signal.rule] += 1
                subjects[action.signal.subject] += 1
    for action in engine.flush():
        if action.op == "fire" and action.reason == "opened":
            opened[action.signal.rule] += 1
    took = time.perf_counter() - began
    queue_weeks, topic_weeks = args.queues * args.weeks, args.topics * args.weeks
    print(
        f"{len(events)} events, {args.weeks} weeks, {args.queues} queues reporting every "
        f"{args.every:g} s, {args.topics} topics; replayed in {took:.1f} s"
    )
    for rule, count in sorted(opened.items()):
        per = (topic_weeks if rule.startswith("opinion") else queue_weeks) or 1
        print(f"  {rule}: {count} false alarms, {count / per:.2f} per subject-week")
    queue_rules = sum(c for r, c in opened.items() if not r.startswith("opinion"))
    if queue_weeks:
        print(f"  queues, all rules: {queue_rules / queue_weeks:.2f} per queue-week")
    topic_rules = sum(c for r, c in opened.items() if r.startswith("opinion"))
    if topic_weeks:
        print(f"  topics: {topic_rules / topic_weeks:.2f} per topic-week")
    print("  by subject: " + ", ".join(f"{s} {n}" for s, n in sorted(subjects.items())))


if __name__ == "__main__":
    main()
