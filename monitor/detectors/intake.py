"""Offered contacts of one subject (a queue or a channel) over event time, for the surge and
silent-intake rules: a ring of buckets with a trend baseline that does not learn paused
spans (:mod:`monitor.detectors.learning`) and an hourly profile.

Arrivals come from ``queue.stats`` ``offered`` deltas or from ``contact`` events with
action ``offered``; once a queue has sent a snapshot with ``offered``, its contact events
are no longer counted, so a producer that sends both is not counted twice.
"""

from __future__ import annotations

import math
from typing import Any

from watchfloor.core.events import Contact, Event, QueueStats
from watchfloor.monitor.detectors.due import grid_after
from watchfloor.monitor.detectors.learning import GatedRing
from watchfloor.monitor.windows import HourlyProfile, Trend

__all__ = ["Intake", "interval_of", "offered_in"]


class Intake:
    """Offered contacts of one queue: ring with a trend baseline and an hourly profile.

    A snapshot's ``offered`` counts the ``interval_s`` that ends at its time: it
    is spread over the buckets of that interval, and the queue is judged only up
    to its latest snapshot (``judged_at``): between two snapshots nothing is known
    yet, which is not silence. The window read is at least one interval long, and
    the baseline takes a bucket only once it is older than that.
    """

    __slots__ = (
        "channel",
        "from_stats",
        "interval",
        "last_count",
        "profile",
        "reported_until",
        "ring",
        "tenant",
    )

    def __init__(
        self,
        bucket_s: float,
        window_s: float,
        tau_s: float,
        channel: str,
        recent_s: float = 0.0,
        interval: float = 0.0,
    ) -> None:
        # The baseline gets a bucket once it is older than the window; the ring
        # keeps ``recent_s`` more for the line fitted to the minutes before it.
        lag = max(1, round(max(window_s, interval) / bucket_s)) + 2
        n = lag + round(recent_s / bucket_s) + 1
        baselines: dict[int | str, Trend] = {0: Trend(tau_s / bucket_s)}
        self.ring = GatedRing(bucket_s, n, baselines=baselines, lag=lag)
        self.profile = HourlyProfile()
        self.channel = channel
        self.from_stats = False
        self.tenant: str | None = None
        self.interval = interval
        """The longest reporting interval this ring was shaped for (0: point counts)."""
        self.reported_until = 0.0
        self.last_count = -math.inf
        """Event time of the newest count folded in (where its buckets end)."""

    def fold(self, ts: float, count: float, interval: float) -> bool:
        """Spread ``count`` over the interval ending at ``ts``; False if all of it is too old."""
        self.last_count = max(self.last_count, ts)
        if interval <= self.ring.bucket_s:
            taken = self.ring.add(ts, count)
            self.profile.add(ts, count)
            return taken
        self.reported_until = max(self.reported_until, ts)
        # Move the ring to the interval's end once, not bucket by bucket: the baseline
        # lags the ring by more than an interval, so it still gets every share.
        self.ring.advance(ts)
        start, taken, bucket = ts - interval, False, self.ring.bucket_s
        edge = start
        while edge < ts:
            nxt = min(ts, (edge // bucket + 1) * bucket)
            taken = self.ring.add(edge, count * (nxt - edge) / interval) or taken
            edge = nxt
        edge = start
        while edge < ts:  # the hourly profile: one share per hour
            nxt = min(ts, (edge // 3600 + 1) * 3600)
            self.profile.add(edge, count * (nxt - edge) / interval)
            edge = nxt
        return taken

    def judged_at(self, watermark: float, patience: float = 0.0) -> float:
        """Event time the queue's counts are complete to: its latest snapshot, for long
        intervals, or with a ``patience`` for every snapshot producer. A producer silent
        for two intervals (or the patience) is judged as of now."""
        if self.interval <= self.ring.bucket_s and not (patience and self.from_stats):
            return watermark
        wait = max(2 * self.interval, patience)
        return min(watermark, max(self.reported_until, watermark - wait))

    def next_judged(self, at: float, patience: float = 0.0) -> float:
        """The first bucket boundary after ``at`` at which :meth:`judged_at` enters a new
        bucket (between two long-interval snapshots it stands still: nothing to judge)."""
        bucket = self.ring.bucket_s
        judged = self.judged_at(at, patience)
        target = (math.floor(judged / bucket + 1e-9) + 1) * bucket
        if judged < at:  # stands at the latest snapshot, or follows the watermark late
            target += max(2 * self.interval, patience)
        return grid_after(target, at, bucket)

    def holds_counts_since(self, since: float) -> bool:
        """Whether a count was folded into a bucket that ends after ``since``."""
        if self.last_count == -math.inf:
            return False
        bucket = self.ring.bucket_s
        return (math.floor(self.last_count / bucket) + 1) * bucket > since

    def span(self, window_s: float) -> float:
        """The window read: at least one reporting interval."""
        return max(window_s, self.interval)

    def snapshot(self) -> dict[str, Any]:
        return {
            "ring": self.ring.snapshot(),
            "profile": self.profile.snapshot(),
            "channel": self.channel,
            "from_stats": self.from_stats,
            "tenant": self.tenant,
            "interval": self.interval,
            "reported_until": self.reported_until,
            "last_count": self.last_count,
            "paused": self.ring.paused_state(),
        }

    def restore(self, state: dict[str, Any]) -> None:
        self.ring.restore(state["ring"])
        self.profile.restore(state.get("profile", {}))
        self.channel = state.get("channel", self.channel)
        self.from_stats = bool(state.get("from_stats"))
        self.tenant = state.get("tenant")
        self.reported_until = float(state.get("reported_until", 0.0))
        # An older checkpoint: presume counts up to the ring's newest bucket.
        head = (self.ring.head + 1) * self.ring.bucket_s if self.ring.head >= 0 else -math.inf
        self.last_count = float(state.get("last_count", head))
        self.ring.restore_paused(state.get("paused"))

    def absorb(self, other: Intake, sign: float = 1.0) -> None:
        """Take over ``other``'s intake (a merged queue): its baseline adds to this one's
        (``sign`` -1: gives it away)."""
        mine, theirs = self.ring.baselines[0], other.ring.baselines[0]
        mine.s1 = max(0.0, mine.s1 + sign * theirs.s1)
        mine.s2 = max(0.0, mine.s2 + sign * theirs.s2)


def interval_of(event: Event) -> float:
    """Seconds a snapshot's counts cover (0: a point count, such as a contact event)."""
    return (event.interval_s or 0.0) if type(event) is QueueStats else 0.0


def offered_in(event: Event, intake: Intake) -> int:
    """Contacts this event says were offered to its queue (0 when it is not counted)."""
    if type(event) is QueueStats:
        if event.offered is None:
            return 0
        intake.from_stats = True
        return event.offered
    if type(event) is Contact and event.action == "offered" and not intake.from_stats:
        return 1
    return 0
