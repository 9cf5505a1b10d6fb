"""Satisfaction detector: the share of satisfied customers against 95 % and 90 %.

001 §1.1, §1.4: duty staff keep customer satisfaction at 95 % or more; a
platform's yearly target of 90 % is the floor. Subject: the queue, one rule,
``satisfaction.queue`` (kind ``sla``), thresholds per channel or queue.

From ``contact`` events' ``csat`` (1-5; 4 and 5 count as satisfied, the usual
CSAT reading) over ``window_s`` of complete buckets. A queue is judged only with
``min_ratings`` ratings in the window, and it fires only when the shortfall is
beyond chance: the one-sided Wilson upper bound (``confidence_z`` 3.29: p 0.0005
a look) of its share is below the target. The window is looked at every 5
minutes, so 12 looks an hour spend the sequential rules' false-alarm budget of
0.006 per subject-hour (about one a week); a 95 % bound would let a queue that
meets the target fire every few hours. Minor, major when the share is below the
floor. A queue at 93 % on 60 ratings is within chance of 95 %; at 92 % on 1 500
ratings it is not. Once active it clears when the share
itself is back at the target. The answer changes only when a bucket closes, so
the queues are judged once per bucket.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Final

from watchfloor.core.events import Contact, Event
from watchfloor.core.vocabulary import CSAT_SATISFIED_FROM, SATISFACTION_FLOOR, SATISFACTION_TARGET
from watchfloor.monitor.detectors.base import Signal
from watchfloor.monitor.detectors.registry import DetectorSpec, register, setting
from watchfloor.monitor.detectors.sla import wilson
from watchfloor.monitor.rule_set import Rules
from watchfloor.monitor.windows import Ring

RULE: Final = "satisfaction.queue"
RATED, SATISFIED = 0, 1


@dataclass(frozen=True, slots=True)
class SatisfactionRules:
    """``[satisfaction]``: the settings of the satisfaction detector."""

    enabled: bool = setting(True, "run this detector")
    target: float = setting(
        SATISFACTION_TARGET, "001 §1.1, §1.4: >= 95 % satisfied (duty staff)", high=1.0
    )
    floor: float = setting(
        SATISFACTION_FLOOR, "001 §1.4: a platform's yearly target 90 %: below it is major", high=1.0
    )
    window_s: float = setting(3600.0, "ratings of the last hour", above_zero=True)
    bucket_s: float = setting(300.0, "judged once per 5 min bucket", above_zero=True)
    min_ratings: float = setting(50.0, "judged from this many ratings in the window")
    confidence_z: float = setting(
        3.29,
        "Wilson bound, one-sided p 0.0005 a look: 12 looks an hour spend 0.006 (one a week)",
    )
    for_s: float = setting(0.0, "pending: the condition holds this long before it fires")
    keep_firing_for_s: float = setting(
        600.0, "resolving: keeps firing this long after it stops holding"
    )


class _Queue:
    __slots__ = ("channel", "ring", "tenant")

    def __init__(self, channel: str, ring: Ring) -> None:
        self.channel = channel
        self.ring = ring
        self.tenant: str | None = None


class SatisfactionDetector:
    """Satisfied share of rated contacts per queue."""

    name: ClassVar[str] = "satisfaction"
    event_types: ClassVar[frozenset[str]] = frozenset({"contact"})

    def __init__(self, rules: Rules) -> None:
        self.rules = rules
        self.p: SatisfactionRules = rules.satisfaction.base
        self.queues: dict[str, _Queue] = {}
        self.signals: dict[str, Signal] = {}
        self._judged = -1

    def _ring(self) -> Ring:
        return Ring(self.p.bucket_s, round(self.p.window_s / self.p.bucket_s) + 2, width=2)

    def observe(self, event: Event) -> bool | None:
        if type(event) is not Contact:
            return None
        e: Contact = event
        if e.csat is None:
            return None
        q = self.queues.get(e.queue)
        if q is None:
            q = self.queues[e.queue] = _Queue(e.channel, self._ring())
        q.channel, q.tenant = e.channel, e.tenant
        ok = q.ring.add(e.ts, 1, RATED)
        if ok and e.csat >= CSAT_SATISFIED_FROM:
            q.ring.add(e.ts, 1, SATISFIED)
        return ok

    def evaluate(self, watermark: float) -> list[Signal]:
        bucket = int(watermark // self.p.bucket_s)
        if bucket != self._judged:
            self._judged = bucket
            for name in list(self.queues):
                self._judge(name, self.queues[name], watermark)
        return list(self.signals.values())

    def next_due(self, at: float) -> float | None:
        if not self.queues:
            return None
        return (int(at // self.p.bucket_s) + 1) * self.p.bucket_s

    def figures(self, queue: str, watermark: float) -> dict[str, Any] | None:
        """Satisfied share and ratings of a queue over the window (the board's and the
        handover's figures), None without ratings."""
        q = self.queues.get(queue)
        if q is None:
            return None
        return _figures(q, self.rules.satisfaction.get(channel=q.channel, queue=queue), watermark)

    def _judge(self, name: str, q: _Queue, w: float) -> None:
        p = self.rules.satisfaction.get(channel=q.channel, queue=name)
        q.ring.advance(w)
        if q.ring.empty():
            del self.queues[name]
            self.signals.pop(name, None)
            return
        signal = self._verdict(name, q, p, w) if p.enabled else None
        if signal is None:
            self.signals.pop(name, None)
        else:
            self.signals[name] = signal

    def _verdict(self, name: str, q: _Queue, p: SatisfactionRules, w: float) -> Signal | None:
        found = _figures(q, p, w)
        if found is None or found["ratings"] < p.min_ratings:
            return None
        rated, share = found["ratings"], found["satisfied_share"]
        upper = wilson(share * rated, rated, p.confidence_z)[1]
        if name in self.signals:
            if share >= p.target:
                return None
        elif upper >= p.target:
            return None  # below target, but within chance on so few ratings
        severity = "major" if share < p.floor else "minor"
        title = (
            f"Satisfaction on {name} is {share:.0%} over {p.window_s / 60:g} min "
            f"({rated} ratings; target {p.target:.0%}, floor {p.floor:.0%})"
        )
        evidence = {"queue": name, "channel": q.channel, **found, "upper_bound": round(upper, 3)}
        return Signal(
            rule=RULE,
            kind="sla",
            subject=name,
            severity=severity,
            title=title,
            evidence=evidence,
            for_s=p.for_s,
            keep_firing_for_s=p.keep_firing_for_s,
            tenant=q.tenant,
        )

    def snapshot(self) -> dict[str, Any]:
        return {
            "queues": {
                name: {"channel": q.channel, "ring": q.ring.snapshot(), "tenant": q.tenant}
                for name, q in self.queues.items()
            },
            "active": sorted(self.signals),
        }

    def restore(self, state: dict[str, Any]) -> None:
        self.queues.clear()
        self.signals.clear()
        self._judged = -1
        for name, saved in state.get("queues", {}).items():
            q = self.queues[name] = _Queue(saved.get("channel", ""), self._ring())
            q.ring.restore(saved["ring"])
            q.tenant = saved.get("tenant")
        active = set(state.get("active", ()))
        for name in active & self.queues.keys():
            # Only the hysteresis matters: the next evaluation rebuilds the signal.
            q = self.queues[name]
            self.signals[name] = Signal(RULE, "sla", name, "minor", "", tenant=q.tenant)


def _figures(q: _Queue, p: SatisfactionRules, w: float) -> dict[str, Any] | None:
    rated = q.ring.complete_sum(p.window_s, w, RATED)
    if rated <= 0:
        return None
    share = q.ring.complete_sum(p.window_s, w, SATISFIED) / rated
    return {
        "satisfied_share": round(share, 3),
        "ratings": int(rated),
        "target": p.target,
        "floor": p.floor,
        "window_s": p.window_s,
    }


SPEC = register(
    DetectorSpec(
        section="satisfaction",
        kind="sla",
        params=SatisfactionRules,
        scopes=("channels", "queues"),
        build=SatisfactionDetector,
        order=27,
        title="customer satisfaction against 95 % / 90 %",
        notes=(
            "001 §1.1, §1.4: >= 95 % satisfied (duty staff), 90 % a platform's yearly target.",
            "From contact events' csat (4-5 of 5 satisfied); sla.satisfaction_alert is the",
            "older, off-by-default condition inside sla.queue: leave it off with this on.",
        ),
    )
)
