"""Sequential tests on per-interval counts: a Poisson CUSUM against a subject's baseline.

A window has to fill before its sum says anything; a sequential test decides as
soon as the evidence is significant. Per interval (a ring bucket) of expected
count ``mu`` (the baseline) and observed count ``k``, the log-likelihood ratio
of "the rate is ``ratio`` x the baseline" against "the rate is the baseline" is

    llr = k ln(ratio) - mu (ratio - 1)

and the CUSUM ``S = max(0, S + llr)`` fires at ``S >= h``. ``ratio > 1`` looks
for a surge, ``ratio < 1`` for a silence (an empty interval adds ``mu (1 - ratio)``).

Threshold from a false-alarm budget: a CUSUM run on in-control data crosses
``h`` no more often than once in ``e^h`` intervals (Lorden's bound), so ``F``
false alarms per subject-hour with intervals of ``step_s`` seconds need

    h = ln(3600 / (step_s F))

(one a week, ``F = 1/168``, at 10 s intervals: h = 11.0; at 30 s: h = 9.9).

Expected delay once the change is there, at a baseline rate ``lam`` per second
and a true ratio ``r``: ``h / (lam (r ln(ratio) - (ratio - 1)))`` seconds (the
drift of the llr per second under the change), plus the interval the count
arrives in. A silence (``r = 0``) is found after ``h / (lam (1 - ratio))``:
at 18 contacts a minute and h = 9.9, about 37 s; at one a minute, 11 minutes.
"""

from __future__ import annotations

import math
from typing import Any

from watchfloor.monitor.windows import Ring

__all__ = [
    "Cusum",
    "binomial_delay_s",
    "binomial_llr",
    "complete_buckets",
    "delay_s",
    "llr",
    "threshold",
    "wilson",
]


def llr(count: float, expected: float, ratio: float) -> float:
    """Log-likelihood ratio of one interval: rate ``ratio`` x ``expected`` vs ``expected``."""
    return count * math.log(ratio) - expected * (ratio - 1.0)


def binomial_llr(successes: float, trials: float, p0: float, p1: float) -> float:
    """Log-likelihood ratio of ``successes`` of ``trials`` at a share ``p1`` vs ``p0``.

    Additive in counts: one report of an interval's counts weighs what its
    contacts would weigh one by one.
    """
    return successes * math.log(p1 / p0) + (trials - successes) * math.log((1 - p1) / (1 - p0))


def binomial_delay_s(rate_per_s: float, share: float, p0: float, p1: float, h: float) -> float:
    """Expected seconds from a change of the share to ``share`` until a binomial CUSUM of
    ``p1`` vs ``p0`` reaches ``h``, at ``rate_per_s`` trials a second (``inf``: never)."""
    drift = rate_per_s * binomial_llr(share, 1.0, p0, p1)
    return h / drift if drift > 0 else math.inf


def wilson(successes: float, trials: float, z: float) -> tuple[float, float]:
    """Wilson score interval of a proportion: (lower, upper) at ``z`` (1.645: 95 % one-sided)."""
    if trials <= 0:
        return 0.0, 1.0
    # Counts of a feed of contact events: abandons can land in a later bucket than
    # their offers, so a short run may hold more abandons than offers.
    share = min(1.0, successes / trials)
    denom = 1 + z * z / trials
    centre = (share + z * z / (2 * trials)) / denom
    half = z * math.sqrt(share * (1 - share) / trials + z * z / (4 * trials * trials)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def threshold(false_alarms_per_hour: float, step_s: float) -> float:
    """CUSUM threshold ``h`` for a false-alarm budget per subject-hour (Lorden's bound)."""
    return math.log(3600.0 / (step_s * false_alarms_per_hour))


def delay_s(rate_per_s: float, true_ratio: float, ratio: float, h: float) -> float:
    """Expected seconds from a change to ``true_ratio`` x the baseline until ``S >= h``.

    ``inf`` when the change does not drift the statistic up (too small to see).
    """
    drift = rate_per_s * (true_ratio * math.log(ratio) - (ratio - 1.0))
    return h / drift if drift > 0 else math.inf


class Cusum:
    """One-sided Poisson CUSUM per subject, folded one complete ring bucket at a time.

    The statistic is capped at ``cap`` x the threshold: a long surge or silence
    then clears within an interval or two of normal traffic returning instead of
    having to pay back every interval it lasted.
    """

    __slots__ = ("cap", "ratio", "state")

    def __init__(self, ratio: float, cap: float = 2.0) -> None:
        self.ratio = ratio
        self.cap = cap
        # subject -> [statistic, last bucket folded, run's count, run's buckets]
        self.state: dict[str, list[float]] = {}

    def fold(
        self, subject: str, counts: list[tuple[int, float]], expected: float, h: float
    ) -> float:
        """Fold the buckets ``(index, count)`` not folded yet, each against ``expected``."""
        state = self.state.setdefault(subject, [0.0, -1.0, 0.0, 0.0])
        stat, last, run_sum, run_len = state
        for index, count in counts:
            if index <= last:
                continue
            stat = min(self.cap * h, max(0.0, stat + llr(count, expected, self.ratio)))
            last = index
            # The run: the buckets since the statistic last stood at zero.
            run_sum, run_len = (run_sum + count, run_len + 1) if stat > 0 else (0.0, 0.0)
        state[:] = [stat, float(last), run_sum, run_len]
        return stat

    def folded(self, subject: str) -> int:
        """The last bucket folded for ``subject`` (-1: none)."""
        state = self.state.get(subject)
        return int(state[1]) if state else -1

    def skip_to(self, subject: str, index: int) -> None:
        """Buckets up to ``index`` are unknown (no report covers them): never fold them."""
        state = self.state.setdefault(subject, [0.0, -1.0, 0.0, 0.0])
        state[1] = max(state[1], float(index))

    def run(self, subject: str) -> tuple[float, int]:
        """(count, buckets) of the current run (the buckets since the statistic stood at 0)."""
        state = self.state.get(subject)
        return (state[2], int(state[3])) if state else (0.0, 0)

    def run_mean(self, subject: str) -> float:
        """Mean count per bucket over the current run (0 when the statistic is at zero)."""
        state = self.state.get(subject)
        return state[2] / state[3] if state and state[3] else 0.0

    def value(self, subject: str) -> float:
        state = self.state.get(subject)
        return state[0] if state else 0.0

    def snapshot(self) -> dict[str, Any]:
        return {k: list(v) for k, v in self.state.items()}

    def restore(self, state: dict[str, Any]) -> None:
        self.state = {k: [float(x) for x in v] for k, v in state.items() if len(v) == 4}


def complete_buckets(
    ring: Ring, seconds: float, watermark: float, after: int = -(2**62)
) -> list[tuple[int, float]]:
    """``(index, count)`` of the complete buckets (field 0) of ``seconds`` before a watermark
    (only those after bucket ``after``)."""
    lo, hi = ring.complete_range(seconds, watermark)
    n, w, values = ring.n, ring.width, ring.values
    return [(b, values[(b % n) * w]) for b in range(max(lo, after + 1), hi + 1)]
