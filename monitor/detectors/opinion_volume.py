"""The ``volume`` condition of the opinion detector, judged against the topic's own burstiness.

Mentions of a topic are overdispersed: news cycles, reposts and slow swings of
interest make a topic's count per window vary far more than a Poisson count of
the same mean. Judged by a Poisson tail, a busy topic's ordinary 2x swing looks
like a one-in-a-million event. So each topic learns its dispersion: after each
window that passed without an incident, the count ``x`` against what ordinary
traffic gives ``mu`` adds ``((x - mu)^2 - mu) / mu`` and ``mu`` to two decaying
sums (a week of windows); their ratio is the moment estimate of ``alpha`` in a
negative binomial of variance ``mu + alpha mu^2`` (``alpha`` = 0: Poisson; a
topic whose level swings by 30 % has ``alpha`` near 0.1). A window is learned
only once the window after it passed without an incident (a storm's first
minutes, before it is found, are not learned), and the estimate starts from a
prior of ``PRIOR_ALPHA`` worth ``PRIOR_WINDOWS`` windows.

Volume at the topic's usual negative share is judged by that negative binomial
tail, and on the log scale against the topic's own swings: ``ln(x / mu)`` at
least ``z sqrt(alpha)``, ``z`` the normal quantile of ``p_value`` (4.75 at
1e-6; a topic with ``alpha`` 0.1 needs 4.5x, one with 0.02 needs 2x). A 2-4x
news burst on a topic known to burst is not an incident, a steady topic's
sudden 10x is; bursts that pass unflagged teach the topic its burstiness.
Volume with a negative share clearly above the usual one (binomial tail under
``RAISED_P``) is the start of a storm and needs less: the Poisson tail, as
before. Both also need ``min_count`` mentions and ``ratio`` x the larger of
what ordinary traffic gives (:func:`ordinary_mentions`) and a line through the
half hour before the window.
"""

from __future__ import annotations

import math
from statistics import NormalDist
from typing import Any, Final

from watchfloor.monitor.detectors.conditions import Breach
from watchfloor.monitor.detectors.opinion_storm import MIN_SHARE, binomial_sf, usual_share
from watchfloor.monitor.windows import Ring, poisson_sf

__all__ = ["MENTIONS", "NEGATIVE", "Dispersion", "nb_sf", "ordinary_mentions", "volume"]

MENTIONS, NEGATIVE = 0, 1
PRIOR_ALPHA: Final = 0.05
"""Dispersion assumed of a topic not yet seen for long (its level swings by about 20 %)."""
PRIOR_WINDOWS: Final = 12.0
"""The prior weighs as much as this many learned windows (two hours at 10 minutes)."""
MEMORY_WINDOWS: Final = 1008.0
"""Learned windows decay with this time constant (a week of 10-minute windows)."""
RAISED_P: Final = 1e-3
"""The window's negatives this unlikely at the usual share: the share is rising."""


class Dispersion:
    """One topic's learned ``alpha``: ``[num, den, windows, window index, pending count,
    pending expected, pending clean]``."""

    __slots__ = ("state",)

    def __init__(self) -> None:
        self.state = [0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0]

    def alpha(self) -> float:
        num, den, n = self.state[0], self.state[1], self.state[2]
        own = num / den if den > 0 else 0.0
        return max(0.0, (n * own + PRIOR_WINDOWS * PRIOR_ALPHA) / (n + PRIOR_WINDOWS))

    def window(self, index: int, count: float, expected: float, learn: bool) -> None:
        """At the first look into window ``index``: learn the window held back at the last
        boundary if it stayed clean, and hold back this one (when ``learn``)."""
        s = self.state
        if index == s[3]:
            return
        if s[6] and s[5] > 0:
            decay = 1.0 - 1.0 / MEMORY_WINDOWS
            x, mu = s[4], s[5]
            s[0] = s[0] * decay + ((x - mu) ** 2 - mu) / mu
            s[1] = s[1] * decay + mu
            s[2] = s[2] * decay + 1.0
        s[3], s[4], s[5], s[6] = float(index), count, expected, 1.0 if learn else 0.0

    def spoil(self) -> None:
        """An incident condition held: the window held back is not learned."""
        self.state[6] = 0.0

    def snapshot(self) -> list[float]:
        return list(self.state)

    def restore(self, state: Any) -> None:
        if isinstance(state, list) and len(state) == len(self.state):
            self.state = [float(x) for x in state]


