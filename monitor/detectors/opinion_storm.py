"""A storm of negative mentions, found as it rises: a Poisson CUSUM on negative arrivals.

The windowed conditions of the opinion detector wait for 20 mentions or 10
negative ones in their 10-minute window; a storm shows much earlier, in the
gaps between negative mentions. Over the inter-arrival times of a topic's
negative mentions, with its usual negative rate ``lam`` per second, the
log-likelihood ratio of "negatives come ``RATIO`` x as often" is ``ln RATIO``
at each negative mention and ``-lam (RATIO - 1)`` per second between them, so
the CUSUM jumps at each arrival and drains in between (its maximum is always
at an arrival). Lorden's bound counts observations, here arrivals: one false
alarm per ``e^h`` negative mentions, so a budget of ``F`` a topic-hour at
``lam`` needs ``h = ln(max(1, 3600 lam) / F)``.

It decides once the statistic crosses ``h`` and the run that raised it (the
mentions since it last stood at zero) holds at least half the window's
``min_negative`` negative mentions at the negative share the windowed rule
wants (``negative_share``, and the usual share + ``negative_share_rise``). A
topic without an hour of history is learned, not judged.
"""

from __future__ import annotations

import math
from typing import Any, Final

from watchfloor.monitor.detectors.conditions import Breach
from watchfloor.monitor.windows import Ring

__all__ = ["RATIO", "NegativeStorm", "binomial_sf", "usual_negative_rate"]

RATIO: Final = 10.0
"""The negative rate the test looks for, x the usual (a storm, not a bad afternoon)."""
FALSE_ALARMS_PER_HOUR: Final = 0.006
"""About one a topic-week, the budget of the other sequential tests."""
RUN_P: Final = 3e-4
"""The run's negative mentions must be this unlikely at the topic's usual share (binomial
tail): a chance cluster of a few complaints in a busy topic is not a storm."""
CAP: Final = 2.0
"""The statistic is capped at this x its threshold: a storm clears within minutes of its end."""


class NegativeStorm:
    """One topic's CUSUM over its negative mentions: ``[stat, last arrival, run negatives,
    run mentions, threshold]``."""

    __slots__ = ("state",)

    def __init__(self) -> None:
        self.state = [0.0, -math.inf, 0.0, 0.0, math.inf]

    def mention(self, ts: float, negative: bool, usual_rate: float) -> bool:
        """Fold one mention (in time order); True when the statistic is at its threshold."""
        stat, last, run_neg, run_all, _ = self.state
        drained = self._drain(ts, usual_rate)
        if drained <= 0.0:
            run_neg, run_all = 0.0, 0.0
        run_all += 1
        h = math.log(max(1.0, 3600.0 * usual_rate) / FALSE_ALARMS_PER_HOUR)
        if negative:
            stat = min(CAP * h, drained + math.log(RATIO))
            last = ts
            run_neg += 1
        else:
            stat = drained if drained > 0.0 else 0.0
            last = ts if drained > 0.0 else last
        self.state = [stat, last, run_neg, run_all, h]
        return stat >= h

    def _drain(self, ts: float, usual_rate: float) -> float:
        stat, last = self.state[0], self.state[1]
        if stat <= 0.0 or not math.isfinite(last):
            return 0.0
        return max(0.0, stat - usual_rate * (RATIO - 1.0) * (ts - last))

    def breach(
        self, name: str, w: float, usual_rate: float, usual_share: float, p: Any, held: bool
    ) -> Breach | None:
        """The ``negative_share`` condition as the test sees it at ``w``, else None."""
        _, _, run_neg, run_all, h = self.state
        stat = self._drain(w, usual_rate)
        if stat < (h / 2 if held else h) or not run_all:
            return None
        share = run_neg / run_all
        bar = max(p.negative_share, usual_share + p.negative_share_rise)
        if run_neg < p.min_negative / 2 or share < bar:
            return None
        if not held and binomial_sf(int(run_neg), int(run_all), max(usual_share, 0.1)) >= RUN_P:
            return None
        per_hour = usual_rate * 3600
        title = (
            f"Negative mentions of {name} surging: {run_neg:.0f} of {run_all:.0f} "
            f"({share:.0%}), usually {per_hour:.1f} an hour"
        )
        evidence = {
            "negative": int(run_neg),
            "mentions": int(run_all),
            "share": round(share, 3),
            "usual_share": round(usual_share, 3),
            "usual_negative_per_hour": round(per_hour, 2),
            "cusum": round(stat, 1),
            "cusum_threshold": round(h, 1),
        }
        severity = "major" if share >= 0.75 and run_neg >= p.min_negative else "minor"
        return Breach("negative_share", severity, title, evidence)

    def snapshot(self) -> list[float]:
        return list(self.state)

    def restore(self, state: Any) -> None:
        if isinstance(state, list) and len(state) == 5:
            self.state = [float(x) for x in state]


def usual_negative_rate(ring: Ring, negative: int, mentions: int, p: Any) -> float:
    """A topic's usual negative mentions per second: its baseline, never below 10 % of its
    mentions (a topic is never assumed to be less negative) nor below the floor window's."""
    bucket = ring.bucket_s
    own = ring.baselines[negative].smooth() / bucket
    share_floor = 0.1 * ring.baselines[mentions].smooth() / bucket
    floor = 0.1 * p.floor_per_window / p.window_s
    return max(own, share_floor, floor)


def binomial_sf(k: int, n: int, rate: float) -> float:
    """P(X >= k) for X ~ Binomial(n, rate), summed in log space from k upwards."""
    if k <= 0:
        return 1.0
    if k > n or rate <= 0.0:
        return 0.0
    if rate >= 1.0:
        return 1.0
    log_p, log_q = math.log(rate), math.log1p(-rate)
    total = 0.0
    for i in range(k, n + 1):
        log_term = math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1)
        term = math.exp(log_term + i * log_p + (n - i) * log_q)
        total += term
        if i > n * rate and term < 1e-18 * total:
            break
    return min(1.0, total)
