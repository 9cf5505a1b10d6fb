"""Heartbeats, for the outage detector: a source silent for longer than its own rhythm.

Rule ``outage.heartbeat``, subject the source: silent for more than
``heartbeat_factor`` times its usual interval (learned from its beats; a gap
after a loss is not learned), and at least ``heartbeat_min_s``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from watchfloor.core.events import Event
from watchfloor.monitor.detectors.base import Signal
from watchfloor.monitor.detectors.due import STRICT
from watchfloor.monitor.detectors.outage_probes import MakeSignal
from watchfloor.monitor.detectors.outage_rules import OutageRules
from watchfloor.monitor.rule_set import Scoped


class _Source:
    __slots__ = ("beats", "interval", "last_seen", "tenant")

    def __init__(self) -> None:
        self.beats = 0
        self.interval: float | None = None
        self.last_seen = 0.0
        self.tenant: str | None = None


class Heartbeats:
    """Heartbeats per source -> ``outage.heartbeat`` signals."""

    def __init__(
        self, scoped: Scoped[OutageRules], signals: dict[str, Signal], make: MakeSignal
    ) -> None:
        self.scoped = scoped
        self.signals = signals
        self.make = make
        self.sources: dict[str, _Source] = {}

    def beat(self, event: Event) -> None:
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

    def resume(self, down_from: float, at: float) -> None:
        """A source alive when the monitor went down is presumed alive when it is back."""
        for name, src in self.sources.items():
            p = self.scoped.get(source=name)
            limit = max(p.heartbeat_factor * (src.interval or 0.0), p.heartbeat_min_s)
            if down_from - src.last_seen <= limit:
                src.last_seen = max(src.last_seen, at)

    def next_due(self, at: float) -> float | None:
        """When the next source's silence passes its limit (replay, :mod:`monitor.engine`)."""
        due: float | None = None
        for name, src in self.sources.items():
            p = self.scoped.get(source=name)
            if src.beats < p.heartbeat_min_beats or src.interval is None:
                continue
            lost = src.last_seen + max(p.heartbeat_factor * src.interval, p.heartbeat_min_s)
            if lost + STRICT > at and (due is None or lost + STRICT < due):
                due = lost + STRICT  # silent for *more* than the limit
        return due

    def judge(self, w: float) -> None:
        for name, src in self.sources.items():
            p = self.scoped.get(source=name)
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
            signal = self.make("outage.heartbeat", name, p.heartbeat_severity, title, evidence)
            self.signals[fingerprint] = replace(signal, tenant=src.tenant)

    def snapshot(self) -> dict[str, Any]:
        return {
            "sources": {
                n: [s.beats, s.interval, s.last_seen, s.tenant] for n, s in self.sources.items()
            }
        }

    def restore(self, state: dict[str, Any]) -> None:
        self.sources.clear()
        for name, (beats, interval, last_seen, tenant) in state.get("sources", {}).items():
            src = self.sources[name] = _Source()
            src.beats, src.interval, src.last_seen, src.tenant = beats, interval, last_seen, tenant
