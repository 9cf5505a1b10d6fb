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
wants (``negative_share``, and the usual share + ``negative_share_rise``), and
the run is more than a burst of news, which brings up to ``BURST`` x the
mentions at the usual share. Either of two checks says so:

- the share has moved: a second CUSUM, over every mention, of the binomial
  log-likelihood ratio of the share the rule wants (``q1``) against the usual
  one (``q0``): ``+ ln(q1 / q0)`` at a negative mention, ``+ ln((1 - q1) /
  (1 - q0))`` at another one, at its own Lorden threshold
  ``ln(max(1, 3600 m) / F)`` for ``m`` mentions a second;
- the negatives came faster than news brings them: the last ``k`` negative
  mentions (4 to 10) within a span that ``BURST`` x the usual negative rate
  fills that fast with Poisson probability under ``F / (3600 lam)`` (each
  negative arrival is a chance to look). A quiet topic's storm can open with
  neutral posts among the complaints: its share shows later than its pace.

A topic without an hour of history is learned, not judged.

The usual share is the ratio of the negative and mention baselines, shrunk
towards ``PRIOR_SHARE`` by ``PRIOR_MENTIONS`` mentions: on a topic of a dozen
mentions an hour, three complaints in the last one are not its usual share.
"""

from __future__ import annotations

import math
from typing import Any, Final

from watchfloor.monitor.detectors.conditions import Breach
from watchfloor.monitor.windows import Ring, poisson_sf

__all__ = [
    "RATIO",
    "NegativeStorm",
    "binomial_sf",
    "usual_mention_rate",
    "usual_negative_rate",
    "usual_share",
]

RATIO: Final = 10.0
"""The negative rate the test looks for, x the usual (a storm, not a bad afternoon)."""
FALSE_ALARMS_PER_HOUR: Final = 0.006
"""About one a topic-week, the budget of the other sequential tests."""
MIN_SHARE: Final = 0.1
"""A topic is never assumed to be less than 10 % negative."""
BURST: Final = 4.0
"""News drives a topic's mentions up to about this x its usual rate at its usual share."""
SCAN: Final = 10
"""The storm test keeps the times of this many of the last negative mentions ..."""
SCAN_MIN: Final = 4
"""... and asks whether the last 4 to 10 of them came faster than a burst of news brings."""
PRIOR_SHARE: Final = 0.15
"""The negative share assumed of a topic before its mentions say otherwise."""
PRIOR_MENTIONS: Final = 20.0
"""The prior share weighs as much as this many mentions."""
CAP: Final = 2.0
"""The statistic is capped at this x its threshold: a storm clears within minutes of its end."""


