"""Abandon surges found sequentially: a binomial CUSUM on each interval's abandons.

Part of the SLA detector's ``abandon_rate`` condition of ``sla.queue``
(:mod:`monitor.detectors.sla`). A 15-minute window has to fill before its
abandon rate crosses the limit; this test decides as soon as the abandons
since the change are significant at the rule's false-alarm budget.

Per bucket of ``BUCKET_S`` (10 s) it folds the contacts offered ``n`` and
abandoned ``k`` into a CUSUM of the log-likelihood ratio of "abandons at
``p1``" against "abandons at the queue's usual share ``p0``"
(:func:`monitor.detectors.sequential.binomial_llr`). ``p0`` is learned (an
EWMA of offered and abandoned per bucket, their ratio), never below a floor;
``p1`` is the rate that matters, ``max(limit, ratio x p0)``. The threshold is
``h = ln(3600 / (BUCKET_S F))`` for ``F`` false alarms per queue-hour
(Lorden's bound, as the surge test). It opens once ``S >= h`` and the run
that raised it (the buckets since ``S`` last stood at 0) is surely over the
limit (its Wilson interval wholly above it, as the window's must be); it holds
while ``S >= h / 2``.

Any reporting cadence: a snapshot's counts cover its ``interval_s``; they are
spread over the buckets of that interval and folded once the report is in.
The LLR is additive in counts, so a 30-minute report is one observation of its
counts and gives the same decision as the same traffic reported every 5 s.
An interval with no report is no evidence either way (nothing is folded).

The usual share does not learn the problem (:mod:`monitor.detectors.learning`):
not while the queue has an open ``sla.queue`` signal or a raised statistic
(nor the window before it opened), not a planned event, not a feed outage and
its recovery. After a feed outage (no snapshot for longer than ``stale_s``) the
test opens nothing for as long as the gap lasted (at most ``window_s``): the
contacts who waited through it abandon on its account, and that backlog is the
outage's, not a new abandon surge.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple, Protocol

from watchfloor.monitor.detectors.learning import GatedRing
from watchfloor.monitor.detectors.sequential import binomial_llr, threshold, wilson
from watchfloor.monitor.windows import Trend


class SlaRules(Protocol):
    """The settings of ``[sla]`` (:class:`monitor.detectors.sla.SlaRules`) this test reads;
    a protocol, so the test does not import the detector that runs it (read-only: the
    rules are frozen)."""

    @property
    def abandon_rate_limit(self) -> float: ...
    @property
    def abandon_usual_floor(self) -> float: ...
    @property
    def abandon_ratio(self) -> float: ...
    @property
    def abandon_false_alarms_per_hour(self) -> float: ...
    @property
    def abandon_min_history_s(self) -> float: ...
    @property
    def confidence_z(self) -> float: ...


__all__ = ["BUCKET_S", "AbandonTest", "Verdict"]

BUCKET_S = 10.0
OFFERED, ABANDONED = 0, 1


class Share(Trend):
    """A plain EWMA of one count per bucket that never forgets its level.

    Two of them (offered, abandoned) give the usual share as a ratio: a run of
    empty buckets (a night, a gap) scales both alike, so the share keeps its value.
    """

    __slots__ = ()

    def feed(self, value: float) -> None:
        a = max(self.alpha, 1.0 / (self.fed + 1))
        self.s1 += a * (value - self.s1)
        self.s2 = self.s1
        self.fed += 1

    def feed_zeros(self, count: int) -> None:
        warm = max(0, min(count, math.ceil(1.0 / self.alpha) - self.fed))
        if warm and self.fed:
            self.s1 *= self.fed / (self.fed + warm)
        self.s1 *= (1.0 - self.alpha) ** (count - warm)
        self.s2 = self.s1
        self.fed += count


class Verdict(NamedTuple):
    """What the sequential test says about one queue at one watermark."""

    holds: bool
    opened: bool
    """Whether it holds on its own evidence (the statistic crossed ``h``), not by hysteresis."""
    statistic: float
    threshold: float
    usual: float
    run_rate: float
    run_offered: float
    run_abandoned: float

    def figures(self) -> dict[str, Any]:
        """The evidence of the abandon condition's sequential part."""
        return {
            "found_by": "sequential",
            "run_abandon_rate": round(self.run_rate, 3),
            "run_offered": round(self.run_offered, 1),
            "run_abandoned": round(self.run_abandoned, 1),
            "usual_abandon_rate": round(self.usual, 4),
            "cusum": round(self.statistic, 2),
            "cusum_threshold": round(self.threshold, 2),
        }


