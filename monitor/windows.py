"""Event-time windows: ring buffers of fixed sub-buckets and trend-following baselines.

Every detector keeps, per subject, a :class:`Ring` of ``n`` buckets of
``bucket_s`` seconds (one or more fields per bucket). Memory is bounded by
buckets x fields x subjects, and a ring never grows. Events within the allowed
lateness land in their own bucket whatever order they arrive in, so a ring fed
out of order holds exactly what a ring fed in order holds.

Queries read only *complete* buckets (those that end at or before the
watermark's bucket start): every event that can still arrive for them is
already in, so an answer at a watermark does not depend on arrival order.

A bucket that falls out of the ring is handed to the ring's :class:`Trend`
baselines (double exponential smoothing, Brown's method): the baseline follows
a gradual ramp without lagging behind it, while a sudden jump inside the short
window does not pull the baseline up before it is judged.
"""

from __future__ import annotations

import math
from array import array
from typing import Any

__all__ = ["HourlyProfile", "Latch", "Ring", "Trend", "poisson_cdf", "poisson_sf"]


class Trend:
    """Brown's double EWMA of a per-bucket value: level and slope that follow ramps.

    ``tau_buckets`` is the time constant in buckets. ``level()`` is the
    lag-corrected estimate at the last value fed; ``forecast(k)`` is ``k``
    buckets ahead of it.
    """

    __slots__ = ("alpha", "fed", "quiet", "s1", "s2", "tau")

    def __init__(self, tau_buckets: float) -> None:
        self.tau = tau_buckets
        self.quiet = 0  # zero buckets in a row
        self.alpha = 1.0 - math.exp(-1.0 / max(tau_buckets, 1e-9))
        self.s1 = 0.0
        self.s2 = 0.0
        self.fed = 0

    def feed(self, value: float) -> None:
        if value == 0.0:
            self.feed_zeros(1)
            return
        self.quiet = 0
        if self.fed == 0:
            self.s1 = self.s2 = value
        else:
            # Until a time constant has passed, a running mean: the first bucket
            # must not weigh as if it stood for the whole past.
            a = max(self.alpha, 1.0 / (self.fed + 1))
            self.s1 += a * (value - self.s1)
            self.s2 += a * (self.s1 - self.s2)
        self.fed += 1

    def feed_zeros(self, count: int) -> None:
        """Feed ``count`` zero buckets at once (closed form, for long gaps).

        A gap longer than four time constants leaves nothing of the old level:
        the baseline starts again (warm-up included), so the first traffic
        after a closed night or a dead week is not judged against zero.
        """
        if count <= 0:
            return
        self.quiet += count
        if self.quiet > 4 * self.tau:
            self.s1 = self.s2 = 0.0
            self.fed = 0
            return
        if self.fed == 0:
            self.fed = count
            return
        d = 1.0 - self.alpha
        dk = d**count
        self.s2 = dk * (self.s2 + count * (1.0 - d) * self.s1)
        self.s1 = dk * self.s1
        self.fed += count

    def level(self) -> float:
        return max(0.0, 2.0 * self.s1 - self.s2)

    def slope(self) -> float:
        """Change per bucket."""
        a = self.alpha
        return a / (1.0 - a) * (self.s1 - self.s2) if a < 1.0 else 0.0

    def forecast(self, ahead_buckets: float) -> float:
        return max(0.0, self.level() + self.slope() * ahead_buckets)

    def smooth(self) -> float:
        """Plain EWMA (no trend correction)."""
        return self.s1

    def snapshot(self) -> list[float]:
        return [self.s1, self.s2, self.fed, self.quiet]

    def restore(self, state: list[float]) -> None:
        self.s1, self.s2 = state[0], state[1]
        self.fed = int(state[2])
        self.quiet = int(state[3]) if len(state) > 3 else 0


