"""Silent intake, for the outage detector: a channel or queue whose contacts stopped.

Rules ``outage.silent_channel`` (critical) and ``outage.silent_queue`` (major):
offered contacts dropped to (almost) nothing while the hour-long baseline
expected many, suddenly (the window before was still busy); at night the
baseline is low, so a quiet night is not an outage, nor is an evening ramp
down. A silent channel covers its queues (one incident, not one per queue).
"""

from __future__ import annotations

from typing import Any

from watchfloor.core.events import Event, QueueStats
from watchfloor.monitor.detectors.base import Signal
from watchfloor.monitor.detectors.due import earliest, grid_after
from watchfloor.monitor.detectors.intake import Intake, interval_of, offered_in
from watchfloor.monitor.detectors.outage_probes import MakeSignal
from watchfloor.monitor.detectors.outage_rules import OutageRules
from watchfloor.monitor.detectors.sequential import Cusum, complete_buckets, threshold
from watchfloor.monitor.planned import Calendar
from watchfloor.monitor.rule_set import Scoped
from watchfloor.monitor.windows import Ring, poisson_cdf


class SilentIntake:
    """Offered contacts per queue and per channel -> ``outage.silent_*`` signals."""

    def __init__(
        self,
        scoped: Scoped[OutageRules],
        signals: dict[str, Signal],
        make: MakeSignal,
        calendar: Calendar | None = None,
    ) -> None:
        self.calendar = calendar or Calendar({})
        self.scoped = scoped
        self.base = scoped.base
        self.signals = signals
        self.make = make
        self.queues: dict[str, Intake] = {}
        self.channels: dict[str, Intake] = {}
        self._scanned = -1
        self.cusum = Cusum(max(1e-3, self.base.silent_max_ratio))
        self.blind_until = 0.0
        """Intake windows are not judged before this (they overlap the monitor's own downtime)."""
        self._fresh = False  # counts or snapshots folded in since the last scan
        self._complete = False  # an interval report folded in since the last scan

    def add(self, event: Event) -> None:
        queue: str = event.queue  # type: ignore[attr-defined]
        channel: str = event.channel  # type: ignore[attr-defined]
        if self.calendar.retired(queue, event.ts):
            return  # merged into another queue: its silence is the merge
        interval = interval_of(event)
        intake = self._get(self.queues, queue, channel, interval)
        count = offered_in(event, intake)
        reported = type(event) is QueueStats and event.offered is not None
        self._fresh = self._fresh or reported or bool(count)
        # An interval report completes its buckets at once: judged at its release.
        self._complete = self._complete or (reported and interval > self.base.silent_bucket_s)
        agg = self._get(self.channels, channel, channel, interval)
        for each, key in (
            (intake, f"outage.silent_queue|{queue}"),
            (agg, f"outage.silent_channel|{channel}"),
        ):
            if reported:
                self._gap(each, key, event.ts, interval)
                each.reported_until = max(each.reported_until, event.ts)
            if count:
                each.from_stats = each.from_stats or intake.from_stats
                each.fold(event.ts, count, interval)

    def _gap(self, intake: Intake, key: str, ts: float, interval: float) -> None:
        """A snapshot after a gap of several reporting intervals: the gap is unknown, not
        silent (the producer was away; its heartbeat tells), so the test skips it."""
        bucket = self.base.silent_bucket_s
        if intake.reported_until and ts - intake.reported_until > max(3 * interval, 2 * bucket):
            self.cusum.skip_to(key, int(ts // bucket) - 1)

    def _get(self, table: dict[str, Intake], name: str, channel: str, interval: float) -> Intake:
        intake = table.get(name)
        # A longer reporting interval than the ring was shaped for: reshape (afresh).
        if intake is None or interval > max(intake.interval, self.base.silent_bucket_s):
            intake = table[name] = self._new_intake(channel, interval)
            queue = name if table is self.queues else None
            for start, end in self.calendar.spans(queue, channel):
                intake.ring.pause(start, end)  # a planned event is never learned
        return intake

    def _new_intake(self, channel: str, interval: float = 0.0) -> Intake:
        b = self.base
        # Two windows: the silent one and the one before it (was intake healthy?),
        # each at least one reporting interval long.
        span = 2 * max(b.silent_window_s, interval)
        return Intake(b.silent_bucket_s, span, b.silent_tau_s, channel, interval=interval)

    def resume(self, at: float) -> None:
        """Windows overlapping the monitor's own downtime are not judged."""
        self.blind_until = max(self.blind_until, at + self.base.silent_window_s)

    def judge(self, w: float) -> None:
        """Once per bucket: silent channels first (they cover their queues)."""
        bucket = int(w // self.base.silent_bucket_s)
        if bucket == self._scanned and not self._complete:
            return
        self._scanned = bucket
        self._fresh = self._complete = False
        self._merge(bucket * self.base.silent_bucket_s)
        if w < self.blind_until:
            return
        silent_channels = set()
        for channel, agg in self.channels.items():
            if self._silent("outage.silent_channel", channel, agg, w, channel=channel):
                silent_channels.add(channel)
        for queue, intake in self.queues.items():
            covered = intake.channel in silent_channels
            self._silent("outage.silent_queue", queue, intake, w, covered=covered, queue=queue)

    def _merge(self, watermark: float) -> None:
        """Queues merged into others by now: no longer judged, their baselines moved."""
        for merge in self.calendar.take_due(watermark):
            gone = self.queues.pop(merge.queue, None)
            self.signals.pop(f"outage.silent_queue|{merge.queue}", None)
            self.cusum.state.pop(f"outage.silent_queue|{merge.queue}", None)
            into = self.queues.get(merge.into)
            if gone is None or into is None:
                continue
            if gone.channel == into.channel:
                into.absorb(gone)
                continue
            into.absorb(gone)
            agg = self.channels.get(into.channel)
            if agg is not None:
                agg.absorb(gone)
            self._release_channel(gone)

    def _release_channel(self, gone: Intake) -> None:
        """The merged queue's channel loses its share; a channel left without queues goes."""
        channel = gone.channel
        if not any(q.channel == channel for q in self.queues.values()):
            self.channels.pop(channel, None)
            self.signals.pop(f"outage.silent_channel|{channel}", None)
            self.cusum.state.pop(f"outage.silent_channel|{channel}", None)
            return
        agg = self.channels.get(channel)
        if agg is not None and len(agg.ring.values) == len(gone.ring.values):
            agg.absorb(gone, -1.0)
            # Its buckets not learned yet leave too (they would come back in the baseline).
            pairs = zip(agg.ring.values, gone.ring.values, strict=True)
            agg.ring.values = [max(0.0, a - b) for a, b in pairs]

    def next_due(self, at: float) -> float | None:
        """The next scan that may change the answer (replay, :mod:`monitor.engine`): a
        subject whose baseline still expects traffic is judged as its judged time moves;
        one that expects too little to be found silent waits for a new count."""
        bucket = self.base.silent_bucket_s
        if self._fresh:
            return grid_after(at, at, bucket)
        if at < self.blind_until:
            return grid_after(self.blind_until, at, bucket)
        merge = self.calendar.next_merge()
        due = [
            self._due(rule, name, intake, at, **{key: name})
            for rule, key, table in (
                ("outage.silent_channel", "channel", self.channels),
                ("outage.silent_queue", "queue", self.queues),
            )
            for name, intake in table.items()
        ]
        return earliest([*due, None if merge is None else grid_after(merge, at, bucket)])

    def _due(
        self, rule: str, subject: str, intake: Intake, at: float, **scope: str
    ) -> float | None:
        p = self.scoped.get(**{"channel": intake.channel, **scope})
        fingerprint = f"{rule}|{subject}"
        if fingerprint not in self.signals and _dormant(intake, p):
            return None
        return intake.next_judged(at, p.silent_window_s)

    def _silent(
        self, rule: str, subject: str, intake: Intake, w: float, covered: bool = False, **scope: str
    ) -> bool:
        p = self.scoped.get(**{"channel": intake.channel, **scope})
        ring = intake.ring
        # A snapshot of 0 is silence; no snapshot is no news (a stopped producer's
        # heartbeat tells first): judged up to the latest one, for a window at most.
        w = intake.judged_at(w, p.silent_window_s)
        window = intake.span(p.silent_window_s)
        ring.advance(w)
        fingerprint = f"{rule}|{subject}"
        active = fingerprint in self.signals
        if not active and _dormant(intake, p):
            # Expecting too little to be found silent: nothing to hold against it
            # later either (and a replay need not scan it until a count comes).
            self.cusum.state.pop(fingerprint, None)
            return False
        observed = ring.complete_sum(window, w)
        # Both the plain EWMA and the trend forecast must expect traffic: the
        # trend follows an evening ramp down, the plain EWMA ignores a past surge.
        expected = min(ring.smooth(window), ring.expected(window, w))
        h = threshold(p.silent_false_alarms_per_hour, p.silent_bucket_s)
        stat = self._sequential(fingerprint, ring, p, expected, w, h, window)
        # The run that raised the statistic must itself be (almost) silent: a drop
        # to a third also drifts the statistic up, and it is no silence.
        run = self.cusum.run_mean(fingerprint) * round(window / p.silent_bucket_s)
        if ring.warm() < p.silent_min_history_s:
            holds = False
        elif active:
            holds = observed <= 0.3 * expected or (stat >= h / 2 and run <= 0.3 * expected)
        else:
            holds = _went_silent(intake, p, w, observed, expected) or (
                stat >= h
                and run <= p.silent_max_ratio * expected
                and _judged(intake, p, w, expected)
            )
        # A silence is never learned: the baseline keeps what it expected before it.
        if holds and not ring.pausing():
            ring.pause(w - window)
        elif not holds and ring.pausing():
            ring.resume(w)
        if not holds or covered:
            self.signals.pop(fingerprint, None)
            return holds
        what = "channel" if rule == "outage.silent_channel" else "queue"
        minutes = window / 60
        title = (
            f"Intake of {what} {subject} went silent: {observed:.0f} contacts in "
            f"{minutes:g} min, {expected:.0f} expected"
        )
        evidence = {what: subject, "offered": observed, "expected": round(expected, 1)}
        evidence["window_s"] = window
        evidence["cusum"], evidence["cusum_threshold"] = round(stat, 1), round(h, 1)
        severity = "critical" if what == "channel" else "major"
        self.signals[fingerprint] = self.make(rule, subject, severity, title, evidence)
        return True

    def _sequential(
        self,
        key: str,
        ring: Ring,
        p: OutageRules,
        expected: float,
        w: float,
        h: float,
        window: float,
    ) -> float:
        """The subject's silence CUSUM over the buckets completed since the last scan.

        Each empty bucket adds (1 - silent_max_ratio) x its expected count: a queue
        of 18 a minute is found silent within about a minute, not after a window.
        """
        per_bucket = expected / max(1, round(window / p.silent_bucket_s))
        self.cusum.ratio = max(1e-3, p.silent_max_ratio)
        counts = complete_buckets(ring, window, w, self.cusum.folded(key))
        return self.cusum.fold(key, counts, per_bucket, h)

    def snapshot(self) -> dict[str, Any]:
        return {
            "queues": {n: i.snapshot() for n, i in self.queues.items()},
            "channels": {n: i.snapshot() for n, i in self.channels.items()},
            "blind_until": self.blind_until,
            "silent_cusum": self.cusum.snapshot(),
            "merged": sorted(self.calendar.applied),
        }

    def restore(self, state: dict[str, Any]) -> None:
        self.queues.clear()
        self.channels.clear()
        self.blind_until = float(state.get("blind_until", 0.0))
        self._scanned = -1
        self.cusum.restore(state.get("silent_cusum", {}))
        self.calendar.applied = set(state.get("merged", ()))
        for table, saved_table in (("queues", self.queues), ("channels", self.channels)):
            for name, saved in state.get(table, {}).items():
                interval = float(saved.get("interval", 0.0))
                intake = saved_table[name] = self._new_intake(saved.get("channel", ""), interval)
                intake.restore(saved)
        for fingerprint in state.get("active", ()):
            rule, _, subject = fingerprint.partition("|")
            if rule.startswith("outage.silent"):
                self.signals[fingerprint] = self.make(rule, subject, "minor", "", {})


def _dormant(intake: Intake, p: OutageRules) -> bool:
    """Even the plain EWMA (which only falls without counts) expects less than a silence
    needs: the subject cannot be found silent before a new count arrives."""
    window = intake.span(p.silent_window_s)
    return intake.ring.smooth(window) < p.silent_min_expected * window / p.silent_window_s


def _went_silent(
    intake: Intake, p: OutageRules, w: float, observed: float, expected: float
) -> bool:
    """Intake fell to almost nothing over the window, suddenly, where traffic was expected."""
    if observed > p.silent_max_ratio * expected:
        return False
    if poisson_cdf(observed, expected) >= p.silent_p:
        return False
    return _judged(intake, p, w, expected)


def _judged(intake: Intake, p: OutageRules, w: float, expected: float) -> bool:
    """A busy subject (not a quiet night), after a healthy window, not closed at this hour."""
    window = intake.span(p.silent_window_s)
    # The floors are per silent_window_s: a longer reporting interval scales them.
    if expected < p.silent_min_expected * window / p.silent_window_s:
        return False
    # Sudden, not the end of an evening ramp down: the window before was healthy.
    before = intake.ring.complete_sum(window, w - window)
    if before < p.silent_before_ratio * expected:
        return False
    # A queue that was just as quiet at this hour last week is closed, not broken.
    last_week = intake.profile.last_week(w)
    scale = p.silent_window_s / 3600.0
    return last_week is None or last_week * scale >= p.silent_min_expected
