"""Surge detector: contacts offered per queue against that queue's own baseline.

Subject: the queue. Arrivals come from ``queue.stats`` ``offered`` deltas or
from ``contact`` events with action ``offered``; once a queue has sent a
snapshot with ``offered``, its contact events are no longer counted, so a
producer that sends both is not counted twice.

The short window (5 min) is compared with what the queue's baseline predicts
for it: a trend-following EWMA (Brown's double smoothing, fed only with
buckets older than the window), so a gradual daily ramp moves the baseline
with it, and the same hour last week when that was recorded (the larger of
the two is expected). To fire, the window must also beat a straight line
fitted to the 20 minutes before it, which notices the start of a steep
morning ramp long before the smoothing does; and it needs a ratio, an
absolute minimum, an absolute excess and a small Poisson tail. It stays
active until the ratio to the smoothed baseline falls below a lower clear
ratio (only once it has held for its pending time). Waiting contacts are
never looked at: a queue that backs up because agents are missing is the SLA
detector's business.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any, ClassVar

from watchfloor.core.events import Contact, Event, QueueStats
from watchfloor.monitor.detectors.base import Signal
from watchfloor.monitor.detectors.due import earliest, grid_after
from watchfloor.monitor.detectors.registry import DetectorSpec, register, setting
from watchfloor.monitor.detectors.sequential import Cusum, complete_buckets, threshold
from watchfloor.monitor.rules import Rules
from watchfloor.monitor.windows import HourlyProfile, Latch, Ring, Trend, poisson_sf

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SurgeRules:
    """``[surge]``: the settings of the surge detector."""

    enabled: bool = setting(True, "run this detector")
    bucket_s: float = setting(10.0, "sub-bucket of the ring windows", above_zero=True)
    window_s: float = setting(
        300.0, "short window: contacts offered over the last 5 min", above_zero=True
    )
    baseline_tau_s: float = setting(
        1800.0, "time constant of the trend (Brown) baseline: follows daily ramps", above_zero=True
    )
    min_history_s: float = setting(1800.0, "a queue needs 30 min of history before it can surge")
    ratio: float = setting(2.0, "fire at offered >= 2x what the baseline expects ...")
    clear_ratio: float = setting(1.5, "hysteresis: stays active until below 1.5x")
    major_ratio: float = setting(3.0, "major from 3x (minor below)")
    critical_ratio: float = setting(5.0, "critical from 5x")
    min_count: float = setting(30.0, "... and at least 30 contacts in the window ...")
    min_excess: float = setting(20.0, "... and at least 20 more than expected ...")
    p_value: float = setting(
        1e-6, "... and a Poisson upper tail P(X >= offered) below this ...", high=1.0
    )
    recent_s: float = setting(
        1200.0, "... and above a line fitted to the 20 min before the window (a ramp's start)"
    )
    use_last_week: bool = setting(True, "also >= the same hour last week, when it was recorded")
    cusum_ratio: float = setting(
        3.0, "sequential test (Poisson CUSUM per bucket): a rate this many x the bar ...", low=1.01
    )
    false_alarms_per_hour: float = setting(
        0.006, "... at this false-alarm budget per queue-hour (about one a week)", above_zero=True
    )
    for_s: float = setting(30.0, "pending: the condition holds this long before it fires")
    keep_firing_for_s: float = setting(
        300.0, "resolving: keeps firing this long after it stops holding"
    )


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
        self.ring = Ring(bucket_s, n, baselines=baselines, lag=lag)
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


class SurgeDetector:
    """Contacts offered per queue over a short window vs the queue's own baseline."""

    name: ClassVar[str] = "surge"
    event_types: ClassVar[frozenset[str]] = frozenset({"queue.stats", "contact"})

    def __init__(self, rules: Rules) -> None:
        self.rules = rules
        self.params: SurgeRules = rules.surge.base
        self.queues: dict[str, Intake] = {}
        self.signals: dict[str, Signal] = {}
        self.latch = Latch()
        self.before: dict[str, float] = {}  # expected window count when a surge began
        self.cusum = Cusum(self.params.cusum_ratio)
        # queue -> [expected per bucket before its intake went silent, held until (ts)]
        self.held: dict[str, list[float]] = {}
        self._scanned = -1
        self._fresh = False  # counts folded in since the last scan
        self._complete = False  # an interval report folded in since the last scan

    def _intake(self, queue: str, channel: str, interval: float = 0.0) -> Intake:
        intake = self.queues.get(queue)
        # A longer reporting interval than the ring was shaped for: reshape (afresh).
        if intake is None or interval > max(intake.interval, self.params.bucket_s):
            p = self.params
            intake = Intake(p.bucket_s, p.window_s, p.baseline_tau_s, channel, p.recent_s, interval)
            self.queues[queue] = intake
        return intake

    def observe(self, event: Event) -> bool | None:
        queue = getattr(event, "queue", None)
        if queue is None:
            return None
        interval = interval_of(event)
        intake = self._intake(queue, event.channel, interval)  # type: ignore[attr-defined]
        count = offered_in(event, intake)
        if type(event) is QueueStats and event.offered is not None:
            intake.reported_until = max(intake.reported_until, event.ts)
        if not count:
            return None
        intake.tenant = event.tenant
        self._fresh = True
        # An interval report completes its buckets at once: judged at its release.
        self._complete = self._complete or interval > self.params.bucket_s
        return intake.fold(event.ts, count, interval)

    def evaluate(self, watermark: float) -> list[Signal]:
        # Sums change only when a bucket completes: scan every queue once per bucket.
        bucket = int(watermark // self.params.bucket_s)
        if bucket != self._scanned or self._complete:
            self._scanned = bucket
            self._fresh = self._complete = False
            for queue, intake in self.queues.items():
                self._judge(queue, intake, watermark)
        return list(self.signals.values())

    def next_due(self, at: float) -> float | None:
        """The next scan that may change the answer (replay, :mod:`monitor.engine`).

        A queue is judged again when its judged time enters a new bucket, while its
        windows (and the minutes before them) hold counts or its statistic is up;
        a queue that has been quiet that long cannot surge without a new count.
        """
        if self._fresh:
            return grid_after(at, at, self.params.bucket_s)
        return earliest(self._queue_due(q, intake, at) for q, intake in self.queues.items())

    def _queue_due(self, queue: str, intake: Intake, at: float) -> float | None:
        p = self.rules.surge.get(channel=intake.channel, queue=queue)
        if not p.enabled:
            return None
        reach = intake.span(p.window_s) + p.recent_s + 2 * p.bucket_s
        quiet = not intake.holds_counts_since(intake.judged_at(at) - reach)
        if quiet and self.cusum.value(queue) <= 0 and queue not in self.signals:
            return None
        return intake.next_judged(at)

    def _judge(self, queue: str, intake: Intake, watermark: float) -> None:
        p = self.rules.surge.get(channel=intake.channel, queue=queue)
        ring = intake.ring
        now, watermark = watermark, intake.judged_at(watermark)
        window = intake.span(p.window_s)
        ring.advance(watermark)
        if not p.enabled or ring.warm() < p.min_history_s:
            self.signals.pop(queue, None)
            self.cusum.state.pop(queue, None)
            return
        observed = ring.complete_sum(window, watermark)
        expected = ring.expected(window, watermark)
        last_week = intake.profile.last_week(watermark) if p.use_last_week else None
        if last_week is not None:
            expected = max(expected, last_week * window / 3600.0)
        ratio = observed / max(expected, 1.0)
        # To fire, the window must also beat a line through the minutes before
        # it: that line follows the start of a steep ramp within minutes, where
        # the smoothed baseline lags. To hold, the smoothed baseline is enough.
        recent = ring.linear_forecast(p.recent_s, watermark - window, window, watermark)
        bar = max(expected, recent, 1.0)
        buckets = max(1, round(window / p.bucket_s))
        held = self._after_silence(queue, ring, p, bar / buckets, watermark, window)
        if held:
            bar = max(bar, held * buckets)
        windowed = observed >= p.ratio * bar and poisson_sf(observed, bar) < p.p_value
        # The sequential test sees a step at once, where the window has to fill;
        # both share the window's absolute floors (small queues are not judged).
        h = threshold(p.false_alarms_per_hour, p.bucket_s)
        self.cusum.ratio = p.cusum_ratio
        counts = complete_buckets(ring, window, watermark, self.cusum.folded(queue))
        stat = self.cusum.fold(queue, counts, bar / buckets, h)
        per_bucket = bar / buckets
        sequential = stat >= h and self.cusum.run_mean(queue) >= p.ratio * per_bucket
        sequential = sequential and not held  # a backlog flush belongs to the silence
        # The floors are per window_s: a longer reporting interval scales them.
        scale = window / p.window_s
        fire = (windowed or sequential) and observed >= p.min_count * scale
        fire = fire and observed - bar >= p.min_excess * scale
        hold = ratio >= p.clear_ratio and observed - expected >= p.min_excess * scale / 2
        hold = hold or (stat >= h / 2 and observed - expected >= p.min_excess * scale / 2)
        if not self.latch.judge(queue, now, fire, hold, p.for_s):
            self.signals.pop(queue, None)
            self.before.pop(queue, None)
            return
        # Severity measures the flood against what was expected when it began:
        # the trend baseline soon starts to follow the flood itself.
        before = self.before.setdefault(queue, bar)
        signal = self._signal(queue, intake, p, observed, before, last_week, window)
        signal.evidence["baseline_now"] = round(expected, 1)
        signal.evidence["cusum"] = round(stat, 1)
        signal.evidence["cusum_threshold"] = round(h, 1)
        self.signals[queue] = signal

    def _after_silence(
        self,
        queue: str,
        ring: Ring,
        p: SurgeRules,
        per_bucket: float,
        watermark: float,
        window: float,
    ) -> float:
        """The expected count per bucket from before the queue's intake went silent, while
        the gap still drags its baselines down (0.0 otherwise).

        A silence (empty buckets that normal traffic would fill with probability
        under ``p_value``) pulls the baseline and the fitted line towards zero;
        measured against them, the return of normal traffic, and the backlog a
        recovering producer flushes, would look like a surge.
        """
        held = self.held.get(queue)
        zeros = 0
        for _, count in reversed(complete_buckets(ring, window + p.recent_s, watermark)):
            if count:
                break
            zeros += 1
        silent = zeros * per_bucket >= -math.log(p.p_value)
        # Held while the gap goes on, then until the windows are past it. Kept from
        # the buckets, not from how often the queue was scanned (replay skips scans).
        if silent:
            level = per_bucket if held is None else max(held[0], per_bucket)
            self.held[queue] = held = [level, math.inf]
        elif held is not None and zeros:
            held[1] = math.inf
        elif held is not None and held[1] == math.inf:
            held[1] = watermark + window + p.recent_s
        if held is None or watermark >= held[1]:
            self.held.pop(queue, None)
            return 0.0
        return held[0]

    def _signal(
        self,
        queue: str,
        intake: Intake,
        p: SurgeRules,
        observed: float,
        expected: float,
        last_week: float | None,
        window: float,
    ) -> Signal:
        ratio = observed / expected
        if ratio >= p.critical_ratio:
            severity = "critical"
        elif ratio >= p.major_ratio:
            severity = "major"
        else:
            severity = "minor"
        minutes = window / 60
        evidence = {
            "queue": queue,
            "channel": intake.channel,
            "offered": int(observed),
            "expected": round(expected, 1),
            "ratio": round(ratio, 2),
            "window_s": window,
            "baseline_per_min": round(expected / minutes, 2),
            "last_week_same_hour": last_week,
            "source": "queue.stats" if intake.from_stats else "contact",
        }
        return Signal(
            rule="surge.offered",
            kind="surge",
            subject=queue,
            severity=severity,
            title=f"Contact surge on {queue}: {ratio:.1f}x baseline "
            f"({int(observed)} offered in {minutes:g} min, {expected:.0f} expected)",
            evidence=evidence,
            for_s=p.for_s,
            keep_firing_for_s=p.keep_firing_for_s,
            tenant=intake.tenant,
            related=self.rules.depends_on(queue),
        )

    def snapshot(self) -> dict[str, Any]:
        return {
            "queues": {q: i.snapshot() for q, i in self.queues.items()},
            "active": sorted(self.signals),
            "latch": self.latch.snapshot(),
            "before": dict(self.before),
            "cusum": self.cusum.snapshot(),
            "held": {q: list(v) for q, v in self.held.items()},
        }

    def restore(self, state: dict[str, Any]) -> None:
        self.queues.clear()
        self.signals.clear()
        self._scanned = -1
        for queue, saved in state.get("queues", {}).items():
            interval = float(saved.get("interval", 0.0))
            intake = self._intake(queue, saved.get("channel", ""), interval)
            intake.restore(saved)
        self.latch.restore(state.get("latch", {}))
        self.before = {k: float(v) for k, v in state.get("before", {}).items()}
        self.cusum.restore(state.get("cusum", {}))
        self.held = {q: [float(v[0]), float(v[1])] for q, v in state.get("held", {}).items()}
        # Hysteresis survives a restart: previously active queues are re-judged
        # with the clear ratio at the next evaluate.
        for queue in state.get("active", ()):
            if queue in self.queues:
                self.signals[queue] = _placeholder(queue)


def _placeholder(queue: str) -> Signal:
    """Marks a queue active until the first evaluate after a restart re-judges it."""
    return Signal(rule="surge.offered", kind="surge", subject=queue, severity="minor", title="")


SPEC = register(
    DetectorSpec(
        section="surge",
        kind="surge",
        params=SurgeRules,
        scopes=("channels", "queues"),
        build=SurgeDetector,
        order=10,
        title="contacts offered per queue vs that queue's own baseline",
        notes=("001 §7.3, §2: a flood of customer inquiries (holiday peaks).",),
    )
)