class NegativeStorm:
    """One topic's CUSUMs over its mentions: ``[stat, last arrival, run negatives, run
    mentions, threshold, share statistic]``."""

    __slots__ = ("recent", "state")

    def __init__(self) -> None:
        self.state = [0.0, -math.inf, 0.0, 0.0, math.inf, 0.0]
        self.recent: list[float] = []  # the times of the last ``SCAN`` negative mentions

    def mention(self, ts: float, negative: bool, usual: tuple[float, float, float], p: Any) -> bool:
        """Fold one mention (in time order); True when the rate statistic is at its threshold.
        ``usual``: the topic's negative mentions and mentions per second, its negative share."""
        usual_rate, mention_rate, usual_share = usual
        stat, last, run_neg, run_all, _, by_share = self.state
        drained = self._drain(ts, usual_rate)
        if drained <= 0.0:
            run_neg, run_all = 0.0, 0.0
        run_all += 1
        h = math.log(max(1.0, 3600.0 * usual_rate) / FALSE_ALARMS_PER_HOUR)
        h_share = share_threshold(mention_rate)
        by_share = min(CAP * h_share, max(0.0, by_share + _share_llr(negative, usual_share, p)))
        if negative:
            self.recent = [*self.recent[1 - SCAN :], ts]
            stat = min(CAP * h, drained + math.log(RATIO))
            last = ts
            run_neg += 1
        else:
            stat = drained if drained > 0.0 else 0.0
            last = ts if drained > 0.0 else last
        self.state = [stat, last, run_neg, run_all, h, by_share]
        return stat >= h

    def _drain(self, ts: float, usual_rate: float) -> float:
        stat, last = self.state[0], self.state[1]
        if stat <= 0.0 or not math.isfinite(last):
            return 0.0
        return max(0.0, stat - usual_rate * (RATIO - 1.0) * (ts - last))

    def breach(
        self, name: str, w: float, usual: tuple[float, float, float], p: Any, held: bool
    ) -> Breach | None:
        """The ``negative_share`` condition as the test sees it at ``w``, else None; ``usual``:
        the topic's negative mentions and mentions per second, and its negative share."""
        usual_rate, mention_rate, usual_share = usual
        _, _, run_neg, run_all, h, by_share = self.state
        stat = self._drain(w, usual_rate)
        if stat < (h / 2 if held else h) or not run_all:
            return None
        share = run_neg / run_all
        bar = max(p.negative_share, usual_share + p.negative_share_rise)
        if run_neg < p.min_negative / 2 or share < bar:
            return None
        if not held and not (
            by_share >= share_threshold(mention_rate) or self._beyond_news(w, usual_rate)
        ):
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
            "share_cusum": round(by_share, 1),
            "share_cusum_threshold": round(share_threshold(mention_rate), 1),
        }
        severity = "major" if share >= 0.75 and run_neg >= p.min_negative else "minor"
        return Breach("negative_share", severity, title, evidence)

    def _beyond_news(self, w: float, usual_rate: float) -> bool:
        """The last ``k`` negative mentions (``SCAN_MIN`` <= k <= ``SCAN``) came faster than
        even ``BURST`` x their usual rate brings: Poisson tail under ``F`` / negative mentions
        an hour (each arrival is a chance to look)."""
        times = self.recent
        bar = FALSE_ALARMS_PER_HOUR / max(1.0, 3600.0 * usual_rate)
        for k in range(SCAN_MIN, len(times) + 1):
            span = max(1.0, w - times[-k])
            if poisson_sf(k, BURST * usual_rate * span) < bar:
                return True
        return False

    def snapshot(self) -> dict[str, list[float]]:
        return {"state": list(self.state), "recent": list(self.recent)}

    def restore(self, state: Any) -> None:
        if isinstance(state, dict):
            self.recent = [float(x) for x in state.get("recent", ())][-SCAN:]
            state = state.get("state")
        if isinstance(state, list) and len(state) in (5, 6):
            # A checkpoint from before the share statistic: it starts at zero.
            self.state = [float(x) for x in state] + [0.0] * (6 - len(state))


def share_threshold(mention_rate: float) -> float:
    """The share CUSUM's ``h``: one false alarm in ``e^h`` mentions (Lorden)."""
    return math.log(max(1.0, 3600.0 * mention_rate) / FALSE_ALARMS_PER_HOUR)


def _share_llr(negative: bool, usual_share: float, p: Any) -> float:
    """One mention's log-likelihood ratio: the share the rule wants against the usual one."""
    q1 = min(0.99, max(p.negative_share, usual_share + p.negative_share_rise))
    q0 = min(max(usual_share, MIN_SHARE), q1 - 0.01)
    return math.log(q1 / q0) if negative else math.log((1.0 - q1) / (1.0 - q0))


def usual_share(ring: Ring, negative: int, mentions: int) -> float:
    """A topic's usual negative share: its baselines' ratio, shrunk towards ``PRIOR_SHARE``
    by ``PRIOR_MENTIONS`` mentions (a thin topic's last hour says little)."""
    per = ring.baselines[mentions].tau  # buckets a baseline averages over
    neg = ring.baselines[negative].smooth() * per
    total = ring.baselines[mentions].smooth() * per
    return (neg + PRIOR_SHARE * PRIOR_MENTIONS) / (total + PRIOR_MENTIONS)


def usual_mention_rate(ring: Ring, mentions: int, p: Any) -> float:
    """A topic's usual mentions per second: its baseline, never below the floor window's."""
    own = ring.baselines[mentions].smooth() / ring.bucket_s
    return max(own, p.floor_per_window / p.window_s)


def usual_negative_rate(ring: Ring, negative: int, mentions: int, p: Any) -> float:
    """A topic's usual negative mentions per second: its baseline, never below 10 % of its
    mentions (a topic is never assumed to be less negative) nor below the floor window's."""
    bucket = ring.bucket_s
    own = ring.baselines[negative].smooth() / bucket
    share_floor = MIN_SHARE * ring.baselines[mentions].smooth() / bucket
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
