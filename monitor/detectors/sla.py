"""SLA detector: waits over the channel's threshold, service level, abandons, staffing.

Subject: the queue, and one rule, ``sla.queue``: one ongoing problem of a
queue is one incident (DESIGN.md), so every breached condition (longest wait,
service level, abandon rate, nobody staffed, and satisfaction when asked) is
listed in the evidence's ``conditions`` with its figures, and the signal's
severity is the worst of them. Each condition keeps its own hysteresis.

The latest ``queue.stats`` snapshot of a queue gives its
waiting contacts, longest wait and staffing; counts over a window (offered,
answered, answered within the threshold, abandoned, satisfaction ratings) come
from the snapshots' deltas or, for queues whose producer sends no deltas,
from ``contact`` events (an answer is within the SLA when its ``wait_s`` is
within the queue's threshold). Thresholds are per channel (chat 30 s, phone
15 s, email 24 h...) with per-queue overrides. Severity rises with how far a
figure is from its threshold, and every active signal carries an Erlang C
forecast of the next 15 minutes (how many agents are short) as evidence.

The abandon rate opens first by a sequential test on each interval's abandons
against the queue's usual share (:mod:`monitor.detectors.abandon`), as soon as
they are significant at the rule's false-alarm budget; the window still judges
a queue whose usual share is over the limit and holds an open breach.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any, ClassVar, Final

from watchfloor.core.events import Contact, Event, QueueStats
from watchfloor.core.vocabulary import (
    CHANNEL_SLA,
    DEFAULT_ANSWER_S,
)
from watchfloor.monitor.detectors.abandon import BUCKET_S as ABANDON_BUCKET_S
from watchfloor.monitor.detectors.abandon import AbandonTest
from watchfloor.monitor.detectors.base import Signal
from watchfloor.monitor.detectors.conditions import Breach, merge
from watchfloor.monitor.detectors.due import STRICT, earliest, filled, grid_after, window_changes
from watchfloor.monitor.detectors.registry import DetectorSpec, register, setting
from watchfloor.monitor.detectors.sequential import wilson
from watchfloor.monitor.planned import Calendar
from watchfloor.monitor.rule_set import Rules
from watchfloor.monitor.windows import Latch, Ring

logger = logging.getLogger(__name__)

BUCKET_S = 60.0
RULE: Final = "sla.queue"
# SL_BASE: answers whose timeliness is known; AB_BASE: contacts an abandon rate is over.
OFFERED, ANSWERED, IN_SLA, ABANDONED, RATED, SATISFIED, SL_BASE, AB_BASE = range(8)
WIDTH = 8


# The vocabulary's figures per channel (threshold, handle time, staleness), as scoped defaults.
CHANNEL_DEFAULTS: Final[dict[str, dict[str, float]]] = {
    sla.name: {"longest_wait_s": sla.answer_s, "aht_s": sla.aht_s}
    | ({"stale_s": sla.stale_s} if sla.stale_s is not None else {})
    for sla in CHANNEL_SLA.values()
}
CHANNEL_SOURCES: Final = {f"channels.{sla.name}": sla.source for sla in CHANNEL_SLA.values()}


@dataclass(frozen=True, slots=True)
class SlaRules:
    """``[sla]``: the settings of the SLA detector (thresholds per channel: CHANNEL_DEFAULTS)."""

    enabled: bool = setting(True, "run this detector")
    longest_wait_s: float = setting(
        DEFAULT_ANSWER_S, "answer threshold: fallback, set per channel below"
    )
    clear_factor: float = setting(
        0.8, "clears when the longest wait is back under 0.8x the threshold"
    )
    major_factor: float = setting(2.0, "longest wait >= 2x threshold: major")
    critical_factor: float = setting(4.0, ">= 4x: critical")
    window_s: float = setting(900.0, "service level and abandon rate over 15 min", above_zero=True)
    stale_s: float = setting(300.0, "a queue snapshot older than this is not judged")
    service_level_target: float = setting(
        0.8, "convention (80/20): the documents give thresholds, not a share", high=1.0
    )
    min_answered: float = setting(20.0, "service level judged from this many answered contacts")
    abandon_rate_limit: float = setting(
        0.10, "abandoned / offered at or above this: minor (convention)", high=1.0
    )
    abandon_major: float = setting(0.20, "abandon rate of a major breach", high=1.0)
    abandon_critical: float = setting(0.35, "abandon rate of a critical breach", high=1.0)
    min_offered: float = setting(20.0, "abandon rate judged from this many offered contacts")
    abandon_sequential: bool = setting(
        True, "sequential test on abandons (binomial CUSUM per 10 s): opens before the window"
    )
    abandon_usual_floor: float = setting(
        0.03, "... against the queue's usual abandon share, never taken below 3 %", high=1.0
    )
    abandon_ratio: float = setting(
        2.0, "... for a share of max(abandon_rate_limit, 2x the usual)", low=1.01
    )
    abandon_false_alarms_per_hour: float = setting(
        0.006, "... at this false-alarm budget per queue-hour (about one a week)", above_zero=True
    )
    abandon_tau_s: float = setting(
        7200.0, "time constant of the usual abandon share", above_zero=True
    )
    abandon_min_history_s: float = setting(
        1800.0, "the usual share is learned this long before the sequential test runs"
    )
    confidence_z: float = setting(
        1.645, "fire only when the whole one-sided 95 % Wilson interval is past the line"
    )
    min_waiting: int = setting(5, "the longest wait counts once at least 5 contacts wait")
    satisfaction_alert: bool = setting(
        False, "satisfaction as its own condition (else evidence only: ratings lag)"
    )
    satisfaction_target: float = setting(
        0.95, "001 §1.1, §1.4: >= 95 % satisfied (duty staff)", high=1.0
    )
    satisfaction_major: float = setting(
        0.90, "001 §1.4: a platform's yearly target 90 %: below it is major", high=1.0
    )
    satisfaction_window_s: float = setting(
        3600.0, "satisfaction over the last hour", above_zero=True
    )
    min_ratings: float = setting(50.0, "satisfaction judged from this many ratings")
    no_agents_for_s: float = setting(30.0, "nobody staffed while contacts wait, this long")
    aht_s: float = setting(300.0, "handle time for the Erlang C forecast when contacts give none")
    forecast: bool = setting(True, "Erlang C forecast of the next 15 minutes as evidence")
    for_s: float = setting(60.0, "pending: the condition holds this long before it fires")
    keep_firing_for_s: float = setting(
        120.0, "resolving: keeps firing this long after it stops holding"
    )


class _Queue:
    __slots__ = (
        "abandons",
        "aht",
        "channel",
        "from_stats",
        "no_agents_since",
        "ring",
        "snap",
        "tenant",
    )

    def __init__(self, channel: str, buckets: int, abandons: AbandonTest) -> None:
        self.channel = channel
        self.ring = Ring(BUCKET_S, buckets, width=WIDTH)
        self.abandons = abandons
        self.snap: dict[str, Any] | None = None
        self.from_stats = False
        self.aht: float | None = None
        self.no_agents_since: float | None = None
        self.tenant: str | None = None


class SlaDetector:
    """Service-level breaches per queue."""

    name: ClassVar[str] = "sla"
    event_types: ClassVar[frozenset[str]] = frozenset({"queue.stats", "contact"})

    def __init__(self, rules: Rules) -> None:
        self.rules = rules
        base = rules.sla.base
        self.buckets = round(max(base.window_s, base.satisfaction_window_s) / BUCKET_S) + 3
        self.queues: dict[str, _Queue] = {}
        self.signals: dict[str, Signal] = {}
        self.dirty: set[str] = set()
        self.latch = Latch()
        self._scanned = -1
        self.calendar = Calendar(rules.document)

    def _queue(self, name: str, channel: str) -> _Queue:
        q = self.queues.get(name)
        if q is None:
            q = self.queues[name] = _Queue(channel, self.buckets, self._abandon_test(name, channel))
        return q

    def _abandon_test(self, name: str, channel: str, interval: float = 0.0) -> AbandonTest:
        """A queue's sequential abandon test, shaped for its reporting interval; the usual
        share never learns the queue's planned events."""
        p = self.rules.sla.get(channel=channel, queue=name)
        test = AbandonTest(p.window_s, p.abandon_tau_s, p.stale_s, interval)
        for start, end in self.calendar.spans(name, channel):
            test.ring.pause(start, end)
        return test

    def observe(self, event: Event) -> None:
        if type(event) is QueueStats:
            self._observe_stats(event)
        elif type(event) is Contact:
            self._observe_contact(event)

    def _observe_stats(self, e: QueueStats) -> None:
        q = self._queue(e.queue, e.channel)
        q.channel, q.tenant = e.channel, e.tenant
        if q.snap is None or e.ts >= q.snap["ts"]:  # a late snapshot only brings its counts
            q.snap = {
                "ts": e.ts,
                "waiting": e.waiting,
                "longest_wait_s": e.longest_wait_s,
                "agents_available": e.agents_available,
                "agents_busy": e.agents_busy,
            }
            if e.waiting > 0 and e.agents_available + e.agents_busy == 0:
                if q.no_agents_since is None:
                    q.no_agents_since = e.ts
            else:
                q.no_agents_since = None
        if e.answered is not None or e.abandoned is not None:
            q.from_stats = True
            _count_stats(q.ring, e)
        if e.abandoned is not None:
            self._count_abandons(e.queue, q, e)
        self.dirty.add(e.queue)

    def _count_abandons(self, name: str, q: _Queue, e: QueueStats) -> None:
        interval = e.interval_s or 0.0
        # A longer reporting interval than the test was shaped for: reshape (afresh).
        if interval > max(q.abandons.interval, ABANDON_BUCKET_S):
            q.abandons = self._abandon_test(name, q.channel, interval)
        base = e.offered if e.offered is not None else (e.answered or 0) + (e.abandoned or 0)
        q.abandons.report(e.ts)
        q.abandons.add(e.ts, base, e.abandoned or 0, interval)

    def _observe_contact(self, e: Contact) -> None:
        q = self._queue(e.queue, e.channel)
        q.tenant = e.tenant
        if e.csat is not None:
            q.ring.add(e.ts, 1, RATED)
            if e.csat >= 4:
                q.ring.add(e.ts, 1, SATISFIED)
        if e.handle_s is not None and e.action == "completed":
            q.aht = e.handle_s if q.aht is None else q.aht + 0.05 * (e.handle_s - q.aht)
        if q.from_stats:
            return
        if e.action == "offered":
            q.ring.add(e.ts, 1, OFFERED)
            q.ring.add(e.ts, 1, AB_BASE)
            q.abandons.add(e.ts, 1, 0)
        elif e.action == "answered":
            q.ring.add(e.ts, 1, ANSWERED)
            if e.wait_s is not None:
                threshold = self.rules.sla.get(channel=e.channel, queue=e.queue).longest_wait_s
                q.ring.add(e.ts, 1, SL_BASE)
                if e.wait_s <= threshold:
                    q.ring.add(e.ts, 1, IN_SLA)
        elif e.action == "abandoned":
            q.ring.add(e.ts, 1, ABANDONED)
            q.abandons.add(e.ts, 0, 1)
        self.dirty.add(e.queue)

    def evaluate(self, watermark: float) -> list[Signal]:
        # Windows move every bucket, snapshots go stale: every queue is judged
        # once per 10 s of event time, changed queues at every evaluate.
        tick = int(watermark // 10)
        if tick != self._scanned:
            self._scanned = tick
            names: Any = self.queues
        else:
            names = self.dirty
        for name in list(names):
            self._judge(name, self.queues[name], watermark)
        self.dirty.clear()
        return list(self.signals.values())

    def next_due(self, at: float) -> float | None:
        """Replay (:mod:`monitor.engine`): the next 10 s tick at which a window gains or
        loses a count, a snapshot goes stale or nobody has been staffed long enough."""
        due: list[float | None] = []
        for name, q in self.queues.items():
            p = self.rules.sla.get(channel=q.channel, queue=name)
            if name in self.signals:
                due.append(at + 1)
            snap = q.snap
            spans = (round(p.window_s / BUCKET_S), round(p.satisfaction_window_s / BUCKET_S))
            due.append(window_changes(filled(q.ring), BUCKET_S, spans, at))
            due.append(q.abandons.due(at))
            if snap is not None:
                due.append(snap["ts"] + p.stale_s + STRICT)
                if q.no_agents_since is not None:
                    due.append(q.no_agents_since + p.no_agents_for_s)
        found = earliest(t for t in due if t is not None and t > at)
        return None if found is None else grid_after(found, at, 10.0)

    def _judge(self, name: str, q: _Queue, w: float) -> None:
        p = self.rules.sla.get(channel=q.channel, queue=name)
        q.ring.advance(w)
        # A condition's lower clear threshold applies only once it has held for for_s.
        latched = {c for c in CONDITIONS if self.latch.held(f"{name}|{c}", w, p.for_s)}
        found: list[Breach] = []
        if p.enabled:
            for check in CHECKS:
                if check is _satisfaction and not p.satisfaction_alert:
                    continue
                breach = check(name, q, p, w, latched)
                if breach is not None:
                    found.append(breach)
        names = {b.condition for b in found}
        # The usual abandon share does not learn the queue's problems.
        q.abandons.learn(w, bool(found) or q.abandons.raised)
        for condition in CONDITIONS:
            self.latch.mark(f"{name}|{condition}", w, condition in names)
        if found:
            self.signals[name] = self._queue_signal(name, q, p, w, found)
        else:
            self.signals.pop(name, None)

    def _queue_signal(self, name: str, q: _Queue, p: SlaRules, w: float, found: list) -> Signal:
        """One signal for the queue: every breached condition, the worst one's severity."""
        worst, title, merged = merge(found)
        evidence: dict[str, Any] = {"queue": name, "channel": q.channel, **merged}
        if p.forecast:
            forecast = erlang_forecast(q, p, w)
            if forecast is not None:
                evidence["forecast"] = forecast
        satisfaction = _satisfaction_figures(q, p, w)
        if satisfaction is not None:
            evidence["satisfaction"] = satisfaction
        return Signal(
            rule=RULE,
            kind="sla",
            subject=name,
            severity=worst.severity,
            title=title,
            evidence=evidence,
            # The sequential test's own false-alarm budget is its confirmation: no pending.
            for_s=0.0 if evidence.get("found_by") == "sequential" else p.for_s,
            keep_firing_for_s=p.keep_firing_for_s,
            tenant=q.tenant,
            related=self.rules.depends_on(name),
        )

    def snapshot(self) -> dict[str, Any]:
        return {
            "queues": {
                name: {
                    "channel": q.channel,
                    "ring": q.ring.snapshot(),
                    "snap": q.snap,
                    "from_stats": q.from_stats,
                    "aht": q.aht,
                    "no_agents_since": q.no_agents_since,
                    "tenant": q.tenant,
                    "abandons": q.abandons.snapshot(),
                }
                for name, q in self.queues.items()
            },
            "latch": self.latch.snapshot(),
        }

    def restore(self, state: dict[str, Any]) -> None:
        self.queues.clear()
        self.signals.clear()
        self._scanned = -1
        for name, saved in state.get("queues", {}).items():
            q = self._queue(name, saved.get("channel", ""))
            q.ring.restore(saved["ring"])
            q.snap = saved.get("snap")
            q.from_stats = bool(saved.get("from_stats"))
            q.aht = saved.get("aht")
            q.no_agents_since = saved.get("no_agents_since")
            q.tenant = saved.get("tenant")
            abandons = saved.get("abandons")
            if abandons is not None:
                q.abandons = self._abandon_test(name, q.channel, float(abandons["interval"]))
                q.abandons.restore(abandons)
        self.latch.restore(state.get("latch", {}))


def _count_stats(ring: Ring, e: QueueStats) -> None:
    """Deltas of a snapshot; a rate only counts what its producer reported."""
    ring.add(e.ts, e.offered or 0, OFFERED)
    ring.add(e.ts, e.answered or 0, ANSWERED)
    if e.answered is not None and e.answered_in_sla is not None:
        ring.add(e.ts, e.answered, SL_BASE)
        ring.add(e.ts, e.answered_in_sla, IN_SLA)
    if e.abandoned is not None:
        ring.add(e.ts, e.abandoned, ABANDONED)
        base = e.offered if e.offered is not None else (e.answered or 0) + e.abandoned
        ring.add(e.ts, base, AB_BASE)


def _fresh(q: _Queue, p: SlaRules, w: float) -> dict[str, Any] | None:
    snap = q.snap
    if snap is None or w - snap["ts"] > p.stale_s:
        return None
    return snap


def _by_factor(value: float, threshold: float, p: SlaRules) -> str:
    if value >= threshold * p.critical_factor:
        return "critical"
    return "major" if value >= threshold * p.major_factor else "minor"


def _longest_wait(name: str, q: _Queue, p: SlaRules, w: float, old: set[str]) -> Breach | None:
    snap = _fresh(q, p, w)
    if snap is None or snap["waiting"] <= 0:
        return None
    wait, limit = snap["longest_wait_s"], p.longest_wait_s
    bar = limit * p.clear_factor if "longest_wait" in old else limit
    if wait < bar:
        return None
    # One or two customers waiting long in a served queue is chance, not a breach.
    if "longest_wait" not in old and snap["waiting"] < p.min_waiting:
        return None
    severity = _by_factor(wait, limit, p)
    title = f"Longest wait on {name} is {_duration(wait)} (threshold {_duration(limit)})"
    evidence = {"longest_wait_s": wait, "threshold_s": limit, "waiting": snap["waiting"]}
    return Breach("longest_wait", severity, title, evidence)


def _no_agents(name: str, q: _Queue, p: SlaRules, w: float, old: set[str]) -> Breach | None:
    snap = _fresh(q, p, w)
    since = q.no_agents_since
    if snap is None or since is None or w - since < p.no_agents_for_s:
        return None
    bad = snap["waiting"] >= 20 or snap["longest_wait_s"] >= p.longest_wait_s * p.critical_factor
    title = f"Nobody staffed on {name} while {snap['waiting']} contacts wait"
    evidence = {
        "waiting": snap["waiting"],
        "longest_wait_s": snap["longest_wait_s"],
        "since": since,
    }
    return Breach("no_agents", "critical" if bad else "major", title, evidence)


def _service_level(name: str, q: _Queue, p: SlaRules, w: float, old: set[str]) -> Breach | None:
    answered = q.ring.complete_sum(p.window_s, w, SL_BASE)
    if answered < p.min_answered:
        return None
    in_sla = q.ring.complete_sum(p.window_s, w, IN_SLA)
    level = in_sla / answered
    if "service_level" in old:
        if level >= min(1.0, p.service_level_target + 0.05):
            return None
    elif wilson(in_sla, answered, p.confidence_z)[1] >= p.service_level_target:
        return None  # below target, but within chance on so few contacts
    gap = p.service_level_target - level
    severity = "critical" if gap >= 0.4 else "major" if gap >= 0.2 else "minor"
    title = (
        f"Service level on {name} is {level:.0%} over {p.window_s / 60:g} min "
        f"(target {p.service_level_target:.0%} within {_duration(p.longest_wait_s)})"
    )
    evidence = {"service_level": round(level, 3), "answered": int(answered)}
    evidence["target"] = p.service_level_target
    return Breach("service_level", severity, title, evidence)


def _abandons(name: str, q: _Queue, p: SlaRules, w: float, old: set[str]) -> Breach | None:
    """The abandon rate: the sequential test (:mod:`monitor.detectors.abandon`) opens first;
    the window over ``window_s`` still catches a queue whose usual share is over the limit
    (no change for the test to find) and holds the condition while the window is high."""
    test = q.abandons
    verdict = test.judge(w, p) if p.abandon_sequential else None
    sequential = verdict is not None and verdict.holds
    # After a feed outage its backlog's abandons are the outage's: a new breach is read
    # only from the contacts after the recovery (a breach already open holds as before).
    span = p.window_s if "abandon_rate" in old else min(p.window_s, w - test.grace_until)
    windowed = _window_abandons(q, p, w, old, span) if span >= BUCKET_S else None
    # Where the sequential test can speak (warm, its usual share under the limit) it alone
    # opens: the window's bound, looked at every bucket of every day, reads a small queue's
    # chance cluster (6 of 29) as a breach about once a queue-week.
    test_speaks = verdict is not None and test.warm(p) and verdict.usual < p.abandon_rate_limit
    if test_speaks and not sequential and "abandon_rate" not in old:
        windowed = None
    if windowed is None and not sequential:
        return None
    rates = [windowed[0]] if windowed is not None else []
    if verdict is not None and sequential:
        rates.append(verdict.run_rate)
    rate = max(rates)
    severity = (
        "critical"
        if rate >= p.abandon_critical
        else "major"
        if rate >= p.abandon_major
        else "minor"
    )
    evidence: dict[str, Any] = {"limit": p.abandon_rate_limit}
    if windowed is not None:
        evidence |= {"abandon_rate": round(windowed[0], 3), "abandoned": int(windowed[1])}
        evidence["offered"] = int(windowed[2])
        title = f"Abandon rate on {name} is {windowed[0]:.0%} over {p.window_s / 60:g} min"
    if verdict is not None and sequential:
        evidence |= verdict.figures()
        if windowed is None:
            evidence["abandon_rate"] = round(verdict.run_rate, 3)
            evidence["abandoned"] = round(verdict.run_abandoned)
            evidence["offered"] = round(verdict.run_offered)
        if windowed is None or verdict.run_rate > windowed[0]:
            title = (
                f"Abandon rate on {name} is {verdict.run_rate:.0%} of the last "
                f"{verdict.run_offered:.0f} offered (usual {verdict.usual:.0%})"
            )
    return Breach("abandon_rate", severity, title, evidence)


def _window_abandons(
    q: _Queue, p: SlaRules, w: float, old: set[str], span: float
) -> tuple[float, float, float] | None:
    """(rate, abandoned, offered) over ``span`` (the window) when it breaches the limit."""
    offered = q.ring.complete_sum(span, w, AB_BASE)
    abandoned = q.ring.complete_sum(span, w, ABANDONED)
    if offered < p.min_offered:
        return None
    rate = abandoned / offered
    if "abandon_rate" in old:
        if rate < p.abandon_rate_limit * 0.8:
            return None
    elif wilson(abandoned, offered, p.confidence_z)[0] <= p.abandon_rate_limit:
        return None  # above the limit, but within chance on so few contacts
    return rate, abandoned, offered


def _satisfaction(name: str, q: _Queue, p: SlaRules, w: float, old: set[str]) -> Breach | None:
    rated = q.ring.complete_sum(p.satisfaction_window_s, w, RATED)
    if rated < p.min_ratings:
        return None
    share = q.ring.complete_sum(p.satisfaction_window_s, w, SATISFIED) / rated
    if share >= p.satisfaction_target:
        return None
    severity = "major" if share < p.satisfaction_major else "minor"
    title = f"Satisfaction on {name} is {share:.0%} (target {p.satisfaction_target:.0%})"
    evidence = {"satisfied_share": round(share, 3), "ratings": int(rated)}
    evidence["target"] = p.satisfaction_target
    return Breach("satisfaction", severity, title, evidence)


CHECKS = (_longest_wait, _no_agents, _service_level, _abandons, _satisfaction)
CONDITIONS = ("longest_wait", "no_agents", "service_level", "abandon_rate", "satisfaction")


def _duration(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:g} h"
    if seconds >= 120:
        return f"{seconds / 60:.0f} min"
    return f"{seconds:.0f} s"


# --- Erlang C ---------------------------------------------------------------------------------


def erlang_c_service_level(agents: int, traffic: float, aht_s: float, threshold_s: float) -> float:
    """Share of contacts answered within ``threshold_s`` with ``agents`` (Erlang C)."""
    if agents <= traffic:
        return 0.0
    if traffic <= 0:
        return 1.0
    erlang_b = 1.0
    for k in range(1, agents + 1):
        erlang_b = traffic * erlang_b / (k + traffic * erlang_b)
    p_wait = agents * erlang_b / (agents - traffic * (1.0 - erlang_b))
    return max(0.0, 1.0 - p_wait * math.exp(-(agents - traffic) * threshold_s / aht_s))


def erlang_forecast(q: _Queue, p: SlaRules, w: float) -> dict[str, Any] | None:
    """Next 15 minutes at the current arrival rate: service level and agents short."""
    snap = _fresh(q, p, w)
    offered = q.ring.complete_sum(p.window_s, w, OFFERED)
    if snap is None or offered <= 0:
        return None
    aht = q.aht or p.aht_s
    traffic = offered / p.window_s * aht
    agents = snap["agents_available"] + snap["agents_busy"]
    level = erlang_c_service_level(agents, traffic, aht, p.longest_wait_s)
    needed = agents
    while needed < agents + 500 and (
        erlang_c_service_level(needed, traffic, aht, p.longest_wait_s) < p.service_level_target
    ):
        needed += 1
    return {
        "forecast_service_level": round(level, 3),
        "agents": agents,
        "agents_needed": needed,
        "agents_short": max(0, needed - agents),
        "arrivals_per_min": round(offered / p.window_s * 60, 2),
        "aht_s": round(aht, 1),
        "horizon_s": 900,
    }


def _satisfaction_figures(q: _Queue, p: SlaRules, w: float) -> dict[str, Any] | None:
    """Share of 4-5 ratings over the satisfaction window, as evidence of other rules."""
    rated = q.ring.complete_sum(p.satisfaction_window_s, w, RATED)
    if rated <= 0:
        return None
    share = q.ring.complete_sum(p.satisfaction_window_s, w, SATISFIED) / rated
    return {
        "satisfied_share": round(share, 3),
        "ratings": int(rated),
        "target": p.satisfaction_target,
    }


SPEC = register(
    DetectorSpec(
        section="sla",
        kind="sla",
        params=SlaRules,
        scopes=("channels", "queues"),
        build=SlaDetector,
        order=20,
        title="waits, service level, abandons, staffing",
        notes=(
            "One rule per queue (sla.queue): every breached condition is listed in its",
            "evidence, its severity is the worst condition's.",
        ),
        scoped_defaults={"channels": CHANNEL_DEFAULTS},
        scoped_notes=CHANNEL_SOURCES,
    )
)
