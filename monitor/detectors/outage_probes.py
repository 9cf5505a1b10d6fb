"""Component probes, for the outage detector: down, flapping, degraded.

A component's trouble is one rule, ``outage.component``: down, flapping and
degraded (or a high error rate) are its *conditions*, listed in the evidence,
and the signal's severity follows the worst one, so a component that degrades,
goes down and comes back degraded is one incident whose severity rises (and
falls), not three. The thresholds are documented with the ``[outage]``
settings (:mod:`monitor.detectors.outage`) and in docs/rules.md.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from watchfloor.core.events import Event, Health
from watchfloor.core.vocabulary import SEVERITY_RANK
from watchfloor.monitor.detectors.base import Signal
from watchfloor.monitor.detectors.outage_rules import OutageRules
from watchfloor.monitor.rule_set import Scoped
from watchfloor.security.pii import mask_text

COMPONENT_RULE = "outage.component"
BACKGROUND_PROBES = 360  # the background failure rate averages about this many probes
# Before a probe has a history it is assumed to fail 0.5 % of the time: it then
# needs 3 failures in a row, and 2 once ~30 good probes have shown it is healthy.
PRIOR_PROBES, PRIOR_FAILURES = 50.0, 0.25
CHANCE = 1e-5  # how unlikely by chance a run of failures must be to count as an outage
FLAP_CHANCE = 1e-6
MAX_NEEDED = 8

MakeSignal = Callable[[str, str, str, str, dict[str, Any]], Signal]
"""(rule, subject, severity, title, evidence) -> a signal with the section's lifecycle."""


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


class ComponentProbes:
    """Probe results per component -> one ``outage.component`` signal each."""

    def __init__(
        self, scoped: Scoped[OutageRules], signals: dict[str, Signal], make: MakeSignal
    ) -> None:
        self.scoped = scoped
        self.signals = signals  # the detector's, shared with the other kinds of evidence
        self.make = make
        self.components: dict[str, _Component] = {}
        self.dirty: set[str] = set()
        self.flapping: set[str] = set()  # components whose flapping condition holds
        self.flapping_since: dict[str, float] = {}  # ... and since when (event time)

    def probe(self, e: Health) -> None:
        p = self.scoped.get(component=e.component)
        comp = self.components.get(e.component)
        if comp is None:
            comp = self.components[e.component] = _Component(p.flap_probes)
        self._fold(comp, e)
        self.dirty.add(e.component)

    def instant(self, event: Health, older: Sequence[Event]) -> Signal | None:
        """The failed probe that takes its component down, judged without changing state."""
        p = self.scoped.get(component=event.component)
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
            self._fold(trial, e)  # type: ignore[arg-type]
            if _goes_down(trial, p):
                return None  # down before this probe: its own arrival fired it
        self._fold(trial, event)
        if not _goes_down(trial, p):
            return None
        return self._component(event.component, trial, [self._down(event.component, trial, p)])

    def _fold(self, comp: _Component, e: Health) -> None:
        p = self.scoped.get(component=e.component)
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

    def judge(self, w: float) -> None:
        for name in self.dirty:
            self._judge(name, self.components[name], w)
        self.dirty.clear()

    def _judge(self, name: str, comp: _Component, w: float) -> None:
        p = self.scoped.get(component=name)
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
        degraded = not comp.down and (
            comp.bad_run >= p.degraded_probes
            or (comp.bad_run >= 1 and _alerted(comp, p, "degraded"))
        )
        found = [
            part
            for part in (
                self._down(name, comp, p) if comp.down else None,
                self._flap(name, comp) if flapping else None,
                self._degraded(name, comp, p) if degraded else None,
            )
            if part is not None
        ]
        signal = self._component(name, comp, found)
        fingerprint = f"{COMPONENT_RULE}|{name}"
        if signal is None:
            self.signals.pop(fingerprint, None)
        else:
            self.signals[fingerprint] = signal

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
        signal = self.make("outage.down", name, p.down_severity, title, evidence)
        return replace(signal, tenant=comp.tenant)

    def _flap(self, name: str, comp: _Component) -> Signal:
        failures = sum(comp.recent)
        evidence = {"component": name, "failed": failures, "probes": len(comp.recent), **comp.last}
        title = f"{name} is flapping: {failures} of the last {len(comp.recent)} probes failed"
        return replace(
            self.make("outage.flapping", name, "minor", title, evidence), tenant=comp.tenant
        )

    def _degraded(self, name: str, comp: _Component, p: OutageRules) -> Signal:
        rate = comp.last.get("error_rate") or 0.0
        severity = "major" if rate >= p.error_rate_major else "minor"
        evidence = {"component": name, "bad_probes": comp.bad_run, **comp.last}
        title = f"{name} is degraded"
        if rate:
            title += f" (error rate {rate:.0%})"
        return replace(
            self.make("outage.degraded", name, severity, title, evidence), tenant=comp.tenant
        )

    # --- state (the keys of the outage detector's checkpoint) -----------------------------

    def snapshot(self) -> dict[str, Any]:
        return {
            "components": {n: _comp_state(c) for n, c in self.components.items()},
            "flapping": sorted(self.flapping),
            "flapping_since": self.flapping_since,
        }

    def restore(self, state: dict[str, Any]) -> None:
        self.components.clear()
        self.flapping = set(state.get("flapping", ()))
        self.flapping_since = dict(state.get("flapping_since", {}))
        for name, saved in state.get("components", {}).items():
            comp = self.components[name] = _Component(self.scoped.get(component=name).flap_probes)
            _comp_restore(comp, saved)
            self.dirty.add(name)
        for fingerprint in state.get("active", ()):
            rule, _, subject = fingerprint.partition("|")
            if rule == "outage.flapping":  # a checkpoint from before outage.component
                self.flapping.add(subject)
                self.flapping_since.setdefault(subject, 0.0)


def _condition(signal: Signal) -> str:
    """``down``, ``flapping`` or ``degraded``: the condition a part signal stands for."""
    return signal.rule.rpartition(".")[2]


def _alerted(comp: _Component, p: OutageRules, status: str) -> bool:
    """The last event is an alert with ``status`` from a source that judged it already
    (``alert_sources``: Alertmanager fires after its rule's ``for:``): decisive alone."""
    last = comp.last or {}
    return last.get("source") in p.alert_sources and last.get("status") == status


def _goes_down(comp: _Component, p: OutageRules) -> bool:
    """Enough failed probes in a row (or spanning long enough) for an outage, or an alert."""
    if comp.down_run >= 1 and _alerted(comp, p, "down"):
        return True
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