def nb_sf(k: float, mu: float, alpha: float) -> float:
    """P(X >= k) for a negative binomial of mean ``mu`` and variance ``mu + alpha mu^2``."""
    k = math.ceil(k)
    if k <= 0:
        return 1.0
    if mu <= 0:
        return 0.0
    if alpha < 1e-9:
        return poisson_sf(k, mu)
    r = 1.0 / alpha
    log_q = math.log(mu / (r + mu))
    log_p0 = r * math.log(r / (r + mu))

    def log_pmf(i: int) -> float:
        return math.lgamma(i + r) - math.lgamma(r) - math.lgamma(i + 1) + log_p0 + i * log_q

    if k <= mu:  # the lower part is the shorter sum
        return max(0.0, 1.0 - sum(math.exp(log_pmf(i)) for i in range(k)))
    total, log_term, i = 0.0, log_pmf(k), k
    while True:
        term = math.exp(log_term)
        total += term
        if term < 1e-15 * total or i > k + 100_000:
            return min(1.0, total)
        log_term += math.log((i + r) / (i + 1)) + log_q
        i += 1


def expected_mentions(ring: Ring, p: Any, w: float) -> float:
    """Mentions the topic's trend baseline expects in the window (at least the floor)."""
    return max(ring.expected(p.window_s, w, MENTIONS), p.floor_per_window)


def ordinary_mentions(ring: Ring, p: Any, w: float) -> float:
    """What ordinary traffic gives in the window: the trend, but never below the topic's
    average in the half hour before the window (after an evening's fall the trend points
    far below the night's level). Judged against only to open, and learned from only
    outside incidents: during a storm that half hour holds the storm."""
    lo, hi = ring.complete_range(p.recent_s, w - p.window_s)
    before = ring.complete_sum(p.recent_s, w - p.window_s, MENTIONS) / max(1, hi - lo + 1)
    return max(expected_mentions(ring, p, w), before * round(p.window_s / ring.bucket_s))


def volume(name: str, ring: Ring, alpha: float, p: Any, w: float, old: set[str]) -> Breach | None:
    """The ``volume`` condition at ``w``, else None (the topic is warm)."""
    observed = ring.complete_sum(p.window_s, w, MENTIONS)
    expected = expected_mentions(ring, p, w)
    ratio = observed / expected
    raised = _share_raised(ring, p, w, observed)
    if "volume" in old:
        holds = ratio >= 1.5 and observed >= p.min_count / 2
    elif observed < p.min_count:
        holds = False
    else:
        # To fire, also above a line through the half hour before the window:
        # the evening rise of a topic is not an event, a jump is.
        recent = ring.linear_forecast(p.recent_s, w - p.window_s, p.window_s, w, MENTIONS)
        bar = max(ordinary_mentions(ring, p, w), recent)
        if raised:
            holds = observed >= p.ratio * bar and poisson_sf(observed, bar) < p.p_value
        else:
            swing = math.exp(NormalDist().inv_cdf(1.0 - p.p_value) * math.sqrt(alpha))
            holds = (
                observed >= max(p.ratio, swing) * bar and nb_sf(observed, bar, alpha) < p.p_value
            )
    if not holds:
        return None
    severity = (
        "critical" if ratio >= p.critical_ratio else "major" if ratio >= p.major_ratio else "minor"
    )
    minutes = p.window_s / 60
    title = (
        f"Mentions of {name} up {ratio:.1f}x: {observed:.0f} in {minutes:g} min "
        f"({expected:.1f} expected)"
    )
    evidence = {
        "mentions": int(observed),
        "expected": round(expected, 1),
        "ratio": round(ratio, 2),
        "p_value": poisson_sf(observed, expected) if raised else nb_sf(observed, expected, alpha),
        "dispersion": round(alpha, 3),
        "negative_share_rising": raised,
        "window_s": p.window_s,
    }
    return Breach("volume", severity, title, evidence)


def _share_raised(ring: Ring, p: Any, w: float, mentions: float) -> bool:
    """Whether the window's negative mentions are unlikely at the topic's usual share."""
    negative = ring.complete_sum(p.window_s, w, NEGATIVE)
    usual = usual_share(ring, NEGATIVE, MENTIONS)
    return binomial_sf(int(negative), int(mentions), max(usual, MIN_SHARE)) < RAISED_P
