"""Outage detector: components down, flapping or degraded; lost heartbeats; silent intake.

Subjects: the component for probe results, the source for a lost heartbeat,
the channel or queue for intake that went silent.

A component's trouble is one rule, ``outage.component``: down, flapping and
degraded (or a high error rate) are its *conditions*, listed in the evidence,
and the signal's severity follows the worst one, so a component that degrades,
goes down and comes back degraded is one incident whose severity rises (and
falls), not three. Heartbeat loss and silent intake stay rules of their own:
their subjects (a source, a channel or queue) are not components.

- **down**: ``down_probes`` consecutive failed probes (or failed probes that
  span ``down_after_s``); one failed probe is not an outage. Each probe learns
  its own failure rate outside outages, and a flaky one needs more failures in
  a row (as many as make a chance run rarer than 1 in 10^5). Once down, it
  takes ``up_probes_to_clear`` good probes in a row to clear, so a component
  that comes back for one probe and fails again stays one outage.
- **flapping**: failures alternating with successes (at least ``flap_failures``
  of the last ``flap_probes`` and ``flap_ratio`` of them) are one continuous
  lower-severity signal, not a page per failure, once they have gone on for
  ``flapping_for_s`` (a flap that settles within minutes is not an incident).
- **degraded**: ``degraded`` status or an error rate above the limit on
  consecutive probes.
- **heartbeat**: a source silent for more than ``heartbeat_factor`` times its
  own usual interval (learned from its beats, at least ``heartbeat_min_s``).
- **silent intake**: a queue or channel whose offered contacts dropped to
  (almost) nothing while its hour-long baseline expected many, suddenly (the
  window before was still busy); at night the baseline is low, so a quiet
  night is not an outage, nor is an evening ramp down. A silent channel
  covers its queues (one incident, not one per queue).
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, ClassVar

from core.events import Contact, Event, Health, Heartbeat, QueueStats
from core.vocabulary import SEVERITIES, SEVERITY_RANK
from monitor.detectors.base import Signal
from monitor.detectors.registry import DetectorSpec, register, setting
from monitor.detectors.surge import Intake, offered_in
from monitor.rules import Rules
from monitor.windows import poisson_cdf
from security.pii import mask_text

logger = logging.getLogger(__name__)

COMPONENT_RULE = "outage.component"
BACKGROUND_PROBES = 360  # the background failure rate averages about this many probes
# Before a probe has a history it is assumed to fail 0.5 % of the time: it then
# needs 3 failures in a row, and 2 once ~30 good probes have shown it is healthy.
PRIOR_PROBES, PRIOR_FAILURES = 50.0, 0.25
CHANCE = 1e-5  # how unlikely by chance a run of failures must be to count as an outage
FLAP_CHANCE = 1e-6
MAX_NEEDED = 8


@dataclass(frozen=True, slots=True)
class OutageRules:
    """``[outage]``: probes, heartbeats and silent intake (one section, three kinds of evidence)."""

    enabled: bool = setting(True, "run this detector")
    down_probes: int = setting(2, "down on >= 2 consecutive failed probes ...")
    down_after_s: float = setting(
        20.0, "... or failed probes spanning 20 s (one failed probe is no outage)"
    )
    up_probes_to_clear: int = setting(2, "2 good probes in a row clear it (no re-paging on flaps)")
    down_severity: str = setting(
        "critical", "severity of a component that is down", choices=SEVERITIES
    )
    degraded_probes: int = setting(2, "degraded / high error rate on >= 2 consecutive probes")
    error_rate_limit: float = setting(
        0.05, "a probe's error rate at or above this is degraded", high=1.0
    )
    error_rate_major: float = setting(0.25, "degraded is major from this error rate", high=1.0)
    flap_probes: int = setting(10, "flapping: among the last 10 probes ...")
    flap_failures: int = setting(4, "... at least 4 failures ...")
    flap_ratio: float = setting(0.5, "... and at least half of them ...", high=1.0)
    flapping_for_s: float = setting(
        300.0, "... for 5 min: a flap that settles within minutes is no incident"
    )
    heartbeat_factor: float = setting(
        3.0, "a source is lost when silent > 3x its usual interval ..."
    )
    heartbeat_min_s: float = setting(30.0, "... and at least 30 s")
    heartbeat_min_beats: int = setting(3, "learn the interval from 3 beats first")
    heartbeat_severity: str = setting("major", "severity of a lost heartbeat", choices=SEVERITIES)
    silent_bucket_s: float = setting(30.0, "sub-bucket of the intake windows", above_zero=True)
    silent_window_s: float = setting(
        600.0, "intake silent over the last 10 min ...", above_zero=True
    )
    silent_tau_s: float = setting(3600.0, "... against an hour-long baseline ...", above_zero=True)
    silent_min_history_s: float = setting(3600.0, "... with an hour of history ...")
    silent_min_expected: float = setting(
        30.0, "... that expected >= 30 contacts (not a quiet night)"
    )
    silent_max_ratio: float = setting(0.1, "... and got <= 10 % of them ...", high=1.0)
    silent_before_ratio: float = setting(
        0.5, "... after a window that still had >= 50 % (sudden) ...", high=1.0
    )
    silent_p: float = setting(1e-6, "... with Poisson P(X <= observed) below this", high=1.0)
    for_s: float = setting(0.0, "pending: the condition holds this long before it fires")
    keep_firing_for_s: float = setting(
        60.0, "resolving: keeps firing this long after it stops holding"
    )


class _Component:
    __slots__ = (
        "background",
        "bad_run",
        "down",
        "down_run",
        "first_down",
        "good_run",
        "last",
        "last_down",
        "probes",
        "recent",
        "tenant",
    )

    def __init__(self, probes: int) -> None:
        self.down_run = 0  # consecutive failed probes
        self.bad_run = 0  # consecutive degraded / high-error probes
        self.good_run = 0  # consecutive healthy probes
        self.first_down: float | None = None
        self.last_down: float | None = None
        self.down = False  # the down signal is active (hysteresis)
        self.recent: deque[int] = deque(maxlen=probes)  # 1 = failed probe
        # Decayed counts of probes and failures outside outages, the current run
        # of failures excluded (it may be the outage itself).
        self.background = 0.0
        self.probes = 0.0
        self.last: dict[str, Any] = {}
        self.tenant: str | None = None


class _Source:
    __slots__ = ("beats", "interval", "last_seen", "tenant")

    def __init__(self) -> None:
        self.beats = 0
        self.interval: float | None = None
        self.last_seen = 0.0
        self.tenant: str | None = None


class OutageDetector:
    """Probe results, heartbeats and intake volume -> outage signals."""

    name: ClassVar[str] = "outage"
    event_types: ClassVar[frozenset[str]] = frozenset(
        {"health", "heartbeat", "queue.stats", "contact"}
    )
    instant_types: ClassVar[frozenset[str]] = frozenset({"health"})
    """The failed probe that makes a component down is judged on arrival (early firing)."""

    def __init__(self, rules: Rules) -> None:
        self.rules = rules
        self.base: OutageRules = rules.outage.base
        self.components: dict[str, _Component] = {}
        self.sources: dict[str, _Source] = {}
        self.queues: dict[str, Intake] = {}
        self.channels: dict[str, Intake] = {}
        self.dirty: set[str] = set()
        self.signals: dict[str, Signal] = {}  # fingerprint -> signal
        self.flapping: set[str] = set()  # components whose flapping condition holds
        self.flapping_since: dict[str, float] = {}  # ... and since when (event time)
        self._scanned = -1
        self.blind_until = 0.0
        """Intake windows are not judged before this (they overlap the monitor's own downtime)."""

    def resume(self, down_from: float, at: float) -> None:
        """The monitor itself saw nothing from ``down_from`` to ``at`` (it was down).

        Its downtime is no evidence of silence: a source alive at ``down_from`` is
        presumed alive at ``at`` (lost only if it stays silent past its limit from
        then), and intake windows overlapping the gap are not judged.
        """
        for name, src in self.sources.items():
            p = self.rules.outage.get(source=name)
            limit = max(p.heartbeat_factor * (src.interval or 0.0), p.heartbeat_min_s)
            if down_from - src.last_seen <= limit:
                src.last_seen = max(src.last_seen, at)
        self.blind_until = max(self.blind_until, at + self.base.silent_window_s)

    # --- observe -------------------------------------------------------------------------

    def observe(self, event: Event) -> None:
        kind = type(event)
        if kind is Heartbeat:
            self._beat(event)
        elif kind is Health:
            self._probe(event)  # type: ignore[arg-type]
        elif kind is QueueStats or kind is Contact:
            self._intake(event)

    def _beat(self, event: Event) -> None:
        src = self.sources.get(event.source)
        if src is None:
            src = self.sources[event.source] = _Source()
        gap = event.ts - src.last_seen
        if src.beats and gap > 0:
            if src.interval is None:
                src.interval = gap
            elif gap <= 3 * src.interval:  # a gap after a loss is not the usual interval
                src.interval += 0.2 * (gap - src.interval)
        src.last_seen = max(src.last_seen, event.ts)
        src.beats += 1
        src.tenant = event.tenant

    def instant(self, event: Event, older: Sequence[Event] = ()) -> Signal | None:
        """A failed probe that takes its component down, judged on arrival.

        Only when the component's probes folded in so far plus this one make it
        down (the usual case: the previous probe is older than the lateness); the
        component's state is not changed. Anything else waits for the watermark.
        """
        if type(event) is not Health or event.status != "down":
            return None
        p = self.rules.outage.get(component=event.component)
        comp = self.components.get(event.component)
        if comp is not None and (comp.down or (comp.last_down or 0.0) >= event.ts):
            return None
        trial = _copy_component(comp) if comp is not None else _Component(p.flap_probes)
        mine = [
            e
            for e in older
            if type(e) is Health and e.component == event.component and e.ts < event.ts
        ]
        for e in sorted(mine, key=lambda h: h.ts):  # buffered probes, not folded in yet
            self._fold_probe(trial, e)  # type: ignore[arg-type]
            if _goes_down(trial, p):
                return None  # down before this probe: its own arrival fired it
        self._fold_probe(trial, event)  # type: ignore[arg-type]
        if not _goes_down(trial, p):
            return None
        return self._component(event.component, trial, [self._down(event.component, trial, p)])

    def _probe(self, e: Health) -> None:
        p = self.rules.outage.get(component=e.component)
        comp = self.components.get(e.component)
        if comp is None:
            comp = self.components[e.component] = _Component(p.flap_probes)
        self._fold_probe(comp, e)
        self.dirty.add(e.component)

    def _fold_probe(self, comp: _Component, e: Health) -> None:
        p = self.rules.outage.get(component=e.component)
        failed = e.status == "down"
        bad = e.status == "degraded" or (e.error_rate or 0.0) >= p.error_rate_limit
        comp.recent.append(1 if failed else 0)
        comp.last = {
            "status": e.status,
            "latency_ms": e.latency_ms,
            "error_rate": e.error_rate,
            "message": mask_text(e.message or ""),
            "at": e.ts,
            "source": e.source,
        }
        comp.tenant = e.tenant
        if not comp.down and not failed:
            _learn_background(comp)
        if failed:
            comp.down_run += 1
            comp.good_run = 0
            comp.first_down = e.ts if comp.down_run == 1 else comp.first_down
            comp.last_down = e.ts
        else:
            comp.down_run = 0
            comp.bad_run = comp.bad_run + 1 if bad else 0
            comp.good_run = 0 if bad else comp.good_run + 1

    def _intake(self, event: Event) -> None:
        queue: str = event.queue  # type: ignore[attr-defined]
        channel: str = event.channel  # type: ignore[attr-defined]
        intake = self.queues.get(queue)
        if intake is None:
            intake = self.queues[queue] = self._new_intake(channel)
        count = offered_in(event, intake)
        if count:
            intake.ring.add(event.ts, count)
            intake.profile.add(event.ts, count)
            agg = self.channels.get(channel)
            if agg is None:
                agg = self.channels[channel] = self._new_intake(channel)
            agg.ring.add(event.ts, count)
            agg.profile.add(event.ts, count)

    def _new_intake(self, channel: str) -> Intake:
        b = self.base
        # Two windows: the silent one and the one before it (was intake healthy?).
        return Intake(b.silent_bucket_s, 2 * b.silent_window_s, b.silent_tau_s, channel)

    # --- evaluate ------------------------------------------------------------------------

    def evaluate(self, watermark: float) -> list[Signal]:
        for name in self.dirty:
            self._judge_component(name, self.components[name], watermark)
        self.dirty.clear()
        self._judge_heartbeats(watermark)
        bucket = int(watermark // self.base.silent_bucket_s)
        if bucket != self._scanned:
            self._scanned = bucket
            self._judge_intake(watermark)
        return list(self.signals.values())

    def _judge_component(self, name: str, comp: _Component, w: float) -> None:
        p = self.rules.outage.get(component=name)
        if comp.down:
            comp.down = comp.good_run < p.up_probes_to_clear
            if not comp.down:
                comp.recent.clear()  # the outage explains those failures: not flapping
        else:
            comp.down = _goes_down(comp, p)
        flapping = not comp.down and _flapping(comp, p, name in self.flapping)
        if flapping:
            self.flapping.add(name)
            self.flapping_since.setdefault(name, w)
        else:
            self.flapping.discard(name)
            self.flapping_since.pop(name, None)
        # A flap that settles within minutes is a board status, not an incident.
        flapping = flapping and w - self.flapping_since[name] >= p.flapping_for_s
        degraded = not comp.down and comp.bad_run >= p.degraded_probes
        found = [
            part
            for part in (
                self._down(name, comp, p) if comp.down else None,
                self._flap(name, comp, p) if flapping else None,
                self._degraded(name, comp, p) if degraded else None,
            )
            if part is not None
        ]
        self._set(f"{COMPONENT_RULE}|{name}", self._component(name, comp, found))

    def _component(self, name: str, comp: _Component, found: list[Signal]) -> Signal | None:
        """One signal per component: its conditions listed, the worst one's severity."""
        if not found:
            return None
        worst = max(found, key=lambda s: SEVERITY_RANK[s.severity])
        evidence = dict(worst.evidence)
        evidence["state"] = _condition(worst)
        evidence["conditions"] = [
            {"condition": _condition(s), "severity": s.severity, "title": s.title}
            | {k: v for k, v in s.evidence.items() if k not in comp.last and k != "component"}
            for s in found
        ]
        return replace(worst, rule=COMPONENT_RULE, evidence=evidence)

    def _set(self, fingerprint: str, signal: Signal | None) -> None:
        if signal is None:
            self.signals.pop(fingerprint, None)
        else:
            self.signals[fingerprint] = signal

    def _signal(self, rule: str, subject: str, severity: str, title: str, evidence: dict) -> Signal:
        p = self.base
        return Signal(
            rule=rule,
            kind="outage",
            subject=subject,
            severity=severity,
            title=title,
            evidence=evidence,
            for_s=p.for_s,
            keep_firing_for_s=p.keep_firing_for_s,
        )

    def _down(self, name: str, comp: _Component, p: OutageRules) -> Signal:
        evidence = {
            "component": name,
            **comp.last,
            "failed_probes": comp.down_run,
            "down_since": comp.first_down,
            "usual_failure_rate": round(_usual_failure_rate(comp), 4),
            "failures_needed": _needed_failures(comp, p),
        }
        title = f"{name} is down ({comp.down_run} failed probes in a row)"
        if comp.last.get("message"):
            title += f": {comp.last['message'][:80]}"
        signal = self._signal("outage.down", name, p.down_severity, title, evidence)
        return replace(signal, tenant=comp.tenant)

    def _flap(self, name: str, comp: _Component, p: OutageRules) -> Signal:
        failures = sum(comp.recent)
        evidence = {"component": name, "failed": failures, "probes": len(comp.recent), **comp.last}
        title = f"{name} is flapping: {failures} of the last {len(comp.recent)} probes failed"
        return replace(
            self._signal("outage.flapping", name, "minor", title, evidence), tenant=comp.tenant
        )

    def _degraded(self, name: str, comp: _Component, p: OutageRules) -> Signal:
        rate = comp.last.get("error_rate") or 0.0
        severity = "major" if rate >= p.error_rate_major else "minor"
        evidence = {"component": name, "bad_probes": comp.bad_run, **comp.last}
        title = f"{name} is degraded"
        if rate:
            title += f" (error rate {rate:.0%})"
        return replace(
            self._signal("outage.degraded", name, severity, title, evidence), tenant=comp.tenant
        )

    def _judge_heartbeats(self, w: float) -> None:
        for name, src in self.sources.items():
            p = self.rules.outage.get(source=name)
            fingerprint = f"outage.heartbeat|{name}"
            if src.beats < p.heartbeat_min_beats or src.interval is None:
                self.signals.pop(fingerprint, None)
                continue
            limit = max(p.heartbeat_factor * src.interval, p.heartbeat_min_s)
            silent = w - src.last_seen
            if silent <= limit:
                self.signals.pop(fingerprint, None)
                continue
            evidence = {
                "source": name,
                "last_seen": src.last_seen,
                "silent_s": round(silent, 1),
                "usual_interval_s": round(src.interval, 1),
                "limit_s": round(limit, 1),
            }
            title = (
                f"No heartbeat from {name} for {silent:.0f} s (usually every {src.interval:.0f} s)"
            )
            signal = self._signal("outage.heartbeat", name, p.heartbeat_severity, title, evidence)
            self.signals[fingerprint] = replace(signal, tenant=src.tenant)

    def _judge_intake(self, w: float) -> None:
        if w < self.blind_until:
            return
        silent_channels = set()
        for channel, agg in self.channels.items():
            if self._silent("outage.silent_channel", channel, agg, w, channel=channel):
                silent_channels.add(channel)
        for queue, intake in self.queues.items():
            covered = intake.channel in silent_channels
            self._silent("outage.silent_queue", queue, intake, w, covered=covered, queue=queue)

    def _silent(
        self, rule: str, subject: str, intake: Intake, w: float, covered: bool = False, **scope: str
    ) -> bool:
        p = self.rules.outage.get(**{"channel": intake.channel, **scope})
        ring = intake.ring
        ring.advance(w)
        fingerprint = f"{rule}|{subject}"
        active = fingerprint in self.signals
        observed = ring.complete_sum(p.silent_window_s, w)
        # Both the plain EWMA and the trend forecast must expect traffic: the
        # trend follows an evening ramp down, the plain EWMA ignores a past surge.
        expected = min(ring.smooth(p.silent_window_s), ring.expected(p.silent_window_s, w))
        if ring.warm() < p.silent_min_history_s:
            holds = False
        elif active:
            holds = observed <= 0.3 * expected
        else:
            holds = _went_silent(intake, p, w, observed, expected)
        if not holds or covered:
            self.signals.pop(fingerprint, None)
            return holds
        what = "channel" if rule == "outage.silent_channel" else "queue"
        minutes = p.silent_window_s / 60
        title = (
            f"Intake of {what} {subject} went silent: {observed:.0f} contacts in "
            f"{minutes:g} min, {expected:.0f} expected"
        )
        evidence = {what: subject, "offered": observed, "expected": round(expected, 1)}
        evidence["window_s"] = p.silent_window_s
        severity = "critical" if what == "channel" else "major"
        self.signals[fingerprint] = self._signal(rule, subject, severity, title, evidence)
        return True

    # --- state ---------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        return {
            "components": {n: _comp_state(c) for n, c in self.components.items()},
            "sources": {
                n: [s.beats, s.interval, s.last_seen, s.tenant] for n, s in self.sources.items()
            },
            "queues": {n: i.snapshot() for n, i in self.queues.items()},
            "channels": {n: i.snapshot() for n, i in self.channels.items()},
            "active": sorted(self.signals),
            "flapping": sorted(self.flapping),
            "flapping_since": self.flapping_since,
            "blind_until": self.blind_until,
        }

    def restore(self, state: dict[str, Any]) -> None:
        self.components.clear()
        self.sources.clear()
        self.queues.clear()
        self.channels.clear()
        self.signals.clear()
        self.flapping = set(state.get("flapping", ()))
        self.flapping_since = dict(state.get("flapping_since", {}))
        self.blind_until = float(state.get("blind_until", 0.0))
        self._scanned = -1
        for name, saved in state.get("components", {}).items():
            comp = self.components[name] = _Component(
                self.rules.outage.get(component=name).flap_probes
            )
            _comp_restore(comp, saved)
            self.dirty.add(name)
        for name, (beats, interval, last_seen, tenant) in state.get("sources", {}).items():
            src = self.sources[name] = _Source()
            src.beats, src.interval, src.last_seen, src.tenant = beats, interval, last_seen, tenant
        for table, saved_table in (("queues", self.queues), ("channels", self.channels)):
            for name, saved in state.get(table, {}).items():
                intake = saved_table[name] = self._new_intake(saved.get("channel", ""))
                intake.restore(saved)
        for fingerprint in state.get("active", ()):
            rule, _, subject = fingerprint.partition("|")
            if rule.startswith("outage.silent"):
                self.signals[fingerprint] = self._signal(rule, subject, "minor", "", {})
            elif rule == "outage.flapping":  # a checkpoint from before outage.component
                self.flapping.add(subject)
                self.flapping_since.setdefault(subject, 0.0)


def _condition(signal: Signal) -> str:
    """``down``, ``flapping`` or ``degraded``: the condition a part signal stands for."""
    return signal.rule.rpartition(".")[2]


def _went_silent(
    intake: Intake, p: OutageRules, w: float, observed: float, expected: float
) -> bool:
    """Intake fell to almost nothing, suddenly, where traffic was expected."""
    if expected < p.silent_min_expected or observed > p.silent_max_ratio * expected:
        return False
    if poisson_cdf(observed, expected) >= p.silent_p:
        return False
    # Sudden, not the end of an evening ramp down: the window before was healthy.
    before = intake.ring.complete_sum(p.silent_window_s, w - p.silent_window_s)
    if before < p.silent_before_ratio * expected:
        return False
    # A queue that was just as quiet at this hour last week is closed, not broken.
    last_week = intake.profile.last_week(w)
    scale = p.silent_window_s / 3600.0
    return last_week is None or last_week * scale >= p.silent_min_expected


def _goes_down(comp: _Component, p: OutageRules) -> bool:
    """Enough failed probes in a row (or spanning long enough) for an outage."""
    needed = _needed_failures(comp, p)
    span = (comp.last_down or 0.0) - (comp.first_down or 0.0)
    return comp.down_run >= needed or (
        comp.down_run >= 2 and span >= p.down_after_s * needed / p.down_probes
    )


def _copy_component(comp: _Component) -> _Component:
    trial = _Component(comp.recent.maxlen or 10)
    _comp_restore(trial, _comp_state(comp))
    return trial


def _learn_background(comp: _Component) -> None:
    """A good probe ends the run of failures before it: count both into the background."""
    run = comp.down_run
    decay = (1.0 - 1.0 / BACKGROUND_PROBES) ** (run + 1)
    comp.probes = comp.probes * decay + run + 1
    comp.background = comp.background * decay + run


def _usual_failure_rate(comp: _Component, failures: float = 0.0, probes: float = 0.0) -> float:
    """The probe's own failure rate outside outages (less ``failures`` of ``probes``)."""
    background = max(0.0, comp.background - failures)
    return (background + PRIOR_FAILURES) / (max(0.0, comp.probes - probes) + PRIOR_PROBES)


def _needed_failures(comp: _Component, p: OutageRules) -> int:
    """Consecutive failures that a flaky probe produces by chance less than 1 in 10^5 times.

    A healthy probe needs ``down_probes`` (2); one that fails 2 % of the time
    on its own needs 3, at 10 % 5: its random pairs are not outages.
    """
    rate = _usual_failure_rate(comp)
    chance = math.ceil(math.log(CHANCE) / math.log(rate)) if rate < 1 else MAX_NEEDED
    return max(p.down_probes, min(MAX_NEEDED, chance))


def _flapping(comp: _Component, p: OutageRules, active: bool) -> bool:
    failures = sum(comp.recent)
    if active:
        return failures >= max(1, p.flap_failures // 2)
    if failures < p.flap_failures or failures < p.flap_ratio * len(comp.recent):
        return False
    # Far more failures than this probe's own rate before these probes explains.
    usual = _usual_failure_rate(comp, failures, len(comp.recent))
    return _binomial_tail(failures, len(comp.recent), usual) < FLAP_CHANCE


def _binomial_tail(k: int, n: int, rate: float) -> float:
    """P(X >= k) for X ~ Binomial(n, rate)."""
    return sum(math.comb(n, i) * rate**i * (1 - rate) ** (n - i) for i in range(k, n + 1))


_COMP_FIELDS = (
    "background",
    "probes",
    "down_run",
    "bad_run",
    "good_run",
    "first_down",
    "last_down",
    "down",
    "last",
    "tenant",
)


def _comp_state(comp: _Component) -> dict[str, Any]:
    state = {f: getattr(comp, f) for f in _COMP_FIELDS}
    state["recent"] = list(comp.recent)
    return state


def _comp_restore(comp: _Component, state: dict[str, Any]) -> None:
    for f in _COMP_FIELDS:
        if f in state:
            setattr(comp, f, state[f])
    comp.recent.extend(state.get("recent", ()))


SPEC = register(
    DetectorSpec(
        section="outage",
        kind="outage",
        params=OutageRules,
        scopes=("components", "sources", "channels", "queues"),
        build=OutageDetector,
        order=30,
        title="probes, heartbeats, silent intake",
        notes=(
            "A component's down / flapping / degraded is one rule (outage.component); lost",
            "heartbeats (outage.heartbeat) and silent intake (outage.silent_channel / _queue)",
            "are their own. 001 §7.1 network interruption, §7.2 / §1.5 system crash.",
        ),
    )
)
