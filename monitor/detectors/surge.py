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
absolute minimum, an absolute excess and a small Poisson tail. A Poisson
CUSUM per bucket (:mod:`monitor.detectors.sequential`) decides sooner, as
soon as its statistic reaches the threshold of the false-alarm budget and the
run that raised it clears the same floors as a rate; its decision needs no
pending time. It stays active until the ratio to the smoothed baseline falls
below a lower clear ratio (only once it has held for its pending time).
Waiting contacts are never looked at: a queue that backs up because agents
are missing is the SLA detector's business.

The baseline does not learn the problem (:mod:`monitor.detectors.learning`):
not a silence and the recovery after it (a backlog flush is the silence's, not
a surge), not the first ``baseline_tau_s`` of a surge, not a planned event of
the rules file (``[[planned]]``: ``factor`` x the baseline is expected while
the window reaches into it); a queue merged into another (``[[merged]]``)
hands its baseline over (:mod:`monitor.planned`).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, replace
from typing import Any, ClassVar

from watchfloor.core.events import Event, QueueStats
from watchfloor.monitor.detectors.base import Signal
from watchfloor.monitor.detectors.due import earliest, grid_after
from watchfloor.monitor.detectors.intake import Intake, interval_of, offered_in
from watchfloor.monitor.detectors.learning import GatedRing
from watchfloor.monitor.detectors.registry import DetectorSpec, register, setting
from watchfloor.monitor.detectors.sequential import Cusum, complete_buckets, threshold
from watchfloor.monitor.planned import Calendar
from watchfloor.monitor.rule_set import Rules
from watchfloor.monitor.windows import Latch, Ring, poisson_sf

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
        self.calendar = Calendar(rules.document)
        self.unlearned: dict[str, float] = {}
        """Queue -> when its baseline stopped learning for an open surge."""

    def _intake(self, queue: str, channel: str, interval: float = 0.0) -> Intake:
        intake = self.queues.get(queue)
        # A longer reporting interval than the ring was shaped for: reshape (afresh).
        if intake is None or interval > max(intake.interval, self.params.bucket_s):
            p = self.params
            intake = Intake(p.bucket_s, p.window_s, p.baseline_tau_s, channel, p.recent_s, interval)
            for start, end in self.calendar.spans(queue, channel):
                intake.ring.pause(start, end)  # a planned event is never learned
            self.queues[queue] = intake
        return intake

    def _merge(self, watermark: float) -> None:
        """Queues merged into others by now: the receiving queue's baseline takes theirs."""
        for merge in self.calendar.take_due(watermark):
            gone = self.queues.pop(merge.queue, None)
            into = self.queues.get(merge.into)
            if gone is not None and into is not None:
                into.absorb(gone)
            for table in (self.signals, self.before, self.held, self.unlearned, self.cusum.state):
                table.pop(merge.queue, None)

    def observe(self, event: Event) -> bool | None:
        queue = getattr(event, "queue", None)
        if queue is None or self.calendar.retired(queue, event.ts):
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
            self._merge(bucket * self.params.bucket_s)
            for queue, intake in self.queues.items():
                self._judge(queue, intake, watermark)
        return list(self.signals.values())

    def next_due(self, at: float) -> float | None:
        """The next scan that may change the answer (replay, :mod:`monitor.engine`).

        A queue is judged again when its judged time enters a new bucket, while its
        windows (and the minutes before them) hold counts or its statistic is up;
        a queue that has been quiet that long cannot surge without a new count.
        """
        bucket = self.params.bucket_s
        if self._fresh:
            return grid_after(at, at, bucket)
        merge = self.calendar.next_merge()
        due = [self._queue_due(q, intake, at) for q, intake in self.queues.items()]
        return earliest([*due, None if merge is None else grid_after(merge, at, bucket)])

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
        # A planned event: its traffic is expected while the window reaches into it.
        expected *= self.calendar.factor(queue, intake.channel, watermark - window, watermark)
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
        # The floors are per window_s: a longer reporting interval scales them.
        scale = window / p.window_s
        windowed = windowed and observed >= p.min_count * scale
        windowed = windowed and observed - bar >= p.min_excess * scale
        stat, h, sequential = self._sequential(queue, ring, p, bar, watermark, window)
        sequential = sequential and not held  # a backlog flush belongs to the silence
        fire = windowed or sequential
        hold = ratio >= p.clear_ratio and observed - expected >= p.min_excess * scale / 2
        hold = hold or (stat >= h / 2 and observed - expected >= p.min_excess * scale / 2)
        # The sequential test's own false-alarm budget is its confirmation: no pending.
        for_s = 0.0 if sequential else p.for_s
        active = self.latch.judge(queue, now, fire, hold, for_s)
        self._learn(queue, ring, p, watermark, window, active, held)
        if not active:
            self.signals.pop(queue, None)
            self.before.pop(queue, None)
            return
        # Severity measures the flood against what was expected when it began:
        # the trend baseline soon starts to follow the flood itself.
        before = self.before.setdefault(queue, bar)
        signal = self._signal(queue, intake, p, observed, before, last_week, window, for_s)
        signal = self._graded(signal, p, self._sure_count(queue, observed, window, p) / before)
        signal.evidence["baseline_now"] = round(expected, 1)
        signal.evidence["cusum"] = round(stat, 1)
        signal.evidence["cusum_threshold"] = round(h, 1)
        self.signals[queue] = signal

    def _learn(
        self,
        queue: str,
        ring: GatedRing,
        p: SurgeRules,
        watermark: float,
        window: float,
        active: bool,
        held: float,
    ) -> None:
        """The baseline does not learn a surge (its first ``baseline_tau_s``: a level that
        lasts longer becomes the new normal) nor a silence and its recovery."""
        since = self.unlearned.get(queue)
        if active and since is None:
            since = self.unlearned[queue] = watermark
        elif not active:
            self.unlearned.pop(queue, None)
        surging = since is not None and watermark - since < p.baseline_tau_s
        if (surging or held) and not ring.pausing():
            ring.pause(watermark - window)
        elif not (surging or held) and ring.pausing():
            ring.resume(watermark)

    def _sure_count(self, queue: str, observed: float, window: float, p: SurgeRules) -> float:
        """How big the flood surely is, per window: half a standard deviation below the window's
        count, or below the CUSUM run's rate when that is higher and the run is a minute
        long (the window of a flood found early is mostly the minutes before it)."""
        sure = observed - 0.5 * math.sqrt(observed)
        total, length = self.cusum.run(queue)
        if length >= 6 and self.cusum.value(queue) > 0:  # a minute: not a lucky bucket or two
            buckets = max(1, round(window / p.bucket_s))
            sure = max(sure, (total - 0.5 * math.sqrt(total)) / length * buckets)
        return sure

    @staticmethod
    def _graded(signal: Signal, p: SurgeRules, sure_ratio: float) -> Signal:
        if sure_ratio >= p.critical_ratio:
            severity = "critical"
        elif sure_ratio >= p.major_ratio:
            severity = "major"
        else:
            severity = "minor"
        return replace(signal, severity=severity)

    def _sequential(
        self, queue: str, ring: Ring, p: SurgeRules, bar: float, watermark: float, window: float
    ) -> tuple[float, float, bool]:
        """The queue's CUSUM (statistic, threshold) and whether it decides a surge.

        It decides once the statistic crosses its threshold and the run that raised
        it (the buckets since it last stood at zero: the estimate of the new rate)
        is at least ``ratio`` x the bar, ``min_count`` contacts per window and
        ``min_excess`` contacts per window above the bar. The floors are read on the
        run's rate, not on the window: the window takes its whole length to reach
        them, the run's rate is known as soon as the statistic is sure.
        """
        buckets = max(1, round(window / p.bucket_s))
        per_bucket = bar / buckets
        h = threshold(p.false_alarms_per_hour, p.bucket_s)
        self.cusum.ratio = p.cusum_ratio
        counts = complete_buckets(ring, window, watermark, self.cusum.folded(queue))
        stat = self.cusum.fold(queue, counts, per_bucket, h)
        total, length = self.cusum.run(queue)
        if stat < h or not length:
            return stat, h, False
        level = total / length * buckets  # the run's rate, per window
        scale = window / p.window_s
        decided = level >= max(p.ratio * bar, p.min_count * scale)
        return stat, h, decided and level - bar >= p.min_excess * scale

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
        # Held while the gap goes on, then until the windows are past its end (the first
        # count after it): kept from the buckets, not from how often the queue was
        # scanned (a replay skips scans), and a thin queue's later empty buckets do not
        # stretch it.
        if silent:
            level = per_bucket if held is None else max(held[0], per_bucket)
            self.held[queue] = held = [level, math.inf]
        elif held is not None and held[1] == math.inf and not zeros:
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
        for_s: float,
    ) -> Signal:
        ratio = observed / expected
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
            severity="minor",  # graded by _graded
            title=f"Contact surge on {queue}: {ratio:.1f}x baseline "
            f"({int(observed)} offered in {minutes:g} min, {expected:.0f} expected)",
            evidence=evidence,
            for_s=for_s,
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
            "unlearned": dict(self.unlearned),
            "merged": sorted(self.calendar.applied),
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
        self.unlearned = {q: float(v) for q, v in state.get("unlearned", {}).items()}
        self.calendar.applied = set(state.get("merged", ()))
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