class Ring:
    """``n`` buckets of ``bucket_s`` seconds, ``width`` fields each, for one subject.

    ``baselines`` maps a field index to the :class:`Trend` fed with that field
    of every bucket once it is ``lag`` buckets old (by default when it leaves
    the ring; zeros for buckets nothing fell into). More baselines of one field
    take keys ``"<field>:<name>"``. A ``lag`` shorter than the ring keeps the
    older buckets readable (:meth:`linear_forecast`) after the baseline has them.
    """

    __slots__ = (
        "_feeds",
        "baselines",
        "bucket_s",
        "fed_to",
        "first",
        "head",
        "lag",
        "n",
        "values",
        "width",
    )

    def __init__(
        self,
        bucket_s: float,
        n: int,
        width: int = 1,
        baselines: dict[int | str, Trend] | None = None,
        lag: int | None = None,
    ) -> None:
        self.bucket_s = bucket_s
        self.n = n
        self.lag = n if lag is None else max(1, min(lag, n))
        self.fed_to: int | None = None  # newest bucket the baselines have had
        self.width = width
        self.values = [0.0] * (n * width)
        self.head = -1  # bucket index of the newest bucket; -1: empty
        self.first = -1  # earliest bucket ever filled: nothing before it feeds a baseline
        self.baselines = baselines or {}
        self._feeds = [(_field_of(k), t) for k, t in self.baselines.items()]

    def index(self, ts: float) -> int:
        return int(ts // self.bucket_s)

    def add(self, ts: float, value: float = 1.0, field: int = 0) -> bool:
        """Add ``value`` to ``field`` of the bucket of ``ts``; False if it is too old."""
        b = int(ts // self.bucket_s)
        if b > self.head:
            self._advance(b)
        elif b <= self.head - self.n:
            return False
        if b < self.first:
            self.first = b
        self.values[(b % self.n) * self.width + field] += value
        return True

    def advance(self, ts: float) -> None:
        """Move the newest bucket up to the bucket of ``ts`` (closing older ones)."""
        b = int(ts // self.bucket_s)
        if b > self.head:
            self._advance(b)

    def _advance(self, b: int) -> None:
        head, n, w, values = self.head, self.n, self.width, self.values
        if head < 0:
            self.head = self.first = b
            return
        if self._feeds:
            self._feed_until(b - self.lag)
        # Buckets head-n+1 .. b-n leave the ring; the new buckets head+1..b
        # reuse exactly the slots emptied here.
        for old in range(head - n + 1, min(b - n, head) + 1):
            base = (old % n) * w
            values[base : base + w] = [0.0] * w
        self.head = b

    def _feed_until(self, last: int) -> None:
        """Feed the baselines every bucket up to ``last``, oldest first.

        Buckets before the first one ever filled held nothing and are not history.
        """
        start = self.first if self.fed_to is None else self.fed_to + 1
        if last < start:
            return
        n, w, values, head = self.n, self.width, self.values, self.head
        for idx in range(start, min(last, head) + 1):
            base = (idx % n) * w
            for field, trend in self._feeds:
                trend.feed(values[base + field])
        if last > head:
            zeros = last - max(head, start - 1)
            for _, trend in self._feeds:
                trend.feed_zeros(zeros)
        self.fed_to = last

    def complete_sum(self, seconds: float, watermark: float, field: int = 0) -> float:
        """Sum of ``field`` over the complete buckets covering ``seconds`` before the watermark."""
        lo, hi = self.complete_range(seconds, watermark)
        n, w, values = self.n, self.width, self.values
        return sum(values[(b % n) * w + field] for b in range(lo, hi + 1))

    def complete_range(self, seconds: float, watermark: float) -> tuple[int, int]:
        """Bucket indexes ``lo..hi`` of that span, clipped to what the ring holds."""
        hi = int(watermark // self.bucket_s) - 1
        lo = hi - max(1, round(seconds / self.bucket_s)) + 1
        return max(lo, self.head - self.n + 1), min(hi, self.head)

    def rate(self, seconds: float, watermark: float, field: int = 0) -> float:
        """Per-second rate of ``field`` over the last ``seconds`` (complete buckets)."""
        count = max(1, round(seconds / self.bucket_s))
        return self.complete_sum(seconds, watermark, field) / (count * self.bucket_s)

    def expected(self, seconds: float, watermark: float, field: int | str = 0) -> float:
        """What the baseline of ``field`` predicts for the span :meth:`complete_sum` reads.

        The baseline was last fed with the bucket that left the ring; the trend
        carries it forward to the middle of the queried span.
        """
        trend = self.baselines[field]
        buckets = max(1, round(seconds / self.bucket_s))
        hi = int(watermark // self.bucket_s) - 1
        last_fed = self.head - self.lag if self.fed_to is None else self.fed_to
        ahead = hi - (buckets - 1) / 2.0 - last_fed
        return trend.forecast(ahead) * buckets

    def linear_forecast(
        self, fit_s: float, fit_end: float, seconds: float, watermark: float, field: int = 0
    ) -> float:
        """Least-squares line through the complete buckets of ``fit_s`` before ``fit_end``,
        summed over the span :meth:`complete_sum` reads at ``watermark`` (never below 0).

        It follows the start of a ramp within minutes, where the smoothed
        baseline needs a time constant.
        """
        lo, hi = self.complete_range(fit_s, fit_end)
        count = hi - lo + 1
        if count < 3:
            return 0.0
        n, w, values = self.n, self.width, self.values
        ys = [values[(b % n) * w + field] for b in range(lo, hi + 1)]
        mean_x = (count - 1) / 2.0
        mean_y = sum(ys) / count
        sxx = count * (count * count - 1) / 12.0
        sxy = sum((i - mean_x) * (y - mean_y) for i, y in enumerate(ys))
        slope = sxy / sxx
        t_lo, t_hi = self.complete_range(seconds, watermark)
        centre = (t_lo + t_hi) / 2.0 - lo
        return max(0.0, (mean_y + slope * (centre - mean_x)) * (t_hi - t_lo + 1))

    def smooth(self, seconds: float, field: int = 0) -> float:
        """The plain EWMA of ``field`` (no trend) over a span of ``seconds``."""
        return self.baselines[field].smooth() * max(1, round(seconds / self.bucket_s))

    def warm(self, field: int = 0) -> float:
        """Seconds of history in the baseline of ``field``."""
        return self.baselines[field].fed * self.bucket_s

    def snapshot(self) -> list[Any]:
        """``[head, first, fed_to, values, baselines]``; values packed float32 (bucket
        sums are counts, exact far beyond any bucket's size): small and fast."""
        return [
            self.head,
            self.first,
            self.fed_to,
            array("f", self.values).tobytes(),
            {str(k): t.snapshot() for k, t in self.baselines.items()},
        ]

    def restore(self, state: list[Any]) -> None:
        head, first, fed_to, raw, baselines = state
        values = array("f", raw).tolist() if isinstance(raw, bytes) else list(raw)
        if len(values) != self.n * self.width:
            # Rules changed the ring's shape: start afresh rather than misread buckets.
            return
        self.head, self.first = int(head), int(first)
        self.fed_to = None if fed_to is None else int(fed_to)
        self.values = values
        for key, trend_state in baselines.items():
            trend = self.baselines.get(int(key) if key.isdigit() else key)
            if trend is not None:
                trend.restore(trend_state)

    def empty(self) -> bool:
        """Nothing in the buckets and nothing left in the baselines (an idle subject)."""
        return not any(self.values) and all(t.smooth() < 1e-3 for t in self.baselines.values())


def _field_of(key: int | str) -> int:
    return key if isinstance(key, int) else int(key.split(":", 1)[0])


class HourlyProfile:
    """Counts per hour of the week (168 slots) and the week before, for "same hour last week"."""

    __slots__ = ("slots",)

    def __init__(self) -> None:
        # slot -> [hour index, count, previous hour index, previous count]
        self.slots: dict[int, list[float]] = {}

    def add(self, ts: float, value: float = 1.0) -> None:
        hour = int(ts // 3600)
        slot = self.slots.get(hour % 168)
        if slot is None:
            self.slots[hour % 168] = [hour, value, -1, 0.0]
        elif slot[0] == hour:
            slot[1] += value
        elif hour > slot[0]:
            slot[2], slot[3] = slot[0], slot[1]
            slot[0], slot[1] = hour, value
        elif hour == slot[2]:
            slot[3] += value

    def last_week(self, ts: float) -> float | None:
        """The count of the same hour one week before ``ts``, if recorded."""
        hour = int(ts // 3600)
        slot = self.slots.get(hour % 168)
        if slot is None:
            return None
        if slot[0] == hour - 168:
            return slot[1]
        if slot[2] == hour - 168:
            return slot[3]
        return None

    def snapshot(self) -> dict[str, Any]:
        return {str(k): list(v) for k, v in self.slots.items()}

    def restore(self, state: dict[str, Any]) -> None:
        self.slots = {int(k): [float(x) for x in v] for k, v in state.items()}


class Latch:
    """Hysteresis that starts only once a condition has held for its pending time.

    Until the fire condition has held for ``for_s`` (the engine's pending
    time), it must keep meeting the fire threshold; only then does the lower
    hold threshold apply. Otherwise a value that touched the fire threshold
    once would ride the hold threshold through the pending time and fire.
    """

    __slots__ = ("since",)

    def __init__(self) -> None:
        self.since: dict[str, float] = {}

    def judge(self, key: str, at: float, fire: bool, hold: bool, for_s: float) -> bool:
        """Whether the condition is active; ``fire`` implies ``hold``."""
        since = self.since.get(key)
        if since is not None and at - since >= for_s:  # latched: the hold threshold applies
            if hold:
                return True
        elif fire:  # pending: the fire threshold applies
            if since is None:
                self.since[key] = at
            return True
        self.since.pop(key, None)
        return False

    def active(self, key: str) -> bool:
        return key in self.since

    def held(self, key: str, at: float, for_s: float) -> bool:
        """The condition has held for its pending time: the hold threshold applies."""
        since = self.since.get(key)
        return since is not None and at - since >= for_s

    def mark(self, key: str, at: float, holds: bool) -> None:
        """Record whether the condition holds at ``at``."""
        if holds:
            self.since.setdefault(key, at)
        else:
            self.since.pop(key, None)

    def snapshot(self) -> dict[str, float]:
        return dict(self.since)

    def restore(self, state: dict[str, float]) -> None:
        self.since = {k: float(v) for k, v in state.items()}


def poisson_sf(k: float, lam: float) -> float:
    """P(X >= k) for X ~ Poisson(lam); the upper tail is summed directly (no cancellation)."""
    k = math.ceil(k)
    if k <= 0:
        return 1.0
    if lam <= 0:
        return 0.0
    if k <= lam:
        return max(0.0, 1.0 - poisson_cdf(k - 1, lam))
    log_term = k * math.log(lam) - lam - math.lgamma(k + 1)
    total = 0.0
    i = k
    while True:
        term = math.exp(log_term)
        total += term
        if term < 1e-18 * total or i > k + 10_000:
            return min(1.0, total)
        i += 1
        log_term += math.log(lam) - math.log(i)


def poisson_cdf(k: float, lam: float) -> float:
    """P(X <= k) for X ~ Poisson(lam), summed in log space."""
    k = math.floor(k)
    if k < 0:
        return 0.0
    if lam <= 0:
        return 1.0
    log_lam = math.log(lam)
    log_term = -lam
    total = math.exp(log_term)
    for i in range(1, k + 1):
        log_term += log_lam - math.log(i)
        total += math.exp(log_term)
    return min(1.0, total)