class AbandonTest:
    """The sequential abandon test of one queue: buckets, usual share, CUSUM, hysteresis."""

    __slots__ = (
        "cached",
        "folded",
        "grace_until",
        "interval",
        "last_report",
        "newest",
        "raised",
        "reported_until",
        "ring",
        "run",
        "stale_s",
        "stat",
        "tau_s",
        "window_s",
    )

    def __init__(
        self, window_s: float, tau_s: float, stale_s: float, interval: float = 0.0
    ) -> None:
        self.window_s = window_s
        self.stale_s = stale_s
        self.tau_s = tau_s
        self.interval = interval
        # The usual share takes a bucket once it is a window (or a report) old, so a
        # problem found within the window is not learned before it is found.
        lag = round(max(window_s, interval) / BUCKET_S) + 2
        baselines: dict[int | str, Trend] = {
            OFFERED: Share(tau_s / BUCKET_S),
            ABANDONED: Share(tau_s / BUCKET_S),
        }
        self.ring = GatedRing(BUCKET_S, lag + 2, width=2, baselines=baselines, lag=lag)
        self.folded = -1
        """The last bucket folded into the statistic."""
        self.stat = 0.0
        self.run = [0.0, 0.0]
        """Offered and abandoned since the statistic last stood at 0."""
        self.raised = False
        self.reported_until = -math.inf
        self.newest = -math.inf
        """Event time of the newest count (its bucket is folded once complete)."""
        self.last_report = -math.inf
        self.grace_until = -math.inf
        """No new run opens before this: the recovery of a feed outage."""
        self.cached: tuple[tuple[int, float, bool], Verdict] | None = None

    # --- counts ------------------------------------------------------------------------------

    def add(self, ts: float, offered: float, abandoned: float, interval: float = 0.0) -> None:
        """Counts of the ``interval`` ending at ``ts`` (0: a point count, such as a contact)."""
        self.newest = max(self.newest, ts)
        if interval <= BUCKET_S:
            self.ring.add(ts, offered, OFFERED)
            self.ring.add(ts, abandoned, ABANDONED)
            return
        self.reported_until = max(self.reported_until, ts)
        self.ring.advance(ts)
        edge = ts - interval
        while edge < ts:
            nxt = min(ts, (edge // BUCKET_S + 1) * BUCKET_S)
            share = (nxt - edge) / interval
            self.ring.add(edge, offered * share, OFFERED)
            self.ring.add(edge, abandoned * share, ABANDONED)
            edge = nxt

    def report(self, ts: float) -> None:
        """A snapshot with counts arrived: after a feed outage, its recovery is the outage's."""
        gap = ts - self.last_report
        if gap > max(self.stale_s, 2 * self.interval) and self.last_report > -math.inf:
            self.grace_until = max(self.grace_until, ts + min(gap, self.window_s))
            self.ring.pause(self.last_report, self.grace_until)
        self.last_report = max(self.last_report, ts)

    def known(self, watermark: float) -> int:
        """The last bucket whose counts are all in: complete, and reported for interval feeds."""
        last = int(watermark // BUCKET_S) - 1
        if self.interval > BUCKET_S:
            last = min(last, int(self.reported_until // BUCKET_S) - 1)
        return last

    # --- the test ----------------------------------------------------------------------------

    def usual(self, p: SlaRules) -> float:
        """The queue's usual abandon share (never below the floor)."""
        offered = self.ring.baselines[OFFERED].smooth()
        abandoned = self.ring.baselines[ABANDONED].smooth()
        share = abandoned / offered if offered > 0 else 0.0
        return min(0.9, max(p.abandon_usual_floor, share))

    def warm(self, p: SlaRules) -> bool:
        return self.ring.warm(OFFERED) >= p.abandon_min_history_s

    def judge(self, watermark: float, p: SlaRules) -> Verdict:
        """Fold the buckets known by ``watermark`` and say whether the test holds."""
        # Nothing changes within a bucket (no bucket completes, no baseline moves) unless a
        # report arrives or the outage's grace ends: the queue is judged every second.
        key = (int(watermark // BUCKET_S), self.reported_until, watermark >= self.grace_until)
        if self.cached is not None and self.cached[0] == key:
            return self.cached[1]
        verdict = self._judge(watermark, p)
        self.cached = (key, verdict)
        return verdict

    def _judge(self, watermark: float, p: SlaRules) -> Verdict:
        p0 = self.usual(p)
        p1 = min(0.99, max(p.abandon_rate_limit, p.abandon_ratio * p0))
        h = threshold(p.abandon_false_alarms_per_hour, BUCKET_S)
        self.ring.advance(watermark)
        self._fold(self.known(watermark), p0, p1, h)
        offered, abandoned = self.run
        rate = min(1.0, abandoned / offered) if offered > 0 else 0.0
        # The run must be surely over the limit, as the window must: a share that sits
        # at the limit on a busy queue drifts the statistic up, but is no surge.
        opened = (
            self.stat >= h
            and watermark >= self.grace_until
            and self.warm(p)
            and wilson(abandoned, offered, p.confidence_z)[0] > p.abandon_rate_limit
        )
        self.raised = opened or (self.raised and self.stat >= h / 2)
        return Verdict(self.raised, opened, self.stat, h, p0, rate, offered, abandoned)

    def _fold(self, last: int, p0: float, p1: float, h: float) -> None:
        ring = self.ring
        n, width, values = ring.n, ring.width, ring.values
        first = max(self.folded + 1, ring.head - n + 1)
        grace = int(self.grace_until // BUCKET_S) if self.grace_until > -math.inf else -1
        stat, run = self.stat, self.run
        for b in range(first, min(last, ring.head) + 1):
            if b < grace:  # the outage's recovery: no evidence of a new surge
                stat, run = 0.0, [0.0, 0.0]
                continue
            base = (b % n) * width
            offered, abandoned = values[base + OFFERED], values[base + ABANDONED]
            if not offered and not abandoned:
                continue
            stat = min(h, max(0.0, stat + binomial_llr(abandoned, offered, p0, p1)))
            run = [run[0] + offered, run[1] + abandoned] if stat > 0 else [0.0, 0.0]
        self.stat, self.run = stat, run
        self.folded = max(self.folded, last)

    def learn(self, watermark: float, trouble: bool) -> None:
        """The usual share skips the buckets of a problem (and the window before it)."""
        if trouble and not self.ring.pausing():
            self.ring.pause(watermark - self.ring.lag * BUCKET_S)
        elif not trouble and self.ring.pausing():
            self.ring.resume(watermark)

    def due(self, at: float) -> float | None:
        """When counts not folded yet become known (None: nothing waits)."""
        if self.newest == -math.inf:
            return None
        last = int(self.newest // BUCKET_S)
        if self.interval > BUCKET_S:
            last = min(last, int(self.reported_until // BUCKET_S) - 1)
        return (last + 1) * BUCKET_S if last > self.folded else None

    # --- state -------------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        return {
            "ring": self.ring.snapshot(),
            "paused": self.ring.paused_state(),
            "interval": self.interval,
            "folded": self.folded,
            "stat": self.stat,
            "run": list(self.run),
            "raised": self.raised,
            "reported_until": _finite(self.reported_until),
            "newest": _finite(self.newest),
            "last_report": _finite(self.last_report),
            "grace_until": _finite(self.grace_until),
        }

    def restore(self, state: dict[str, Any]) -> None:
        self.cached = None
        self.ring.restore(state["ring"])
        self.ring.restore_paused(state.get("paused"))
        self.folded = int(state.get("folded", -1))
        self.stat = float(state.get("stat", 0.0))
        self.run = [float(x) for x in state.get("run", (0.0, 0.0))]
        self.raised = bool(state.get("raised"))
        for name in ("reported_until", "newest", "last_report", "grace_until"):
            value = state.get(name)
            setattr(self, name, -math.inf if value is None else float(value))


def _finite(value: float) -> float | None:
    return None if value == -math.inf else value
