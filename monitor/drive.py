"""A driver for back-tests and the detectors' case tables.

:func:`drive` feeds a sorted sequence of events to detectors and evaluates them once per
``step_s`` of event time, the way the engine does, and reports which (rule, subject) became
active, when and how severe they got: the tables of cases in ``tests/monitor`` use it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from watchfloor.core.events import Event
from watchfloor.core.vocabulary import SEVERITY_RANK
from watchfloor.monitor.detectors.base import Detector, Signal


@dataclass
class Seen:
    """What :func:`drive` saw of one fingerprint."""

    rule: str
    subject: str
    first_at: float
    severity: str
    last: Signal
    active_evaluations: int = 0
    run_start: float = 0.0
    held: bool = False
    """Active without a break for at least the signal's ``for_s`` (what would fire)."""
    fired: Signal | None = None
    """The signal when it first held (its evidence is the firing evidence)."""
    conditions: set[str] = field(default_factory=set)
    """Every condition listed in its evidence's ``conditions`` while it held."""


@dataclass
class Trace:
    seen: dict[str, Seen] = field(default_factory=dict)
    active_at_end: list[Signal] = field(default_factory=list)

    def fired(self) -> list[tuple[str, str, str]]:
        """(rule, subject, highest severity) of what held for its ``for_s``, sorted."""
        return sorted((s.rule, s.subject, s.severity) for s in self.seen.values() if s.held)

    def fired_conditions(self) -> list[tuple[str, str, str, tuple[str, ...]]]:
        """Like :meth:`fired`, with the conditions the evidence listed while it held."""
        return sorted(
            (s.rule, s.subject, s.severity, tuple(sorted(s.conditions)))
            for s in self.seen.values()
            if s.held
        )


def drive(
    detectors: Detector | Sequence[Detector],
    events: Iterable[Event],
    *,
    until: float | None = None,
    step_s: float = 1.0,
    start: float | None = None,
) -> Trace:
    """Feed ``events`` in time order and evaluate every ``step_s`` up to ``until``."""
    dets = [detectors] if not isinstance(detectors, Sequence) else list(detectors)
    ordered = sorted(events, key=lambda e: float(e.ts))
    trace = Trace()
    if not ordered and start is None:
        return trace
    t = start if start is not None else float(ordered[0].ts)
    end = until if until is not None else (float(ordered[-1].ts) + step_s if ordered else t)
    i = 0
    while t <= end:
        while i < len(ordered) and float(ordered[i].ts) < t:
            for det in dets:
                if ordered[i].type in det.event_types:
                    det.observe(ordered[i])
            i += 1
        active = [s for det in dets for s in det.evaluate(t)]
        _record(trace, active, t)
        trace.active_at_end = active
        t += step_s
    return trace


def _record(trace: Trace, active: list[Signal], at: float) -> None:
    now = {s.fingerprint for s in active}
    for fingerprint, old in trace.seen.items():
        if fingerprint not in now:
            old.run_start = -1.0
    for signal in active:
        found = trace.seen.get(signal.fingerprint)
        if found is None:
            seen = Seen(signal.rule, signal.subject, at, signal.severity, signal, run_start=at)
            trace.seen[signal.fingerprint] = seen
        else:
            seen = found
        if seen.run_start < 0:
            seen.run_start = at
        if at - seen.run_start >= signal.for_s:
            seen.held = True
            seen.fired = seen.fired or signal
            if SEVERITY_RANK[signal.severity] > SEVERITY_RANK[seen.severity]:
                seen.severity = signal.severity
            for condition in signal.evidence.get("conditions", ()):
                seen.conditions.add(condition["condition"])
        seen.last = signal
        seen.active_evaluations += 1
